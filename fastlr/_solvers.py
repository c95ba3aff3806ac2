"""The four training loops: gd, sgd, minibatch and lbfgs.

Each driver takes an :class:`~fastlr._datafits.Objective` (a datafit and the
penalty) and a :class:`SolverOptions`. Python runs once per epoch (or per
L-BFGS iteration); every pass over the samples is compiled.
"""

import contextlib
import math
import time
from dataclasses import dataclass, field

import numba
import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state

from . import _drive, _fista, _gap
from . import _lbfgs as _lbfgs_core
from ._threads import one_blas_thread
from ._warnings import warn
from .kernels import steps

SOLVERS = ("lbfgs", "gd", "sgd", "minibatch")
STOCHASTIC = ("sgd", "minibatch")
# A per-example epoch runs on one core, and the kernels release the GIL: from
# this many rows on, when numba may use two threads or more, the next epoch's
# order is shuffled on a second thread meanwhile (docs/design.md).
BACKGROUND_SHUFFLE_ROWS = 1 << 16
SCHEDULES = {
    "constant": steps.CONSTANT,
    "invscaling": steps.INVSCALING,
    "optimal": steps.OPTIMAL,
}
#: The "auto" schedule of sgd and minibatch halves its first step after at most
#: this many samples, whatever the penalty (measured in benchmarks.test_bench_stochastic).
AUTO_HALVING_SAMPLES = 30_000


@dataclass
class SolverOptions:
    """Settings shared by the solvers (see ``LogisticRegression`` for each)."""

    max_iter: int = 100
    tol: float | None = 1e-4
    n_iter_no_change: int = 5
    learning_rate: str = "auto"
    eta0: float = 0.01
    power_t: float = 0.5
    batch_size: int = 256
    #: True (rows shuffled each epoch), False or "blocks".
    shuffle: bool | str = True
    random_state: object = None
    verbose: int = 0
    #: Averaged SGD (sgd only): average the iterates from update ``average``
    #: on (1: all of them); 0: no averaging.
    average: int = 0
    #: ``score(coef, intercept)`` on held-out data; when given, the stopping
    #: rule watches it (higher is better) instead of the training loss.
    validation_score: object = None
    #: Where verbose lines go: a :class:`fastlr._progress.Progress` (stderr,
    #: above its bars), or None for standard output.
    progress: object = None
    #: A :class:`fastlr._checkpoint.CheckpointSession` the solver hands its
    #: state to after each epoch (iteration), or None.
    checkpoint: object = None
    #: ``(iteration, fields, arrays)`` of a checkpoint to continue from, or None.
    resume: object = None


@dataclass
class StochasticState:
    """What sgd and minibatch carry from one call to the next (``partial_fit``).

    ``t`` counts updates (plus one), ``l1_state`` holds the cumulative L1
    penalty (per weight, then the total), ``eta0`` and ``t0`` the first step
    of the "auto" schedule and the updates after which it halves (None until
    they are set; minibatch halves ``eta0`` again on a plateau), and ``rng``
    the shuffling generator. With averaged SGD, ``avg_coef``/``avg_intercept``
    hold the running mean of the iterates and ``coef``/``intercept`` the
    plain iterate that training continues from.
    """

    t: float = 1.0
    l1_state: np.ndarray | None = None
    eta0: float | None = None
    rng: object = None
    avg_coef: np.ndarray | None = None
    avg_intercept: np.ndarray | None = None
    coef: np.ndarray | None = None
    intercept: np.ndarray | None = None
    t0: float | None = None


@dataclass
class SolverResult:
    """Trained parameters, the epochs run and the per-epoch history."""

    coef: np.ndarray
    intercept: np.ndarray
    n_iter: int
    loss: list = field(default_factory=list)
    elapsed: list = field(default_factory=list)
    score: list = field(default_factory=list)
    state: StochasticState | None = None
    #: gd and lbfgs: the optimality measure that ``tol`` bounds, per iteration.
    optimality: list = field(default_factory=list)


