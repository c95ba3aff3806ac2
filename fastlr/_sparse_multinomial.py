"""Compiled CSR twins of the multinomial (softmax) kernels of :mod:`fastlr._multinomial`.

X enters as its CSR arrays ``data, indices, indptr`` (checked and normalised
once by :func:`fastlr._validation.csr_arrays`). The contracts are those of the
dense multinomial kernels: ``y`` holds int64 class indices, ``sw`` is the
sample weight array in ``data``'s dtype or empty for unit weights, ``order`` an
int64 index array or empty for rows in order; the gradient kernels return
*sums* over rows and add them into the caller's buffers ``grad_coef`` (K, d)
and ``grad_intercept`` (K,) in ``data``'s dtype; float32 data is computed in
float32. X is never densified: a row costs its non-zeros times K.

Design
------
Transposed coefficients
    Inside a kernel call the coefficients and their gradient are held
    transposed, (d, K), as scipy's sparse-times-dense products hold them: a
    non-zero ``x_ij`` then gathers (scores) and scatters (update) the K
    contiguous values of feature ``j``, one or two cache lines, instead of K
    lines of a (K, d) array. Measured 1.7x faster than K per-class passes
    (1e5 x 1e4, 50 non-zeros per row, 10 classes, one thread). The
    transpositions cost O(K d) per gradient call or per epoch.
Blocks
    Rows go in the blocks of the binary CSR kernels
    (:func:`fastlr._sparse._block_end`: at most 256 rows and, past one row,
    8192 non-zeros, so the block is still in cache when it is re-read): the
    block's scores, then the softmax residuals of the dense kernels
    (:func:`fastlr._multinomial._block_residuals`, one vectorized exp over the
    block), then the update. Index reads are unsigned, as in
    :func:`fastlr._sparse._row_dot`, so the gathers need no negative-index
    check. The residual workspace is cut to the block's exact number of rows,
    so no exp is spent on unused columns.
Parallel reduction
    :func:`csr_multinomial_fused_gradient` runs ``prange`` over fixed row
    chunks, each adding into its own dense (d, K) partial, summed in chunk
    order: bitwise identical for any thread count. The partials hold
    ``n_chunks * K * d`` elements, capped as the binary CSR partials are
    (:func:`csr_multinomial_n_chunks`).
Penalties in the epochs
    L2 by weight scaling (a scalar factor of W). L1 in the sgd epoch is the
    lazy cumulative truncation of :func:`fastlr._sparse.csr_sgd_epoch`: the K
    weights of a feature catch up on the accumulated penalty when the feature
    next appears in a row, and all weights at the end of the epoch. With
    ``alpha = 0`` or ``l1 = 0`` this is the dense epoch; with both, a backlog
    is taken at the weight scale of its catch-up (slightly more shrinkage
    between a feature's appearances). The mini-batch epoch takes the L1
    proximal step on all weights after each batch, exactly as the dense one.

The CSR kernels agree with the dense ones on ``X.toarray()`` up to rounding:
both add the same products, but the dense loops also add the zeros and,
vectorized under fastmath reassociation, add in another order. Every
operation after the scores (softmax, residuals, steps) is the same code on
the same values. In float64 that is a few ulps per term, far below 1e-10
relative; in float32 about ``sqrt(n) * 6e-8`` relative over n terms, below
1e-4.

The block residuals, the workspace, the schedule, the L1 steps and the CSR
blocks are imported from :mod:`fastlr._kernels`,
:mod:`fastlr._multinomial` and :mod:`fastlr._sparse` rather than copied
(numba's cache is stamped by the whole package: see :mod:`fastlr._jit`).
"""

import numpy as np
from numba import prange

from ._jit import kernel
from ._kernels import _shrink, batch_weight, learning_rate, soft_threshold
from ._multinomial import _block_residuals, _scale, _workspace
from ._sparse import (
    BLOCK_ROWS,
    _block_end,
    _fold_average,
    _lazy_average_step,
    _shrink_kept,
    _truncate_kept,
    csr_n_chunks,
)


def csr_multinomial_n_chunks(n_rows, n_features, n_classes):
    """Row chunks of the parallel gradient: a function of the shape only.

    The binary CSR chunking (:func:`fastlr._sparse.csr_n_chunks`) with a
    partial of ``n_classes * n_features`` elements per chunk, so the partials
    together stay under ``fastlr._sparse.MAX_PARTIAL_ELEMENTS``.

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


# --------------------------------------------------------------------------
# Block kernels: K gathers of each row, then K scatters.
# --------------------------------------------------------------------------


@kernel
def _block_views(z, work, row_work, m):
    """The workspace of :func:`fastlr._multinomial._workspace` cut to ``m`` rows.

    Returns C-contiguous views of shapes (K, m), (3, K m) and (3, m), so
    :func:`fastlr._multinomial._block_residuals` works on the block's rows only.
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


# --------------------------------------------------------------------------
# Gradient sums: serial over a range of rows, and the fused parallel pass.
# --------------------------------------------------------------------------


