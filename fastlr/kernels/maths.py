"""Shared maths of the kernels: stable sigmoid and log-loss, vectorized exp and log1p.

numba has no vector ``exp`` or ``log1p`` (each call goes to libm), so the
block kernels take theirs from :func:`exp_neg_abs` and :func:`log1p_unit` /
:func:`log1p_array`, polynomials on a reduced argument written as loops that
LLVM vectorizes. One ``exp(-|z|)`` per score serves both the sigmoid and the
loss, and nothing overflows for any finite score. The per-example epochs
queue their losses (:func:`residual_queueing_loss`) so that the ``log1p`` of
a batch of them runs vectorized, and prefetch the rows they will read next
(:func:`prefetch_row`).
"""

import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from .._jit import kernel

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
# Shuffled rows are prefetched this many rows ahead (2 to 16 are the same: the
# work of a row hides one miss).
PREFETCH_ROWS = 4
# Per-example epochs sum their losses this many examples at a time: the
# log1p then runs vectorized, off the chain from one update to the next.
LOSS_BATCH = 64


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
            # row is used once, soon (faster than a high-locality prefetch).
            address = builder.gep(base, [offset])
            builder.call(prefetch, [address, i32(0), i32(0), i32(1)])
        return context.get_dummy_value()

    return types.void(X, i), codegen


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
        # division, faster than numba's log1p call.
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
    vectorized. ``pending`` is float64 of shape (4, LOSS_BATCH): ``exp(-|z|)``,
    the weighted rest of the loss, the weight, and room for the ``log1p``.
    The caller counts the queue and sums it when full (inside this helper
    that ran slower).
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
    # The int -> float conversion vectorizes only in a loop of its own (inside
    # the last loop it ran 5x slower); ``out`` holds the exponents for it.
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