class _History:
    """Per-epoch objective and wall time, the stopping rule and verbose output."""

    def __init__(self, solver, options, n_samples):
        self.solver = solver
        self.options = options
        self.n_samples = n_samples
        self.loss, self.elapsed, self.score = [], [], []
        self.best = np.inf
        self.no_improvement = 0
        self.start = time.perf_counter()

    def record(self, loss, coef=None, intercept=None):
        """Record one epoch; return True when the stopping rule is met.

        As scikit-learn's SGD: stop after ``n_iter_no_change`` consecutive epochs
        whose loss is not below the best loss minus ``tol``; with a validation
        score (early stopping), whose score is not above the best plus ``tol``.
        """
        now = time.perf_counter() - self.start
        self.loss.append(float(loss))
        self.elapsed.append(now)
        watched = loss
        score_text = ""
        if self.options.validation_score is not None and coef is not None:
            score = float(self.options.validation_score(coef, intercept))
            self.score.append(score)
            watched = -score
            score_text = f", validation score {score:.6g}"
        if self.options.verbose:
            rate = self.n_samples * len(self.loss) / max(now, 1e-12)
            line = (
                f"[{self.solver}] epoch {len(self.loss)}: loss {loss:.6g}{score_text}, "
                f"{rate:,.0f} samples/s, {now:.3f} s"
            )
            progress = self.options.progress
            progress.line(line) if progress is not None else print(line, flush=True)
        tol = self.options.tol
        if tol is None:
            return False
        if watched > self.best - tol:
            self.no_improvement += 1
        else:
            self.no_improvement = 0
        self.best = min(self.best, watched)
        return self.no_improvement >= self.options.n_iter_no_change

    def result(self, coef, intercept, n_iter, state=None):
        return SolverResult(coef, intercept, n_iter, self.loss, self.elapsed, self.score, state)

    def snapshot(self):
        """The history as checkpoint ``(fields, arrays)``."""
        fields = {"best": float(self.best), "no_improvement": self.no_improvement}
        arrays = {
            "history.loss": np.asarray(self.loss, dtype=np.float64),
            "history.time": np.asarray(self.elapsed, dtype=np.float64),
            "history.score": np.asarray(self.score, dtype=np.float64),
        }
        return fields, arrays

    def restore(self, fields, arrays):
        """Continue the history of a checkpoint; its clock resumes where it stopped."""
        self.loss = arrays["history.loss"].tolist()
        self.elapsed = arrays["history.time"].tolist()
        self.score = arrays["history.score"].tolist()
        self.best, self.no_improvement = fields["best"], fields["no_improvement"]
        self.start = time.perf_counter() - (self.elapsed[-1] if self.elapsed else 0.0)


def _initial(objective, coef0, intercept0):
    """Starting point: zeros, or copies of ``coef0``/``intercept0`` in the data's dtype."""
    datafit = objective.datafit
    coef = np.zeros(datafit.coef_shape, datafit.dtype)
    intercept = np.zeros(datafit.n_outputs, datafit.dtype)
    if coef0 is not None:
        coef[...] = np.reshape(coef0, datafit.coef_shape)
    if intercept0 is not None and objective.fit_intercept:
        intercept[...] = intercept0
    return coef, intercept


def solve(objective, solver, options, coef0=None, intercept0=None, state=None):
    """Minimize ``objective`` with ``solver``, starting from ``coef0``/``intercept0``.

    ``state`` (sgd and minibatch only) continues a previous call's schedule,
    L1 penalty and shuffling; it is updated in place and returned in the result.

    Returns
    -------
    result : SolverResult
    """
    coef, intercept = _initial(objective, coef0, intercept0)
    if options.max_iter == 0:
        return _starting_point(solver, options, coef, intercept, state)
    if solver in STOCHASTIC:
        return _stochastic(objective, solver, options, coef, intercept, state)
    drivers = {"lbfgs": _lbfgs, "gd": _gd}
    return drivers[solver](objective, solver, options, coef, intercept)


def _starting_point(solver, options, coef, intercept, state):
    """``max_iter=0``: the starting point, untrained, as scikit-learn returns it.

    No pass over the data is made. As scikit-learn's lbfgs, a
    ConvergenceWarning says so unless ``tol`` is None. sgd and minibatch
    return a fresh (or the given) state, which ``partial_fit`` continues.
    """
    if options.tol is not None:
        warn(
            f"{solver} failed to converge after 0 iterations: max_iter=0 returns the starting "
            f"point (zeros, or the previous solution with warm_start=True) untrained. Set "
            f"max_iter to 1 or more to train.",
            ConvergenceWarning,
        )
    if solver in STOCHASTIC:
        state = StochasticState() if state is None else state
        state.coef, state.intercept = coef, intercept
        return SolverResult(coef, intercept, 0, state=state)
    return SolverResult(coef, intercept, 0)


def _gd(objective, solver, options, coef, intercept):
    """Full-batch proximal gradient: accelerated with backtracking, or on a fixed schedule.

    ``learning_rate="auto"`` (and ``"optimal"``, a per-example schedule that
    a full batch has no use for) runs FISTA (:mod:`fastlr._fista`) from the
    step ``1 / L``; ``"constant"`` and ``"invscaling"`` take plain proximal
    gradient steps of ``eta0`` and ``eta0 / t ** power_t``. Both stop when the
    largest entry of the proximal gradient mapping is at most ``tol``.
    """
    x0 = np.concatenate([coef.ravel(), intercept]).astype(np.float64)
    iterations = _Iterations(solver, options)
    with one_blas_thread():
        if options.learning_rate in ("constant", "invscaling"):
            run = _scheduled_gd(objective, x0, coef.size, options, iterations)
        else:
            run = _accelerated_gd(objective, x0, coef.size, options, iterations)
    x, n_iter, status, optimality = run
    diverged = status == _fista.MAX_ITER and _warn_gd_rose(options, iterations.loss)
    if options.tol is not None and status == _fista.STALLED:
        _warn_gd_stalled(options, n_iter, optimality)
    elif options.tol is not None and status == _fista.MAX_ITER and not diverged:
        _warn_gd_max_iter(options, optimality)
    coef, intercept = objective.unpack(x)
    return iterations.result(coef, intercept, n_iter)


