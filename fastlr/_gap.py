"""How far a point's objective is above the optimum's: the stochastic solvers' final check.

:func:`distance_to_optimum` answers whether a result is within a share
(1%) of the optimum's objective, as cheaply as it can: first the duality gap
(:func:`duality_gap`, two passes, a certified upper bound), and when that
bound is too loose to tell (it grows as ``1 / alpha``, so a weak penalty on
many rows makes it useless, and with L2 alone one pass at the point tells
it will not certify), L-BFGS (OWL-QN with L1) run from the point: the
decrease it achieves is a certified lower bound on the distance, and the
distance itself once it converges. It stops as soon as the decrease
passes the threshold.

The duality gap
---------------

The objective (:class:`fastlr._datafits.Objective`) is
``f(W, b) = sum_i s_i loss_i(z_i) / S + h(W)`` with scores ``z_i = W x_i + b``,
weights ``s_i`` of sum ``S`` and ``h(W) = alpha / 2 ||W||^2 + l1 ||W||_1``.
Fenchel duality gives a lower bound on its optimum for every ``u`` (one
residual vector per sample) whose weighted sum is zero, ``sum_i s_i u_i = 0``
(the condition the unpenalized intercept puts on the dual):

    f* >= D(u) = -sum_i s_i loss*(u_i) / S - h*(-X^T (s u) / S),

with ``loss*(u) = sum_k p_k log p_k`` for the probabilities ``p = y + u``
(``y`` one-hot; binary: ``p log p + (1 - p) log(1 - p)``) and ``h*`` the
penalty's conjugate: ``h*(v) = ||soft(v, l1)||^2 / (2 alpha)`` with an L2
part (``soft`` the soft-threshold), and 0 for pure L1 when
``||v||_inf <= l1``. So ``f(W, b) - D(u) >= f(W, b) - f*``.

:func:`duality_gap` takes ``u`` from the point itself: its predicted
probabilities minus the targets, at the intercept that is optimal for ``W``
(Newton's method on the scores, so that the weighted residuals sum to zero),
scaled into ``||X^T (s u) / S||_inf <= l1`` for pure L1. At the optimum the
gap is 0. It costs two passes over X (the scores, then ``X^T (s u)``) and
needs the data in memory. Without a penalty there is no such bound (the
dual is feasible only at the optimum, which may lie at infinity).
"""

from dataclasses import dataclass

import numpy as np
import scipy.sparse
from scipy.special import expit, log_softmax, softmax, xlogy

from . import _lbfgs

#: The stochastic solvers' final check warns when the duality gap of their
#: result exceeds this share of its objective.
RELATIVE_GAP_WARNING = 0.01
#: Newton's method on the intercept stops when its gradient is this small
#: (the residuals' weighted mean, against a loss of order one).
INTERCEPT_TOL = 1e-12
ACCEPTED_INTERCEPT_TOL = 1e-9
MAX_NEWTON = 50
#: L-BFGS from the point: the gradient at which it has converged (far below
#: any gap of 1%), and the iterations it may take.
REFINE_GTOL = 1e-8
REFINE_MAX_ITER = 100


@dataclass(frozen=True)
class Distance:
    """What :func:`distance_to_optimum` found out about ``value - optimum``.

    Attributes
    ----------
    value : float
        The objective at the point.
    gap : float
        The duality gap (an upper bound) with ``measure`` "duality gap", the
        decrease L-BFGS achieved from the point (a lower bound) with
        "lbfgs".
    measure : {"duality gap", "lbfgs"}
    settled : bool
        Whether ``gap`` tells if the distance exceeds the threshold: a gap
        below it, a decrease above it, or L-BFGS converged.
    n_iter : int
        L-BFGS iterations run (0 with the duality gap).
    """

    value: float
    gap: float
    measure: str
    settled: bool
    n_iter: int = 0

    @property
    def relative(self):
        """``gap`` as a share of the objective."""
        return self.gap / self.value if self.value > 0 else np.inf

    def exceeds(self, threshold):
        """Whether the point may be more than ``threshold`` (relative) above the optimum."""
        return not self.settled or self.relative > threshold


def _may_certify(objective, coef_gradient, value, threshold):
    """Whether the duality gap may be below ``threshold`` (relative): worth its passes.

    With L2 alone the gap is ``||grad_W f||^2 / (2 alpha)`` at the intercept
    that is optimal for ``W``: ten times the threshold at the point's own
    intercept says it will not certify, and L-BFGS decides alone (a weak
    penalty on many rows: the bound then runs to hundreds of percent).
    """
    if not (objective.alpha > 0 or objective.l1 > 0):
        return False
    if objective.l1 > 0:
        return True
    bound = float(coef_gradient @ coef_gradient) / (2.0 * objective.alpha)
    return bound <= 10.0 * threshold * value


