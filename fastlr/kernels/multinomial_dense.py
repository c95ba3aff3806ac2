"""Multinomial (softmax) cross-entropy on dense X: the softmax twins of :mod:`.binary_dense`.

With ``K`` classes, coefficients ``W`` of shape (K, d) and intercepts ``b`` of
shape (K,), sample ``i`` has scores ``z_i = W x_i + b`` and loss
``logsumexp(z_i) - z_i[y_i]``; its gradient is ``(p_i - e_{y_i}) x_i^T`` for
``W`` and ``p_i - e_{y_i}`` for ``b``, with ``p_i = softmax(z_i)`` and ``e_k``
the k-th unit vector.

Conventions are those of :mod:`fastlr.kernels`, with ``y`` holding int64 class
indices in ``0..K-1`` and the buffers ``grad_coef`` (K, d) and
``grad_intercept`` (K,) in X's dtype. Nothing here validates its input.

Design
------
Blocks
    Rows go in blocks of about 64 KiB of X (:func:`multinomial_block_rows`):
    the block's scores, then its softmax residuals, then the gradient update
    re-reading the rows from cache, so X is read from memory once. Scores
    take two rows and up to five classes per sweep, the update four rows and
    four classes: each load serves several fused multiply-adds. Scores and
    residuals of a block are held class-major, (K, rows), so the softmax
    loops run over rows and vectorize.
Stability
    Each row subtracts its largest score ``m``, so every ``exp(z_k - m)`` lies
    in (0, 1] and the largest gives exactly 1: one ``exp`` per class and
    sample serves the probabilities and the loss, all of a block's in one
    vectorized call (:func:`fastlr.kernels.maths.exp_neg_abs`). With ``r``
    the sum of the exponentials but one of the largest, the loss is
    ``log1p(r) + m - z[y]`` (exact when one class dominates, where
    ``log(1 + r)`` would round to 0) and, when ``y`` has the largest score,
    ``p_y - 1 = -r / (1 + r)``, without cancellation. The ``log1p`` is only
    taken when the loss is asked for.
float32
    X, ``coef`` and the gradient sums stay in X's dtype (constants are built
    from it); a block's scores and residuals are float64 scratch, as in the
    binary kernels, where the vectorized exp runs.
Parallel reduction
    :func:`multinomial_fused_gradient` runs ``prange`` over a fixed number of
    row chunks (:func:`multinomial_n_chunks`), each adding into its own
    (K, d) partial, then sums the partials in chunk order: bitwise identical
    for any number of threads. The partials take ``n_chunks * K * d`` floats,
    at most 1/32 of the size of X.
Compile time
    Array expressions (``a[:] = b``, ``a -= s * b``) are written as loops:
    each costs 0.3-2 s of numba compile time per signature, a loop ~0.1 s.
"""

import numpy as np
from numba import prange

from .._jit import kernel
from .maths import PREFETCH_ROWS, exp_neg_abs, log1p_array, prefetch_row
from .reduction import MAX_CHUNKS, batch_parts, zero
from .steps import (
    average_step,
    batch_bounds,
    batch_weight,
    learning_rate,
    rescale,
    scale_2d,
    shrink,
    soft_threshold,
    truncate,
)

# Rows per block: a block's rows stay in L2 between its scores and its
# update, and its n_rows * K scores go through one vectorized exp (64 KiB beat
# 16 KiB; past 64 KiB nothing changes).
MULTINOMIAL_BLOCK_BYTES = 65536
MULTINOMIAL_MIN_BLOCK_ROWS = 4
# Scores (rows x classes) per chunk of the fused gradient: enough work to
# outweigh starting a parallel region (a few microseconds with omp).
MIN_CHUNK_SCORES = 4096
PARTIAL_SHARE = 32
MULTINOMIAL_MAX_BLOCK_ROWS = 128


@kernel
def multinomial_block_rows(n_features, itemsize):
    """Rows per block for rows of this width: a multiple of 4, from 4 to 64.

    Parameters
    ----------
    n_features : int
    itemsize : int
        Bytes per element of X.

    Returns
    -------
    rows : int
        About ``MULTINOMIAL_BLOCK_BYTES`` of X.
    """
    rows = MULTINOMIAL_BLOCK_BYTES // max(1, n_features * itemsize) // 4 * 4
    return max(MULTINOMIAL_MIN_BLOCK_ROWS, min(MULTINOMIAL_MAX_BLOCK_ROWS, rows))