def _accelerated_gd(objective, x0, n_penalized, options, iterations):
    """FISTA from the step ``1 / L``.

    Returns ``(x, n_iter, status, optimality)``: a :mod:`fastlr._fista` status,
    and the measure at ``x``.
    """
    if options.resume is not None:  # the saved step: no passes to estimate it again
        step = float(options.resume[2]["step"][0])
    else:
        step = _auto_step(objective, objective.lipschitz_constant(), "gd")
    result = _fista.minimize(
        objective.value_and_grad_into,
        x0,
        step=step,
        max_iter=options.max_iter,
        tol=options.tol if options.tol is not None else 0.0,
        l1=objective.l1,
        n_penalized=n_penalized,
        callback=iterations.record,
        **iterations.checkpoint_hooks(step=np.array([step])),
    )
    if result.status == _fista.NOT_FINITE:
        raise FloatingPointError(
            f"The gd solver stopped: {result.message}. Check X for extreme values, "
            f"or scale it (e.g. with sklearn.preprocessing.StandardScaler)."
        )
    return result.x, result.n_iter, result.status, result.optimality


def _scheduled_gd(objective, x0, n_penalized, options, iterations):
    """Proximal gradient steps of ``learning_rate`` "constant" or "invscaling".

    Each iteration evaluates the current point (its objective and measure go
    to ``iterations``) and steps from it; the run stops at a point whose
    measure is at most ``tol``, which is returned without stepping. The L1
    term covers the first ``n_penalized`` parameters (the coefficients).

    Returns
    -------
    x, n_iter, status, optimality
        ``status`` is ``_fista.CONVERGED`` or ``_fista.MAX_ITER``; the measure
        is the last one computed (at the point the last step started from).
    """
    x, g, stepped = x0.copy(), np.empty_like(x0), np.empty_like(x0)
    tol = options.tol if options.tol is not None else 0.0
    optimality = np.nan
    first, hooks = 1, iterations.checkpoint_hooks()
    if hooks["resume"] is not None:
        saved, status = hooks["resume"]
        x[...] = saved["x"]
        first = len(iterations.loss) + 1
        if status == _fista.CONVERGED:
            return x, first - 1, status, iterations.optimality[-1]
    for iteration in range(first, options.max_iter + 1):
        value = objective.value_and_grad_into(x, g)
        step = options.eta0
        if options.learning_rate == "invscaling":
            step = options.eta0 / iteration**options.power_t
        optimality = _fista.proximal_step(x, g, step, objective.l1, n_penalized, stepped)
        if not (np.isfinite(value) and np.isfinite(optimality)):
            raise FloatingPointError(
                f"The gd solver diverged at iteration {iteration} (non-finite objective). "
                f"Use a smaller eta0, or learning_rate='auto' (a step that cannot diverge)."
            )
        iterations.record(value, optimality)
        if optimality <= tol:
            if hooks["saver"] is not None:
                hooks["saver"](iteration, {"x": x}, _fista.CONVERGED)
            return x, iteration, _fista.CONVERGED, optimality
        x, stepped = stepped, x
        if hooks["saver"] is not None:
            hooks["saver"](iteration, {"x": x}, _fista.NEW_ITERATE)
    return x, options.max_iter, _fista.MAX_ITER, optimality


def _warn_gd_max_iter(options, optimality):
    hint = (
        "or set learning_rate='auto' (accelerated, with a step that adapts)"
        if options.learning_rate in ("constant", "invscaling")
        else "or use solver='lbfgs', which needs fewer passes over the data"
    )
    warn(
        f"gd failed to converge after {options.max_iter} iterations "
        f"(max_iter={options.max_iter}): the largest entry of its proximal gradient mapping, "
        f"{optimality:.3g}, is above tol={options.tol}. Increase max_iter, raise tol, scale X "
        f"(e.g. with sklearn.preprocessing.StandardScaler), {hint}.",
        ConvergenceWarning,
    )


def _warn_gd_rose(options, objectives):
    """Warn, and return True, when a scheduled gd run ended above its start.

    A proximal gradient step no longer than ``2 / L`` never raises the
    objective; one that ended higher than it started took steps too large.
    """
    if options.learning_rate not in ("constant", "invscaling") or not objectives:
        return False
    first, last = objectives[0], objectives[-1]
    if not last > first:
        return False
    warn(
        f"The gd solver diverged: its objective rose from {first:.6g} to {last:.6g} in "
        f"{len(objectives)} iterations, its steps too large for X's scale. Use a smaller "
        f"eta0, or learning_rate='auto' (a step that adapts).",
        ConvergenceWarning,
    )
    return True


