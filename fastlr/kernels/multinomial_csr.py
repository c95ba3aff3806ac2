"""Multinomial (softmax) cross-entropy on CSR X: the twins of :mod:`.multinomial_dense`.

X enters as a :class:`fastlr.kernels.binary_csr.CsrArrays`. The contracts are
those of the dense multinomial kernels; float32 data is computed in float32.
X is never densified: a row costs its non-zeros times K.

Design
------
Transposed coefficients
    Inside a kernel call the coefficients and their gradient are held
    transposed, (d, K), as scipy's sparse-times-dense products hold them: a
    non-zero ``x_ij`` then gathers (scores) and scatters (update) the K
    contiguous values of feature ``j``, one or two cache lines, instead of K
    lines of a (K, d) array. The transpositions cost O(K d) per gradient call
    or per epoch.
Blocks
    Rows go in the blocks of the binary CSR kernels
    (:func:`fastlr.kernels.binary_csr.csr_block_end`): the block's scores,
    then the softmax residuals of the dense kernels
    (:func:`fastlr.kernels.multinomial_dense.multinomial_block_residuals`, one
    vectorized exp over the block), then the update. Index reads are
    unsigned, so the gathers need no negative-index check. The residual
    workspace is cut to the block's exact number of rows, so no exp is spent
    on unused columns.
Parallel reduction
    :func:`csr_multinomial_fused_gradient` runs ``prange`` over fixed row
    chunks, each adding into its own dense (d, K) partial, summed in chunk
    order: bitwise identical for any thread count. The partials hold
    ``n_chunks * K * d`` elements, capped as the binary CSR partials are
    (:func:`csr_multinomial_n_chunks`).
Penalties in the epochs
    L2 by weight scaling (a scalar factor of W). L1 in the sgd epoch is the
    lazy cumulative truncation of :func:`fastlr.kernels.binary_csr.csr_sgd_epoch`:
    the K weights of a feature catch up on the accumulated penalty when the
    feature next appears in a row, and all weights at the end of the epoch.
    With ``alpha = 0`` or ``l1 = 0`` this is the dense epoch; with both, a
    backlog is taken at the weight scale of its catch-up (slightly more
    shrinkage between a feature's appearances). The mini-batch epoch takes
    the L1 proximal step on all weights after each batch, exactly as the
    dense one.

The CSR kernels agree with the dense ones on ``X.toarray()`` up to rounding
(see :mod:`.binary_csr`): in float64 a few ulps per term, far below 1e-10
relative; in float32 about ``sqrt(n) * 6e-8`` relative over n terms.
"""

import numpy as np
from numba import prange

from .._jit import kernel
from .binary_csr import CSR_BLOCK_ROWS, csr_block_end, csr_n_chunks
from .multinomial_dense import multinomial_block_residuals, multinomial_workspace
from .steps import (
    average_step,
    batch_bounds,
    batch_weight,
    fold_average,
    lazy_average_step,
    learning_rate,
    rescale,
    scale_2d,
    shrink,
    shrink_kept,
    soft_threshold,
    truncate_kept,
)


def csr_multinomial_n_chunks(n_rows, n_features, n_classes):
    """Row chunks of the parallel gradient: a function of the shape only.

    The binary CSR chunking (:func:`fastlr.kernels.binary_csr.csr_n_chunks`) with a
    partial of ``n_classes * n_features`` elements per chunk, so the partials
    together stay under ``fastlr.kernels.binary_csr.MAX_PARTIAL_ELEMENTS``.

    Parameters
    ----------
    n_rows, n_features : int
        Shape of X.
    n_classes : int

    Returns
    -------
    n_chunks : int
        At least 1.
    """
    return csr_n_chunks(n_rows, n_classes * n_features)


@kernel
def _block_views(z, work, row_work, m):
    """The workspace of :func:`.multinomial_dense.multinomial_workspace` cut to ``m`` rows.

    Returns C-contiguous views of shapes (K, m), (3, K m) and (3, m), so
    :func:`.multinomial_dense.multinomial_block_residuals` works on the block's rows only.
    """
    n_classes = z.shape[0]
    return (
        z.reshape(-1)[: n_classes * m].reshape((n_classes, m)),
        work.reshape(-1)[: 3 * n_classes * m].reshape((3, n_classes * m)),
        row_work.reshape(-1)[: 3 * m].reshape((3, m)),
    )


