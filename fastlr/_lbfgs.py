"""Limited-memory BFGS, compiled, driven from Python by reverse communication.

The solver state lives in a few arrays; :func:`start` and :func:`advance`
are compiled and do everything between two evaluations of the objective:
the line search, the curvature-pair history, the stopping tests and the
two-loop recursion. Python only evaluates the objective (one fused pass over
the data) and calls :func:`advance` with the result, so an iteration costs a
pass plus a few microseconds: on digits (1797 x 64, 10 classes) scipy's
L-BFGS-B spent a third of the fit between its passes.

The method is scipy's L-BFGS-B without bounds: ``MEMORY`` curvature pairs,
the initial inverse Hessian scaled by ``s.y / y.y``, a first step of
``1 / ||g||``, a line search for the strong Wolfe conditions with scipy's
constants, pairs skipped when ``s.y <= eps y.y``, and the same stopping
tests: the largest gradient entry at most ``gtol``, a relative decrease
``(f_prev - f) / max(|f_prev|, |f|, 1)`` at most ``ftol``, ``max_iter``
iterations. The line search brackets the step (growing it fourfold while
the curvature condition asks for a longer one), then shrinks the bracket by
safeguarded cubic interpolation. Where the objective's changes are lost in
rounding, near the optimum, Hager and Zhang's approximate Wolfe conditions
decide instead. A search that fails drops the history and retries along the
steepest descent; a second failure stops the solver.
"""

from dataclasses import dataclass

import numpy as np

from ._jit import kernel

#: Curvature pairs kept (scipy's and scikit-learn's default).
MEMORY = 10
#: Evaluations allowed in one line search (scikit-learn's ``maxls``).
MAX_LINE_SEARCH = 50
#: Sufficient decrease and curvature constants of the strong Wolfe conditions
#: (those of scipy's L-BFGS-B line search).
ARMIJO = 1e-3
CURVATURE = 0.9
#: Hager and Zhang's approximate Wolfe conditions (:func:`_approximately_wolfe`):
#: their sufficient-decrease constant, and the relative change of the
#: objective below which they replace the strong Wolfe conditions (a few
#: hundred ulps: the rounding of a loss summed over many samples).
APPROX_ARMIJO = 0.1
ROUNDOFF = 1e-13
EPS = float(np.finfo(np.float64).eps)
#: Growth of the step while the line search has no upper bracket.
EXTRAPOLATION = 4.0
#: An interpolated step keeps this fraction of the bracket from its ends.
SAFEGUARD = 0.1

# What :func:`start` and :func:`advance` return: ``EVALUATE`` and
# ``NEW_ITERATE`` (an iterate was accepted) ask for the objective at ``x``;
# the others end the run with ``x`` at the last iterate.
EVALUATE, NEW_ITERATE, CONVERGED_GRADIENT, CONVERGED_DECREASE, MAX_ITER, SEARCH_FAILED = range(6)
MESSAGES = {
    CONVERGED_GRADIENT: "the largest gradient entry fell to gtol",
    CONVERGED_DECREASE: "the relative decrease of the objective fell to ftol",
    MAX_ITER: "max_iter iterations were run",
    SEARCH_FAILED: "the line search found no step satisfying the Wolfe conditions",
}

# Slots of the float64 ``scalars``: the objective and its slope along the
# direction at the last iterate, the trial step, and the bracket ends with
# their objective values and slopes.
F0, SLOPE0, STEP, LO, F_LO, SLOPE_LO, HI, F_HI, SLOPE_HI, GAMMA = range(10)
# Slots of the int64 ``counts``.
N_PAIRS, NEWEST, N_SEARCH, N_ITER, FAILED_ONCE = range(5)
# Slots of ``settings``.
GTOL, FTOL, MAX_ITERATIONS, MAX_SEARCH = range(4)


@dataclass
class LbfgsResult:
    """The last iterate, its objective, the iterations run and why the run ended."""

    x: np.ndarray
    fun: float
    n_iter: int
    status: int

    @property
    def converged(self):
        return self.status in (CONVERGED_GRADIENT, CONVERGED_DECREASE)

    @property
    def message(self):
        return MESSAGES[self.status]