def _warn_gd_stalled(options, n_iter, optimality):
    warn(
        f"gd failed to converge after {n_iter} iterations: "
        f"{_fista.MESSAGES[_fista.STALLED]}, with the largest entry of its proximal gradient "
        f"mapping, {optimality:.3g}, above tol={options.tol}. Raise tol, or fit float64 X "
        f"for more precision.",
        ConvergenceWarning,
    )


class _Iterations:
    """Per-iteration objective, optimality measure and wall time of gd and lbfgs."""

    def __init__(self, solver, options):
        self.solver = solver
        self.options = options
        self.verbose = options.verbose
        self.progress = options.progress
        self.loss, self.optimality, self.elapsed = [], [], []
        self.start = time.perf_counter()

    def record(self, value, optimality):
        """Record one iteration: the objective and the measure ``tol`` bounds."""
        now = time.perf_counter() - self.start
        self.loss.append(float(value))
        self.optimality.append(float(optimality))
        self.elapsed.append(now)
        if self.verbose:
            line = (
                f"[{self.solver}] iteration {len(self.loss)}: objective {value:.10g}, "
                f"optimality {optimality:.3g}, {now:.3f} s"
            )
            self.progress.line(line) if self.progress is not None else print(line, flush=True)

    def result(self, coef, intercept, n_iter):
        return SolverResult(
            coef, intercept, n_iter, self.loss, self.elapsed, optimality=self.optimality
        )

    def checkpoint_hooks(self, **constants):
        """``saver`` and ``resume`` of :func:`fastlr._drive.drive` for the fit's checkpoint.

        ``saver`` hands the solver's arrays, the status and this history to
        ``options.checkpoint``; ``resume`` is the saved ``(arrays, status)``
        of ``options.resume``, whose history continues here. ``constants``
        (arrays) are saved with every checkpoint.
        """
        session, resume = self.options.checkpoint, None
        if self.options.resume is not None:
            _, fields, arrays = self.options.resume
            self.loss = arrays["history.loss"].tolist()
            self.optimality = arrays["history.optimality"].tolist()
            self.elapsed = arrays["history.time"].tolist()
            self.start = time.perf_counter() - (self.elapsed[-1] if self.elapsed else 0.0)
            resume = (arrays, fields["status"])
        if session is None:
            return {"saver": None, "resume": resume}

        def saver(n_iter, arrays, status):
            history = {
                "history.loss": np.asarray(self.loss, dtype=np.float64),
                "history.optimality": np.asarray(self.optimality, dtype=np.float64),
                "history.time": np.asarray(self.elapsed, dtype=np.float64),
            }
            finished = status not in (_drive.EVALUATE, _drive.NEW_ITERATE)
            session.step(
                n_iter, {"status": int(status)}, {**arrays, **history, **constants},
                finished=finished,
                last=n_iter >= self.options.max_iter,
            )  # fmt: skip

        return {"saver": saver, "resume": resume}


def _schedule(options, objective, solver, state):
    """Schedule code and ``rate`` (eta0, power_t, t0) of sgd or minibatch.

    Sets ``state.eta0`` (and, for "auto", ``state.t0``). An "auto" state that
    has them already (``partial_fit`` continuing, a resumed checkpoint) keeps
    them: the data is not read again. The other schedules are scikit-learn's
    SGD ones, with its ``eta0``, ``power_t`` and "optimal" offset.
    """
    name = options.learning_rate
    if name == "auto":
        if state.eta0 is None or state.t0 is None:
            state.eta0, state.t0 = _auto_rate(objective, solver, options.batch_size)
        return steps.HARMONIC, np.array([state.eta0, options.power_t, state.t0])
    if name == "optimal" and objective.strength <= 0:
        raise ValueError(
            "learning_rate='optimal' needs an L2 penalty (its step is 1 / (alpha t)); "
            "without one (C=np.inf) use learning_rate='auto', 'invscaling' or 'constant'."
        )
    state.eta0 = float(options.eta0)
    return SCHEDULES[name], np.array([state.eta0, options.power_t, _optimal_t0(objective.strength)])


