"""The four training loops: gd, sgd, minibatch and lbfgs.

Each driver takes an :class:`~fastlr._datafits.Objective` (a datafit and the
penalty) and a :class:`SolverOptions`. Python runs once per epoch (or per
L-BFGS iteration); every pass over the samples is compiled.
"""

import time
import warnings
from dataclasses import dataclass, field

import numpy as np
import scipy.optimize
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state

from . import _kernels

SOLVERS = ("lbfgs", "gd", "sgd", "minibatch")
SCHEDULES = {
    "constant": _kernels.CONSTANT,
    "invscaling": _kernels.INVSCALING,
    "optimal": _kernels.OPTIMAL,
}


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
    shuffle: bool = True
    random_state: object = None
    verbose: int = 0


@dataclass
class SolverResult:
    """Trained parameters, the epochs run and the per-epoch history."""

    coef: np.ndarray
    intercept: np.ndarray
    n_iter: int
    loss: list = field(default_factory=list)
    elapsed: list = field(default_factory=list)


class _History:
    """Per-epoch objective and wall time, the stopping rule and verbose output."""

    def __init__(self, solver, options, n_samples):
        self.solver = solver
        self.options = options
        self.n_samples = n_samples
        self.loss, self.elapsed = [], []
        self.best = np.inf
        self.no_improvement = 0
        self.start = time.perf_counter()

    def record(self, loss):
        """Record one epoch; return True when the stopping rule is met.

        As scikit-learn's SGD: stop after ``n_iter_no_change`` consecutive epochs
        whose loss is not below the best loss minus ``tol``.
        """
        now = time.perf_counter() - self.start
        self.loss.append(float(loss))
        self.elapsed.append(now)
        if self.options.verbose:
            rate = self.n_samples * len(self.loss) / max(now, 1e-12)
            print(
                f"[{self.solver}] epoch {len(self.loss)}: loss {loss:.6g}, "
                f"{rate:,.0f} samples/s, {now:.3f} s"
            )
        tol = self.options.tol
        if tol is None:
            return False
        if loss > self.best - tol:
            self.no_improvement += 1
        else:
            self.no_improvement = 0
        self.best = min(self.best, loss)
        return self.no_improvement >= self.options.n_iter_no_change

    def result(self, coef, intercept, n_iter):
        return SolverResult(coef, intercept, n_iter, self.loss, self.elapsed)


def _warn_max_iter(solver, options, advice):
    if options.tol is None:
        return  # running max_iter epochs was asked for
    warnings.warn(
        f"The {solver} solver stopped at max_iter={options.max_iter} before its loss "
        f"changed by less than tol={options.tol} for {options.n_iter_no_change} epochs. "
        f"Increase max_iter, or raise tol; {advice}",
        ConvergenceWarning,
        stacklevel=4,
    )


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


def solve(objective, solver, options, coef0=None, intercept0=None):
    """Minimize ``objective`` with ``solver``, starting from ``coef0``/``intercept0``.

    Returns
    -------
    result : SolverResult
    """
    coef, intercept = _initial(objective, coef0, intercept0)
    drivers = {"lbfgs": _lbfgs, "gd": _gd, "sgd": _stochastic, "minibatch": _stochastic}
    return drivers[solver](objective, solver, options, coef, intercept)


def _gd(objective, solver, options, coef, intercept):
    """Full-batch gradient descent on the fused parallel gradient."""
    dtype = objective.datafit.dtype
    schedule, eta0 = _schedule(options, objective, solver)
    t0 = _optimal_t0(objective.strength)
    history = _History(solver, options, objective.datafit.n_samples)
    for epoch in range(1, options.max_iter + 1):
        value, grad, grad_b = objective(coef, intercept)
        eta = _kernels.learning_rate(
            schedule, float(epoch), eta0, options.power_t, objective.strength, t0
        )
        coef -= dtype.type(eta) * grad
        objective.prox(coef, eta)
        intercept -= dtype.type(eta) * grad_b.astype(dtype)
        if history.record(value):
            return history.result(coef, intercept, epoch)
    _warn_max_iter(solver, options, "or set a larger constant eta0 if the loss still falls.")
    return history.result(coef, intercept, options.max_iter)


def _schedule(options, objective, solver):
    """Schedule code and eta0 of ``solver`` for ``options.learning_rate``.

    "auto" is the constant ``1 / L`` step for gd and minibatch (the batch-gradient
    step that cannot diverge; minibatch halves it on a plateau), and sgd's
    per-sample "optimal" schedule (or "invscaling" without a penalty) for sgd.
    """
    name = options.learning_rate
    alpha = objective.strength
    if name == "auto" and solver in ("gd", "minibatch"):
        return _kernels.CONSTANT, 1.0 / objective.lipschitz_constant()
    if name == "auto":
        name = "optimal" if alpha > 0 else "invscaling"
    if name == "optimal" and alpha <= 0:
        raise ValueError(
            "learning_rate='optimal' needs an L2 penalty (its step is 1 / (alpha t)); "
            "with penalty=None use learning_rate='invscaling' or 'constant'."
        )
    return SCHEDULES[name], float(options.eta0)