class _Decided(Exception):
    """Raised from the L-BFGS callback once its decrease exceeds the threshold."""


def distance_to_optimum(objective, coef, intercept, threshold):
    """How far ``(coef, intercept)`` is above the optimum of ``objective``, up to ``threshold``.

    Parameters
    ----------
    objective : fastlr._datafits.Objective
    coef : ndarray of shape datafit.coef_shape
    intercept : ndarray of shape (n_outputs,)
    threshold : float
        The relative distance the caller cares about (the check stops as
        soon as it can tell the distance is above or below it).

    Returns
    -------
    distance : Distance
    """
    x0 = np.concatenate([np.ravel(coef), np.ravel(intercept)]).astype(np.float64)
    gradient = np.empty_like(x0)
    value = objective.value_and_grad_into(x0, gradient)
    if _may_certify(objective, gradient[: np.size(coef)], value, threshold):
        dual = duality_gap(objective, coef, intercept)
        if dual is not None and dual.relative <= threshold:
            return Distance(dual.value, dual.gap, "duality gap", True)
    lowest, n_iter = [value], [0]

    def callback(f, optimality):
        lowest[0], n_iter[0] = min(lowest[0], f), n_iter[0] + 1
        if value - lowest[0] > threshold * value:
            raise _Decided

    try:
        result = _lbfgs.minimize(
            objective.value_and_grad_into, x0, max_iter=REFINE_MAX_ITER, gtol=REFINE_GTOL,
            ftol=64 * np.finfo(float).eps, callback=callback, l1=objective.l1,
            n_penalized=np.size(coef),
        )  # fmt: skip
    except _Decided:
        return Distance(value, value - lowest[0], "lbfgs", True, n_iter[0])
    settled = result.status != _lbfgs.MAX_ITER  # converged, or stalled at rounding
    return Distance(value, max(value - result.fun, 0.0), "lbfgs", settled, result.n_iter)


@dataclass(frozen=True)
class Gap:
    """The duality gap at a point: ``value - dual >= value - optimum``."""

    gap: float
    value: float

    @property
    def relative(self):
        """The gap as a share of the point's objective."""
        return self.gap / self.value if self.value > 0 else np.inf


def duality_gap(objective, coef, intercept):
    """The duality gap of ``objective`` at ``(coef, intercept)``, or None where none exists.

    Parameters
    ----------
    objective : fastlr._datafits.Objective
        Over an in-memory datafit (None for any other: the bound would read a
        streamed dataset twice more).
    coef : ndarray of shape datafit.coef_shape (or coef_ 2-D shape)
    intercept : ndarray of shape (n_outputs,)

    Returns
    -------
    gap : Gap or None
        None without a penalty, for data not in memory, or when the
        intercept's optimum for ``coef`` is not found (a class of weight 0).
    """
    datafit = objective.datafit
    storage = getattr(datafit, "storage", None)
    if storage is None or not (objective.alpha > 0 or objective.l1 > 0):
        return None
    X = storage.matrix if scipy.sparse.issparse(getattr(storage, "matrix", None)) else None
    X = storage.kernel_x if X is None else X
    n_outputs = datafit.n_outputs
    W = np.asarray(coef, dtype=np.float64).reshape(n_outputs, datafit.n_features)
    b = np.asarray(intercept, dtype=np.float64).reshape(n_outputs)
    scores = _scores(X, W)
    loss = _BinaryDual(datafit.y) if n_outputs == 1 else _MultinomialDual(datafit.y, n_outputs)
    sw = datafit.sw.astype(np.float64) if datafit.sw.shape[0] else np.ones(datafit.n_samples)
    total = float(datafit.total_weight)
    value = loss.mean_loss(scores + b, sw, total) + _penalty(W, objective.alpha, objective.l1)
    if objective.fit_intercept:
        b = _optimal_intercept(loss, scores, b, sw, total)
        if b is None:
            return None
    residuals = loss.residuals(scores + b)
    weighted = residuals * sw[:, None]
    data_gradient = _transposed_product(X, weighted).T / total  # shape of W
    dual = _dual_value(loss, residuals, sw, total, data_gradient, objective.alpha, objective.l1)
    return Gap(max(value - dual, 0.0), value)


def _scores(X, W):
    """``X W^T`` as float64 of shape (n_samples, n_outputs), X not converted."""
    product = X @ W.T.astype(X.dtype)
    return np.asarray(product, dtype=np.float64)