def _auto_rate(objective, solver, batch_size):
    """``(eta0, t0)`` of the "auto" schedule ``eta0 / (1 + (t - 1) / t0)``.

    The first step is bounded by the data's smoothness, so that it cannot
    explode whatever ``C`` and ``n`` are: ``1 / L(B)`` for minibatch (the
    expected smoothness of the mini-batch gradient,
    :meth:`~fastlr._datafits.Objective.minibatch_lipschitz_constant`) and
    ``1 / L1`` for sgd, with ``L1`` the mean over the samples of their own
    gradient's Lipschitz constant, ``curvature s_i (||x_i||^2 + 1) + alpha``
    (the mean rather than the largest: one long row would otherwise hold
    every step down).

    The step then decays as ``1 / (alpha t)`` (``t0 = L / alpha``),
    scikit-learn's "optimal" decay, for the L2 strength ``alpha`` (the
    objective's strong convexity; an L1 term has none). It halves sooner
    where the gradients' noise calls for it: with ``alpha = 1 / (C n)`` tiny
    on many rows, the decay would otherwise wait millions of updates at the
    first step, where the noise holds the loss far above the optimum. sgd
    halves after ``AUTO_HALVING_SAMPLES`` updates at the latest; minibatch
    after the batches that leave its step as much stationary noise as sgd's
    after as many samples, ``AUTO_HALVING_SAMPLES (L(B) / L1) (n - 1) /
    (n - B)`` (the variance of the mean of ``B`` of ``n`` rows is
    ``(n - B) / (B (n - 1))`` a row's): with few batches an epoch the step
    barely decays, and full batches (``B >= n_samples``, no noise) keep
    ``1 / L(B)``.
    """
    datafit = objective.datafit
    n = datafit.n_samples
    batch = 1 if solver == "sgd" else min(batch_size, n)
    per_sample = objective.mean_sample_lipschitz_constant()
    smoothness = per_sample if solver == "sgd" else objective.minibatch_lipschitz_constant(batch)
    eta0 = _auto_step(objective, smoothness, solver, batch)
    if batch >= n or not (smoothness > 0 and per_sample > 0):  # no noise, or no gradient
        return eta0, np.inf
    t0 = AUTO_HALVING_SAMPLES * (smoothness / per_sample) * (n - 1) / (n - batch)
    if objective.alpha > 0:
        t0 = min(t0, smoothness / objective.alpha)
    return eta0, t0


def _auto_step(objective, lipschitz, solver, batch_size=None):
    """The "auto" step ``1 / L`` of ``solver``; 1 when ``L`` is 0.

    ``L = 0`` means a constant smooth part (every weighted row of X zero, no
    intercept, no L2 term): its gradient is 0 and any step is stable, so the
    solver returns its start (with an L1 term, the prox moves it to 0).

    gd takes its steps in float64; a mini-batch epoch takes ``step / W`` in
    the data's dtype, ``W`` the batch's weight (``batch_size`` for unit
    weights; sgd's batch is one row). A step those cannot carry (0, or beyond the largest float)
    raises a ValueError that names X's scale, or the penalty's strength when
    that alone makes ``L`` too large.
    """
    if lipschitz == 0.0:
        return 1.0
    step = 1.0 / lipschitz
    dtype = np.dtype(np.float64)
    carried = [step]
    if batch_size is not None:
        datafit = objective.datafit
        dtype = datafit.dtype
        batch = min(batch_size, datafit.n_samples)
        carried.append(step / (batch * objective.total_weight / datafit.n_samples))
    info = np.finfo(dtype)
    if all(float(info.tiny) <= value <= float(info.max) for value in carried):
        return step
    raise ValueError(_step_error(objective, lipschitz, solver, dtype, step > 1.0))


def _step_error(objective, lipschitz, solver, dtype, too_small):
    """The message of a step that ``dtype`` cannot carry (see :func:`_auto_step`)."""
    where = f"for solver={solver!r} with learning_rate='auto' in {dtype.name}"
    value = f"{lipschitz:.3g}" if math.isfinite(lipschitz) else "beyond the float64 range"
    if too_small:
        return (
            f"X's features are too small in magnitude {where}: the gradient's Lipschitz "
            f"constant L, {value}, makes the step 1/L larger than {dtype.name} can hold. Scale X "
            f"(e.g. with sklearn.preprocessing.StandardScaler), or add an intercept or a penalty."
        )
    if objective.alpha * np.finfo(dtype).tiny >= 1.0:
        return (
            f"The L2 penalty strength alpha = 1 / (C * sum of sample weights) = "
            f"{objective.alpha:.3g} is too large {where}: the step 1/L it allows is smaller "
            f"than {dtype.name} can hold. Increase C."
        )
    return (
        f"X's features are too large in magnitude {where}: the gradient's Lipschitz constant "
        f"L, {value}, makes the step 1/L smaller than {dtype.name} can hold. Scale X (e.g. with "
        f"sklearn.preprocessing.StandardScaler)."
    )


def _optimal_t0(alpha):
    """Offset of the 'optimal' schedule, from Bottou's heuristic as in scikit-learn."""
    if alpha <= 0:
        return 1.0
    typical_w = np.sqrt(1.0 / np.sqrt(alpha))
    return 1.0 / (typical_w * alpha)


