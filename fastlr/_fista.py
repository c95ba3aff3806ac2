"""Accelerated proximal gradient (FISTA), compiled, driven from Python by reverse communication.

The problem is ``F(x) = f(x) + l1 ||x[:n_penalized]||_1`` with ``f`` smooth
and convex: the penalized logistic loss, whose L2 part is in ``f``, and whose
intercepts (the last entries of ``x``) are not penalized. As in
:mod:`fastlr._lbfgs`, :func:`start` and :func:`advance` are compiled and do
everything between two evaluations of the objective; Python evaluates ``F``
and the gradient of ``f`` (one fused pass over the data) and hands them over.

The method is Beck and Teboulle's FISTA with backtracking, with a step that
may grow again, and with O'Donoghue and Candes's adaptive restart:

- a trial ``x+ = prox(y - s grad f(y))`` (soft-thresholding of the penalized
  entries by ``s l1``) is accepted when the quadratic model with curvature
  ``1 / s`` bounds ``f`` at ``x+``. The test is on the values,
  ``f(x+) <= f(y) + g(y).d + ||d||^2 / (2 s)`` with ``d = x+ - y``, or on
  the gradients, ``(g(x+) - g(y)).d <= ||d||^2 / (2 s)``: by convexity it
  implies the first, and it keeps its precision near the optimum, where the
  values lose the difference in rounding (no slack for that rounding: it
  lets the step grow past ``2 / L``). At the rounding floor of ``x`` and
  of the gradient both tests can fail for every step: after ``MAX_TRIALS``
  rejections in a row the run ends as ``STALLED``;
- a rejected trial halves the step. An iteration accepted at its first trial
  doubles the step for the next one until the first rejection, then grows
  it by ``GROWTH``: the step follows the local curvature, which near a
  logistic optimum is often far below the global bound ``L`` the run
  starts from (``1 / L``), and each rejection costs a pass;
- the momentum follows Beck and Teboulle's sequence ``t`` whatever the step
  does (Scheinberg, Goldfarb and Bai's correction for a growing step holds
  ``t`` down and makes the runs linear), and restarts (``t = 1``) when it
  points against the step just taken, ``(y - x+).(x+ - x) > 0``, or when the
  objective went up.

The figures behind these choices are in ``docs/design.md``.

Every function here is compiled without reassociation (``exact=True``): the
acceptance and restart tests compare sums, and with reassociation LLVM
orders them differently in a kernel compiled on its own (in the process)
and one inlined for numba's cache, so that a near tie went either way and
the iterates depended on whether the cache was warm.

A momentum step costs two passes (the gradient at the extrapolated point
``y``, then the value at the trial); a step without momentum, one.

The run stops when the largest entry of the proximal gradient mapping
``(x - prox(x - s0 grad f(x))) / s0`` at the accepted iterate is at most
``tol``, at the first step ``s0 = 1 / L`` whatever the step has become: the
mapping shrinks as its step grows, and a step grown tenfold would stop the
run sooner, not nearer the optimum. Without L1 it is the gradient; with L1
it is, entry by entry, the smallest subgradient of ``F`` (OWL-QN's
pseudo-gradient) once the signs have settled, so ``tol`` means the same as
for :mod:`fastlr._lbfgs`.
"""

from dataclasses import dataclass

import numpy as np

from ._drive import EVALUATE, NEW_ITERATE, Layout, drive
from ._jit import kernel

#: Step factor on a rejected trial, and on an iteration accepted at its first
#: trial once the step has been rejected once (before, it doubles).
SHRINK = 0.5
GROWTH = 1.25
#: Trials allowed in one iteration: halving 60 times takes any step below ulps.
MAX_TRIALS = 60