def _transposed_product(X, weighted):
    """``X^T weighted`` as float64 of shape (n_features, n_outputs)."""
    product = X.T @ weighted.astype(X.dtype)
    return np.asarray(product, dtype=np.float64)


def _penalty(W, alpha, l1):
    return 0.5 * alpha * float(np.vdot(W, W)) + l1 * float(np.abs(W).sum())


def _dual_value(loss, residuals, sw, total, data_gradient, alpha, l1):
    """``D(c u)``, ``c`` the largest scale in (0, 1] that keeps pure L1's dual feasible."""
    v = -data_gradient
    scale = 1.0
    if alpha <= 0:
        largest = float(np.abs(v).max(initial=0.0))
        scale = min(1.0, l1 / largest) if largest > 0 else 1.0
        conjugate = 0.0
    else:
        shrunk = np.maximum(np.abs(v) - l1, 0.0)
        conjugate = float(np.vdot(shrunk, shrunk)) / (2.0 * alpha)
    return -loss.mean_conjugate(scale * residuals, sw, total) - conjugate


def _optimal_intercept(loss, scores, b, sw, total):
    """The intercept that minimizes the mean loss for fixed scores: damped Newton.

    A step is accepted when it decreases the mean loss (Armijo), up to the
    rounding of its value near the minimum. Returns None when the gradient
    does not fall to ``INTERCEPT_TOL`` (``ACCEPTED_INTERCEPT_TOL`` after
    ``MAX_NEWTON`` steps).
    """
    value = loss.mean_loss(scores + b, sw, total)
    gradient, hessian = loss.intercept_derivatives(scores + b, sw, total)
    for _ in range(MAX_NEWTON):
        if np.abs(gradient).max() <= INTERCEPT_TOL:
            return b
        direction = -np.linalg.lstsq(hessian, gradient, rcond=None)[0]
        slope = float(gradient @ direction)
        rounding = 8 * np.finfo(float).eps * abs(value)
        step = 1.0
        while True:
            trial = b + step * direction
            trial_value = loss.mean_loss(scores + trial, sw, total)
            if trial_value <= value + 1e-4 * step * slope + rounding:
                break
            step *= 0.5
            if step < 1e-10:
                return _accepted(b, gradient)
        b, value = trial, trial_value
        gradient, hessian = loss.intercept_derivatives(scores + b, sw, total)
    return _accepted(b, gradient)


def _accepted(b, gradient):
    return b if np.abs(gradient).max() <= ACCEPTED_INTERCEPT_TOL else None


class _BinaryDual:
    """The binary loss ``log(1 + e^z) - y z`` and its conjugate; one output column."""

    def __init__(self, y):
        self.y = np.asarray(y, dtype=np.float64)[:, None]

    def mean_loss(self, z, sw, total):
        losses = np.logaddexp(0.0, z) - self.y * z
        return float(sw @ losses[:, 0]) / total

    def residuals(self, z):
        return expit(z) - self.y

    def intercept_derivatives(self, z, sw, total):
        p = expit(z[:, 0])
        gradient = np.array([float(sw @ (p - self.y[:, 0])) / total])
        hessian = np.array([[float(sw @ (p * (1.0 - p))) / total]])
        return gradient, hessian

    def mean_conjugate(self, u, sw, total):
        p = np.clip(self.y[:, 0] + u[:, 0], 0.0, 1.0)
        return float(sw @ (xlogy(p, p) + xlogy(1.0 - p, 1.0 - p))) / total


class _MultinomialDual:
    """The softmax loss ``logsumexp(z) - z_y`` and its conjugate."""

    def __init__(self, y, n_classes):
        self.y = np.asarray(y, dtype=np.int64)
        self.rows = np.arange(self.y.shape[0])
        self.n_classes = n_classes

    def mean_loss(self, z, sw, total):
        return float(sw @ -log_softmax(z, axis=1)[self.rows, self.y]) / total

    def residuals(self, z):
        p = softmax(z, axis=1)
        p[self.rows, self.y] -= 1.0
        return p

    def intercept_derivatives(self, z, sw, total):
        p = softmax(z, axis=1)
        weighted = p * sw[:, None]
        gradient = weighted.sum(axis=0)
        np.subtract.at(gradient, self.y, sw)
        hessian = np.diag(weighted.sum(axis=0)) - weighted.T @ p
        return gradient / total, hessian / total

    def mean_conjugate(self, u, sw, total):
        p = u.copy()
        p[self.rows, self.y] += 1.0
        np.clip(p, 0.0, 1.0, out=p)
        return float(sw @ xlogy(p, p).sum(axis=1)) / total