def _stochastic(objective, solver, options, coef, intercept, state=None):
    """Per-example SGD or mini-batch SGD, one compiled call per epoch."""
    datafit = objective.datafit
    state = StochasticState() if state is None else state
    if state.l1_state is None:
        state.l1_state = np.zeros(coef.size + 1)
    if state.rng is None:
        state.rng = _private_random_state(options.random_state)
    history = _History(solver, options, datafit.n_samples)
    ahead = (
        solver == "sgd"
        and options.max_iter > 1  # partial_fit's single epoch has no next one
        and datafit.n_samples >= BACKGROUND_SHUFFLE_ROWS
        and numba.get_num_threads() > 1
    )
    orders = datafit.epoch_orders(
        state.rng if options.shuffle else None,
        ahead,
        blocks=isinstance(options.shuffle, str),  # "blocks", the one string accepted
        batch_size=1 if solver == "sgd" else options.batch_size,
    )
    with contextlib.closing(orders):
        return _stochastic_epochs(
            objective, solver, options, coef, intercept, state, history, orders
        )


def _stochastic_epochs(objective, solver, options, coef, intercept, state, history, orders):
    """The epochs of :func:`_stochastic`, each over the next order of ``orders``."""
    datafit = objective.datafit
    if options.resume is not None:  # the checkpoint's step: no need to estimate it again
        state.eta0 = options.resume[1]["eta0"]
        state.t0 = options.resume[1].get("t0")
    schedule, rate = _schedule(options, objective, solver, state)
    # "auto" mini-batch steps also halve when the mean loss of the last
    # 2 n_iter_no_change epochs is no lower than that of the window before:
    # small batches' noise stalls a step above the optimum, while a
    # still-falling trend (however noisy epoch to epoch) keeps it.
    plateau = _Plateau(2 * options.n_iter_no_change)
    halve_on_plateau = options.learning_rate == "auto" and solver == "minibatch"
    average_start, avg_coef, avg_intercept = _averaging(options, solver, state, coef, intercept)
    first = 1
    if options.resume is not None:
        first, finished = _restore_stochastic(options.resume, coef, intercept, state, rate)
        history.restore(*_split_history(options.resume))
        plateau.losses = options.resume[2]["plateau"].tolist()
        if finished:
            return _stochastic_result(history, coef, intercept, first - 1, state, options)
    stopped = None
    for epoch, order in zip(range(first, options.max_iter + 1), orders, strict=False):
        args = steps.EpochArgs(
            coef, intercept, objective.fit_intercept, objective.alpha, objective.l1,
            state.l1_state, schedule, rate, state.t, average_start, avg_coef, avg_intercept,
        )  # fmt: skip
        if solver == "sgd":
            sum_loss, state.t = datafit.sgd_epoch(order, args)
        else:
            sum_loss, state.t = datafit.minibatch_epoch(order, options.batch_size, args)
        if not np.all(np.isfinite(coef)):
            raise FloatingPointError(
                f"The {solver} solver diverged at epoch {epoch} (non-finite coefficients). "
                f"Use a smaller eta0, learning_rate='optimal' with a penalty, or scale X."
            )
        penalty = 0.5 * objective.alpha * float(np.vdot(coef, coef))
        penalty += objective.l1 * float(np.abs(coef).sum())
        loss = sum_loss / objective.total_weight + penalty
        if plateau.reached(loss) and halve_on_plateau:
            rate[0] *= 0.5
        state.eta0 = rate[0]
        stop = history.record(loss, coef, intercept)
        if options.checkpoint is not None:
            fields, arrays = _stochastic_snapshot(coef, intercept, state, history, plateau)
            last = epoch == options.max_iter
            options.checkpoint.step(epoch, fields, arrays, finished=stop, last=last)
        if stop:
            stopped = epoch
            break
    result = _stochastic_result(
        history, coef, intercept, stopped or options.max_iter, state, options
    )
    last = history.loss[-1] if history.loss else 0.0
    diverged = _warn_diverged(solver, options, objective, last)
    if options.tol is not None and not diverged:
        _check_stochastic_result(objective, solver, options, result, stopped)
    return result