def minimize(evaluate, x0, *, max_iter, gtol, ftol, callback=None, memory=MEMORY):
    """Minimize a smooth function of a float64 vector by L-BFGS.

    Parameters
    ----------
    evaluate : callable
        ``evaluate(x, g)`` returns the objective at ``x`` and writes its
        gradient into ``g`` (float64, of ``x``'s shape).
    x0 : ndarray of shape (n_params,)
        Starting point (not modified).
    max_iter : int
        Iterations allowed (0: return ``x0``).
    gtol : float
        Stop once the largest absolute gradient entry is at most ``gtol``.
    ftol : float
        Stop once an iteration decreases the objective by at most ``ftol``
        relative to ``max(|f_prev|, |f|, 1)``.
    callback : callable, optional
        ``callback(f)`` after each iteration, with the accepted objective.
    memory : int, default=MEMORY
        Curvature pairs kept.

    Returns
    -------
    result : LbfgsResult
    """
    x = np.array(x0, dtype=np.float64)
    g = np.zeros_like(x)
    pairs = np.zeros((2, memory, x.shape[0]))
    vectors = np.zeros((3, x.shape[0]))
    coefficients = np.zeros((2, memory))
    scalars = np.zeros(10)
    counts = np.zeros(5, np.int64)
    settings = np.array([gtol, ftol, max_iter, MAX_LINE_SEARCH], dtype=np.float64)
    state = (pairs, vectors, coefficients, scalars, counts, settings)
    f = evaluate(x, g)
    status = start(x, f, g, *state)
    n_iter = 0
    while True:
        if callback is not None and counts[N_ITER] > n_iter:
            n_iter = counts[N_ITER]
            callback(float(scalars[F0]))
        if status != EVALUATE and status != NEW_ITERATE:
            break
        f = evaluate(x, g)
        status = advance(x, f, g, *state)
    return LbfgsResult(x, float(scalars[F0]), int(counts[N_ITER]), status)


@kernel
def start(x, f, g, pairs, vectors, coefficients, scalars, counts, settings):
    """Take the starting point ``x`` (objective ``f``, gradient ``g``); set the first trial.

    Returns a status: ``EVALUATE`` with the first trial point in ``x``, or
    ``CONVERGED_GRADIENT``/``MAX_ITER`` with ``x`` unchanged.
    """
    for i in range(counts.shape[0]):
        counts[i] = 0
    scalars[F0] = f
    if not np.isfinite(f):
        return SEARCH_FAILED
    if _max_abs(g) <= settings[GTOL]:
        return CONVERGED_GRADIENT
    if settings[MAX_ITERATIONS] <= 0:
        return MAX_ITER
    return _begin_search(x, f, g, pairs, vectors, coefficients, scalars, counts)


@kernel
def advance(x, f, g, pairs, vectors, coefficients, scalars, counts, settings):
    """Take the objective ``f`` and gradient ``g`` at the trial point ``x``; move on.

    Returns a status. With ``EVALUATE`` ``x`` holds the next trial step of the
    same line search; with ``NEW_ITERATE`` the trial was accepted (its
    objective is ``scalars[F0]``) and ``x`` holds the first trial of the next
    search; any other status ends the run with ``x``, ``g`` and
    ``scalars[F0]`` at the last accepted iterate.
    """
    direction = vectors[0]
    step = scalars[STEP]
    counts[N_SEARCH] += 1
    slope = _dot(g, direction)
    slope0 = scalars[SLOPE0]
    f0 = scalars[F0]
    if np.isfinite(f) and np.isfinite(slope) and _approximately_wolfe(f, f0, slope, slope0):
        return _accept(x, f, g, pairs, vectors, coefficients, scalars, counts, settings)
    if not np.isfinite(f) or f > f0 + ARMIJO * step * slope0 or f >= scalars[F_LO]:
        scalars[HI], scalars[F_HI], scalars[SLOPE_HI] = step, f, slope
    elif abs(slope) <= -CURVATURE * slope0:
        return _accept(x, f, g, pairs, vectors, coefficients, scalars, counts, settings)
    else:
        # The minimum lies beyond the step, or back between it and LO.
        if slope * (scalars[HI] - scalars[LO]) >= 0:
            scalars[HI], scalars[F_HI], scalars[SLOPE_HI] = (
                scalars[LO],
                scalars[F_LO],
                scalars[SLOPE_LO],
            )
        scalars[LO], scalars[F_LO], scalars[SLOPE_LO] = step, f, slope
    step = _next_step(scalars)
    width = abs(scalars[HI] - scalars[LO])
    if counts[N_SEARCH] >= settings[MAX_SEARCH] or width <= 1e-15 * abs(step):
        return _search_failed(x, g, pairs, vectors, coefficients, scalars, counts)
    _set_trial(x, step, vectors, scalars)
    return EVALUATE


