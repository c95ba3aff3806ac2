"""The one place that owns numba's compilation options.

Every compiled function in fastlr takes its decorator from here, so that the
fastmath flags, the error model and caching are the same everywhere.
"""

import numba

# Reassociation lets LLVM vectorize dot products and sums; "contract" allows FMA.
# Never "nnan"/"ninf" (fastmath=True): they would make NaN checks silently false.
FASTMATH = frozenset({"reassoc", "contract", "arcp", "nsz"})


def kernel(func=None, *, parallel=False, exact=False):
    """Compile ``func`` in nopython mode with fastlr's options.

    Parameters
    ----------
    func : callable, optional
        The Python function to compile. When omitted, a decorator is returned.
    parallel : bool, default=False
        Enable ``prange`` parallel loops.
    exact : bool, default=False
        Allow only FMA contraction, for code whose rounding is part of its
        correctness (reassociation would simplify ``(1 + e) - 1`` to ``e`` and
        undo the two-constant ``ln 2`` split of an ``exp`` range reduction).

    Returns
    -------
    dispatcher : numba dispatcher or callable
        The compiled function, or a decorator producing one.
    """
    options = dict(
        cache=True,
        nogil=True,
        fastmath={"contract"} if exact else set(FASTMATH),
        # The default "python" model inserts a zero check before every division.
        error_model="numpy",
        parallel=parallel,
    )
    if func is None:
        return numba.njit(**options)
    return numba.njit(**options)(func)