@kernel
def csr_multinomial_rows_gradient(
    data, indices, indptr, y, sw, order, start, stop, coef, intercept, with_loss, grad_coef,
    grad_intercept,
):  # fmt: skip
    """Add the gradient sums over rows ``order[start:stop]`` (or ``start:stop``).

    The twin of :func:`fastlr._multinomial.multinomial_rows_gradient`, with
    the same arguments after the CSR arrays and the same return.

    Parameters
    ----------
    data, indices, indptr : ndarray
        X's CSR arrays.
    y, sw, order, start, stop, coef, intercept, with_loss, grad_coef, grad_intercept
        As for :func:`fastlr._multinomial.multinomial_rows_gradient`.

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
    rows = np.empty(BLOCK_ROWS, np.int64)
    z_all, work_all, row_work_all = _workspace(n_classes, BLOCK_ROWS)
    acc = np.empty(n_classes, data.dtype)
    db = np.zeros(n_classes)
    cost = 0.0
    block_start = start
    while block_start < stop:
        block_stop = _block_end(indptr, order, block_start, stop)
        m = block_stop - block_start
        for r in range(m):
            rows[r] = order[block_start + r] if has_order else block_start + r
        z, work, row_work = _block_views(z_all, work_all, row_work_all, m)
        _csr_block_scores(data, indices, indptr, rows, m, coef_t, intercept, scale, z, acc)
        cost += _block_residuals(z, m, y, sw, rows, with_loss, work, row_work)
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

    The twin of :func:`fastlr._multinomial.multinomial_fused_gradient`.
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


def csr_multinomial_gradient_sums(
    data, indices, indptr, n_features, y, sw, coef, intercept, with_loss, grad_coef,
    grad_intercept,
):  # fmt: skip
    """Add the gradient sums over all rows of a CSR X into the buffers; return the loss sum.

    The CSR twin of :func:`fastlr._multinomial.multinomial_gradient_sums`:
    the fused parallel kernel when the rows form several chunks
    (:func:`csr_multinomial_n_chunks`), the serial one otherwise. Calls on
    row slices of a data set with the same buffers sum to the call on all rows.

    Parameters
    ----------
    data, indices, indptr : ndarray
        X's CSR arrays, as returned by :func:`fastlr._validation.csr_arrays`.
    n_features : int
        Number of columns of X.
    y : ndarray of shape (n_samples,)
        int64 class indices.
    sw : ndarray of shape (n_samples,) or (0,)
        Sample weights in ``data``'s dtype, or empty for unit weights.
    coef : ndarray of shape (n_classes, n_features)
        C-contiguous, in ``data``'s dtype.
    intercept : ndarray of shape (n_classes,)
        In ``data``'s dtype.
    with_loss : bool
        Also sum the loss; skipping it saves one ``log1p`` per sample.
    grad_coef : ndarray of shape (n_classes, n_features)
        ``sum_i sw_i (p_i - e_{y_i}) x_i^T`` is added into it.
    grad_intercept : ndarray of shape (n_classes,)
        ``sum_i sw_i (p_i - e_{y_i})`` is added into it.

    Returns
    -------
    loss_sum : float
        ``sum_i sw_i loss_i`` (0 when ``with_loss`` is false).
    """
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


# --------------------------------------------------------------------------
# Stochastic solvers: a whole epoch per call, shuffled through ``order``.
# --------------------------------------------------------------------------


@kernel
def csr_multinomial_sgd_epoch(
    data, indices, indptr, y, sw, order, coef, intercept, fit_intercept, alpha, l1, l1_state,
    schedule, rate, t, average_start, avg_coef, avg_intercept,
):  # fmt: skip
    """One epoch of per-example softmax SGD with L2 and L1 penalties, on CSR rows.

    The twin of :func:`fastlr._multinomial.multinomial_sgd_epoch`, with the
    same arguments after the CSR arrays and the same returns; an update costs
    K times the row's non-zeros. The L2 shrinkage is a scalar factor of W; the
    cumulative L1 truncation is lazy, as in :func:`fastlr._sparse.csr_sgd_epoch`
    (see the module docstring for where that differs from the dense epoch).
    Averaged SGD (``average_start > 0``, ``avg_coef`` (K, d) and
    ``avg_intercept`` (K,)) is the lazy O(non-zeros) scheme of
    :func:`fastlr._sparse.csr_sgd_epoch`, on the transposed average.

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
    z, work, row_work = _workspace(n_classes, 1)
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
        sum_loss += _block_residuals(z, 1, y, sw, rows, True, work, row_work)
        eta = learning_rate(schedule, t, rate[0], rate[1], alpha + l1, rate[2])
        if alpha > 0.0:
            wscale = _shrink_kept(flat_t, wscale, 1.0 - eta * alpha, averaging, avg_flat_t, lazy)
        if fit_intercept:
            for k in range(n_classes):
                intercept[k] -= dtype(eta * z[k, 0])
        _scale(z, -eta / wscale if wscale > 0.0 else 0.0)
        _csr_block_update(data, indices, indptr, rows, 1, z, coef_t, scratch)
        if lazy[0] != 0.0:  # offset the change of coef_t in the lazy average
            _scale(z, -lazy[0])
            _csr_block_update(data, indices, indptr, rows, 1, z, avg_t, scratch)
        if l1 > 0.0:
            state_t[flat_t.shape[0]] += eta * l1
            _truncate_row_t(
                indices, indptr[i], indptr[i + 1], coef_t, wscale, state_t, avg_t, lazy[0]
            )
        if averaging and t >= average_start:
            count = t - average_start + 1.0
            _lazy_average_step(avg_flat_t, lazy, wscale, count)
            for k in range(n_classes):
                avg_intercept[k] += dtype(1.0 / count) * (intercept[k] - avg_intercept[k])
        t += 1.0
    if l1 > 0.0:
        for q in range(flat_t.shape[0]):
            _truncate_kept(flat_t, q, wscale, state_t, avg_flat_t, lazy[0])
        _transpose(_flat_view(state_t, d, n_classes), _flat_view(l1_state, n_classes, d))
        l1_state[flat_t.shape[0]] = state_t[flat_t.shape[0]]
    if averaging:
        _fold_average(flat_t, avg_flat_t, lazy)
        _transpose(avg_t, avg_coef)
    _scale(coef_t, dtype(wscale))
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
    average ``avg_t`` (:func:`fastlr._sparse._truncate_kept`; ``a`` 0: none).
    """
    n_classes = coef_t.shape[1]
    flat_t = coef_t.reshape(-1)
    avg_flat_t = avg_t.reshape(-1)
    for p in range(start, stop):
        base = indices[p] * n_classes
        for k in range(n_classes):
            _truncate_kept(flat_t, base + k, wscale, state_t, avg_flat_t, a)


@kernel
def csr_multinomial_minibatch_epoch(
    data, indices, indptr, y, sw, order, batch_size, coef, intercept, fit_intercept, alpha, l1,
    l1_state, schedule, rate, t,
):  # fmt: skip
    """One epoch of mini-batch softmax SGD in batches of ``batch_size``, on CSR rows.

    The twin of :func:`fastlr._multinomial.multinomial_minibatch_epoch`: each
    batch takes one step along its mean gradient plus ``alpha * W``, then the
    L1 prox (soft-thresholding by ``eta * l1``); the schedule's ``t`` counts
    batches. Arguments and returns as :func:`csr_multinomial_sgd_epoch`
    (``l1_state`` is unused); the loss of each batch is taken before its step.
    Without L1 a batch costs its non-zeros times K, not ``n_features * K``:
    the L2 shrinkage is a scalar weight scale and the step and the zeroing of
    the gradient visit the batch's columns, as in
    :func:`fastlr._sparse.csr_minibatch_epoch`.
    """
    n = order.shape[0]
    dtype = data.dtype.type
    coef_t = _transposed(coef)
    grad_t = np.zeros_like(coef_t)
    grad_b = np.zeros_like(intercept)
    wscale = 1.0
    sum_loss = 0.0
    for start in range(0, n, batch_size):
        stop = min(start + batch_size, n)
        grad_b.fill(0)
        sum_loss += _rows_gradient_t(
            data, indices, indptr, y, sw, order, start, stop, coef_t, dtype(wscale), intercept,
            True, grad_t, grad_b,
        )  # fmt: skip
        weight = batch_weight(sw, order, start, stop)
        eta = learning_rate(schedule, t, rate[0], rate[1], alpha + l1, rate[2])
        if weight > 0.0 and alpha > 0.0:
            wscale = _shrink(coef_t.reshape(-1), wscale, 1.0 - eta * alpha)
        step = eta / (weight * wscale) if weight > 0.0 and wscale > 0.0 else 0.0
        _step_and_clear_t(indices, indptr, order, start, stop, dtype(-step), grad_t, coef_t)
        if weight <= 0.0:
            continue
        if l1 > 0.0:
            _scale(coef_t, dtype(wscale))
            wscale = 1.0
            soft_threshold(coef_t.reshape(-1), dtype(eta * l1))
        if fit_intercept:
            for k in range(grad_b.shape[0]):
                intercept[k] -= dtype(eta / weight) * grad_b[k]
        t += 1.0
    _scale(coef_t, dtype(wscale))
    _transpose(coef_t, coef)
    return sum_loss, t


@kernel
def _step_and_clear_t(indices, indptr, order, start, stop, step, grad_t, coef_t):
    """:func:`fastlr._sparse._step_and_clear` on transposed (n_features, K) weights."""
    n_classes = coef_t.shape[1]
    for k in range(start, stop):
        i = order[k]
        for p in range(np.uint64(indptr[i]), np.uint64(indptr[i + 1])):
            j = np.uint64(indices[p])
            for c in range(n_classes):
                coef_t[j, c] += step * grad_t[j, c]
                grad_t[j, c] = 0
