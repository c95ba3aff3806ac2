"""The final check of sgd and minibatch: the duality gap, and L-BFGS from the point.

References: the optima of ``penalized_problems`` (scikit-learn's lbfgs for L2,
saga for L1 and the elastic net, at ``tol=1e-10``; weighted, some weights 0),
the objective of :func:`penalized_problems.objective`, and the closed form of
the gap with an L2 part: at the intercept that is optimal for ``W`` (found
here by scipy), ``D = f`` minus the gap
``h(W) + W.q + ||soft(-q, l1)||^2 / (2 alpha)``, ``q`` the loss gradient in
``W``; with L2 alone, ``||grad_W f||^2 / (2 alpha)``.
"""

import types

import numpy as np
import pytest
import scipy.optimize
import scipy.sparse
from penalized_problems import (
    L1_RATIO,
    as_format,
    objective,
    problem,
    sklearn_optimum,
    smooth_gradient,
)

import fastlr
from fastlr import _gap

PENALTIES = ["l2", "elasticnet", "l1"]


def make_objective(X, y, sw, C, l1_ratio, dtype=np.float64):
    """fastlr's objective on the problem (weights and labels as the estimator encodes them)."""
    model = fastlr.LogisticRegression(C=C, l1_ratio=l1_ratio)
    classes, y_idx = np.unique(y, return_inverse=True)
    X = X.astype(dtype)
    return model._objective(X, y_idx, sw.astype(dtype), len(classes)), classes


def perturbed(coef, intercept, scale, seed=0):
    """The optimum moved by a relative ``scale`` of noise, and its intercept shifted."""
    rng = np.random.default_rng(seed)
    spread = np.abs(coef).max()
    return coef + scale * spread * rng.standard_normal(coef.shape), intercept + 3 * scale


def as_datafit_shape(objective_, coef):
    return np.ascontiguousarray(coef.reshape(objective_.datafit.coef_shape))


def best_intercept(coef, intercept, X, y, C, ratio, sw):
    """The intercept minimizing the objective for fixed ``coef`` (scipy, to 1e-12)."""

    def value(b):
        return objective(coef, b, X, y, C, ratio, sw)

    def gradient(b):
        return smooth_gradient(coef, b, X, y, C, ratio, sw)[1]

    found = scipy.optimize.minimize(
        value, intercept, jac=gradient, method="BFGS", options={"gtol": 1e-13}
    )
    return found.x


@pytest.mark.parametrize("fmt", ["dense", "csr"])
@pytest.mark.parametrize("name", ["breast_cancer", "wine"])
@pytest.mark.parametrize("penalty", PENALTIES)
def test_duality_gap_bounds_the_distance_and_vanishes_at_the_optimum(name, penalty, fmt):
    X, y, sw, C = problem(name)
    ratio = L1_RATIO[penalty]
    ref_coef, ref_intercept, best = sklearn_optimum(name, penalty)
    objective_, _ = make_objective(as_format(X, fmt), y, sw, C, ratio)
    for scale in (0.3, 0.03, 0.003):
        coef, intercept = perturbed(ref_coef, ref_intercept, scale)
        gap = _gap.duality_gap(objective_, as_datafit_shape(objective_, coef), intercept)
        value = objective(coef, intercept, X, y, C, ratio, sw)
        assert gap.value == pytest.approx(value, rel=1e-12)
        # An upper bound on the distance to the optimum (best is within 1e-12 of it).
        assert gap.gap >= (value - best) - 1e-12 * best
    at_optimum = _gap.duality_gap(objective_, as_datafit_shape(objective_, ref_coef), ref_intercept)
    assert at_optimum.relative <= 1e-7