@kernel
def _transpose(a, out):
    """``out[j, k] = a[k, j]``: ``out`` has the transposed shape of ``a``."""
    for k in range(a.shape[0]):
        for j in range(a.shape[1]):
            out[j, k] = a[k, j]


@kernel
def _transposed(a):
    """A new C-contiguous transpose of the 2-D array ``a``."""
    out = np.empty((a.shape[1], a.shape[0]), a.dtype)
    _transpose(a, out)
    return out


@kernel
def _add_transposed(a_t, out):
    """``out[k, j] += a_t[j, k]``."""
    for k in range(out.shape[0]):
        for j in range(out.shape[1]):
            out[k, j] += a_t[j, k]


@kernel
def _csr_block_scores(data, indices, indptr, rows, m, coef_t, intercept, scale, z, acc):
    """``z[k, r] = scale * coef_t[:, k] . X[rows[r]] + intercept[k]`` for ``r < m``.

    ``acc`` is a scratch array of length K in ``data``'s dtype.
    """
    n_classes = coef_t.shape[1]
    for r in range(m):
        i = rows[r]
        for k in range(n_classes):
            acc[k] = 0
        for p in range(np.uint64(indptr[i]), np.uint64(indptr[i + 1])):
            w = coef_t[np.uint64(indices[p])]
            v = data[p]
            for k in range(n_classes):
                acc[k] += w[k] * v
        for k in range(n_classes):
            z[k, r] = scale * acc[k] + intercept[k]


@kernel
def _csr_block_update(data, indices, indptr, rows, m, residual, grad_t, res):
    """``grad_t[:, k] += sum_r residual[k, r] X[rows[r]]`` for ``r < m``.

    ``res`` is a scratch array of length K in ``data``'s dtype.
    """
    n_classes = grad_t.shape[1]
    dtype = data.dtype.type
    for r in range(m):
        i = rows[r]
        for k in range(n_classes):
            res[k] = dtype(residual[k, r])
        for p in range(np.uint64(indptr[i]), np.uint64(indptr[i + 1])):
            g = grad_t[np.uint64(indices[p])]
            v = data[p]
            for k in range(n_classes):
                g[k] += v * res[k]


@kernel
def csr_multinomial_rows_gradient(
    data, indices, indptr, y, sw, order, start, stop, coef, intercept, with_loss, grad_coef,
    grad_intercept,
):  # fmt: skip
    """Add the gradient sums over rows ``order[start:stop]`` (or ``start:stop``).

    The twin of :func:`fastlr.kernels.multinomial_dense.multinomial_rows_gradient`, with
    the same arguments after the CSR arrays and the same return.

    Parameters
    ----------
    data, indices, indptr : ndarray
        X's CSR arrays.
    y, sw, order, start, stop, coef, intercept, with_loss, grad_coef, grad_intercept
        As for :func:`fastlr.kernels.multinomial_dense.multinomial_rows_gradient`.

    Returns
    -------
    loss_sum : float
        ``sum_i sw_i loss_i`` (0 when ``with_loss`` is false).
    """
    grad_t = np.zeros((coef.shape[1], coef.shape[0]), data.dtype)
    cost = _rows_gradient_t(
        data, indices, indptr, y, sw, order, start, stop, _transposed(coef), data.dtype.type(1),
        intercept, with_loss, grad_t, grad_intercept,
    )  # fmt: skip
    _add_transposed(grad_t, grad_coef)
    return cost


@kernel
def _rows_gradient_t(
    data, indices, indptr, y, sw, order, start, stop, coef_t, scale, intercept, with_loss, grad_t,
    grad_intercept,
):  # fmt: skip
    """:func:`csr_multinomial_rows_gradient` on transposed coefficients and gradient, (d, K).

    The scores are ``scale * W x + b`` (``scale``: a mini-batch epoch's weight scale, else 1).
    """
    n_classes = coef_t.shape[1]
    has_order = order.shape[0] > 0
    rows = np.empty(CSR_BLOCK_ROWS, np.int64)
    z_all, work_all, row_work_all = multinomial_workspace(n_classes, CSR_BLOCK_ROWS)
    acc = np.empty(n_classes, data.dtype)
    db = np.zeros(n_classes)
    cost = 0.0
    block_start = start
    while block_start < stop:
        block_stop = csr_block_end(indptr, order, block_start, stop)
        m = block_stop - block_start
        for r in range(m):
            rows[r] = order[block_start + r] if has_order else block_start + r
        z, work, row_work = _block_views(z_all, work_all, row_work_all, m)
        _csr_block_scores(data, indices, indptr, rows, m, coef_t, intercept, scale, z, acc)
        cost += multinomial_block_residuals(z, m, y, sw, rows, with_loss, work, row_work)
        _csr_block_update(data, indices, indptr, rows, m, z, grad_t, acc)
        for r in range(m):
            for k in range(n_classes):
                db[k] += z[k, r]
        block_start = block_stop
    for k in range(n_classes):
        grad_intercept[k] += db[k]
    return cost


