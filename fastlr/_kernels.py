"""Compiled kernels: the loss, the three gradient algorithms and the SGD epochs.

Every function here is compiled with numba and trusts its inputs: X is a
C-contiguous float32 or float64 array, y holds 0/1 in X's dtype, ``sw`` is the
sample weight array in X's dtype or an empty array meaning "all ones", and
``order`` is an int64 index array or an empty array meaning "rows in order".
Validation happens once, in :mod:`fastlr._validation`.

The gradient kernels return *sums* over rows (not means) and add them into
the caller's buffers, so that partial gradients over row slices (out-of-core
chunks, Dask partitions) add up to the gradient over all rows.

The binary kernels and the helpers the multinomial and CSR twins share live
here (numba's cache is stamped by the whole package: see :mod:`fastlr._jit`).
"""

from pathlib import Path

import numpy as np
from llvmlite import ir
from numba import prange, types
from numba.core import cgutils
from numba.extending import intrinsic

from ._jit import kernel

# Rows per chunk of the parallel reduction. The chunking depends on the number
# of rows only, never on the thread count, so results are reproducible.
MIN_CHUNK_ROWS = 2048
MAX_CHUNKS = 128

# Rows per block of the blocked gradient: the block's scores go through a
# vectorized exp together, and its rows are re-read from cache for the update.
# Measured on Zen 4: narrow rows streamed from memory want ~4 KiB blocks
# (d = 100 float64 is 15% slower at 16 KiB), wide rows (>= 2 KiB) want 16 rows
# to amortize the block. When X stays in the last-level cache between passes,
# 64 KiB blocks are 1.2-1.4x faster: measured up to X = 16 MiB, and even at
# 32 MiB, of a 32 MiB L3. X of at most half the last-level cache counts.
BLOCK_BYTES = 4096
CACHED_BLOCK_BYTES = 65536
# Shuffled rows (mini-batches) want bigger blocks: measured at batch 256 on 2
# threads, 32 rows against 5 ran 1.14x faster at 1e6 x 100 float64 (1.18x at
# batch 4096), 1.08x in float32 and at 1e7 x 10; 16 to 64 rows are the same.
GATHERED_BLOCK_BYTES = 16384
MIN_BLOCK_ROWS = 4
MAX_BLOCK_ROWS = 256
WIDE_ROW_BYTES = 2048
WIDE_BLOCK_ROWS = 16
# float32 rows are combined in the block sweeps up to this width (measured:
# past it the multi-row sweeps lose to one row at a time).
MAX_MULTIROW_FEATURES = 256
# float64 rows this narrow take four rows per score sweep too (range_scores).
NARROW_ROW_FEATURES = 16

# exp(-a) = 2^-k exp(-r) with k = round(a / ln 2) and |r| <= ln(2) / 2; ln 2
# split in two so that k ln 2 is exact to double precision (Cody and Waite).
LN2_HI = 6.93147180369123816490e-01
LN2_LO = 1.90821492927058770002e-10
LOG2E = 1.4426950408889634
# Bits of a float64: its mantissa, and the exponent field of 1.0.
MANTISSA_MASK = (1 << 52) - 1
ONE_BITS = 1023 << 52
SQRT2 = 1.4142135623730951
# exp(-708) is the last power of two above the smallest normal float64.
EXP_ARG_MAX = 708.0

# Shuffled rows are prefetched this many rows ahead (measured: 2 to 16 give
# the same 1.5x on a 1e6 x 100 SGD epoch; the work of a row hides one miss).
PREFETCH_ROWS = 4

# Per-example epochs sum their losses this many examples at a time: the
# log1p then runs vectorized, off the chain from one update to the next.
LOSS_BATCH = 64