# Statuses of start / advance: ``EVALUATE`` and ``NEW_ITERATE`` (an iterate was
# accepted) ask for the objective at ``x``; the others end the run with ``x`` at
# the last accepted iterate.
CONVERGED, MAX_ITER, STALLED, NOT_FINITE = range(2, 6)
MESSAGES = {
    CONVERGED: "the largest entry of the proximal gradient mapping fell to tol",
    MAX_ITER: "max_iter iterations were run",
    STALLED: "no step passed the sufficient-decrease test (the changes of the objective and "
    "its gradient are lost in rounding, or it is not smooth and convex there)",
    NOT_FINITE: "the objective was not finite at any trial step",
}

# Rows of ``vectors``: the last accepted iterate and its gradient, the
# extrapolated point and its gradient.
X_ITER, G_ITER, Y, G_Y = range(4)
# Slots of the float64 ``scalars``: F at the iterate, f (smooth) at y, the step,
# the momentum parameter, the optimality measure at the iterate.
F_ITER, SMOOTH_Y, STEP, MOMENTUM, OPTIMALITY = range(5)
# Slots of the int64 ``counts``: where the point in x is (y or a trial),
# iterations, evaluations, rejected trials in the current iteration, and
# whether the step still doubles (until the first rejection).
PHASE, N_ITER, N_EVAL, N_TRIALS, DOUBLING = range(5)
AT_Y, AT_TRIAL = 0, 1
# Slots of ``settings`` (MEASURE_STEP: the step of the optimality measure).
TOL, MAX_ITERATIONS, L1, N_PENALIZED, GROW, SHRINK_BY, MEASURE_STEP = range(7)
LAYOUT = Layout(n_iter=N_ITER, objective=F_ITER, optimality=OPTIMALITY, iterate=X_ITER,
                max_iter_status=MAX_ITER)  # fmt: skip


@dataclass
class FistaResult:
    """The last iterate, its objective, the iterations and evaluations run, why it ended."""

    x: np.ndarray
    fun: float
    optimality: float
    n_iter: int
    n_eval: int
    status: int

    @property
    def converged(self):
        return self.status == CONVERGED

    @property
    def message(self):
        return MESSAGES[self.status]


def minimize(
    evaluate, x0, *, step, max_iter, tol, l1=0.0, n_penalized=0, callback=None, saver=None,
    resume=None,
):  # fmt: skip
    """Minimize ``f(x) + l1 ||x[:n_penalized]||_1`` by FISTA with backtracking and restart.

    Parameters
    ----------
    evaluate : callable
        ``evaluate(x, g)`` returns ``F(x)``, the whole objective (L1 term
        included), and writes the gradient of its smooth part ``f`` into ``g``
        (float64, of ``x``'s shape).
    x0 : ndarray of shape (n_params,)
        Starting point (not modified).
    step : float
        First step, ``1 / L`` for an estimate ``L`` of the gradient's
        Lipschitz constant; backtracking corrects it either way. The
        proximal gradient mapping is measured at this step throughout.
    max_iter : int
        Iterations allowed (0: return ``x0``).
    tol : float
        Stop once the largest entry of the proximal gradient mapping (at the
        step ``step``) is at most ``tol``.
    l1 : float, default=0.0
        L1 strength on the first ``n_penalized`` entries.
    n_penalized : int, default=0
    callback : callable, optional
        ``callback(F, optimality)`` after each iteration, at the accepted iterate.
    saver, resume : optional
        Checkpoints: see :func:`fastlr._drive.drive`.

    Returns
    -------
    result : FistaResult
    """
    x = np.array(x0, dtype=np.float64)
    g = np.zeros_like(x)
    state = {
        "vectors": np.zeros((4, x.shape[0])),
        "scalars": np.zeros(5),
        "counts": np.zeros(5, np.int64),
    }
    # max_iter is the driver's; the compiled code only tests max_iter=0 at the start.
    settings = np.array([tol, max_iter, l1, n_penalized, GROWTH, SHRINK, step], dtype=np.float64)
    arrays = (*state.values(), settings)
    run = drive(
        evaluate, x, g, state,
        begin=lambda f: start(x, f, g, step, *arrays),
        advance=lambda f: advance(x, f, g, *arrays),
        layout=LAYOUT, max_iter=max_iter, callback=callback, saver=saver, resume=resume,
    )  # fmt: skip
    evaluations = int(state["counts"][N_EVAL]) + 1
    return FistaResult(run.x, run.objective, run.optimality, run.n_iter, evaluations, run.status)


