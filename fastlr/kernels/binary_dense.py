"""Binary logistic loss on dense X: the seeds' algorithms and the fused parallel gradient.

``loop_gradient`` is seed 002's per-example loop and ``batch_gradient`` its
vectorized algorithm, compiled; :func:`fused_gradient` is one parallel pass
that reads X once per evaluation. Rows go in blocks small enough to stay in
L1 (:func:`block_rows`): the block's scores, one vectorized exp (and log1p,
for the loss), the residuals, then the update re-reading the rows from cache.

Conventions (shared by the four families, see :mod:`fastlr.kernels`): X is
C-contiguous float32 or float64, ``y`` holds 0/1 in X's dtype, ``sw`` the
sample weights in X's dtype or is empty for unit weights, ``order`` an int64
row index array or empty for rows in order. Nothing here validates its input.
"""

import numpy as np
from numba import prange

from .._jit import kernel
from .hardware import CACHED_X_BYTES
from .maths import (
    LOSS_BATCH,
    PREFETCH_ROWS,
    exp_neg_abs,
    log1p_unit,
    pending_loss_sum,
    prefetch_row,
    residual_and_loss,
    residual_queueing_loss,
)
from .reduction import add_partials, batch_parts, n_chunks_for, zero
from .steps import (
    average_step,
    batch_bounds,
    batch_weight,
    learning_rate,
    rescale,
    soft_threshold,
    truncate,
)

# Rows per block of the blocked gradient: the block's scores go through a
# vectorized exp together, and its rows are re-read from cache for the update.
# Rows streamed from memory want small blocks, wide rows (>= 2 KiB) 16 rows to
# amortize the block, X that stays in the last-level cache (at most half of
# it) bigger blocks, gathered (shuffled) rows bigger ones too. The figures:
# docs/design.md.
BLOCK_BYTES = 4096
CACHED_BLOCK_BYTES = 65536
GATHERED_BLOCK_BYTES = 16384
MIN_BLOCK_ROWS = 4
MAX_BLOCK_ROWS = 256
WIDE_ROW_BYTES = 2048
WIDE_BLOCK_ROWS = 16
# float32 rows are combined in the block sweeps up to this width (past it the
# multi-row sweeps lose to one row at a time).
MAX_MULTIROW_FEATURES = 256
# float64 rows this narrow take four rows per score sweep too (range_scores).
NARROW_ROW_FEATURES = 16
# Rows at least this wide (bytes) take eight rows per sweep in range_scores and
# range_update: eight streams from memory in flight at once (docs/design.md).
EIGHT_ROW_BYTES = 3072