# A mini-batch's gradient is split in parts of at least this many rows, at
# most this many parts. Measured at 1e6 x 100 float64 on 2 threads: batch 256
# in 4 parts ran 1.15x faster than in 2 (load balance), and the split epochs
# are 1.7-1.9x (batch 256) and 2.2x (4096) faster than unsplit ones.
MIN_PART_ROWS = 64
MAX_BATCH_PARTS = 8

# Schedules, as scikit-learn's SGD defines them.
CONSTANT, INVSCALING, OPTIMAL = 0, 1, 2


def last_level_cache_bytes(default=32 << 20):
    """Size of CPU 0's largest data cache, from Linux's sysfs, else ``default``.

    Returns
    -------
    size : int
        Bytes.
    """
    sizes = []
    for index in Path("/sys/devices/system/cpu/cpu0/cache").glob("index*"):
        try:
            if (index / "type").read_text().strip() == "Instruction":
                continue
            text = (index / "size").read_text().strip().upper()
        except OSError:
            continue
        unit = {"K": 1 << 10, "M": 1 << 20}.get(text[-1:], 1)
        digits = text.rstrip("KM")
        if digits.isdigit():
            sizes.append(int(digits) * unit)
    return max(sizes, default=default)


# Read once at import and compiled into the kernels as a constant.
CACHED_X_BYTES = last_level_cache_bytes() // 2