@kernel(exact=True)
def start(x, f, g, step, vectors, scalars, counts, settings):
    """Take the start ``x`` (objective ``f``, smooth gradient ``g``) and set the first trial.

    Returns ``EVALUATE`` with the trial in ``x``, or ``CONVERGED``, ``MAX_ITER``
    or ``NOT_FINITE`` (at the start) with ``x`` unchanged.
    """
    for i in range(counts.shape[0]):
        counts[i] = 0
    counts[DOUBLING] = 1
    scalars[STEP] = step
    scalars[MOMENTUM] = 1.0
    scalars[F_ITER] = f
    _copy(x, vectors[X_ITER])
    _copy(g, vectors[G_ITER])
    scalars[OPTIMALITY] = proximal_step(
        x, g, settings[MEASURE_STEP], settings[L1], int(settings[N_PENALIZED]), vectors[Y]
    )
    if not np.isfinite(f):
        return NOT_FINITE
    if scalars[OPTIMALITY] <= settings[TOL]:
        return CONVERGED
    if settings[MAX_ITERATIONS] <= 0:
        return MAX_ITER
    _restart_from_iterate(x, f, vectors, scalars, counts, settings)
    return EVALUATE


@kernel(exact=True)
def advance(x, f, g, vectors, scalars, counts, settings):
    """Take ``F`` and the smooth gradient at the point ``x`` that was asked for; move on.

    Returns ``EVALUATE`` with the next point to evaluate in ``x``,
    ``NEW_ITERATE`` when an iterate was accepted (``scalars[F_ITER]``,
    ``scalars[OPTIMALITY]``) and ``x`` holds the next point, or a status that
    ends the run with ``x`` at the last accepted iterate.
    """
    counts[N_EVAL] += 1
    if counts[PHASE] == AT_Y:
        if np.isfinite(f):
            _copy(g, vectors[G_Y])
            scalars[SMOOTH_Y] = f - _l1_term(x, settings)
            _set_trial(x, vectors, scalars, counts, settings)
        else:  # extrapolated too far: drop the momentum
            _restart_from_iterate(x, scalars[F_ITER], vectors, scalars, counts, settings)
        return EVALUATE
    if not _sufficient_decrease(x, f, g, vectors, scalars, settings):
        counts[N_TRIALS] += 1
        if counts[N_TRIALS] >= MAX_TRIALS:
            _copy(vectors[X_ITER], x)
            return STALLED if np.isfinite(f) else NOT_FINITE
        scalars[STEP] *= settings[SHRINK_BY]
        _set_trial(x, vectors, scalars, counts, settings)
        return EVALUATE
    return _accept(x, f, g, vectors, scalars, counts, settings)


@kernel(exact=True)
def _sufficient_decrease(x, f, g, vectors, scalars, settings):
    """Whether the quadratic model of curvature ``1 / step`` bounds ``f`` at the trial ``x``."""
    if not np.isfinite(f):
        return False
    y, g_y = vectors[Y], vectors[G_Y]
    linear = curvature = squares = 0.0
    for i in range(x.shape[0]):
        d = x[i] - y[i]
        linear += g_y[i] * d
        curvature += (g[i] - g_y[i]) * d
        squares += d * d
    bound = squares / (2.0 * scalars[STEP])
    smooth = f - _l1_term(x, settings)
    return smooth <= scalars[SMOOTH_Y] + linear + bound or curvature <= bound