@kernel(parallel=True)
def csr_multinomial_fused_gradient(
    data, indices, indptr, y, sw, coef, intercept, with_loss, n_chunks, grad_coef, grad_intercept
):
    """One parallel pass over the non-zeros: gradient sums and, when asked, the loss sum.

    The twin of :func:`fastlr.kernels.multinomial_dense.multinomial_fused_gradient`.
    ``prange`` runs over ``n_chunks`` fixed row chunks
    (:func:`csr_multinomial_n_chunks`), each scattering into its own dense
    (d, K) partial; the partials are then added in chunk order, so the result
    is bitwise identical for any number of threads.

    Returns
    -------
    loss_sum : float
    """
    n = indptr.shape[0] - 1
    n_classes, d = coef.shape
    chunk = -(-n // n_chunks)
    coef_t = _transposed(coef)
    partial = np.zeros((n_chunks, d, n_classes), data.dtype)
    partial_b = np.zeros((n_chunks, n_classes), data.dtype)
    partial_cost = np.zeros(n_chunks)
    no_order = np.empty(0, np.int64)
    for c in prange(n_chunks):
        start = min(c * chunk, n)
        stop = min(start + chunk, n)
        partial_cost[c] = _rows_gradient_t(
            data, indices, indptr, y, sw, no_order, start, stop, coef_t, data.dtype.type(1),
            intercept, with_loss, partial[c], partial_b[c],
        )  # fmt: skip
    cost = 0.0
    for c in range(n_chunks):
        _add_transposed(partial[c], grad_coef)
        for k in range(n_classes):
            grad_intercept[k] += partial_b[c, k]
        cost += partial_cost[c]
    return cost


@kernel
def csr_multinomial_sgd_epoch(
    data, indices, indptr, y, sw, order, coef, intercept, fit_intercept, alpha, l1, l1_state,
    schedule, rate, t, average_start, avg_coef, avg_intercept,
):  # fmt: skip
    """One epoch of per-example softmax SGD with L2 and L1 penalties, on CSR rows.

    The twin of :func:`fastlr.kernels.multinomial_dense.multinomial_sgd_epoch`, with the
    same arguments after the CSR arrays and the same returns; an update costs
    K times the row's non-zeros. The L2 shrinkage is a scalar factor of W; the
    cumulative L1 truncation is lazy, as in :func:`fastlr.kernels.binary_csr.csr_sgd_epoch`
    (see the module docstring for where that differs from the dense epoch).
    Averaged SGD (``average_start > 0``, ``avg_coef`` (K, d) and
    ``avg_intercept`` (K,)) is the lazy O(non-zeros) scheme of
    :func:`fastlr.kernels.binary_csr.csr_sgd_epoch`, on the transposed average.

    Returns
    -------
    sum_loss : float
        Sum over the epoch of each example's weighted loss before its update.
    t : float
        The update counter after the epoch.
    """
    n_classes, d = coef.shape
    dtype = data.dtype.type
    coef_t = _transposed(coef)
    flat_t = coef_t.reshape(-1)
    state_t = _l1_state_transposed(l1_state, n_classes, d) if l1 > 0.0 else l1_state
    rows = np.empty(1, np.int64)
    z, work, row_work = multinomial_workspace(n_classes, 1)
    scratch = np.empty(n_classes, data.dtype)
    wscale = 1.0
    sum_loss = 0.0
    averaging = average_start > 0.0
    avg_t = _transposed(avg_coef) if averaging else np.empty((0, 0), data.dtype)
    avg_flat_t = avg_t.reshape(-1)
    lazy = np.array([0.0, 1.0])  # (a, b): the average is (avg_t + a coef_t) / b
    for position in range(order.shape[0]):
        i = order[position]
        rows[0] = i
        if l1 > 0.0:
            _truncate_row_t(
                indices, indptr[i], indptr[i + 1], coef_t, wscale, state_t, avg_t, lazy[0]
            )
        _csr_block_scores(
            data, indices, indptr, rows, 1, coef_t, intercept, dtype(wscale), z, scratch
        )
        sum_loss += multinomial_block_residuals(z, 1, y, sw, rows, True, work, row_work)
        eta = learning_rate(schedule, t, rate[0], rate[1], alpha + l1, rate[2])
        if alpha > 0.0:
            wscale = shrink_kept(flat_t, wscale, 1.0 - eta * alpha, averaging, avg_flat_t, lazy)
        if fit_intercept:
            for k in range(n_classes):
                intercept[k] -= dtype(eta * z[k, 0])
        scale_2d(z, -eta / wscale if wscale > 0.0 else 0.0)
        _csr_block_update(data, indices, indptr, rows, 1, z, coef_t, scratch)
        if lazy[0] != 0.0:  # offset the change of coef_t in the lazy average
            scale_2d(z, -lazy[0])
            _csr_block_update(data, indices, indptr, rows, 1, z, avg_t, scratch)
        if l1 > 0.0:
            state_t[flat_t.shape[0]] += eta * l1
            _truncate_row_t(
                indices, indptr[i], indptr[i + 1], coef_t, wscale, state_t, avg_t, lazy[0]
            )
        if averaging and t >= average_start:
            count = t - average_start + 1.0
            lazy_average_step(avg_flat_t, lazy, wscale, count)
            average_step(intercept, 1.0, 1.0 / count, avg_intercept)
        t += 1.0
    if l1 > 0.0:
        for q in range(flat_t.shape[0]):
            truncate_kept(flat_t, q, wscale, state_t, avg_flat_t, lazy[0])
        _transpose(_flat_view(state_t, d, n_classes), _flat_view(l1_state, n_classes, d))
        l1_state[flat_t.shape[0]] = state_t[flat_t.shape[0]]
    if averaging:
        fold_average(flat_t, avg_flat_t, lazy)
        _transpose(avg_t, avg_coef)
    rescale(flat_t, wscale)
    _transpose(coef_t, coef)
    return sum_loss, t


@kernel
def _flat_view(l1_state, rows, cols):
    """The first ``rows * cols`` entries of the 1-D ``l1_state`` as a (rows, cols) view."""
    return l1_state[: rows * cols].reshape((rows, cols))


@kernel
def _l1_state_transposed(l1_state, n_classes, d):
    """The L1 state over ``coef.ravel()`` rearranged over ``coef.T.ravel()``; ``u`` stays last."""
    state_t = np.empty_like(l1_state)
    _transpose(_flat_view(l1_state, n_classes, d), _flat_view(state_t, d, n_classes))
    state_t[n_classes * d] = l1_state[n_classes * d]
    return state_t


@kernel
def _truncate_row_t(indices, start, stop, coef_t, wscale, state_t, avg_t, a):
    """Cumulative L1 truncation of the K weights of each non-zero ``start:stop``.

    ``coef_t`` is (d, K) and ``state_t`` over its ravel: the weights of feature
    ``j`` are the K entries from ``j K``. Each change is offset in the lazy
    average ``avg_t`` (:func:`fastlr.kernels.steps.truncate_kept`; ``a`` 0: none).
    """
    n_classes = coef_t.shape[1]
    flat_t = coef_t.reshape(-1)
    avg_flat_t = avg_t.reshape(-1)
    for p in range(start, stop):
        base = indices[p] * n_classes
        for k in range(n_classes):
            truncate_kept(flat_t, base + k, wscale, state_t, avg_flat_t, a)


@kernel
def csr_multinomial_minibatch_epoch(
    data, indices, indptr, y, sw, order, runs, batch_size, coef, intercept, fit_intercept, alpha,
    l1, l1_state, schedule, rate, t,
):  # fmt: skip
    """One epoch of mini-batch softmax SGD in batches of ``batch_size``, on CSR rows.

    The twin of :func:`fastlr.kernels.multinomial_dense.multinomial_minibatch_epoch`
    (batches cut from ``runs``, never spanning two): each batch takes one
    step along its mean gradient plus ``alpha * W``, then the L1 prox
    (soft-thresholding by ``eta * l1``); the schedule's ``t`` counts batches.
    Arguments and returns as :func:`csr_multinomial_sgd_epoch` (``l1_state``
    is unused); the loss of each batch is taken before its step.
    Without L1 a batch costs its non-zeros times K, not ``n_features * K``:
    the L2 shrinkage is a scalar weight scale and the step and the zeroing of
    the gradient visit the batch's columns, as in
    :func:`fastlr.kernels.binary_csr.csr_minibatch_epoch`.
    """
    dtype = data.dtype.type
    coef_t = _transposed(coef)
    flat_t = coef_t.reshape(-1)
    grad_t = np.zeros_like(coef_t)
    grad_b = np.zeros_like(intercept)
    wscale = 1.0
    sum_loss = 0.0
    bounds = batch_bounds(runs, batch_size)
    for b in range(bounds.shape[0]):
        start, stop = bounds[b, 0], bounds[b, 1]
        grad_b.fill(0)
        sum_loss += _rows_gradient_t(
            data, indices, indptr, y, sw, order, start, stop, coef_t, dtype(wscale), intercept,
            True, grad_t, grad_b,
        )  # fmt: skip
        weight = batch_weight(sw, order, start, stop)
        eta = learning_rate(schedule, t, rate[0], rate[1], alpha + l1, rate[2])
        if weight > 0.0 and alpha > 0.0:
            wscale = shrink(flat_t, wscale, 1.0 - eta * alpha)
        step = eta / (weight * wscale) if weight > 0.0 and wscale > 0.0 else 0.0
        _step_and_clear_t(indices, indptr, order, start, stop, dtype(-step), grad_t, coef_t)
        if weight <= 0.0:
            continue
        if l1 > 0.0:
            rescale(flat_t, wscale)
            wscale = 1.0
            soft_threshold(flat_t, dtype(eta * l1))
        if fit_intercept:
            for k in range(grad_b.shape[0]):
                intercept[k] -= dtype(eta / weight) * grad_b[k]
        t += 1.0
    rescale(flat_t, wscale)
    _transpose(coef_t, coef)
    return sum_loss, t


@kernel
def _step_and_clear_t(indices, indptr, order, start, stop, step, grad_t, coef_t):
    """:func:`fastlr.kernels.binary_csr._step_and_clear` on transposed (n_features, K) weights."""
    n_classes = coef_t.shape[1]
    has_order = order.shape[0] > 0
    for k in range(start, stop):
        i = order[k] if has_order else k
        for p in range(np.uint64(indptr[i]), np.uint64(indptr[i + 1])):
            j = np.uint64(indices[p])
            for c in range(n_classes):
                coef_t[j, c] += step * grad_t[j, c]
                grad_t[j, c] = 0


# --------------------------------------------------------------------------
# The family's contract (see fastlr.kernels).
# --------------------------------------------------------------------------


def gradient_sums(X, y, sw, coef, intercept, with_loss, grad_coef, grad_intercept):
    """Add the gradient sums over X's rows into the buffers; return the loss sum.

    The CSR twin of :func:`fastlr.kernels.multinomial_dense.gradient_sums`,
    with ``X`` a :class:`fastlr.kernels.binary_csr.CsrArrays`: the fused
    parallel kernel when the rows form several chunks
    (:func:`csr_multinomial_n_chunks`), the serial one otherwise.
    """
    data, indices, indptr, n_features = X
    n_rows = indptr.shape[0] - 1
    n_chunks = csr_multinomial_n_chunks(n_rows, n_features, coef.shape[0])
    if n_chunks > 1:
        return csr_multinomial_fused_gradient(
            data, indices, indptr, y, sw, coef, intercept, with_loss, n_chunks, grad_coef,
            grad_intercept,
        )  # fmt: skip
    no_order = np.empty(0, np.int64)
    return csr_multinomial_rows_gradient(
        data, indices, indptr, y, sw, no_order, 0, n_rows, coef, intercept, with_loss, grad_coef,
        grad_intercept,
    )  # fmt: skip


def sgd_epoch(X, y, sw, order, args):
    """One per-example epoch (:func:`csr_multinomial_sgd_epoch`); returns ``(loss_sum, t)``."""
    data, indices, indptr, _ = X
    return csr_multinomial_sgd_epoch(data, indices, indptr, y, sw, order, *args)


def minibatch_epoch(X, y, sw, order, runs, batch_size, args):
    """One mini-batch epoch (:func:`csr_multinomial_minibatch_epoch`); returns ``(loss_sum, t)``."""
    data, indices, indptr, _ = X
    return csr_multinomial_minibatch_epoch(
        data, indices, indptr, y, sw, order, runs, batch_size, *args.minibatch()
    )