@pytest.mark.parametrize("name", ["breast_cancer", "wine"])
@pytest.mark.parametrize("penalty", ["l2", "elasticnet"])
def test_duality_gap_has_the_closed_form_of_an_l2_part(name, penalty):
    X, y, sw, C = problem(name)
    ratio = L1_RATIO[penalty]
    ref_coef, ref_intercept, _ = sklearn_optimum(name, penalty)
    coef, intercept = perturbed(ref_coef, ref_intercept, 0.05, seed=1)
    objective_, _ = make_objective(X, y, sw, C, ratio)
    gap = _gap.duality_gap(objective_, as_datafit_shape(objective_, coef), intercept)
    b = best_intercept(coef, intercept, X, y, C, ratio, sw)
    alpha = (1 - ratio) / (C * sw.sum())
    l1 = ratio / (C * sw.sum())
    grad_coef, _ = smooth_gradient(coef, b, X, y, C, ratio, sw)
    loss_gradient = grad_coef - alpha * coef
    shrunk = np.maximum(np.abs(loss_gradient) - l1, 0.0)
    at_best = (
        0.5 * alpha * np.sum(coef**2) + l1 * np.abs(coef).sum()
        + np.sum(coef * loss_gradient) + np.sum(shrunk**2) / (2 * alpha)
    )  # fmt: skip
    intercept_part = objective(coef, intercept, X, y, C, ratio, sw) - objective(
        coef, b, X, y, C, ratio, sw
    )
    assert gap.gap == pytest.approx(intercept_part + at_best, rel=1e-7)
    if penalty == "l2":
        assert at_best == pytest.approx(np.sum(grad_coef**2) / (2 * alpha), rel=1e-9)


def test_duality_gap_in_float32_matches_float64():
    X, y, sw, C = problem("wine")
    ref_coef, ref_intercept, _ = sklearn_optimum("wine", "l2")
    coef, intercept = perturbed(ref_coef, ref_intercept, 0.05)
    gaps = []
    for dtype in (np.float64, np.float32):
        objective_, _ = make_objective(X, y, sw, C, 0.0, dtype)
        gaps.append(_gap.duality_gap(objective_, as_datafit_shape(objective_, coef), intercept))
    assert gaps[1].gap == pytest.approx(gaps[0].gap, rel=1e-4)


def test_no_duality_gap_without_a_penalty_or_data_in_memory():
    X, y, sw, _ = problem("wine")
    objective_, _ = make_objective(X, y, sw, np.inf, 0.0)
    coef = np.zeros(objective_.datafit.coef_shape)
    assert _gap.duality_gap(objective_, coef, np.zeros(3)) is None
    streamed, _ = make_objective(X, y, sw, 1.0, 0.0)
    streamed.datafit = types.SimpleNamespace(**{
        name: getattr(streamed.datafit, name)
        for name in ("n_outputs", "n_features", "y", "sw", "total_weight", "n_samples")
    })  # fmt: skip
    assert _gap.duality_gap(streamed, coef, np.zeros(3)) is None


@pytest.mark.parametrize("penalty", PENALTIES)
def test_distance_is_the_duality_gap_when_it_is_below_the_threshold(penalty):
    X, y, sw, C = problem("breast_cancer")
    ratio = L1_RATIO[penalty]
    ref_coef, ref_intercept, _ = sklearn_optimum("breast_cancer", penalty)
    coef, intercept = perturbed(ref_coef, ref_intercept, 1e-4)
    objective_, _ = make_objective(X, y, sw, C, ratio)
    coef = as_datafit_shape(objective_, coef)
    distance = _gap.distance_to_optimum(objective_, coef, intercept, threshold=0.01)
    assert distance.measure == "duality gap" and distance.settled
    assert distance.gap == _gap.duality_gap(objective_, coef, intercept).gap
    assert not distance.exceeds(0.01)