@kernel
def block_rows(n_rows, n_features, itemsize, gathered=False):
    """Rows per block of :func:`rows_gradient` for an X of this shape.

    Parameters
    ----------
    n_rows, n_features : int
        X's shape.
    itemsize : int
        Bytes per element of X.
    gathered : bool, default=False
        Whether the rows are read in shuffled order (mini-batches).

    Returns
    -------
    rows : int
        About ``BLOCK_BYTES`` of rows, or ``CACHED_BLOCK_BYTES`` when X is
        small enough to stay in the last-level cache between passes; at least
        ``GATHERED_BLOCK_BYTES`` of gathered rows.
    """
    row_bytes = max(1, n_features * itemsize)
    if row_bytes >= WIDE_ROW_BYTES:
        return WIDE_BLOCK_ROWS
    budget = CACHED_BLOCK_BYTES if n_rows * row_bytes <= CACHED_X_BYTES else BLOCK_BYTES
    if gathered:
        budget = max(budget, GATHERED_BLOCK_BYTES)
    return max(MIN_BLOCK_ROWS, min(MAX_BLOCK_ROWS, budget // row_bytes))


@kernel
def loop_gradient(X, y, sw, coef, intercept, with_loss, grad_coef):
    """Seed 002's per-example loop, compiled: one example at a time.

    For each example: z = w.x + b, a = sigmoid(z), J += loss, dz = a - y,
    dw += x dz, db += dz. The caller divides by the total weight.
    """
    no_order = np.empty(0, np.int64)
    scratch = np.empty((4, block_rows(X.shape[0], X.shape[1], X.itemsize)))
    return rows_gradient(
        X, y, sw, no_order, 0, X.shape[0], coef, intercept, with_loss, grad_coef, scratch
    )


@kernel
def batch_gradient(X, y, sw, coef, intercept, with_loss, grad_coef):
    """Seed 002's vectorized algorithm, compiled: whole-array steps.

    Z = X w + b over all rows, then A = sigmoid(Z) and dZ = A - Y, then
    dw = X^T dZ: two passes over X and two temporaries of length n.
    """
    n, d = X.shape
    one = X.dtype.type(1)
    scores = np.empty(n, X.dtype)
    for i in range(n):
        z = intercept
        for j in range(d):
            z += coef[j] * X[i, j]
        scores[i] = z
    residual = np.empty(n, X.dtype)
    db = 0.0
    cost = 0.0
    for i in range(n):
        dz, loss = residual_and_loss(scores[i], i, y, sw, one, with_loss)
        residual[i] = dz
        db += dz
        cost += loss
    for i in range(n):
        dz = residual[i]
        for j in range(d):
            grad_coef[j] += X[i, j] * dz
    return db, cost


@kernel
def rows_gradient(X, y, sw, order, start, stop, coef, intercept, with_loss, grad_coef, scratch):
    """Gradient over rows ``order[start:stop]`` (or ``start:stop``), in blocks.

    For each block of rows (small enough to stay in L1): the scores, then one
    vectorized exp (and log1p, for the loss) over the whole block, then the
    residuals, then ``grad += r_i x_i`` re-reading the rows from cache. One
    pass over X from memory. ``scratch`` is a float64 array of shape
    ``(4, block_rows(n, d, X.itemsize))``. Rows gathered through ``order``
    are prefetched ``PREFETCH_ROWS`` ahead of their score, one at a time: a
    whole block's rows prefetched at once ran the row-shuffled mini-batch
    epoch 1.1x slower (docs/design.md).
    """
    has_sw = sw.shape[0] > 0
    has_order = order.shape[0] > 0
    block = scratch.shape[1]
    z, e, buf = scratch[0], scratch[1], scratch[2]
    bits = scratch[3].view(np.int64)
    rows = np.empty(block, np.int64)
    # Rows read in place go by direct index unless the float32 block sweeps
    # apply: through the index array they ran slower (docs/design.md).
    direct = not has_order and not multirow_sweeps(X)
    db = 0.0
    cost = 0.0
    if has_order:  # the first rows; block_scores prefetches each later one
        for k in range(start, min(start + PREFETCH_ROWS, stop)):
            prefetch_row(X, order[k])
    for b0 in range(start, stop, block):
        m = min(block, stop - b0)
        for k in range(m):
            rows[k] = order[b0 + k] if has_order else b0 + k
        if direct:
            range_scores(X, b0, m, coef, intercept, z)
        else:
            block_scores(X, rows, m, coef, intercept, z, order, b0 + PREFETCH_ROWS, stop)
        exp_neg_abs(z, m, e, buf, bits)
        if with_loss:
            log1p_unit(e, m, buf)
        for k in range(m):
            i = rows[k]
            zk = z[k]
            inv = 1.0 / (1.0 + e[k])
            dz = (inv if zk >= 0 else e[k] * inv) - y[i]
            loss = buf[k] + max(zk, 0.0) - y[i] * zk if with_loss else 0.0
            if has_sw:
                dz *= sw[i]
                loss *= sw[i]
            db += dz
            cost += loss
            z[k] = dz
        if direct:
            range_update(X, b0, m, z, grad_coef)
        else:
            block_update(X, rows, m, z, grad_coef)
    return db, cost


@kernel
def multirow_sweeps(X):
    """Whether :func:`block_scores` and :func:`block_update` combine rows in their sweeps.

    float32 rows up to ``MAX_MULTIROW_FEATURES`` wide. Other rows read in
    place take :func:`range_scores` and :func:`range_update`; gathered float64
    rows gained nothing from four rows per update sweep (mini-batch epochs).
    """
    return X.itemsize == 4 and X.shape[1] <= MAX_MULTIROW_FEATURES


@kernel
def range_scores(X, start, m, coef, intercept, z):
    """``z[k] = X[start + k] . coef + intercept`` for ``k < m``.

    One row per sweep (two or four ran slower for float64 at d = 100), but
    four up to ``NARROW_ROW_FEATURES`` columns, where a row's reduction is
    short, and eight for rows of ``EIGHT_ROW_BYTES`` or more, whose loads then
    keep eight streams from memory in flight.
    """
    k0 = 0
    if X.shape[1] * X.itemsize >= EIGHT_ROW_BYTES:
        while k0 + 8 <= m:
            i = start + k0
            z0 = z1 = z2 = z3 = z4 = z5 = z6 = z7 = intercept
            for j in range(X.shape[1]):
                w = coef[j]
                z0 += w * X[i, j]
                z1 += w * X[i + 1, j]
                z2 += w * X[i + 2, j]
                z3 += w * X[i + 3, j]
                z4 += w * X[i + 4, j]
                z5 += w * X[i + 5, j]
                z6 += w * X[i + 6, j]
                z7 += w * X[i + 7, j]
            z[k0], z[k0 + 1], z[k0 + 2], z[k0 + 3] = z0, z1, z2, z3
            z[k0 + 4], z[k0 + 5], z[k0 + 6], z[k0 + 7] = z4, z5, z6, z7
            k0 += 8
    if X.shape[1] <= NARROW_ROW_FEATURES:
        while k0 + 4 <= m:
            i = start + k0
            z0 = z1 = z2 = z3 = intercept
            for j in range(X.shape[1]):
                w = coef[j]
                z0 += w * X[i, j]
                z1 += w * X[i + 1, j]
                z2 += w * X[i + 2, j]
                z3 += w * X[i + 3, j]
            z[k0], z[k0 + 1], z[k0 + 2], z[k0 + 3] = z0, z1, z2, z3
            k0 += 4
    for k in range(k0, m):
        i = start + k
        acc = intercept
        for j in range(X.shape[1]):
            acc += coef[j] * X[i, j]
        z[k] = acc


@kernel
def range_update(X, start, m, r, grad_coef):
    """``grad_coef += sum_k r[k] X[start + k]`` for ``k < m``.

    Eight rows per sweep for rows of ``EIGHT_ROW_BYTES`` or more, else four:
    one load and store of ``grad_coef`` for several rows, then one row at a
    time.
    """
    k0 = 0
    if X.shape[1] * X.itemsize >= EIGHT_ROW_BYTES:
        while k0 + 8 <= m:
            i = start + k0
            r0 = X.dtype.type(r[k0])
            r1 = X.dtype.type(r[k0 + 1])
            r2 = X.dtype.type(r[k0 + 2])
            r3 = X.dtype.type(r[k0 + 3])
            r4 = X.dtype.type(r[k0 + 4])
            r5 = X.dtype.type(r[k0 + 5])
            r6 = X.dtype.type(r[k0 + 6])
            r7 = X.dtype.type(r[k0 + 7])
            for j in range(X.shape[1]):
                grad_coef[j] += (
                    r0 * X[i, j] + r1 * X[i + 1, j] + r2 * X[i + 2, j] + r3 * X[i + 3, j]
                    + r4 * X[i + 4, j] + r5 * X[i + 5, j] + r6 * X[i + 6, j] + r7 * X[i + 7, j]
                )  # fmt: skip
            k0 += 8
    while k0 + 4 <= m:
        i = start + k0
        r0 = X.dtype.type(r[k0])
        r1 = X.dtype.type(r[k0 + 1])
        r2 = X.dtype.type(r[k0 + 2])
        r3 = X.dtype.type(r[k0 + 3])
        for j in range(X.shape[1]):
            grad_coef[j] += r0 * X[i, j] + r1 * X[i + 1, j] + r2 * X[i + 2, j] + r3 * X[i + 3, j]
        k0 += 4
    for k in range(k0, m):
        i = start + k
        rk = X.dtype.type(r[k])
        for j in range(X.shape[1]):
            grad_coef[j] += rk * X[i, j]


@kernel
def block_scores(X, rows, m, coef, intercept, z, order, ahead, stop):
    """``z[k] = X[rows[k]] . coef + intercept`` for ``k < m``.

    With :func:`multirow_sweeps`, two rows per sweep over ``coef`` (two
    reductions that LLVM vectorizes, each load of ``coef`` serving both;
    faster than four); else one row at a time. With a non-empty ``order``,
    before row ``k`` the row ``order[ahead + k]`` is prefetched (positions
    from ``stop`` on are not).
    """
    d = X.shape[1]
    prefetching = order.shape[0] > 0
    k = 0
    if multirow_sweeps(X):
        while k + 2 <= m:
            if prefetching:
                prefetch_ahead(X, order, ahead + k, stop)
                prefetch_ahead(X, order, ahead + k + 1, stop)
            x0, x1 = X[rows[k]], X[rows[k + 1]]
            z0 = z1 = intercept
            for j in range(d):
                w = coef[j]
                z0 += w * x0[j]
                z1 += w * x1[j]
            z[k], z[k + 1] = z0, z1
            k += 2
    while k < m:
        if prefetching:
            prefetch_ahead(X, order, ahead + k, stop)
        x = X[rows[k]]
        acc = intercept
        for j in range(d):
            acc += coef[j] * x[j]
        z[k] = acc
        k += 1


@kernel
def prefetch_ahead(X, order, position, stop):
    """Prefetch row ``order[position]`` when ``position < stop``."""
    if position < stop:
        prefetch_row(X, order[position])


@kernel
def block_update(X, rows, m, r, grad_coef):
    """``grad_coef += sum_k r[k] X[rows[k]]`` for ``k < m``.

    With :func:`multirow_sweeps`, four rows per sweep (one load and store of
    ``grad_coef`` for four rows); else one row at a time.
    """
    d = X.shape[1]
    k = 0
    if multirow_sweeps(X):
        while k + 4 <= m:
            x0, x1, x2, x3 = X[rows[k]], X[rows[k + 1]], X[rows[k + 2]], X[rows[k + 3]]
            r0 = X.dtype.type(r[k])
            r1 = X.dtype.type(r[k + 1])
            r2 = X.dtype.type(r[k + 2])
            r3 = X.dtype.type(r[k + 3])
            for j in range(d):
                grad_coef[j] += r0 * x0[j] + r1 * x1[j] + r2 * x2[j] + r3 * x3[j]
            k += 4
    while k < m:
        x = X[rows[k]]
        rk = X.dtype.type(r[k])
        for j in range(d):
            grad_coef[j] += rk * x[j]
        k += 1


@kernel(parallel=True)
def fused_gradient(X, y, sw, coef, intercept, with_loss, n_chunks, grad_coef):
    """One parallel pass over X: gradient sums and, when asked, the loss sum.

    ``prange`` runs over ``n_chunks`` fixed row chunks, each with a private
    accumulator; the partials are then added in chunk order. The result is
    therefore bitwise identical for any number of threads.
    """
    n, d = X.shape
    chunk = -(-n // n_chunks)
    partial = np.zeros((n_chunks, d), X.dtype)
    partial_db = np.zeros(n_chunks)
    partial_cost = np.zeros(n_chunks)
    no_order = np.empty(0, np.int64)
    scratch = np.empty((n_chunks, 4, block_rows(n, d, X.itemsize)))
    for c in prange(n_chunks):
        start = min(c * chunk, n)
        stop = min(start + chunk, n)
        db, cost = rows_gradient(
            X, y, sw, no_order, start, stop, coef, intercept, with_loss, partial[c], scratch[c]
        )
        partial_db[c] = db
        partial_cost[c] = cost
    return add_partials(partial, partial_db, partial_cost, grad_coef)


@kernel(parallel=True)
def gram_matvec(X, sw, v, v0, weight_scale, n_chunks, out):
    """Add ``A^T (c W) A [v, v0]`` into ``out`` (length d + 1), with ``A = [X, 1]``.

    ``W`` is the diagonal of the sample weights ``sw`` (empty: identity), so
    integer weights give exactly the Gram matrix of repeated rows; ``c`` is
    ``weight_scale``, a power of two (exact), 1 unless the products of X
    would overflow or underflow: with ``v`` scaled too, it keeps every
    intermediate in range. Used by the power iteration that sets gradient
    descent's step size.
    """
    n, d = X.shape
    has_sw = sw.shape[0] > 0
    chunk = -(-n // n_chunks)
    scale = X.dtype.type(weight_scale)
    partial = np.zeros((n_chunks, d + 1), X.dtype)
    for c in prange(n_chunks):
        start = min(c * chunk, n)
        stop = min(start + chunk, n)
        for i in range(start, stop):
            z = v0
            for j in range(d):
                z += v[j] * X[i, j]
            if has_sw:
                z *= sw[i]
            z *= scale
            for j in range(d):
                partial[c, j] += z * X[i, j]
            partial[c, d] += z
    for c in range(n_chunks):
        for j in range(d + 1):
            out[j] += partial[c, j]
    return out


@kernel
def binary_sgd_epoch(
    X, y, sw, order, coef, intercept, fit_intercept, alpha, l1, l1_state, schedule, rate, t,
    average_start, avg_coef, avg_intercept,
):  # fmt: skip
    """One epoch of per-example SGD (seed 000's rule) with L2 and L1 penalties.

    For each example in ``order``: w <- (1 - eta alpha) w - eta sw (a - y) x and
    b <- b - eta sw (a - y). The shrinkage is kept as a scalar factor of w
    (scikit-learn's weight-scaling trick) so the L2 penalty costs O(1) per
    sample. The L1 penalty is the cumulative truncation of Tsuruoka et al.
    (2009), as in scikit-learn: each weight is pulled toward 0 by the penalty
    accumulated since the start, never across 0.

    Parameters
    ----------
    coef : ndarray of shape (n_features,)
        Updated in place.
    intercept : ndarray of shape (1,)
        Updated in place.
    alpha, l1 : float
        L2 and L1 strengths on the mean loss; ``alpha + l1`` drives the
        "optimal" schedule.
    l1_state : ndarray of shape (n_features + 1,)
        Penalty applied so far to each weight, then the total penalty ``u``;
        carried across epochs. Unused (may be empty) when ``l1`` is 0.
    rate : ndarray of shape (3,)
        ``(eta0, power_t, t0)`` of the schedule.
    t : float
        Number of updates made before this epoch, plus one.
    average_start : float
        Averaged SGD (scikit-learn's ``average``): from update ``t >=
        average_start`` on, after each update (and its L1 step),
        ``avg <- avg + (w - avg) / (t - average_start + 1)``, the running mean
        of the iterates since averaging started. 0 turns averaging off.
    avg_coef : ndarray of shape (n_features,)
        The averaged coefficients, updated in place (O(n_features) per
        sample); may be empty when ``average_start`` is 0.
    avg_intercept : ndarray of shape (1,)
        The averaged intercept, updated in place.

    Returns
    -------
    sum_loss : float
        Sum over the epoch of each example's weighted loss before its update.
    t : float
        The update counter after the epoch.
    """
    d = X.shape[1]
    one = X.dtype.type(1)
    wscale = 1.0
    b = intercept[0]
    sum_loss = 0.0
    pending = np.empty((4, LOSS_BATCH))
    queued = 0
    n = order.shape[0]
    for k in range(n):
        if k + PREFETCH_ROWS < n:
            prefetch_row(X, order[k + PREFETCH_ROWS])
        i = order[k]
        z = X.dtype.type(0)
        for j in range(d):
            z += coef[j] * X[i, j]
        z = X.dtype.type(wscale) * z + b
        dz = residual_queueing_loss(z, i, y, sw, pending, queued)
        queued += 1
        if queued == LOSS_BATCH:
            sum_loss += pending_loss_sum(pending, queued)
            queued = 0
        eta = learning_rate(schedule, t, rate[0], rate[1], alpha + l1, rate[2])
        if alpha > 0.0:
            # shrink written out: as a call in this per-example loop, 5% slower.
            wscale *= max(0.0, 1.0 - eta * alpha)
            if wscale < 1e-9:
                rescale(coef, wscale)
                wscale = 1.0
        # eta / wscale first: it does not wait for the score, so the division
        # stays off the chain from this example's score to its update.
        step = X.dtype.type(dz * (eta / wscale)) if wscale > 0.0 else one - one
        for j in range(d):
            coef[j] -= step * X[i, j]
        if l1 > 0.0:
            l1_state[d] += eta * l1
            for j in range(d):
                truncate(coef, j, wscale, l1_state)
        if fit_intercept:
            b -= X.dtype.type(eta) * dz
        if average_start > 0.0 and t >= average_start:
            mu = 1.0 / (t - average_start + 1.0)
            average_step(coef, wscale, mu, avg_coef)
            avg_intercept[0] += X.dtype.type(mu) * (b - avg_intercept[0])
        t += 1.0
    sum_loss += pending_loss_sum(pending, queued)
    rescale(coef, wscale)
    intercept[0] = b
    return sum_loss, t


@kernel(parallel=True)
def binary_minibatch_epoch(
    X, y, sw, order, runs, batch_size, coef, intercept, fit_intercept, alpha, l1, l1_state,
    schedule, rate, t,
):  # fmt: skip
    """One epoch of mini-batch SGD: batches of ``batch_size`` cut from each run in turn.

    Run ``r`` is the positions ``runs[r, 0]`` to ``runs[r, 1]`` (excluded);
    position ``k`` is row ``order[k]``, or row ``k`` when ``order`` is empty
    (contiguous rows, read in place: no gather). A batch never spans two
    runs: a run's last batch may be short. Each batch takes one step along
    its mean gradient plus ``alpha * w``, then the proximal step of the L1
    penalty (soft-thresholding by ``eta * l1``); the schedule's ``t`` counts
    batches. Other arguments and returns as :func:`binary_sgd_epoch`
    (``l1_state`` is unused); the loss of each batch is taken before its step.

    A batch's gradient is summed over :func:`batch_parts` fixed parts of it in
    parallel, then added in part order: bitwise the same for any number of
    threads. The shuffled rows are misses in memory, which two threads fetch
    faster than one.
    """
    n, d = X.shape
    n_parts = batch_parts(batch_size)
    grad = np.empty(d, X.dtype)
    part_grad = np.zeros((n_parts, d), X.dtype)
    part_db = np.zeros(n_parts)
    part_cost = np.zeros(n_parts)
    # Blocks of gathered rows' size for rows read in place too: 20 rows of 100
    # float64 against 5 ran 1.1x faster in a blocks epoch (docs/design.md).
    scratch = np.empty((n_parts, 4, block_rows(n, d, X.itemsize, True)))
    sum_loss = 0.0
    bounds = batch_bounds(runs, batch_size)
    for b in range(bounds.shape[0]):
        start, stop = bounds[b, 0], bounds[b, 1]
        part = -(-(stop - start) // n_parts)
        # Zeroed by serial loops: under parallel=True an array expression such
        # as part_grad[:] = 0 becomes a parallel region of its own.
        zero(part_grad.reshape(-1))
        if n_parts == 1:  # no parallel region (a few microseconds) per small batch
            part_db[0], part_cost[0] = rows_gradient(
                X, y, sw, order, start, stop, coef, intercept[0], True, part_grad[0], scratch[0]
            )
        else:
            for c in prange(n_parts):
                first = min(start + c * part, stop)
                last = min(first + part, stop)
                part_db[c], part_cost[c] = rows_gradient(
                    X, y, sw, order, first, last, coef, intercept[0], True, part_grad[c],
                    scratch[c],
                )  # fmt: skip
        zero(grad)
        db, cost = add_partials(part_grad, part_db, part_cost, grad)
        sum_loss += cost
        weight = batch_weight(sw, order, start, stop)
        if weight <= 0.0:
            continue
        eta = learning_rate(schedule, t, rate[0], rate[1], alpha + l1, rate[2])
        scale = X.dtype.type(eta / weight)
        shrink = X.dtype.type(eta * alpha)
        for j in range(d):
            coef[j] -= scale * grad[j] + shrink * coef[j]
        if l1 > 0.0:
            soft_threshold(coef, X.dtype.type(eta * l1))
        if fit_intercept:
            intercept[0] -= X.dtype.type(eta * db / weight)
        t += 1.0
    return sum_loss, t


# --------------------------------------------------------------------------
# The family's contract (see fastlr.kernels).
# --------------------------------------------------------------------------


def gradient_sums(X, y, sw, coef, intercept, with_loss, grad_coef, grad_intercept):
    """Add the gradient sums over X's rows into the buffers; return the loss sum.

    The fused parallel pass when the rows form several chunks
    (:func:`fastlr.kernels.reduction.n_chunks_for`), the serial one otherwise:
    one chunk has nothing to share out, and the thread pool's wake-up would
    cost small problems more than their pass.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    y : ndarray of shape (n_samples,)
        0/1 targets in X's dtype.
    sw : ndarray of shape (n_samples,) or (0,)
    coef : ndarray of shape (n_features,)
    intercept : ndarray of shape (1,)
    with_loss : bool
        Also sum the loss; skipping it saves one ``log1p`` per sample.
    grad_coef : ndarray of shape (n_features,)
        ``sum_i sw_i (a_i - y_i) x_i`` is added into it.
    grad_intercept : ndarray of shape (1,)
        ``sum_i sw_i (a_i - y_i)`` is added into it.

    Returns
    -------
    loss_sum : float
        ``sum_i sw_i loss_i`` (0 when ``with_loss`` is false).
    """
    b = X.dtype.type(intercept[0])
    n_chunks = n_chunks_for(X.shape[0])
    if n_chunks > 1:
        db, cost = fused_gradient(X, y, sw, coef, b, with_loss, n_chunks, grad_coef)
    else:
        db, cost = loop_gradient(X, y, sw, coef, b, with_loss, grad_coef)
    grad_intercept[0] += db
    return cost


def sgd_epoch(X, y, sw, order, args):
    """One per-example epoch (:func:`binary_sgd_epoch`) over ``order``; returns ``(loss_sum, t)``.

    ``args`` is a :class:`fastlr.kernels.steps.EpochArgs`.
    """
    return binary_sgd_epoch(X, y, sw, order, *args)


def minibatch_epoch(X, y, sw, order, runs, batch_size, args):
    """One mini-batch epoch (:func:`binary_minibatch_epoch`); returns ``(loss_sum, t)``."""
    return binary_minibatch_epoch(X, y, sw, order, runs, batch_size, *args.minibatch())