@kernel
def multinomial_workspace(n_classes, block):
    """Scratch of the block kernels for blocks of ``block`` rows.

    Returns
    -------
    z : ndarray of shape (n_classes, block)
        Scores, then residuals; class-major, so that loops over the rows of
        a block vectorize.
    work : ndarray of shape (3, n_classes * block)
        The exponentials and the exp's two buffers.
    row_work : ndarray of shape (3, block)
        Per-row values.
    """
    return np.zeros((n_classes, block)), np.zeros((3, n_classes * block)), np.zeros((3, block))


@kernel
def _block_scores(X, rows, m, coef, intercept, scale, z):
    """``z[k, r] = scale * coef[k] . X[rows[r]] + intercept[k]`` for ``r < m``.

    Two rows at a time, five classes per sweep over the two rows (then two,
    then one): ten dot products that LLVM vectorizes, each load of X serving
    five of them and each load of ``coef`` two (two rows at a time keep ahead
    of the loads better than four). Written inline: as called functions the
    sweeps ran slower. Then the last row alone.
    """
    n_classes, d = coef.shape
    zero = X.dtype.type(0)
    for r in range(0, m - 1, 2):
        x0, x1 = X[rows[r]], X[rows[r + 1]]
        k = 0
        while k + 5 <= n_classes:
            w0, w1, w2, w3, w4 = coef[k], coef[k + 1], coef[k + 2], coef[k + 3], coef[k + 4]
            s0 = s1 = s2 = s3 = s4 = t0 = t1 = t2 = t3 = t4 = zero
            for j in range(d):
                a, b = x0[j], x1[j]
                s0 += w0[j] * a
                s1 += w1[j] * a
                s2 += w2[j] * a
                s3 += w3[j] * a
                s4 += w4[j] * a
                t0 += w0[j] * b
                t1 += w1[j] * b
                t2 += w2[j] * b
                t3 += w3[j] * b
                t4 += w4[j] * b
            _store_2(z, k, r, scale, intercept[k], s0, t0)
            _store_2(z, k + 1, r, scale, intercept[k + 1], s1, t1)
            _store_2(z, k + 2, r, scale, intercept[k + 2], s2, t2)
            _store_2(z, k + 3, r, scale, intercept[k + 3], s3, t3)
            _store_2(z, k + 4, r, scale, intercept[k + 4], s4, t4)
            k += 5
        while k + 2 <= n_classes:
            w0, w1 = coef[k], coef[k + 1]
            s0 = s1 = t0 = t1 = zero
            for j in range(d):
                a, b = x0[j], x1[j]
                s0 += w0[j] * a
                s1 += w1[j] * a
                t0 += w0[j] * b
                t1 += w1[j] * b
            _store_2(z, k, r, scale, intercept[k], s0, t0)
            _store_2(z, k + 1, r, scale, intercept[k + 1], s1, t1)
            k += 2
        if k < n_classes:
            w0 = coef[k]
            s0 = t0 = zero
            for j in range(d):
                s0 += w0[j] * x0[j]
                t0 += w0[j] * x1[j]
            _store_2(z, k, r, scale, intercept[k], s0, t0)
    if m % 2:
        r = m - 1
        x = X[rows[r]]
        for k in range(n_classes):
            w0 = coef[k]
            s0 = zero
            for j in range(d):
                s0 += w0[j] * x[j]
            z[k, r] = scale * s0 + intercept[k]


@kernel
def _store_2(z, k, r, scale, b, s0, s1):
    """``z[k, r:r + 2] = scale * (s0, s1) + b``."""
    z[k, r] = scale * s0 + b
    z[k, r + 1] = scale * s1 + b