def _check_stochastic_result(objective, solver, options, result, stopped):
    """The final check of sgd and minibatch: warn unless the result is near the optimum.

    The stopping rule watches the loss, which can fall slowly far from the
    optimum, and ``max_iter`` may end the run first. The check
    (:func:`fastlr._gap.distance_to_optimum`) bounds how far the result's
    objective is above the optimum's: by its duality gap (two passes), and
    where that bound is too loose to tell, by running L-BFGS from the result
    (until it converges or has shown the distance to exceed the threshold).
    A ConvergenceWarning names the measure when the run reached ``max_iter``
    (as scikit-learn's SGD warns) or when the result may be more than
    ``_gap.RELATIVE_GAP_WARNING`` (1%) above the optimum. Skipped with early
    stopping (which stops before the training optimum by design) and for a
    streamed Dataset (the check would read the files again).
    """
    distance = None
    if options.validation_score is None and hasattr(objective.datafit, "storage"):
        with one_blas_thread():
            distance = _gap.distance_to_optimum(
                objective, result.coef, result.intercept, _gap.RELATIVE_GAP_WARNING
            )
    advice = (
        "Increase max_iter, or use solver='lbfgs' (or 'gd'), which stops at the optimum"
        if solver == "sgd"
        else "Increase max_iter, use a smaller batch_size (more steps per epoch), or use "
        "solver='lbfgs' (or 'gd'), which stops at the optimum"
    )
    threshold = _gap.RELATIVE_GAP_WARNING
    if stopped is None:
        where = "" if distance is None else f"; {_describe_distance(distance)}"
        message = (
            f"{solver} failed to converge after {options.max_iter} epochs "
            f"(max_iter={options.max_iter}) before its loss changed by less than "
            f"tol={options.tol} for {options.n_iter_no_change} epochs{where}. {advice}; or "
            f"raise tol."
        )
    elif distance is not None and distance.exceeds(threshold):
        message = (
            f"{solver} failed to converge: its loss changed by less than tol={options.tol} "
            f"for {options.n_iter_no_change} epochs (epoch {stopped}), but "
            f"{_describe_distance(distance)} (fastlr warns above {threshold:.0%}). {advice}; "
            f"or lower tol or raise n_iter_no_change to train longer."
        )
    else:
        return
    warn(message, ConvergenceWarning)


def _describe_distance(distance):
    """How far the result is from the optimum, and by which measure, for a warning."""
    share = f"{distance.relative:.2%}"
    if distance.measure == "duality gap":
        return f"its objective is within {share} of the optimum's (its duality gap bounds it)"
    if distance.settled and distance.relative > _gap.RELATIVE_GAP_WARNING:
        return (
            f"its objective is at least {share} above the optimum's (L-BFGS run from the "
            f"result lowers it by that much in {distance.n_iter} iterations)"
        )
    if distance.settled:
        return (
            f"its objective is {share} above the optimum's (L-BFGS run from the result "
            f"converged there in {distance.n_iter} iterations)"
        )
    return (
        f"its objective may be far above the optimum's: L-BFGS run from the result lowered "
        f"it by {share} in {distance.n_iter} iterations without converging"
    )


def _warn_diverged(solver, options, objective, loss):
    """Warn, and return True, when the last epoch's objective is over twice the zero model's.

    The model with all weights 0 has the objective ``log(n_classes)`` (``log 2``
    for two classes): an epoch whose loss is twice that predicts worse than a
    coin, and what trained it were steps too large for X's scale. A fit whose
    weights did not overflow but came out so is not silent.
    """
    n_classes = max(2, objective.datafit.n_outputs)
    zero = math.log(n_classes)
    if not loss > 2.0 * zero:
        return False
    advice = (
        "use a smaller eta0, or learning_rate='auto'"
        if options.learning_rate in ("constant", "invscaling")
        else "scale X (e.g. with sklearn.preprocessing.StandardScaler)"
    )
    warn(
        f"The {solver} solver diverged: the loss of its last epoch, {loss:.3g}, is more than "
        f"twice that of the model with all weights 0 ({zero:.3g}); its steps are too large "
        f"for X's scale. To fix it, {advice}.",
        ConvergenceWarning,
    )
    return True


def _stochastic_snapshot(coef, intercept, state, history, plateau):
    """The checkpoint ``(fields, arrays)`` of a stochastic fit after an epoch."""
    name, key, pos, has_gauss, cached = state.rng.get_state(legacy=True)
    fields, arrays = history.snapshot()
    fields.update(
        t=state.t, eta0=state.eta0, t0=state.t0, rng=[name, int(pos), int(has_gauss), float(cached)]
    )
    arrays.update(
        coef=coef, intercept=intercept, l1_state=state.l1_state, rng_key=key,
        plateau=np.asarray(plateau.losses, dtype=np.float64),
    )  # fmt: skip
    if state.avg_coef is not None:
        arrays.update(avg_coef=state.avg_coef, avg_intercept=state.avg_intercept)
    return fields, arrays


def _restore_stochastic(resume, coef, intercept, state, rate):
    """Put a checkpoint's state back; return the epoch to run next and whether it had finished."""
    epoch, fields, arrays = resume
    coef[...] = arrays["coef"]
    intercept[...] = arrays["intercept"]
    state.l1_state[...] = arrays["l1_state"]
    if state.avg_coef is not None:
        state.avg_coef[...] = arrays["avg_coef"]
        state.avg_intercept[...] = arrays["avg_intercept"]
    state.t, state.eta0 = fields["t"], fields["eta0"]
    rate[0] = state.eta0
    name, pos, has_gauss, cached = fields["rng"]
    state.rng.set_state((name, arrays["rng_key"], pos, has_gauss, cached))
    return epoch + 1, fields.get("finished", False)


def _split_history(resume):
    _, fields, arrays = resume
    return fields, arrays