@kernel
def _approximately_wolfe(f, f0, slope, slope0):
    """Hager and Zhang's approximate Wolfe conditions, for decreases lost in rounding.

    Near the optimum a step's decrease falls below the rounding error of the
    objective, and the sufficient-decrease test passes or fails by chance.
    The slopes stay accurate: a step whose objective is within ``ROUNDOFF
    |f0|`` of ``f0`` and where the slope along the direction has risen from
    ``slope0`` into ``[CURVATURE, 1 - 2 APPROX_ARMIJO] * slope0`` (the
    minimum along the line is near) is accepted. The ``ftol`` test then sees
    a relative decrease of at most ``ROUNDOFF`` and ends the run.
    """
    return (
        abs(f - f0) <= ROUNDOFF * abs(f0)
        and CURVATURE * slope0 <= slope <= (2.0 * APPROX_ARMIJO - 1.0) * slope0
    )


@kernel
def _next_step(scalars):
    """The next trial: grow the step without an upper bracket, else interpolate."""
    lo, hi = scalars[LO], scalars[HI]
    if np.isinf(hi):
        return EXTRAPOLATION * scalars[STEP]
    f_lo, f_hi = scalars[F_LO], scalars[F_HI]
    s_lo, s_hi = scalars[SLOPE_LO], scalars[SLOPE_HI]
    # The minimizer of the cubic matching both ends' values and slopes.
    d1 = s_lo + s_hi - 3.0 * (f_lo - f_hi) / (lo - hi)
    d2 = np.sign(hi - lo) * np.sqrt(d1 * d1 - s_lo * s_hi)
    step = hi - (hi - lo) * (s_hi + d2 - d1) / (s_hi - s_lo + 2.0 * d2)
    low, high = min(lo, hi), max(lo, hi)
    margin = SAFEGUARD * (high - low)
    if not (low + margin <= step <= high - margin):  # also false for nan
        step = 0.5 * (lo + hi)
    return step


@kernel
def _accept(x, f, g, pairs, vectors, coefficients, scalars, counts, settings):
    """The trial ``x`` is the new iterate: store the pair, test stopping, start a search."""
    counts[N_ITER] += 1
    f_prev = scalars[F0]
    scalars[F0] = f
    _store_pair(x, g, pairs, vectors, coefficients, scalars, counts)
    if _max_abs(g) <= settings[GTOL]:
        return CONVERGED_GRADIENT
    if f_prev - f <= settings[FTOL] * max(abs(f_prev), abs(f), 1.0):
        return CONVERGED_DECREASE
    if counts[N_ITER] >= settings[MAX_ITERATIONS]:
        return MAX_ITER
    counts[FAILED_ONCE] = 0
    status = _begin_search(x, f, g, pairs, vectors, coefficients, scalars, counts)
    return NEW_ITERATE if status == EVALUATE else status


@kernel
def _store_pair(x, g, pairs, vectors, coefficients, scalars, counts):
    """Keep ``s = x - x0``, ``y = g - g0`` unless ``s.y <= eps y.y`` (no usable curvature)."""
    memory = pairs.shape[1]
    slot = (counts[NEWEST] + 1) % memory
    s, y = pairs[0, slot], pairs[1, slot]
    x0, g0 = vectors[1], vectors[2]
    sy = yy = 0.0
    for i in range(x.shape[0]):
        s[i] = x[i] - x0[i]
        y[i] = g[i] - g0[i]
        sy += s[i] * y[i]
        yy += y[i] * y[i]
    if sy > EPS * yy:
        coefficients[0, slot] = 1.0 / sy
        scalars[GAMMA] = sy / yy
        counts[NEWEST] = slot
        counts[N_PAIRS] = min(counts[N_PAIRS] + 1, memory)