@kernel
def multinomial_block_residuals(z, m, y, sw, rows, with_loss, work, row_work):
    """Replace the block's scores by ``sw_i (softmax(z_i) - e_{y_i})``; return the loss sum.

    Each row is shifted by its largest score, then one vectorized ``exp``
    runs over the whole block. With ``r`` the sum of a row's exponentials but
    one of its largest (which is 1), the loss is ``log1p(r) - z_y`` and, when
    ``y`` is a largest score, ``p_y - 1 = -r / (1 + r)``. The loops run over
    the rows of the block, without branches (the scores are random).

    Parameters
    ----------
    z : ndarray of shape (n_classes, block)
        Scores of rows ``rows[:m]``; residuals on return (columns ``>= m``
        hold garbage).
    m : int
        Rows in the block.
    y, sw : ndarray
        Labels and sample weights of all rows.
    rows : ndarray of shape (block,)
        The block's row indices.
    with_loss : bool
    work, row_work : ndarray
        From :func:`multinomial_workspace`.

    Returns
    -------
    loss_sum : float
    """
    n_classes, block = z.shape
    shift, rest, label_residual = row_work[0], row_work[1], row_work[2]
    for r in range(block):
        shift[r] = z[0, r]
        rest[r] = -1.0
    for k in range(1, n_classes):
        for r in range(block):
            shift[r] = max(shift[r], z[k, r])
    for k in range(n_classes):
        for r in range(block):
            z[k, r] -= shift[r]
    exp_neg_abs(
        z.reshape(n_classes * block), n_classes * block, work[0], work[1], work[2].view(np.int64)
    )
    # A largest score is 0 after the shift, and exp_neg_abs(0) is exactly 1.
    e = work[0].reshape((n_classes, block))
    for k in range(n_classes):
        for r in range(block):
            rest[r] += e[k, r]
    # The exp's buffers are free now: the loss terms and 1 / (1 + rest).
    log_total, inv = work[1][:block], work[2][block : 2 * block]
    if with_loss:
        log1p_array(rest, block, log_total, work[2][:block].view(np.int64))
    for r in range(block):
        inv[r] = 1.0 / (1.0 + rest[r])
    has_sw = sw.shape[0] > 0
    cost = 0.0
    for r in range(m):
        i = rows[r]
        label = y[i]
        weight = sw[i] if has_sw else 1.0
        z_label = z[label, r]
        if with_loss:
            cost += weight * (log_total[r] - z_label)
        top = z_label == 0.0
        label_residual[r] = weight * (-rest[r] * inv[r] if top else e[label, r] * inv[r] - 1.0)
        shift[r] = weight * inv[r]
    for k in range(n_classes):
        for r in range(block):
            z[k, r] = shift[r] * e[k, r]
    for r in range(m):
        z[y[rows[r]], r] = label_residual[r]
    return cost