def _private_random_state(random_state):
    """``check_random_state(random_state)``, except that None gives a private generator.

    As scikit-learn's SGD does, None seeds a new generator from numpy's global
    one instead of drawing from it all along: :func:`fastlr._orders.row_orders` may undo a
    shuffle made ahead, which on the global generator would also rewind what
    other threads drew from it meanwhile.
    """
    rng = check_random_state(random_state)
    if random_state is None:
        return np.random.RandomState(rng.randint(np.iinfo(np.int32).max))
    return rng


def _averaging(options, solver, state, coef, intercept):
    """The epochs' ``(average_start, avg_coef, avg_intercept)`` arguments.

    Off (start 0, empty arrays of the right dtype and rank) unless sgd averages;
    the averages start at zero and live in ``state`` across ``partial_fit`` calls.
    """
    if solver != "sgd" or not options.average:
        return 0.0, np.empty((0,) * coef.ndim, coef.dtype), np.empty(0, coef.dtype)
    if state.avg_coef is None:
        state.avg_coef = np.zeros_like(coef)
        state.avg_intercept = np.zeros_like(intercept)
    return float(options.average), state.avg_coef, state.avg_intercept


def _stochastic_result(history, coef, intercept, n_iter, state, options):
    """The result: the averaged weights once averaging has started, else the iterate.

    As scikit-learn's SGD: the average is used when at least one update
    (``t - 1`` so far) has reached ``average``.
    """
    state.coef, state.intercept = coef, intercept
    if options.average and state.avg_coef is not None and state.t - 1.0 >= options.average:
        return history.result(state.avg_coef.copy(), state.avg_intercept.copy(), n_iter, state)
    return history.result(coef, intercept, n_iter, state)


class _Plateau:
    """Detects a flat loss trend: two consecutive windows of ``width`` epochs
    whose mean does not fall. After a detection it waits for two new windows."""

    def __init__(self, width):
        self.width = width
        self.losses = []

    def reached(self, loss):
        self.losses.append(loss)
        if len(self.losses) < 2 * self.width:
            return False
        older = np.mean(self.losses[: self.width])
        recent = np.mean(self.losses[self.width :])
        self.losses.pop(0)
        if recent < older:
            return False
        self.losses.clear()
        return True


def _lbfgs(objective, solver, options, coef, intercept):
    """L-BFGS (:mod:`fastlr._lbfgs`), loss and gradient from one fused pass per evaluation.

    With an L1 term (``l1_ratio`` above 0) the compiled solver
    runs as OWL-QN on the coefficients; the intercepts stay unpenalized.
    """
    iterations = _Iterations(solver, options)
    x0 = np.concatenate([coef.ravel(), intercept]).astype(np.float64)
    # No BLAS call of the solver may leave OpenBLAS threads spinning on the
    # cores the parallel gradient needs (2x slower evaluations on 2 cores).
    with one_blas_thread():
        result = _minimize(
            objective.value_and_grad_into, x0, iterations.record, options, objective.l1, coef.size,
            **iterations.checkpoint_hooks(),
        )  # fmt: skip
    if result.status == _lbfgs_core.MAX_ITER:
        if options.tol is not None:
            optimality = iterations.optimality[-1] if iterations.optimality else np.nan
            _warn_lbfgs_max_iter(options, optimality, objective.l1 > 0)
    elif result.status == _lbfgs_core.SEARCH_FAILED:
        warn(
            f"lbfgs failed to converge after {result.n_iter} iterations: {result.message}. "
            f"Scale X (e.g. with sklearn.preprocessing.StandardScaler) or decrease C "
            f"(stronger regularization).",
            ConvergenceWarning,
        )
    coef, intercept = objective.unpack(result.x)
    return iterations.result(coef, intercept, result.n_iter)


def _minimize(evaluate, x0, callback, options, l1=0.0, n_penalized=0, saver=None, resume=None):
    """L-BFGS (OWL-QN with ``l1 > 0``) with fastlr's stopping settings.

    They are scikit-learn's for its lbfgs solver: ``tol`` bounds the largest
    (pseudo-)gradient entry.
    """
    return _lbfgs_core.minimize(
        evaluate,
        x0,
        max_iter=options.max_iter,
        gtol=options.tol if options.tol is not None else 0.0,
        ftol=64 * np.finfo(float).eps,
        callback=callback,
        l1=l1,
        n_penalized=n_penalized,
        saver=saver,
        resume=resume,
    )


def _warn_lbfgs_max_iter(options, optimality, orthant_wise=False):
    measure = "pseudo-gradient entry" if orthant_wise else "gradient entry"
    warn(
        f"lbfgs failed to converge after {options.max_iter} iterations "
        f"(max_iter={options.max_iter}): the largest {measure}, {optimality:.3g}, is above "
        f"tol={options.tol}. Increase max_iter, or scale X (e.g. with "
        f"sklearn.preprocessing.StandardScaler).",
        ConvergenceWarning,
    )
