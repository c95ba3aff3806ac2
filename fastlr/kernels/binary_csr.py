"""Binary logistic loss on CSR X: the twins of :mod:`.binary_dense`.

A CSR matrix enters as :class:`CsrArrays` (``data, indices, indptr`` and its
number of columns; :func:`fastlr._validation.csr_arrays` checks and
normalises them once). The contracts are those of the dense kernels: float32
data is computed in float32, and X is never densified: a row costs its
non-zeros only, and ``X.T @ r`` is a scatter into a dense buffer of length
``n_features``.

The parallel gradient gives each fixed row chunk its own dense partial, summed
in chunk order afterwards, so it is bitwise identical for any thread count.
Those partials cost ``n_chunks * n_features`` elements, zeroed and summed on
every call, so :func:`csr_n_chunks` caps their total at
``MAX_PARTIAL_ELEMENTS``: very wide data gets fewer chunks, a function of the
shape only.

The CSR kernels agree with the dense ones on ``X.toarray()`` up to rounding:
both add the same products, but the dense row loop also adds the zeros and,
vectorized under fastmath reassociation, adds in a different order. In float64
that is a few ulps per term; in float32 the accumulated rounding of ~n terms is
about ``sqrt(n) * 6e-8`` relative, so 1e-4 (float32) and 1e-10 (float64) are
the tolerances the tests use.
"""

from typing import NamedTuple

import numpy as np
from numba import prange

from .._jit import kernel
from .maths import LOSS_BATCH, pending_loss_sum, residual_and_loss, residual_queueing_loss
from .reduction import add_partials, n_chunks_for
from .steps import (
    batch_bounds,
    batch_weight,
    fold_average,
    lazy_average_step,
    learning_rate,
    rescale,
    shrink,
    shrink_kept,
    soft_threshold,
    truncate_kept,
)


class CsrArrays(NamedTuple):
    """The arrays of a CSR matrix as the kernels take them.

    ``indices`` and ``indptr`` share one integer dtype; ``data`` is float32
    or float64.
    """

    data: np.ndarray
    indices: np.ndarray
    indptr: np.ndarray
    n_features: int


# Cap on n_chunks * n_features of the parallel gradient's dense partials:
# 8 MiB in float64, zeroed and summed on every call, and below glibc's 32 MiB
# mmap threshold (above it each call's allocation page-faults afresh). At 1e5
# features this leaves 10 chunks, so at most 10 threads share the work.
MAX_PARTIAL_ELEMENTS = 2**20
# A block of rows of the gradient: at most CSR_BLOCK_ROWS rows and, unless it is a
# single row, at most CSR_BLOCK_NNZ non-zeros (96 KiB of float64 data and int32
# indices), so that it is still in cache when it is re-read for the scatter.
CSR_BLOCK_ROWS = 256
CSR_BLOCK_NNZ = 8192