@kernel(exact=True)
def _accept(x, f, g, vectors, scalars, counts, settings):
    """The trial ``x`` is the new iterate: measure it, test stopping, set the next point."""
    counts[N_ITER] += 1
    x_prev, y = vectors[X_ITER], vectors[Y]
    step = scalars[STEP]
    # O'Donoghue and Candes's tests: the momentum points against the step just
    # taken, or the objective went up.
    against = 0.0
    for i in range(x.shape[0]):
        against += (y[i] - x[i]) * (x[i] - x_prev[i])
    restart = against > 0.0 or f > scalars[F_ITER]
    scalars[F_ITER] = f
    scalars[OPTIMALITY] = proximal_step(
        x, g, settings[MEASURE_STEP], settings[L1], int(settings[N_PENALIZED]), vectors[G_Y]
    )
    if scalars[OPTIMALITY] <= settings[TOL]:
        _copy(x, x_prev)
        return CONVERGED
    if counts[N_TRIALS] > 0:
        counts[DOUBLING] = 0
        next_step = step
    else:
        next_step = step * (2.0 if counts[DOUBLING] else settings[GROW])
    counts[N_TRIALS] = 0
    scalars[STEP] = next_step
    if restart:
        _copy(x, x_prev)
        _copy(g, vectors[G_ITER])
        _restart_from_iterate(x, f, vectors, scalars, counts, settings)
        return NEW_ITERATE
    t = scalars[MOMENTUM]
    t_next = 0.5 * (1.0 + np.sqrt(1.0 + 4.0 * t * t))
    beta = (t - 1.0) / t_next
    scalars[MOMENTUM] = t_next
    for i in range(x.shape[0]):
        previous = x_prev[i]
        x_prev[i] = x[i]
        y[i] = x[i] + beta * (x[i] - previous)
    _copy(g, vectors[G_ITER])
    _copy(y, x)
    counts[PHASE] = AT_Y
    return NEW_ITERATE


@kernel(exact=True)
def _restart_from_iterate(x, f, vectors, scalars, counts, settings):
    """No momentum: ``y`` is the iterate, whose gradient is known; set the trial from it."""
    _copy(vectors[X_ITER], vectors[Y])
    _copy(vectors[G_ITER], vectors[G_Y])
    scalars[SMOOTH_Y] = f - _l1_term(vectors[X_ITER], settings)
    scalars[MOMENTUM] = 1.0
    _set_trial(x, vectors, scalars, counts, settings)


@kernel(exact=True)
def _set_trial(x, vectors, scalars, counts, settings):
    """``x = prox(y - step g(y))``, to be evaluated next."""
    proximal_step(
        vectors[Y], vectors[G_Y], scalars[STEP], settings[L1], int(settings[N_PENALIZED]), x
    )
    counts[PHASE] = AT_TRIAL


@kernel(exact=True)
def proximal_step(x, g, step, l1, n_penalized, out):
    """``out = prox(x - step g)``; return the largest entry of the proximal gradient mapping.

    The prox soft-thresholds the first ``n_penalized`` entries by ``step l1``
    and leaves the others (the intercepts). The mapping ``(x - out) / step``
    is formed entry by entry without the subtraction, which would lose it
    once ``step g`` falls below the rounding of ``x``: ``g_i + l1`` or
    ``g_i - l1`` where the entry stays on the positive or negative side,
    ``x_i / step`` where it is thresholded to 0, ``g_i`` unpenalized. As the
    step shrinks it tends to OWL-QN's pseudo-gradient.
    """
    threshold = step * l1
    largest = 0.0
    for i in range(x.shape[0]):
        z = x[i] - step * g[i]
        mapping = g[i]
        if i < n_penalized:
            if z > threshold:
                z -= threshold
                mapping += l1
            elif z < -threshold:
                z += threshold
                mapping -= l1
            else:
                z = 0.0
                mapping = x[i] / step
        out[i] = z
        largest = max(largest, abs(mapping))
    return largest


@kernel(exact=True)
def _l1_term(x, settings):
    """``l1 ||x[:n_penalized]||_1``."""
    total = 0.0
    for i in range(int(settings[N_PENALIZED])):
        total += abs(x[i])
    return settings[L1] * total


@kernel(exact=True)
def _copy(source, target):
    """``target[:] = source``, as a loop (see :func:`fastlr._lbfgs._copy`)."""
    for i in range(source.shape[0]):
        target[i] = source[i]