@kernel
def _block_update(X, rows, m, residual, out):
    """``out[k] += sum_r residual[k, r] X[rows[r]]`` for ``r < m``.

    Four rows at a time, four classes per sweep over the four rows (then two,
    then one): each load of X serves four classes and each load and store of
    ``out`` four rows. Then the rows left one at a time.
    """
    n_classes, d = out.shape
    dtype = X.dtype.type
    for r in range(0, m - 3, 4):
        x0, x1, x2, x3 = X[rows[r]], X[rows[r + 1]], X[rows[r + 2]], X[rows[r + 3]]
        for k in range(0, n_classes - 3, 4):
            a0, a1, a2, a3 = _residuals_4(residual, k, r, dtype)
            b0, b1, b2, b3 = _residuals_4(residual, k + 1, r, dtype)
            c0, c1, c2, c3 = _residuals_4(residual, k + 2, r, dtype)
            e0, e1, e2, e3 = _residuals_4(residual, k + 3, r, dtype)
            g, h, p, q = out[k], out[k + 1], out[k + 2], out[k + 3]
            for j in range(d):
                v0, v1, v2, v3 = x0[j], x1[j], x2[j], x3[j]
                g[j] += a0 * v0 + a1 * v1 + a2 * v2 + a3 * v3
                h[j] += b0 * v0 + b1 * v1 + b2 * v2 + b3 * v3
                p[j] += c0 * v0 + c1 * v1 + c2 * v2 + c3 * v3
                q[j] += e0 * v0 + e1 * v1 + e2 * v2 + e3 * v3
        k = n_classes // 4 * 4
        if k + 2 <= n_classes:
            a0, a1, a2, a3 = _residuals_4(residual, k, r, dtype)
            b0, b1, b2, b3 = _residuals_4(residual, k + 1, r, dtype)
            g, h = out[k], out[k + 1]
            for j in range(d):
                v0, v1, v2, v3 = x0[j], x1[j], x2[j], x3[j]
                g[j] += a0 * v0 + a1 * v1 + a2 * v2 + a3 * v3
                h[j] += b0 * v0 + b1 * v1 + b2 * v2 + b3 * v3
            k += 2
        if k < n_classes:
            a0, a1, a2, a3 = _residuals_4(residual, k, r, dtype)
            g = out[k]
            for j in range(d):
                g[j] += a0 * x0[j] + a1 * x1[j] + a2 * x2[j] + a3 * x3[j]
    for r in range(m // 4 * 4, m):
        x = X[rows[r]]
        for k in range(n_classes):
            r0 = dtype(residual[k, r])
            g = out[k]
            for j in range(d):
                g[j] += r0 * x[j]


@kernel
def _residuals_4(residual, k, r, dtype):
    """``residual[k, r:r + 4]`` as four scalars of ``dtype``."""
    return (
        dtype(residual[k, r]),
        dtype(residual[k, r + 1]),
        dtype(residual[k, r + 2]),
        dtype(residual[k, r + 3]),
    )


@kernel
def multinomial_rows_gradient(
    X, y, sw, order, start, stop, coef, intercept, with_loss, grad_coef, grad_intercept
):
    """Add the gradient sums over rows ``order[start:stop]`` (or ``start:stop``).

    Rows go in blocks (:func:`multinomial_block_rows`): the block's scores, one vectorized
    exp over them, the residuals, then the update re-reading the rows from
    cache. One pass over X from memory.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    y : ndarray of shape (n_samples,)
        int64 class indices.
    sw : ndarray of shape (n_samples,) or (0,)
    order : ndarray of shape (n_order,) or (0,)
        int64 row indices.
    start, stop : int
        The range of positions in ``order`` (or of rows) summed over.
    coef : ndarray of shape (n_classes, n_features)
    intercept : ndarray of shape (n_classes,)
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
    n_classes = coef.shape[0]
    has_order = order.shape[0] > 0
    block = multinomial_block_rows(X.shape[1], X.itemsize)
    rows = np.empty(block, np.int64)
    z, work, row_work = multinomial_workspace(n_classes, block)
    db = np.zeros(n_classes)
    one = X.dtype.type(1)
    cost = 0.0
    for b0 in range(start, stop, block):
        m = min(block, stop - b0)
        for r in range(m):
            rows[r] = order[b0 + r] if has_order else b0 + r
        _block_scores(X, rows, m, coef, intercept, one, z)
        cost += multinomial_block_residuals(z, m, y, sw, rows, with_loss, work, row_work)
        _block_update(X, rows, m, z, grad_coef)
        for r in range(m):
            for k in range(n_classes):
                db[k] += z[k, r]
    for k in range(n_classes):
        grad_intercept[k] += db[k]
    return cost


@kernel(parallel=True)
def multinomial_fused_gradient(
    X, y, sw, coef, intercept, with_loss, n_chunks, grad_coef, grad_intercept
):
    """One parallel pass over X: gradient sums and, when asked, the loss sum.

    Arguments and return as :func:`multinomial_rows_gradient` over all rows;
    ``n_chunks`` is :func:`multinomial_n_chunks` of the problem's shape.
    Bitwise identical for any number of threads.
    """
    n = X.shape[0]
    n_classes, d = coef.shape
    chunk = -(-n // n_chunks)
    partial = np.zeros((n_chunks, n_classes, d), X.dtype)
    partial_b = np.zeros((n_chunks, n_classes), X.dtype)
    partial_cost = np.zeros(n_chunks)
    no_order = np.empty(0, np.int64)
    for c in prange(n_chunks):
        start = min(c * chunk, n)
        stop = min(start + chunk, n)
        partial_cost[c] = multinomial_rows_gradient(
            X, y, sw, no_order, start, stop, coef, intercept, with_loss, partial[c], partial_b[c]
        )
    cost = 0.0
    for c in range(n_chunks):
        for k in range(n_classes):
            for j in range(d):
                grad_coef[k, j] += partial[c, k, j]
            grad_intercept[k] += partial_b[c, k]
        cost += partial_cost[c]
    return cost


def multinomial_n_chunks(n_rows, n_classes):
    """Row chunks of the fused multinomial gradient: by work, an even number past one.

    A chunk holds at least ``MIN_CHUNK_SCORES`` scores (rows x classes), so
    that a small pass such as digits' (1797 x 64, 10 classes: four chunks)
    still shares out over two threads. The (K, d) partials of the chunks take
    at most ``1 / PARTIAL_SHARE`` of X. An even count gives two threads equal
    shares. At most ``MAX_CHUNKS``. A function of the problem's shape only,
    so the sums are bitwise identical for any number of threads.
    """
    by_work = -(-n_rows * n_classes // MIN_CHUNK_SCORES)
    n_chunks = min(MAX_CHUNKS, by_work, n_rows // (PARTIAL_SHARE * n_classes))
    return n_chunks - n_chunks % 2 if n_chunks > 1 else 1


def gradient_sums(X, y, sw, coef, intercept, with_loss, grad_coef, grad_intercept):
    """Add the gradient sums over all rows into the buffers; return the loss sum.

    The fused parallel kernel when the pass splits into several chunks
    (:func:`multinomial_n_chunks`), the serial one otherwise.

    Parameters
    ----------
    X, y, sw, coef, intercept, with_loss, grad_coef, grad_intercept
        As for :func:`multinomial_rows_gradient`.

    Returns
    -------
    loss_sum : float
    """
    n_chunks = multinomial_n_chunks(X.shape[0], coef.shape[0])
    if n_chunks > 1:
        return multinomial_fused_gradient(
            X, y, sw, coef, intercept, with_loss, n_chunks, grad_coef, grad_intercept
        )
    no_order = np.empty(0, np.int64)
    return multinomial_rows_gradient(
        X, y, sw, no_order, 0, X.shape[0], coef, intercept, with_loss, grad_coef, grad_intercept
    )


@kernel
def multinomial_sgd_epoch(
    X, y, sw, order, coef, intercept, fit_intercept, alpha, l1, l1_state, schedule, rate, t,
    average_start, avg_coef, avg_intercept,
):  # fmt: skip
    """One epoch of per-example SGD on the softmax loss with L2 and L1 penalties.

    For each example in ``order``: ``W <- (1 - eta alpha) W - eta sw (p - e_y) x^T``
    and ``b <- b - eta sw (p - e_y)``. As in :func:`fastlr.kernels.binary_dense.binary_sgd_epoch`,
    the shrinkage is kept as a scalar factor of ``W`` so the L2 penalty costs
    O(1) per sample, and L1 is the cumulative truncation of that kernel.

    Parameters
    ----------
    coef : ndarray of shape (n_classes, n_features)
        Updated in place.
    intercept : ndarray of shape (n_classes,)
        Updated in place.
    alpha, l1 : float
        L2 and L1 strengths on the mean loss.
    l1_state : ndarray of shape (n_classes * n_features + 1,)
        The cumulative L1 state of :func:`fastlr.kernels.binary_dense.binary_sgd_epoch`, over
        ``coef.ravel()``; unused (may be empty) when ``l1`` is 0.
    rate : ndarray of shape (3,)
        ``(eta0, power_t, t0)`` of the schedule.
    t : float
        Number of updates made before this epoch, plus one.
    average_start, avg_coef, avg_intercept
        Averaged SGD as in :func:`fastlr.kernels.binary_dense.binary_sgd_epoch`, with
        ``avg_coef`` of shape (n_classes, n_features) and ``avg_intercept``
        of shape (n_classes,) (O(n_classes n_features) per sample).

    Returns
    -------
    sum_loss : float
        Sum over the epoch of each example's weighted loss before its update.
    t : float
        The update counter after the epoch.
    """
    n_classes = coef.shape[0]
    dtype = X.dtype.type
    rows = np.empty(1, np.int64)
    z, work, row_work = multinomial_workspace(n_classes, 1)
    flat = coef.reshape(-1)
    avg_flat = avg_coef.reshape(-1)
    wscale = 1.0
    sum_loss = 0.0
    n = order.shape[0]
    for position in range(n):
        if position + PREFETCH_ROWS < n:
            prefetch_row(X, order[position + PREFETCH_ROWS])
        rows[0] = order[position]
        _block_scores(X, rows, 1, coef, intercept, dtype(wscale), z)
        sum_loss += multinomial_block_residuals(z, 1, y, sw, rows, True, work, row_work)
        eta = learning_rate(schedule, t, rate[0], rate[1], alpha + l1, rate[2])
        if alpha > 0.0:
            wscale = shrink(flat, wscale, 1.0 - eta * alpha)
        if fit_intercept:
            for k in range(n_classes):
                intercept[k] -= dtype(eta * z[k, 0])
        scale_2d(z, -eta / wscale if wscale > 0.0 else 0.0)
        _block_update(X, rows, 1, z, coef)
        if l1 > 0.0:
            l1_state[flat.shape[0]] += eta * l1
            for j in range(flat.shape[0]):
                truncate(flat, j, wscale, l1_state)
        if average_start > 0.0 and t >= average_start:
            mu = 1.0 / (t - average_start + 1.0)
            average_step(flat, wscale, mu, avg_flat)
            average_step(intercept, 1.0, mu, avg_intercept)
        t += 1.0
    rescale(flat, wscale)
    return sum_loss, t


@kernel(parallel=True)
def multinomial_minibatch_epoch(
    X, y, sw, order, runs, batch_size, coef, intercept, fit_intercept, alpha, l1, l1_state,
    schedule, rate, t,
):  # fmt: skip
    """One epoch of mini-batch SGD on the softmax loss, batches of ``batch_size``.

    The batches are cut from ``runs`` (positions of ``order``, or rows when it
    is empty), never spanning two, as in
    :func:`fastlr.kernels.binary_dense.binary_minibatch_epoch`.

    Each batch takes one step along its mean gradient plus ``alpha * W``, then
    the L1 prox (soft-thresholding by ``eta * l1``); the schedule's ``t`` counts
    batches. Arguments and returns as :func:`multinomial_sgd_epoch` (``l1_state``
    is unused); the loss of each batch is taken before its step. A batch's
    gradient is summed over :func:`fastlr.kernels.reduction.batch_parts` fixed parts in
    parallel, then added in part order (bitwise the same on any number of
    threads), as in :func:`fastlr.kernels.binary_dense.binary_minibatch_epoch`.
    """
    n_classes, d = coef.shape
    n_parts = batch_parts(batch_size)
    part_grad = np.zeros((n_parts, n_classes, d), X.dtype)
    part_b = np.zeros((n_parts, n_classes), X.dtype)
    part_cost = np.zeros(n_parts)
    sum_loss = 0.0
    bounds = batch_bounds(runs, batch_size)
    for b in range(bounds.shape[0]):
        start, stop = bounds[b, 0], bounds[b, 1]
        part = -(-(stop - start) // n_parts)
        # Serial zeroing: under parallel=True an array expression is a parallel region.
        zero(part_grad.reshape(-1))
        zero(part_b.reshape(-1))
        if n_parts == 1:  # no parallel region per small batch
            part_cost[0] = multinomial_rows_gradient(
                X, y, sw, order, start, stop, coef, intercept, True, part_grad[0], part_b[0]
            )
        else:
            for c in prange(n_parts):
                first = min(start + c * part, stop)
                last = min(first + part, stop)
                part_cost[c] = multinomial_rows_gradient(
                    X, y, sw, order, first, last, coef, intercept, True, part_grad[c], part_b[c]
                )
        for c in range(n_parts):
            sum_loss += part_cost[c]
        weight = batch_weight(sw, order, start, stop)
        if weight <= 0.0:
            continue
        eta = learning_rate(schedule, t, rate[0], rate[1], alpha + l1, rate[2])
        scale = X.dtype.type(eta / weight)
        shrink = X.dtype.type(eta * alpha)
        for k in range(n_classes):
            for j in range(d):
                g = part_grad[0, k, j]
                for c in range(1, n_parts):
                    g += part_grad[c, k, j]
                coef[k, j] -= scale * g + shrink * coef[k, j]
            if fit_intercept:
                g_b = part_b[0, k]
                for c in range(1, n_parts):
                    g_b += part_b[c, k]
                intercept[k] -= scale * g_b
        if l1 > 0.0:
            soft_threshold(coef.reshape(-1), X.dtype.type(eta * l1))
        t += 1.0
    return sum_loss, t


# --------------------------------------------------------------------------
# The family's contract (see fastlr.kernels).
# --------------------------------------------------------------------------


def sgd_epoch(X, y, sw, order, args):
    """One per-example epoch (:func:`multinomial_sgd_epoch`); returns ``(loss_sum, t)``.

    ``args`` is a :class:`fastlr.kernels.steps.EpochArgs`.
    """
    return multinomial_sgd_epoch(X, y, sw, order, *args)


def minibatch_epoch(X, y, sw, order, runs, batch_size, args):
    """One mini-batch epoch (:func:`multinomial_minibatch_epoch`); returns ``(loss_sum, t)``."""
    return multinomial_minibatch_epoch(X, y, sw, order, runs, batch_size, *args.minibatch())
