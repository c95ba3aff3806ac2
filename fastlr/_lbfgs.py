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

With an L1 term, ``F(x) = f(x) + l1 ||x[:n_penalized]||_1``, the solver is
Andrew and Gao's orthant-wise OWL-QN (2007), as Spark MLlib runs it. Each
iterate ``x`` gets the pseudo-gradient ``v``, the gradient of ``f`` plus
``l1 sign(x_i)`` on the penalized entries, and at ``x_i = 0`` the one-sided
derivative that descends (0 when neither does): the smallest subgradient of
``F``. The direction is the two-loop recursion applied to ``v``, with every
entry that disagrees in sign with ``-v`` set to 0; the trial points stay in
the orthant of ``x`` (of ``-v`` where ``x_i = 0``): entries that would change
sign are set to 0. The line search backtracks (halving the step from 1)
until ``F(trial) <= F(x) + ARMIJO_ORTHANT v.(trial - x)``; the curvature
pairs come from the gradients of ``f`` alone. The stopping test is on the
largest entry of ``v``, so ``gtol`` means the same with and without L1, and
the unpenalized entries (the intercepts) are never thresholded.
"""

from dataclasses import dataclass

import numpy as np

from ._drive import EVALUATE, NEW_ITERATE, Layout, drive
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
#: OWL-QN's sufficient-decrease constant and backtracking factor (Andrew and Gao's).
ARMIJO_ORTHANT = 1e-4
BACKTRACK = 0.5
#: An interpolated step keeps this fraction of the bracket from its ends.
SAFEGUARD = 0.1

# What :func:`start` and :func:`advance` return: ``EVALUATE`` and
# ``NEW_ITERATE`` (an iterate was accepted) ask for the objective at ``x``;
# the others end the run with ``x`` at the last iterate.
CONVERGED_GRADIENT, CONVERGED_DECREASE, MAX_ITER, SEARCH_FAILED = range(2, 6)
MESSAGES = {
    CONVERGED_GRADIENT: "the largest (pseudo-)gradient entry fell to gtol",
    CONVERGED_DECREASE: "the relative decrease of the objective fell to ftol",
    MAX_ITER: "max_iter iterations were run",
    SEARCH_FAILED: "the line search found no step satisfying the Wolfe conditions",
}

# Slots of the float64 ``scalars``: the objective and its slope along the
# direction at the last iterate, the trial step, the bracket ends with
# their objective values and slopes, the initial inverse Hessian scale and
# the largest (pseudo-)gradient entry at the last iterate.
F0, SLOPE0, STEP, LO, F_LO, SLOPE_LO, HI, F_HI, SLOPE_HI, GAMMA, OPTIMALITY = range(11)
# Rows of ``vectors``: the search direction, the last iterate and its gradient;
# with L1, its pseudo-gradient and the orthant of the search.
DIRECTION, X0, G0, PSEUDO, ORTHANT = range(5)
# Slots of the int64 ``counts``.
N_PAIRS, NEWEST, N_SEARCH, N_ITER, FAILED_ONCE = range(5)
# Slots of ``settings``.
GTOL, FTOL, MAX_ITERATIONS, MAX_SEARCH, L1, N_PENALIZED = range(6)
LAYOUT = Layout(n_iter=N_ITER, objective=F0, optimality=OPTIMALITY, iterate=X0,
                max_iter_status=MAX_ITER)  # fmt: skip


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


def minimize(
    evaluate, x0, *, max_iter, gtol, ftol, callback=None, memory=MEMORY, l1=0.0, n_penalized=0,
    saver=None, resume=None,
):  # fmt: skip
    """Minimize ``f(x) + l1 ||x[:n_penalized]||_1`` of a float64 vector, ``f`` smooth.

    Without L1 (``l1=0``) the method is L-BFGS, with it OWL-QN.

    Parameters
    ----------
    evaluate : callable
        ``evaluate(x, g)`` returns the objective at ``x`` (its L1 term
        included) and writes the gradient of the smooth part ``f`` into ``g``
        (float64, of ``x``'s shape).
    x0 : ndarray of shape (n_params,)
        Starting point (not modified).
    max_iter : int
        Iterations allowed (0: return ``x0``).
    gtol : float
        Stop once the largest absolute gradient entry (pseudo-gradient entry
        with L1) is at most ``gtol``.
    ftol : float
        Stop once an iteration decreases the objective by at most ``ftol``
        relative to ``max(|f_prev|, |f|, 1)``.
    callback : callable, optional
        ``callback(f, optimality)`` after each iteration, with the accepted
        objective and its largest (pseudo-)gradient entry.
    memory : int, default=MEMORY
        Curvature pairs kept.
    l1 : float, default=0.0
        Strength of the L1 term; positive makes the solver OWL-QN.
    n_penalized : int, default=0
        The L1 term covers ``x[:n_penalized]``; the other entries are smooth.
    saver, resume : optional
        Checkpoints: see :func:`fastlr._drive.drive`.

    Returns
    -------
    result : LbfgsResult
    """
    x = np.array(x0, dtype=np.float64)
    g = np.zeros_like(x)
    state = {
        "pairs": np.zeros((2, memory, x.shape[0])),
        "vectors": np.zeros((5 if l1 > 0 else 3, x.shape[0])),
        "coefficients": np.zeros((2, memory)),
        "scalars": np.zeros(11),
        "counts": np.zeros(5, np.int64),
    }
    # max_iter is the driver's; the compiled code only tests max_iter=0 at the start.
    settings = np.array(
        [gtol, ftol, max_iter, MAX_LINE_SEARCH, l1, n_penalized if l1 > 0 else 0],
        dtype=np.float64,
    )
    arrays = (*state.values(), settings)
    run = drive(
        evaluate, x, g, state,
        begin=lambda f: start(x, f, g, *arrays),
        advance=lambda f: advance(x, f, g, *arrays),
        layout=LAYOUT, max_iter=max_iter, callback=callback, saver=saver, resume=resume,
    )  # fmt: skip
    return LbfgsResult(run.x, run.objective, run.n_iter, run.status)


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
    scalars[OPTIMALITY] = _optimality(x, g, vectors, settings)
    if scalars[OPTIMALITY] <= settings[GTOL]:
        return CONVERGED_GRADIENT
    if settings[MAX_ITERATIONS] <= 0:
        return MAX_ITER
    return _begin_search(x, f, g, pairs, vectors, coefficients, scalars, counts, settings)


@kernel
def advance(x, f, g, pairs, vectors, coefficients, scalars, counts, settings):
    """Take the objective ``f`` and gradient ``g`` at the trial point ``x``; move on.

    Returns a status. With ``EVALUATE`` ``x`` holds the next trial step of the
    same line search; with ``NEW_ITERATE`` the trial was accepted (its
    objective is ``scalars[F0]``) and ``x`` holds the first trial of the next
    search; any other status ends the run with ``x``, ``g`` and
    ``scalars[F0]`` at the last accepted iterate.
    """
    if settings[L1] > 0:
        return _advance_orthant(x, f, g, pairs, vectors, coefficients, scalars, counts, settings)
    direction = vectors[DIRECTION]
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
        return _search_failed(x, g, pairs, vectors, coefficients, scalars, counts, settings)
    _set_trial(x, step, vectors, scalars, settings)
    return EVALUATE


@kernel
def _advance_orthant(x, f, g, pairs, vectors, coefficients, scalars, counts, settings):
    """OWL-QN's line search: accept the trial ``x`` on sufficient decrease, else backtrack.

    The decrease is measured against the pseudo-gradient ``v`` at the last
    iterate along the displacement actually taken (the projection may have
    shortened it): ``F(x) <= F(x0) + ARMIJO_ORTHANT v.(x - x0)``. Where the
    decrease is lost in rounding, the approximate Wolfe conditions of the
    smooth solver decide, on ``F`` restricted to the orthant (where its
    gradient is that of ``f`` plus ``l1`` times the orthant's signs).
    """
    counts[N_SEARCH] += 1
    x0, pseudo0, orthant = vectors[X0], vectors[PSEUDO], vectors[ORTHANT]
    n_penalized = int(settings[N_PENALIZED])
    predicted = slope = 0.0
    for i in range(x.shape[0]):
        s = x[i] - x0[i]
        predicted += pseudo0[i] * s
        slope += (g[i] + settings[L1] * orthant[i] if i < n_penalized else g[i]) * s
    f0 = scalars[F0]
    if np.isfinite(f) and np.isfinite(slope):
        if f <= f0 + ARMIJO_ORTHANT * predicted or _approximately_wolfe(f, f0, slope, predicted):
            return _accept(x, f, g, pairs, vectors, coefficients, scalars, counts, settings)
    if counts[N_SEARCH] >= settings[MAX_SEARCH]:
        return _search_failed(x, g, pairs, vectors, coefficients, scalars, counts, settings)
    _set_trial(x, BACKTRACK * scalars[STEP], vectors, scalars, settings)
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
    scalars[OPTIMALITY] = _optimality(x, g, vectors, settings)
    if scalars[OPTIMALITY] <= settings[GTOL]:
        return CONVERGED_GRADIENT
    if f_prev - f <= settings[FTOL] * max(abs(f_prev), abs(f), 1.0):
        return CONVERGED_DECREASE
    counts[FAILED_ONCE] = 0
    status = _begin_search(x, f, g, pairs, vectors, coefficients, scalars, counts, settings)
    return NEW_ITERATE if status == EVALUATE else status


@kernel
def _optimality(x, g, vectors, settings):
    """The largest gradient entry; with L1, of the pseudo-gradient (kept in ``vectors``)."""
    if settings[L1] > 0:
        pseudo_gradient(x, g, settings[L1], int(settings[N_PENALIZED]), vectors[PSEUDO])
        return _max_abs(vectors[PSEUDO])
    return _max_abs(g)


@kernel
def pseudo_gradient(x, g, l1, n_penalized, out):
    """OWL-QN's pseudo-gradient of ``f + l1 ||x[:n_penalized]||_1`` into ``out``.

    ``g`` is the gradient of ``f``. A penalized entry gets ``g_i + l1 sign(x_i)``
    where ``x_i != 0``; at ``x_i = 0``, ``g_i + l1`` or ``g_i - l1`` when that
    one-sided derivative descends (is negative going up, positive going down),
    else 0. That is the subgradient of smallest magnitude.
    """
    for i in range(x.shape[0]):
        out[i] = g[i]
        if i >= n_penalized:
            continue
        if x[i] > 0:
            out[i] += l1
        elif x[i] < 0:
            out[i] -= l1
        elif g[i] + l1 < 0:
            out[i] += l1
        elif g[i] - l1 > 0:
            out[i] -= l1
        else:
            out[i] = 0.0


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
def _begin_search(x, f, g, pairs, vectors, coefficients, scalars, counts, settings):
    """Save the iterate, take the quasi-Newton direction and set its first trial step.

    With L1 the recursion runs on the pseudo-gradient (which
    :func:`_optimality` left in ``vectors[PSEUDO]``), its result is
    constrained to the signs of the steepest descent, and the orthant of the
    search is set. Returns ``EVALUATE``, or ``CONVERGED_GRADIENT`` for a zero
    (pseudo-)gradient.
    """
    direction, x0, g0 = vectors[DIRECTION], vectors[X0], vectors[G0]
    orthant_wise = settings[L1] > 0
    descent = vectors[PSEUDO] if orthant_wise else g
    _copy(x, x0)
    _copy(g, g0)
    scalars[F0] = f
    _two_loop(descent, pairs, coefficients, scalars[GAMMA], counts, direction)
    if orthant_wise:
        for i in range(direction.shape[0]):
            if direction[i] * descent[i] >= 0:
                direction[i] = 0.0
    slope = _dot(descent, direction)
    step = 1.0
    if counts[N_PAIRS] == 0 or not slope < 0:
        # No history (or a direction that does not descend): steepest descent,
        # with a first step of unit length.
        counts[N_PAIRS] = 0
        norm = np.sqrt(_dot(descent, descent))
        if norm == 0:
            return CONVERGED_GRADIENT
        for i in range(descent.shape[0]):
            direction[i] = -descent[i]
        slope = -norm * norm
        step = 1.0 / norm
    if orthant_wise:
        orthant = vectors[ORTHANT]
        for i in range(int(settings[N_PENALIZED])):
            orthant[i] = np.sign(x[i]) if x[i] != 0 else -np.sign(descent[i])
    scalars[SLOPE0] = slope
    scalars[LO], scalars[F_LO], scalars[SLOPE_LO] = 0.0, f, slope
    scalars[HI], scalars[F_HI], scalars[SLOPE_HI] = np.inf, np.inf, 0.0
    counts[N_SEARCH] = 0
    _set_trial(x, step, vectors, scalars, settings)
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
def _search_failed(x, g, pairs, vectors, coefficients, scalars, counts, settings):
    """Return to the last iterate; retry along the steepest descent once, else give up."""
    _copy(vectors[X0], x)
    _copy(vectors[G0], g)
    if counts[FAILED_ONCE] or counts[N_PAIRS] == 0:
        return SEARCH_FAILED
    counts[FAILED_ONCE] = 1
    counts[N_PAIRS] = 0
    return _begin_search(x, scalars[F0], g, pairs, vectors, coefficients, scalars, counts, settings)


@kernel
def _set_trial(x, step, vectors, scalars, settings):
    """``x = x0 + step * direction``; with L1, entries leaving the orthant set to 0."""
    direction, x0 = vectors[DIRECTION], vectors[X0]
    scalars[STEP] = step
    for i in range(x.shape[0]):
        x[i] = x0[i] + step * direction[i]
    if settings[L1] > 0:
        orthant = vectors[ORTHANT]
        for i in range(int(settings[N_PENALIZED])):
            if x[i] * orthant[i] <= 0:
                x[i] = 0.0


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