@pytest.mark.parametrize("penalty", PENALTIES)
def test_distance_by_lbfgs_is_a_lower_bound_that_decides_the_threshold(penalty):
    """Where the duality gap is too loose to tell: far from the optimum, L-BFGS from
    the point shows more than the threshold and stops; nearer, it converges and
    measures the distance itself."""
    X, y, sw, C = problem("wine")
    ratio = L1_RATIO[penalty]
    ref_coef, ref_intercept, best = sklearn_optimum("wine", penalty)
    objective_, _ = make_objective(X, y, sw, C, ratio)
    for scale in (0.3, 0.02):
        coef, intercept = perturbed(ref_coef, ref_intercept, scale)
        value = objective(coef, intercept, X, y, C, ratio, sw)
        coef = as_datafit_shape(objective_, coef)
        dual = _gap.duality_gap(objective_, coef, intercept)
        far = scale == 0.3
        # Near: between the distance and its bound.
        threshold = 0.01 if far else ((value - best) / value + dual.relative) / 2
        # The cases are what they are meant to be: the bound does not decide, and
        # the distance is above the threshold far away, below it near.
        assert dual.relative > threshold
        assert ((value - best) / value > threshold) == far
        distance = _gap.distance_to_optimum(objective_, coef, intercept, threshold)
        assert distance.measure == "lbfgs" and distance.settled
        assert distance.gap <= (value - best) + 1e-12 * best
        assert distance.exceeds(threshold) == far
        if far:  # stopped once the decrease passed the threshold
            assert threshold * value < distance.gap
        else:  # converged: the distance itself
            assert distance.gap == pytest.approx(value - best, rel=1e-6)


def test_a_duality_gap_that_cannot_certify_is_not_computed(monkeypatch):
    """A weak L2 penalty: the gradient at the point shows the bound far above the
    threshold, and L-BFGS decides alone."""
    X, y, sw, _ = problem("breast_cancer")
    ref_coef, ref_intercept, _ = sklearn_optimum("breast_cancer", "l2")
    objective_, _ = make_objective(X, y, sw, 1e4, 0.0)
    coef, intercept = perturbed(ref_coef, ref_intercept, 0.01)
    coef = as_datafit_shape(objective_, coef)
    assert _gap.duality_gap(objective_, coef, intercept).relative > 10 * 0.01
    calls = []
    monkeypatch.setattr(_gap, "duality_gap", lambda *args: calls.append(args))
    distance = _gap.distance_to_optimum(objective_, coef, intercept, threshold=0.01)
    assert calls == [] and distance.measure == "lbfgs" and distance.settled


def test_distance_without_a_penalty_comes_from_lbfgs():
    X, y, sw, _ = problem("breast_cancer")
    objective_, _ = make_objective(X, y, sw, np.inf, 0.0)
    coef = np.zeros(objective_.datafit.coef_shape)
    distance = _gap.distance_to_optimum(objective_, coef, np.zeros(1), threshold=0.01)
    assert distance.measure == "lbfgs" and distance.exceeds(0.01)
    assert distance.gap > 0.01 * distance.value


def test_distance_is_unsettled_when_lbfgs_runs_out_of_iterations(monkeypatch):
    X, y, sw, C = problem("wine")
    ref_coef, ref_intercept, best = sklearn_optimum("wine", "l2")
    coef, intercept = perturbed(ref_coef, ref_intercept, 0.02)
    value = objective(coef, intercept, X, y, C, 0.0, sw)
    objective_, _ = make_objective(X, y, sw, C, 0.0)
    monkeypatch.setattr(_gap, "REFINE_MAX_ITER", 2)
    coef = as_datafit_shape(objective_, coef)
    threshold = _gap.duality_gap(objective_, coef, intercept).relative / 2
    assert (value - best) / value < threshold
    distance = _gap.distance_to_optimum(objective_, coef, intercept, threshold)
    assert distance.measure == "lbfgs" and not distance.settled and distance.n_iter == 2
    assert distance.relative < threshold and distance.exceeds(threshold)


def test_csr_and_dense_give_the_same_gap():
    X, y, sw, C = problem("breast_cancer")
    ref_coef, ref_intercept, _ = sklearn_optimum("breast_cancer", "elasticnet")
    coef, intercept = perturbed(ref_coef, ref_intercept, 0.05)
    gaps = []
    for matrix in (X, scipy.sparse.csr_matrix(X)):
        objective_, _ = make_objective(matrix, y, sw, C, 0.5)
        gaps.append(_gap.duality_gap(objective_, as_datafit_shape(objective_, coef), intercept))
    assert gaps[1].gap == pytest.approx(gaps[0].gap, rel=1e-10)