def n_chunks_for(n_rows):
    """Number of row chunks of the parallel reduction for ``n_rows`` rows.

    Parameters
    ----------
    n_rows : int
        Number of rows reduced.

    Returns
    -------
    n_chunks : int
        At least 1, at most ``MAX_CHUNKS``; a function of ``n_rows`` only.
    """
    return max(1, min(MAX_CHUNKS, -(-n_rows // MIN_CHUNK_ROWS)))


@intrinsic
def prefetch_row(typingctx, X, i):
    """Ask the CPU to start loading row ``i`` of the C-contiguous 2-D array X.

    One ``llvm.prefetch`` per 64-byte line of the row. A shuffled epoch reads
    rows in random order, so the hardware prefetcher cannot guess the next
    one; each row's dot product and update depend on the previous row's, so
    out-of-order execution cannot run ahead to it either.
    """

    def codegen(context, builder, signature, args):
        array_type = signature.args[0]
        array = context.make_array(array_type)(context, builder, args[0])
        zero = context.get_constant(types.intp, 0)
        start = cgutils.get_item_pointer2(
            context, builder, array.data, cgutils.unpack_tuple(builder, array.shape),
            cgutils.unpack_tuple(builder, array.strides), array_type.layout, [args[1], zero],
            wraparound=False, boundscheck=False,
        )  # fmt: skip
        base = builder.bitcast(start, ir.IntType(8).as_pointer())
        row_bytes = builder.extract_value(array.strides, 0)
        i32 = ir.IntType(32)
        hint = ir.FunctionType(ir.VoidType(), [base.type, i32, i32, i32])
        prefetch = cgutils.get_or_insert_function(builder.module, hint, "llvm.prefetch.p0")
        line = context.get_constant(types.intp, 64)
        with cgutils.for_range_slice(builder, zero, row_bytes, line) as (offset, _):
            # read access, no temporal locality (prefetchnta), data cache: the
            # row is used once, soon. Measured 1.12x a high-locality prefetch
            # on a shuffled SGD epoch (1e6 x 100 float64); mini-batch the same.
            address = builder.gep(base, [offset])
            builder.call(prefetch, [address, i32(0), i32(0), i32(1)])
        return context.get_dummy_value()

    return types.void(X, i), codegen


# --------------------------------------------------------------------------
# Scalar loss: one exp per sample serves the sigmoid and the loss.
# --------------------------------------------------------------------------


@kernel(exact=True)
def sigmoid_and_log1pexp(z, one, with_loss):
    """Return ``(sigmoid(z), log(1 + exp(z)))`` without overflow.

    Both use ``e = exp(-|z|)``, which lies in (0, 1] for every finite ``z``.
    The second value is only computed when ``with_loss`` is true (it is 0
    otherwise): ``log1p`` costs as much as the ``exp``.
    """
    e = np.exp(-abs(z))
    inv = one / (one + e)
    prob = inv if z >= 0 else e * inv
    softplus = one - one
    if with_loss:
        # log1p(e) by Goldberg's identity: exact to a few ulps and, with one
        # division, ~2x faster than numba's log1p call.
        u = one + e
        softplus = e if u == one else np.log(u) * (e / (u - one))
        if z > 0:
            softplus += z
    return prob, softplus


@kernel
def residual_and_loss(z, i, y, sw, one, with_loss):
    """Sample ``i``'s residual ``sigmoid(z) - y_i`` and log-loss ``log(1 + exp(z)) - y_i z``.

    Both are multiplied by the sample weight ``sw[i]`` (``sw`` empty: weight 1).
    """
    prob, softplus = sigmoid_and_log1pexp(z, one, with_loss)
    loss = softplus - y[i] * z if with_loss else one - one
    residual = prob - y[i]
    if sw.shape[0] > 0:
        return residual * sw[i], loss * sw[i]
    return residual, loss


@kernel
def residual_queueing_loss(z, i, y, sw, pending, count):
    """Sample ``i``'s weighted residual; its loss goes to column ``count`` of ``pending``.

    The per-example epochs' residual: one scalar ``exp``, and the loss's
    ``log1p`` left to :func:`pending_loss_sum`, which takes a batch of them
    vectorized. Measured on shuffled epochs: 1.06-1.10x at 1e6 x 100 float64
    (with the step's division taken off the score's chain), 1.09x on CSR rows
    of 50 non-zeros. ``pending`` is float64 of shape (4, LOSS_BATCH): ``exp(-|z|)``,
    the weighted rest of the loss, the weight, and room for the ``log1p``.
    The caller counts the queue and sums it when full: with that inside this
    helper, the dense epoch ran 1.08x slower.
    """
    one = y.dtype.type(1)
    e = np.exp(-abs(z))
    inv = one / (one + e)
    residual = (inv if z >= 0 else e * inv) - y[i]
    weight = sw[i] if sw.shape[0] > 0 else one
    pending[0, count] = e
    pending[1, count] = weight * (max(z, 0.0) - y[i] * z)
    pending[2, count] = weight
    return residual * weight


@kernel
def pending_loss_sum(pending, count):
    """Sum of the ``count`` losses queued by :func:`residual_queueing_loss`."""
    log1p_unit(pending[0], count, pending[3])
    total = 0.0
    for k in range(count):
        total += pending[2, k] * pending[3, k] + pending[1, k]
    return total


@kernel
def sigmoid_array(z, out):
    """Stable elementwise sigmoid of ``z`` into ``out``."""
    one = z.dtype.type(1)
    for i in range(z.shape[0]):
        out[i], _ = sigmoid_and_log1pexp(z[i], one, False)
    return out


@kernel
def log1pexp_array(z, out):
    """Stable elementwise ``log(1 + exp(z))`` of ``z`` into ``out``."""
    one = z.dtype.type(1)
    for i in range(z.shape[0]):
        _, out[i] = sigmoid_and_log1pexp(z[i], one, True)
    return out


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


@kernel(exact=True)
def exp_neg_abs(z, m, e, kbuf, bits):
    """``e[k] = exp(-|z[k]|)`` for ``k < m``, in loops that LLVM vectorizes.

    numba has no vector ``exp`` (each call goes to libm), so this is a
    degree-13 Taylor polynomial on the reduced argument, scaled by ``2^-k``
    built from its bits. Relative error below 3e-16; 0 past ``|z| = 708``.
    """
    for k in range(m):
        a = min(abs(z[k]), EXP_ARG_MAX)
        kf = np.floor(a * LOG2E + 0.5)
        r = (kf * LN2_HI - a) + kf * LN2_LO
        p = 1.0 / 6227020800.0
        p = p * r + 1.0 / 479001600.0
        p = p * r + 1.0 / 39916800.0
        p = p * r + 1.0 / 3628800.0
        p = p * r + 1.0 / 362880.0
        p = p * r + 1.0 / 40320.0
        p = p * r + 1.0 / 5040.0
        p = p * r + 1.0 / 720.0
        p = p * r + 1.0 / 120.0
        p = p * r + 1.0 / 24.0
        p = p * r + 1.0 / 6.0
        p = p * r + 0.5
        p = p * r + 1.0
        e[k] = p * r + 1.0
        kbuf[k] = 1023.0 - kf
    # The float -> int conversion vectorizes only in a loop of its own.
    for k in range(m):
        bits[k] = np.int64(kbuf[k]) << 52
    scale = bits.view(np.float64)
    for k in range(m):
        e[k] = e[k] * scale[k] if z[k] > -EXP_ARG_MAX and z[k] < EXP_ARG_MAX else 0.0


@kernel(exact=True)
def log1p_unit(e, m, out):
    """``out[k] = log(1 + e[k])`` for ``0 <= e[k] <= 1``, vectorizable.

    ``log(1 + e) = 2 atanh(s)`` with ``s = e / (2 + e) <= 1/3``
    (:func:`two_atanh`), exact for small ``e``.
    """
    for k in range(m):
        out[k] = two_atanh(e[k] / (2.0 + e[k]))


@kernel(exact=True)
def two_atanh(s):
    """``2 atanh(s) = log((1 + s) / (1 - s))`` for ``|s| <= 1/3``.

    The odd series to ``s^35``: its first dropped term is below 1e-17 relative.
    """
    s2 = s * s
    p = 1.0 / 35.0
    p = p * s2 + 1.0 / 33.0
    p = p * s2 + 1.0 / 31.0
    p = p * s2 + 1.0 / 29.0
    p = p * s2 + 1.0 / 27.0
    p = p * s2 + 1.0 / 25.0
    p = p * s2 + 1.0 / 23.0
    p = p * s2 + 1.0 / 21.0
    p = p * s2 + 1.0 / 19.0
    p = p * s2 + 1.0 / 17.0
    p = p * s2 + 1.0 / 15.0
    p = p * s2 + 1.0 / 13.0
    p = p * s2 + 1.0 / 11.0
    p = p * s2 + 1.0 / 9.0
    p = p * s2 + 1.0 / 7.0
    p = p * s2 + 1.0 / 5.0
    p = p * s2 + 1.0 / 3.0
    return 2.0 * s * (p * s2 + 1.0)


@kernel(exact=True)
def log1p_array(x, m, out, bits):
    """``out[k] = log(1 + x[k])`` for ``x[k] >= 0`` and ``k < m``, vectorizable.

    ``u = 1 + x`` is split as ``2^k f`` with ``f`` in ``[sqrt(1/2), sqrt(2))``
    (from its bits), ``log f = 2 atanh(s)`` with ``s = (f - 1) / (f + 1)``,
    ``|s| < 0.172`` (:func:`two_atanh`), and
    ``(x - (u - 1)) / u`` restores what rounding ``1 + x`` lost, so small
    ``x`` keep full precision. ``bits`` is an int64 scratch of length ``m``.
    """
    for k in range(m):
        out[k] = 1.0 + x[k]
    u_bits = out[:m].view(np.int64)
    for k in range(m):
        bits[k] = (u_bits[k] & MANTISSA_MASK) | ONE_BITS
    # The int -> float conversion vectorizes only in a loop of its own (with
    # it, the last loop ran 5x slower); ``out`` holds the exponents for it.
    for k in range(m):
        out[k] = np.float64((u_bits[k] >> 52) - 1023)
    f = bits.view(np.float64)
    for k in range(m):
        exponent = out[k]
        fk = f[k]
        if fk > SQRT2:
            fk *= 0.5
            exponent += 1.0
        log_f = two_atanh((fk - 1.0) / (fk + 1.0))
        u = 1.0 + x[k]
        correction = (x[k] - (u - 1.0)) / u
        out[k] = exponent * LN2_HI + (log_f + (exponent * LN2_LO + correction))


# --------------------------------------------------------------------------
# Gradient of the mean cross-entropy: the seed's two algorithms and the fused
# parallel one. Each adds sum_i sw_i (a_i - y_i) x_i into grad_coef and
# returns (sum_i sw_i (a_i - y_i), sum_i sw_i loss_i) as float64.
# --------------------------------------------------------------------------


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
    ``(4, block_rows(n, d, X.itemsize))``.
    """
    has_sw = sw.shape[0] > 0
    has_order = order.shape[0] > 0
    block = scratch.shape[1]
    z, e, buf = scratch[0], scratch[1], scratch[2]
    bits = scratch[3].view(np.int64)
    rows = np.empty(block, np.int64)
    # Rows read in place go by direct index unless the float32 block sweeps
    # apply: through the index array, streaming float64 rows ran 1.05x and
    # cached ones 1.15x slower (1e6 and 1e4 x 100).
    direct = not has_order and not multirow_sweeps(X)
    db = 0.0
    cost = 0.0
    for b0 in range(start, stop, block):
        m = min(block, stop - b0)
        for k in range(m):
            rows[k] = order[b0 + k] if has_order else b0 + k
        if has_order:
            for k in range(b0 + block, min(b0 + 2 * block, stop)):
                prefetch_row(X, order[k])
        if direct:
            range_scores(X, b0, m, coef, intercept, z)
        else:
            block_scores(X, rows, m, coef, intercept, z)
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

    One row per sweep (two or four ran 1.1-1.5x slower for float64 at d = 100
    and 1000), but four up to ``NARROW_ROW_FEATURES`` columns, where a row's
    reduction is short (1.06-1.1x at d = 10; even at d = 32).
    """
    k0 = 0
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

    Four rows per sweep: one load and store of ``grad_coef`` for four rows
    (measured 1.02x streamed at 1e6 x 100 float64, 1.04-1.16x at d = 10, 1000
    and from cache), then one row at a time.
    """
    k0 = 0
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
def block_scores(X, rows, m, coef, intercept, z):
    """``z[k] = X[rows[k]] . coef + intercept`` for ``k < m``.

    With :func:`multirow_sweeps`, two rows per sweep over ``coef`` (two
    reductions that LLVM vectorizes, each load of ``coef`` serving both;
    measured 1.06x four rows per sweep on 1e6 x 100 float32 streamed from
    memory, the same at d = 10 and 1000); else one row at a time.
    """
    d = X.shape[1]
    k = 0
    if multirow_sweeps(X):
        while k + 2 <= m:
            x0, x1 = X[rows[k]], X[rows[k + 1]]
            z0 = z1 = intercept
            for j in range(d):
                w = coef[j]
                z0 += w * x0[j]
                z1 += w * x1[j]
            z[k], z[k + 1] = z0, z1
            k += 2
    while k < m:
        x = X[rows[k]]
        acc = intercept
        for j in range(d):
            acc += coef[j] * x[j]
        z[k] = acc
        k += 1


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


@kernel
def add_partials(partial, partial_db, partial_cost, grad_coef):
    """Add per-chunk partial sums into ``grad_coef`` in chunk order (reproducible).

    Returns the summed intercept gradient and loss.
    """
    db = 0.0
    cost = 0.0
    for c in range(partial.shape[0]):
        for j in range(partial.shape[1]):
            grad_coef[j] += partial[c, j]
        db += partial_db[c]
        cost += partial_cost[c]
    return db, cost


@kernel(parallel=True)
def gram_matvec(X, sw, v, v0, n_chunks, out):
    """Add ``A^T W A [v, v0]`` into ``out`` (length d + 1), with ``A = [X, 1]``.

    ``W`` is the diagonal of the sample weights ``sw`` (empty: identity), so
    integer weights give exactly the Gram matrix of repeated rows. Used by
    the power iteration that sets gradient descent's step size.
    """
    n, d = X.shape
    has_sw = sw.shape[0] > 0
    chunk = -(-n // n_chunks)
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
            for j in range(d):
                partial[c, j] += z * X[i, j]
            partial[c, d] += z
    for c in range(n_chunks):
        for j in range(d + 1):
            out[j] += partial[c, j]
    return out


@kernel
def _sum_flat(values):
    """Sum of a contiguous 1-D array (vectorized: a reduction with reassociation)."""
    total = values.dtype.type(0)
    for k in range(values.shape[0]):
        total += values[k]
    return total


@kernel
def read_sum(X):
    """Sum of X in one flat pass: the memory-bandwidth baseline of the benchmarks.

    X is read as one contiguous run, whatever its width, so the figure is the
    machine's streaming read rate and not the cost of short rows.
    """
    return _sum_flat(X.reshape(-1))


@kernel(parallel=True)
def read_sum_parallel(X, n_chunks):
    """Parallel flat one-pass sum of X, split into the row chunks of :func:`fused_gradient`.

    Each chunk is summed by :func:`_sum_flat`, compiled on its own: inlined in
    the prange body the reduction stayed scalar (a quarter of the bandwidth).
    """
    n, d = X.shape
    flat = X.reshape(-1)
    chunk = -(-n // n_chunks)
    partial = np.zeros(n_chunks)
    for c in prange(n_chunks):
        start = min(c * chunk, n) * d
        stop = min(c * chunk + chunk, n) * d
        partial[c] = _sum_flat(flat[start:stop])
    return partial.sum()


# --------------------------------------------------------------------------
# Stochastic solvers: a whole epoch per call, shuffled through ``order``.
# --------------------------------------------------------------------------


@kernel
def learning_rate(schedule, t, eta0, power_t, alpha, t0):
    """Step size at update ``t`` (counted from 1), as scikit-learn's SGD."""
    if schedule == OPTIMAL:
        return 1.0 / (alpha * (t0 + t - 1.0))
    if schedule == INVSCALING:
        return eta0 / t**power_t
    return eta0


@kernel
def sgd_epoch(
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
            # _shrink written out: as a call in this per-example loop, 5% slower.
            wscale *= max(0.0, 1.0 - eta * alpha)
            if wscale < 1e-9:
                _rescale(coef, wscale)
                wscale = 1.0
        # eta / wscale first: it does not wait for the score, so the division
        # stays off the chain from this example's score to its update.
        step = X.dtype.type(dz * (eta / wscale)) if wscale > 0.0 else one - one
        for j in range(d):
            coef[j] -= step * X[i, j]
        if l1 > 0.0:
            l1_state[d] += eta * l1
            for j in range(d):
                _truncate(coef, j, wscale, l1_state)
        if fit_intercept:
            b -= X.dtype.type(eta) * dz
        if average_start > 0.0 and t >= average_start:
            mu = X.dtype.type(1.0 / (t - average_start + 1.0))
            scale = X.dtype.type(wscale)
            for j in range(d):
                avg_coef[j] += mu * (scale * coef[j] - avg_coef[j])
            avg_intercept[0] += mu * (b - avg_intercept[0])
        t += 1.0
    sum_loss += pending_loss_sum(pending, queued)
    _rescale(coef, wscale)
    intercept[0] = b
    return sum_loss, t


@kernel
def _truncate(coef, j, wscale, l1_state):
    """Cumulative L1 step on ``coef[j]`` (stored divided by ``wscale``).

    ``l1_state[-1]`` is the total penalty ``u`` so far, ``l1_state[j]`` what
    weight ``j`` has received: it moves toward 0 by at most ``u - q_j``.
    """
    u = l1_state[l1_state.shape[0] - 1]
    before = coef[j]
    if before > 0:
        coef[j] = max(0.0, before - (u + l1_state[j]) / wscale)
    elif before < 0:
        coef[j] = min(0.0, before + (u - l1_state[j]) / wscale)
    l1_state[j] += wscale * (coef[j] - before)


@kernel
def batch_weight(sw, order, start, stop):
    """Total sample weight of the rows ``order[start:stop]`` (their count without weights)."""
    if sw.shape[0] == 0:
        return float(stop - start)
    weight = 0.0
    for k in range(start, stop):
        weight += sw[order[k]]
    return weight


@kernel
def soft_threshold(coef, threshold):
    """``coef <- sign(coef) max(|coef| - threshold, 0)``, in place: the L1 prox."""
    for j in range(coef.shape[0]):
        c = coef[j]
        if c > threshold:
            coef[j] = c - threshold
        elif c < -threshold:
            coef[j] = c + threshold
        else:
            coef[j] = 0


@kernel
def _rescale(coef, wscale):
    """Fold the scalar weight factor back into ``coef``."""
    factor = coef.dtype.type(wscale)
    for j in range(coef.shape[0]):
        coef[j] *= factor


@kernel
def _shrink(coef, wscale, factor):
    """The weight scale times ``max(factor, 0)``, folded into ``coef`` (1-D) below 1e-9."""
    wscale *= max(0.0, factor)
    if wscale < 1e-9:
        _rescale(coef, wscale)
        wscale = 1.0
    return wscale


@kernel(parallel=True)
def minibatch_epoch(
    X, y, sw, order, batch_size, coef, intercept, fit_intercept, alpha, l1, l1_state, schedule,
    rate, t,
):  # fmt: skip
    """One epoch of mini-batch SGD over ``order`` in batches of ``batch_size``.

    Each batch takes one step along its mean gradient plus ``alpha * w``, then
    the proximal step of the L1 penalty (soft-thresholding by ``eta * l1``);
    the schedule's ``t`` counts batches. Arguments and returns as
    :func:`sgd_epoch` (``l1_state`` is unused); the loss of each batch is taken
    before its step.

    A batch's gradient is summed over :func:`batch_parts` fixed parts of it in
    parallel, then added in part order: bitwise the same for any number of
    threads. The shuffled rows are misses in memory, which two threads fetch
    twice as fast (measured 1.4x at batch 256 and 1.9x at 4096 on 1e6 x 100
    float64, 2 threads).
    """
    n, d = X.shape
    n_parts = batch_parts(batch_size)
    grad = np.empty(d, X.dtype)
    part_grad = np.zeros((n_parts, d), X.dtype)
    part_db = np.zeros(n_parts)
    part_cost = np.zeros(n_parts)
    scratch = np.empty((n_parts, 4, block_rows(n, d, X.itemsize, True)))
    sum_loss = 0.0
    for start in range(0, n, batch_size):
        stop = min(start + batch_size, n)
        part = -(-(stop - start) // n_parts)
        # Zeroed by serial loops: under parallel=True an array expression such
        # as part_grad[:] = 0 becomes a parallel region of its own.
        _zero(part_grad.reshape(-1))
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
        _zero(grad)
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


@kernel
def _zero(a):
    """``a[:] = 0`` for a 1-D array, as a serial loop."""
    for j in range(a.shape[0]):
        a[j] = 0


@kernel
def batch_parts(batch_size):
    """Parts of a mini-batch whose gradients :func:`minibatch_epoch` sums in parallel.

    One per ``MIN_PART_ROWS`` rows, at most ``MAX_BATCH_PARTS``: a function of
    the batch size only, so the sums do not depend on the number of threads.
    """
    return max(1, min(MAX_BATCH_PARTS, batch_size // MIN_PART_ROWS))