def csr_n_chunks(n_rows, n_features):
    """Row chunks of the parallel CSR gradient: a function of the shape only.

    :func:`fastlr.kernels.reduction.n_chunks_for` rows' chunking, reduced so that the
    chunks' dense partials hold at most ``MAX_PARTIAL_ELEMENTS`` elements.

    Parameters
    ----------
    n_rows, n_features : int
        Shape of X.

    Returns
    -------
    n_chunks : int
        At least 1.
    """
    return max(1, min(n_chunks_for(n_rows), MAX_PARTIAL_ELEMENTS // max(n_features, 1)))


@kernel
def _row_dot(data, indices, start, stop, coef, z):
    """``z + sum_p coef[indices[p]] data[p]`` over the non-zeros ``start:stop``.

    Indices are read as unsigned: a signed index makes numba select between
    ``j`` and ``j + len`` (negative indexing) on every access, which stops LLVM
    from vectorizing the gather (3x slower).
    """
    for p in range(np.uint64(start), np.uint64(stop)):
        z += coef[np.uint64(indices[p])] * data[p]
    return z


@kernel
def _row_axpy(data, indices, start, stop, scale, out):
    """``out[indices[p]] += scale * data[p]`` over the non-zeros ``start:stop``.

    Unsigned indices, as in :func:`_row_dot`.
    """
    for p in range(np.uint64(start), np.uint64(stop)):
        out[np.uint64(indices[p])] += data[p] * scale


@kernel
def csr_block_end(indptr, order, start, stop):
    """End of the block of rows that begins at ``start``: see ``CSR_BLOCK_ROWS``."""
    has_order = order.shape[0] > 0
    limit = min(stop, start + CSR_BLOCK_ROWS)
    nnz = 0
    end = start
    while end < limit:
        i = order[end] if has_order else end
        nnz += indptr[i + 1] - indptr[i]
        if nnz > CSR_BLOCK_NNZ and end > start:
            break
        end += 1
    return end


@kernel
def csr_rows_gradient(
    data, indices, indptr, y, sw, order, start, stop, coef, scale, intercept, with_loss, grad_coef
):
    """Per-example gradient over rows ``order[start:stop]`` (or ``start:stop``).

    The scores are ``scale * coef . x_i + intercept`` (``scale`` is the
    weight scale of a mini-batch epoch, else 1). The twin of
    :func:`fastlr.kernels.binary_dense.rows_gradient`: adds
    ``sum_i sw_i (a_i - y_i) x_i`` into ``grad_coef`` and returns
    ``(sum_i sw_i (a_i - y_i), sum_i sw_i loss_i)`` as float64. Rows go in
    blocks that stay in cache: the scores of a block (gathers), then its
    residuals, then its scatter into ``grad_coef``, re-reading the rows from
    cache. Keeping the gathers and the scatters apart is faster than
    alternating them row by row.
    """
    one = data.dtype.type(1)
    has_order = order.shape[0] > 0
    scores = np.empty(CSR_BLOCK_ROWS, data.dtype)
    db = 0.0
    cost = 0.0
    block_start = start
    while block_start < stop:
        block_stop = csr_block_end(indptr, order, block_start, stop)
        for k in range(block_start, block_stop):
            i = order[k] if has_order else k
            z = _row_dot(data, indices, indptr[i], indptr[i + 1], coef, one - one)
            scores[k - block_start] = scale * z + intercept
        for k in range(block_start, block_stop):
            i = order[k] if has_order else k
            dz, loss = residual_and_loss(scores[k - block_start], i, y, sw, one, with_loss)
            scores[k - block_start] = dz
            db += dz
            cost += loss
        for k in range(block_start, block_stop):
            i = order[k] if has_order else k
            dz = scores[k - block_start]
            _row_axpy(data, indices, indptr[i], indptr[i + 1], dz, grad_coef)
        block_start = block_stop
    return db, cost


@kernel(parallel=True)
def csr_fused_gradient(
    data, indices, indptr, y, sw, coef, intercept, with_loss, n_chunks, grad_coef
):
    """One parallel pass over the non-zeros: gradient sums and, when asked, the loss sum.

    The twin of :func:`fastlr.kernels.binary_dense.fused_gradient`. ``prange`` runs over
    ``n_chunks`` fixed row chunks (see :func:`csr_n_chunks`), each scattering
    into its own dense partial of length ``n_features``; the partials are then
    added in chunk order, so the result is bitwise identical for any number of
    threads.

    Returns
    -------
    db, cost : float
        As :func:`csr_rows_gradient`.
    """
    n = indptr.shape[0] - 1
    chunk = -(-n // n_chunks)
    partial = np.zeros((n_chunks, coef.shape[0]), data.dtype)
    partial_db = np.zeros(n_chunks)
    partial_cost = np.zeros(n_chunks)
    no_order = np.empty(0, np.int64)
    for c in prange(n_chunks):
        start = min(c * chunk, n)
        stop = min(start + chunk, n)
        db, cost = csr_rows_gradient(
            data,
            indices,
            indptr,
            y,
            sw,
            no_order,
            start,
            stop,
            coef,
            data.dtype.type(1),
            intercept,
            with_loss,
            partial[c],
        )
        partial_db[c] = db
        partial_cost[c] = cost
    return add_partials(partial, partial_db, partial_cost, grad_coef)


@kernel
def csr_sgd_epoch(
    data, indices, indptr, y, sw, order, coef, intercept, fit_intercept, alpha, l1, l1_state,
    schedule, rate, t, average_start, avg_coef, avg_intercept,
):  # fmt: skip
    """One epoch of per-example SGD with L2 and L1 penalties, on CSR rows.

    The twin of :func:`fastlr.kernels.binary_dense.binary_sgd_epoch`, with the same arguments
    after the CSR arrays and the same returns; an update costs the row's
    non-zeros only. The L2 shrinkage is a scalar factor of w (scikit-learn's
    weight-scaling trick). The cumulative L1 truncation is lazy: a weight
    catches up on the penalty accumulated in ``l1_state`` when its feature
    next appears in a row (before the row's score) and at the end of the
    epoch. With ``alpha = 0`` or ``l1 = 0`` this is exactly the dense epoch.
    With both, a weight's backlog is taken at the weight scale of its catch-up
    (as scikit-learn's SGD does on sparse rows), where the dense epoch takes
    it step by step: slightly more shrinkage between a feature's appearances.

    Averaged SGD (``average_start > 0``, arguments as in the dense epoch) is
    lazy too, O(non-zeros) per sample (Xu 2011; scikit-learn's
    ``add_average``): within the epoch the average is ``(avg_coef + a coef) /
    b`` for two scalars ``a, b``; a step of the running mean only updates
    them, a change of ``coef`` is offset in ``avg_coef`` on the same
    non-zeros, and the form is folded back into ``avg_coef`` at the end of
    the epoch and when the weight scale is folded. The average is that of
    this epoch's iterates, so with L1 (whose weights catch up lazily) it is
    the average of the lazily truncated iterates.

    Returns
    -------
    sum_loss : float
        Sum over the epoch of each example's weighted loss before its update.
    t : float
        The update counter after the epoch.
    """
    one = data.dtype.type(1)
    n_features = coef.shape[0]
    wscale = 1.0
    b = intercept[0]
    sum_loss = 0.0
    pending = np.empty((4, LOSS_BATCH))
    queued = 0
    averaging = average_start > 0.0
    lazy = np.array([0.0, 1.0])  # (a, b): the average is (avg_coef + a coef) / b
    for k in range(order.shape[0]):
        i = order[k]
        lo, hi = indptr[i], indptr[i + 1]
        if l1 > 0.0:
            _truncate_row(indices, lo, hi, coef, wscale, l1_state, avg_coef, lazy[0])
        z = _row_dot(data, indices, lo, hi, coef, one - one)
        z = data.dtype.type(wscale) * z + b
        dz = residual_queueing_loss(z, i, y, sw, pending, queued)
        queued += 1
        if queued == LOSS_BATCH:
            sum_loss += pending_loss_sum(pending, queued)
            queued = 0
        eta = learning_rate(schedule, t, rate[0], rate[1], alpha + l1, rate[2])
        if alpha > 0.0:
            wscale = shrink_kept(coef, wscale, 1.0 - eta * alpha, averaging, avg_coef, lazy)
        step = data.dtype.type(dz * (eta / wscale)) if wscale > 0.0 else one - one
        _row_axpy(data, indices, lo, hi, -step, coef)
        if lazy[0] != 0.0:
            _row_axpy(data, indices, lo, hi, data.dtype.type(lazy[0] * step), avg_coef)
        if l1 > 0.0:
            l1_state[n_features] += eta * l1
            _truncate_row(indices, lo, hi, coef, wscale, l1_state, avg_coef, lazy[0])
        if fit_intercept:
            b -= data.dtype.type(eta) * dz
        if averaging and t >= average_start:
            count = t - average_start + 1.0
            lazy_average_step(avg_coef, lazy, wscale, count)
            avg_intercept[0] += data.dtype.type(1.0 / count) * (b - avg_intercept[0])
        t += 1.0
    if l1 > 0.0:
        for j in range(n_features):
            truncate_kept(coef, j, wscale, l1_state, avg_coef, lazy[0])
    if averaging:
        fold_average(coef, avg_coef, lazy)
    sum_loss += pending_loss_sum(pending, queued)
    rescale(coef, wscale)
    intercept[0] = b
    return sum_loss, t


@kernel
def _truncate_row(indices, start, stop, coef, wscale, l1_state, avg_coef, a):
    """Cumulative L1 truncation of the weights of the non-zeros ``start:stop``."""
    for p in range(start, stop):
        truncate_kept(coef, indices[p], wscale, l1_state, avg_coef, a)


@kernel
def csr_minibatch_epoch(
    data,
    indices,
    indptr,
    y,
    sw,
    order,
    runs,
    batch_size,
    coef,
    intercept,
    fit_intercept,
    alpha,
    l1,
    l1_state,
    schedule,
    rate,
    t,
):
    """One epoch of mini-batch SGD in batches of ``batch_size``, on CSR rows.

    The twin of :func:`fastlr.kernels.binary_dense.binary_minibatch_epoch`
    (batches cut from ``runs`` of positions of ``order``, or of rows when it
    is empty, never spanning two): each batch takes one step along its mean
    gradient plus ``alpha * w``, then the L1 proximal step (soft-thresholding
    by ``eta * l1``); the schedule's ``t`` counts batches. Arguments and
    returns as :func:`csr_sgd_epoch` (``l1_state`` is unused).

    Without L1, a batch costs its non-zeros only, not ``n_features``: the L2
    shrinkage is kept as a scalar factor of ``coef`` (as in
    :func:`csr_sgd_epoch`), and the step and the zeroing of the gradient
    buffer visit the batch's columns. The L1 prox soft-thresholds every
    weight, so with L1 a batch costs ``n_features``.
    """
    grad = np.zeros(coef.shape[0], data.dtype)
    wscale = 1.0
    sum_loss = 0.0
    bounds = batch_bounds(runs, batch_size)
    for b in range(bounds.shape[0]):
        start, stop = bounds[b, 0], bounds[b, 1]
        db, cost = csr_rows_gradient(
            data, indices, indptr, y, sw, order, start, stop, coef, data.dtype.type(wscale),
            intercept[0], True, grad,
        )  # fmt: skip
        sum_loss += cost
        weight = batch_weight(sw, order, start, stop)
        eta = learning_rate(schedule, t, rate[0], rate[1], alpha + l1, rate[2])
        if weight > 0.0 and alpha > 0.0:
            wscale = shrink(coef, wscale, 1.0 - eta * alpha)
        step = eta / (weight * wscale) if weight > 0.0 and wscale > 0.0 else 0.0
        _step_and_clear(indices, indptr, order, start, stop, data.dtype.type(-step), grad, coef)
        if weight <= 0.0:
            continue
        if l1 > 0.0:
            rescale(coef, wscale)
            wscale = 1.0
            soft_threshold(coef, data.dtype.type(eta * l1))
        if fit_intercept:
            intercept[0] -= data.dtype.type(eta * db / weight)
        t += 1.0
    rescale(coef, wscale)
    return sum_loss, t


@kernel
def _step_and_clear(indices, indptr, order, start, stop, step, grad, coef):
    """``coef[j] += step * grad[j]``, then ``grad[j] = 0``, for the columns of the rows at
    positions ``start:stop`` (of ``order``, or rows when it is empty): the only
    entries a batch's gradient touched.

    1-D weights; :func:`fastlr.kernels.multinomial_csr._step_and_clear_t` is the
    (n_features, K) twin (one form for both, with K = 1 here, ran this epoch
    slower).
    """
    has_order = order.shape[0] > 0
    for k in range(start, stop):
        i = order[k] if has_order else k
        for p in range(np.uint64(indptr[i]), np.uint64(indptr[i + 1])):
            j = np.uint64(indices[p])
            coef[j] += step * grad[j]
            grad[j] = 0


# --------------------------------------------------------------------------
# The family's contract (see fastlr.kernels).
# --------------------------------------------------------------------------


def gradient_sums(X, y, sw, coef, intercept, with_loss, grad_coef, grad_intercept):
    """Add the gradient sums over X's rows into the buffers; return the loss sum.

    The CSR twin of :func:`fastlr.kernels.binary_dense.gradient_sums`, with
    ``X`` a :class:`CsrArrays`: the chunked parallel pass when the rows form
    several chunks (:func:`csr_n_chunks`), the serial one otherwise.
    """
    data, indices, indptr, n_features = X
    b = data.dtype.type(intercept[0])
    n_rows = indptr.shape[0] - 1
    n_chunks = csr_n_chunks(n_rows, n_features)
    if n_chunks > 1:
        db, cost = csr_fused_gradient(
            data, indices, indptr, y, sw, coef, b, with_loss, n_chunks, grad_coef
        )
    else:
        no_order = np.empty(0, np.int64)
        db, cost = csr_rows_gradient(
            data, indices, indptr, y, sw, no_order, 0, n_rows, coef, data.dtype.type(1), b,
            with_loss, grad_coef,
        )  # fmt: skip
    grad_intercept[0] += db
    return cost


def sgd_epoch(X, y, sw, order, args):
    """One per-example epoch (:func:`csr_sgd_epoch`); returns ``(loss_sum, t)``."""
    data, indices, indptr, _ = X
    return csr_sgd_epoch(data, indices, indptr, y, sw, order, *args)


def minibatch_epoch(X, y, sw, order, runs, batch_size, args):
    """One mini-batch epoch (:func:`csr_minibatch_epoch`); returns ``(loss_sum, t)``."""
    data, indices, indptr, _ = X
    return csr_minibatch_epoch(
        data, indices, indptr, y, sw, order, runs, batch_size, *args.minibatch()
    )