@kernel
def _begin_search(x, f, g, pairs, vectors, coefficients, scalars, counts):
    """Save the iterate, take the quasi-Newton direction and set its first trial step.

    Returns ``EVALUATE``, or ``CONVERGED_GRADIENT`` for a zero gradient.
    """
    direction, x0, g0 = vectors[0], vectors[1], vectors[2]
    _copy(x, x0)
    _copy(g, g0)
    scalars[F0] = f
    _two_loop(g, pairs, coefficients, scalars[GAMMA], counts, direction)
    slope = _dot(g, direction)
    step = 1.0
    if counts[N_PAIRS] == 0 or not slope < 0:
        # No history (or a direction that does not descend): steepest descent,
        # with a first step of unit length.
        counts[N_PAIRS] = 0
        norm = np.sqrt(_dot(g, g))
        if norm == 0:
            return CONVERGED_GRADIENT
        for i in range(g.shape[0]):
            direction[i] = -g[i]
        slope = -norm * norm
        step = 1.0 / norm
    scalars[SLOPE0] = slope
    scalars[LO], scalars[F_LO], scalars[SLOPE_LO] = 0.0, f, slope
    scalars[HI], scalars[F_HI], scalars[SLOPE_HI] = np.inf, np.inf, 0.0
    counts[N_SEARCH] = 0
    _set_trial(x, step, vectors, scalars)
    return EVALUATE


@kernel
def _two_loop(g, pairs, coefficients, gamma, counts, direction):
    """``direction = -H g``: the two-loop recursion over the stored pairs, newest first."""
    memory = pairs.shape[1]
    rho, alpha = coefficients[0], coefficients[1]
    n_pairs, newest = counts[N_PAIRS], counts[NEWEST]
    for i in range(g.shape[0]):
        direction[i] = -g[i]
    if n_pairs == 0:
        return
    for age in range(n_pairs):
        slot = _slot(newest, age, memory)
        alpha[slot] = rho[slot] * _dot(pairs[0, slot], direction)
        _axpy(-alpha[slot], pairs[1, slot], direction)
    for i in range(g.shape[0]):
        direction[i] *= gamma
    for age in range(n_pairs - 1, -1, -1):
        slot = _slot(newest, age, memory)
        beta = rho[slot] * _dot(pairs[1, slot], direction)
        _axpy(alpha[slot] - beta, pairs[0, slot], direction)


@kernel
def _slot(newest, age, memory):
    """Where the pair ``age`` iterations older than the newest is stored."""
    slot = newest - age
    return slot + memory if slot < 0 else slot


@kernel
def _search_failed(x, g, pairs, vectors, coefficients, scalars, counts):
    """Return to the last iterate; retry along the steepest descent once, else give up."""
    _copy(vectors[1], x)
    _copy(vectors[2], g)
    if counts[FAILED_ONCE] or counts[N_PAIRS] == 0:
        return SEARCH_FAILED
    counts[FAILED_ONCE] = 1
    counts[N_PAIRS] = 0
    return _begin_search(x, scalars[F0], g, pairs, vectors, coefficients, scalars, counts)


@kernel
def _set_trial(x, step, vectors, scalars):
    """``x = x0 + step * direction``."""
    direction, x0 = vectors[0], vectors[1]
    scalars[STEP] = step
    for i in range(x.shape[0]):
        x[i] = x0[i] + step * direction[i]


@kernel
def _copy(source, target):
    """``target[:] = source``, as a loop: the slice assignment costs seconds of compile time."""
    for i in range(source.shape[0]):
        target[i] = source[i]


@kernel
def _dot(a, b):
    total = 0.0
    for i in range(a.shape[0]):
        total += a[i] * b[i]
    return total


@kernel
def _axpy(a, x, y):
    """``y += a * x``."""
    for i in range(x.shape[0]):
        y[i] += a * x[i]


@kernel
def _max_abs(a):
    largest = 0.0
    for i in range(a.shape[0]):
        largest = max(largest, abs(a[i]))
    return largest