def _optimal_t0(alpha):
    """Offset of the 'optimal' schedule, from Bottou's heuristic as in scikit-learn."""
    if alpha <= 0:
        return 1.0
    typical_w = np.sqrt(1.0 / np.sqrt(alpha))
    return 1.0 / (typical_w * alpha)


def _stochastic(objective, solver, options, coef, intercept):
    """Per-example SGD or mini-batch SGD, one compiled call per epoch."""
    datafit = objective.datafit
    schedule, eta0 = _schedule(options, objective, solver)
    rate = np.array([eta0, options.power_t, _optimal_t0(objective.strength)])
    rng = check_random_state(options.random_state)
    t = 1.0
    history = _History(solver, options, datafit.n_samples)
    order = np.arange(datafit.n_samples, dtype=np.int64)
    # "auto" mini-batch steps start at 1/L and halve after n_iter_no_change
    # epochs whose loss is not below the best so far (scikit-learn's
    # "adaptive" rule): small batches' noise stalls a constant step above the
    # optimum, while a still-falling loss keeps the step.
    halve_on_plateau = options.learning_rate == "auto" and solver == "minibatch"
    best_loss, stalled = np.inf, 0
    l1_state = np.zeros(coef.size + 1)
    common = (
        coef, intercept, objective.fit_intercept, objective.alpha, objective.l1, l1_state,
        schedule, rate,
    )  # fmt: skip
    for epoch in range(1, options.max_iter + 1):
        if options.shuffle:
            rng.shuffle(order)
        if solver == "sgd":
            sum_loss, t = datafit.sgd_epoch(order, *common, t)
        else:
            sum_loss, t = datafit.minibatch_epoch(order, options.batch_size, *common, t)
        if not np.all(np.isfinite(coef)):
            raise FloatingPointError(
                f"The {solver} solver diverged at epoch {epoch} (non-finite coefficients). "
                f"Use a smaller eta0, learning_rate='optimal' with a penalty, or scale X."
            )
        penalty = 0.5 * objective.alpha * float(np.vdot(coef, coef))
        penalty += objective.l1 * float(np.abs(coef).sum())
        loss = sum_loss / objective.total_weight + penalty
        stalled = stalled + 1 if loss >= best_loss else 0
        best_loss = min(best_loss, loss)
        if halve_on_plateau and stalled >= options.n_iter_no_change:
            rate[0] *= 0.5
            stalled = 0
        if history.record(loss):
            return history.result(coef, intercept, epoch)
    _warn_max_iter(solver, options, "or change eta0 and learning_rate.")
    return history.result(coef, intercept, options.max_iter)


def _lbfgs(objective, solver, options, coef, intercept):
    """scipy's L-BFGS-B, loss and gradient from one fused pass per evaluation."""
    datafit = objective.datafit
    if objective.l1 > 0:
        raise ValueError(
            "The lbfgs solver needs a smooth objective and cannot use an L1 penalty; "
            "use solver='gd', 'minibatch' or 'sgd' with penalty='l1' or 'elasticnet'."
        )
    n_coef = coef.size
    history = _History(solver, options, datafit.n_samples)

    def value_and_grad(params):
        coef_now = params[:n_coef].astype(datafit.dtype).reshape(datafit.coef_shape)
        value, grad, grad_b = objective(coef_now, params[n_coef:])
        return value, np.concatenate([grad.ravel(), grad_b]).astype(np.float64)

    def callback(intermediate_result):
        history.record(intermediate_result.fun)

    x0 = np.concatenate([coef.ravel(), intercept]).astype(np.float64)
    result = scipy.optimize.minimize(
        value_and_grad,
        x0,
        jac=True,
        method="L-BFGS-B",
        callback=callback,
        options={
            "maxiter": options.max_iter,
            "maxls": 50,
            "gtol": options.tol if options.tol is not None else 0.0,
            "ftol": 64 * np.finfo(float).eps,
        },
    )
    if result.status == 1:
        if options.tol is not None:
            _warn_lbfgs_max_iter(options)
    elif result.status != 0:
        warnings.warn(
            f"The lbfgs solver stopped early: {result.message}. Scale X (e.g. with "
            f"sklearn.preprocessing.StandardScaler) or decrease C (stronger regularization).",
            ConvergenceWarning,
            stacklevel=3,
        )
    coef = result.x[:n_coef].astype(datafit.dtype).reshape(datafit.coef_shape)
    intercept = result.x[n_coef:].astype(datafit.dtype)
    return history.result(coef, intercept, int(result.nit))


def _warn_lbfgs_max_iter(options):
    warnings.warn(
        f"The lbfgs solver stopped at max_iter={options.max_iter} before the gradient "
        f"fell below tol={options.tol}. Increase max_iter, or scale X (e.g. with "
        f"sklearn.preprocessing.StandardScaler).",
        ConvergenceWarning,
        stacklevel=5,
    )
