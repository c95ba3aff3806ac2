"""OWL-QN: ``solver="lbfgs"`` with an L1 term (``l1_ratio`` above 0: L1 or the elastic net).

References:

- the pseudo-gradient against its definition (the subgradient of smallest
  magnitude), entry by entry;
- quadratics plus L1 with known minimizers: soft-thresholding for a
  separable one, the optimality conditions for a coupled one. The line
  search compares values of ``F``, so the run ends (``ftol=0``: once a step
  decreases ``F`` by nothing) where decreases fall below its rounding,
  ``eps F``: an entry of curvature ``a`` is then off by up to
  ``sqrt(2 eps F / a)``, and the pseudo-gradient is up to
  ``sqrt(2 eps F a_max)``;
- scikit-learn's saga at ``tol=1e-10`` (see ``penalized_problems``) on
  weighted breast cancer (binary) and wine (multinomial), dense and CSR:
  lbfgs runs to ``tol=1e-10`` on the largest pseudo-gradient entry, and the
  objectives agree within 1e-8 relative (measured: below 1e-12), with the
  same zero weights.
"""

import itertools
import warnings

import numpy as np
import pytest
from penalized_problems import (
    L1_RATIO,
    as_format,
    largest_minimal_subgradient,
    objective,
    problem,
    sklearn_optimum,
)
from sklearn.exceptions import ConvergenceWarning

import fastlr
from fastlr import _lbfgs


def soft_threshold(z, threshold):
    return np.sign(z) * np.maximum(np.abs(z) - threshold, 0.0)


def l1_quadratic(A, center, l1, n_penalized):
    """``evaluate(x, g)``: ``0.5 (x - c)' A (x - c) + l1 ||x[:n_penalized]||_1`` and the
    smooth part's gradient, as :func:`fastlr._lbfgs.minimize` takes them."""

    def evaluate(x, g):
        g[:] = A @ (x - center)
        return 0.5 * float((x - center) @ g) + l1 * float(np.abs(x[:n_penalized]).sum())

    return evaluate


def test_pseudo_gradient_is_the_smallest_subgradient():
    rng = np.random.default_rng(0)
    x = rng.standard_normal(60)
    x[::3] = 0.0
    g = rng.standard_normal(60)
    l1, n_penalized = 0.6, 50
    out = np.empty(60)
    _lbfgs.pseudo_gradient(x, g, l1, n_penalized, out)
    expected = np.where(x != 0, g + l1 * np.sign(x), np.sign(g) * np.maximum(np.abs(g) - l1, 0.0))
    expected[n_penalized:] = g[n_penalized:]  # the intercepts: no L1
    np.testing.assert_array_equal(out, expected)
    assert np.any((x[:n_penalized] == 0) & (out[:n_penalized] == 0)), "a dead zone is tested"


@pytest.mark.parametrize("condition", [1.0, 1e2, 1e4])
def test_separable_l1_problem_reaches_the_soft_thresholded_minimum(condition):
    n, l1 = 16, 0.5
    curvature = np.geomspace(1.0, condition, n)
    # |c_i| < l1 / a_i (a zero of the minimum) for about half the entries.
    center = np.random.default_rng(1).uniform(-2.0, 2.0, n) * l1 / curvature
    center[-1] = 0.5 * l1 / curvature[-1]  # unpenalized: not thresholded
    expected = soft_threshold(center, l1 / curvature)
    expected[-1] = center[-1]
    assert np.sum(expected == 0) >= 3, "the problem should switch entries off"
    evaluate = l1_quadratic(np.diag(curvature), center, l1, n - 1)
    result = _lbfgs.minimize(
        evaluate, np.zeros(n), max_iter=2000, gtol=1e-12, ftol=0.0, l1=l1, n_penalized=n - 1
    )
    assert result.converged
    # F < 2 and a >= 1: sqrt(2 eps F / a) < 3e-8 (measured: 2e-9 at most).
    assert result.fun < 2.0
    np.testing.assert_allclose(result.x, expected, rtol=0, atol=3e-8)
    np.testing.assert_array_equal(result.x == 0, expected == 0)


def test_coupled_l1_problem_meets_the_optimality_conditions():
    rng = np.random.default_rng(2)
    n = 30
    q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    A = (q * np.geomspace(1.0, 1e2, n)) @ q.T
    # A c of order 1 keeps F of order 1; l1 switches some entries off.
    center = np.linalg.solve(A, rng.standard_normal(n))
    l1 = np.median(np.abs(A @ center))
    evaluate = l1_quadratic(A, center, l1, n)
    seen = []
    result = _lbfgs.minimize(
        evaluate, np.zeros(n), max_iter=5000, gtol=1e-11, ftol=0.0, l1=l1, n_penalized=n,
        callback=lambda f, optimality: seen.append(f),
    )  # fmt: skip
    assert result.converged
    x, g = result.x, np.empty(n)
    evaluate(x, g)
    zero = x == 0
    assert zero.sum() >= 3, "the problem should switch entries off"
    # The rounding floor: sqrt(2 eps F a_max) = 2.1e-7 sqrt(F).
    floor = np.sqrt(2 * np.finfo(float).eps * result.fun * 1e2)
    np.testing.assert_allclose(g[~zero] + l1 * np.sign(x[~zero]), 0.0, atol=floor)
    assert np.all(np.abs(g[zero]) <= l1 + floor)
    # The backtracking line search only accepts decreases.
    assert all(later <= earlier for earlier, later in itertools.pairwise(seen))


def test_trial_points_stay_in_the_orthant_of_their_search():
    """Every trial point of a search keeps the signs of its start (0 may stay or appear)."""
    rng = np.random.default_rng(3)
    n, l1 = 20, 0.4
    q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    A = (q * np.geomspace(1.0, 1e2, n)) @ q.T
    smooth = l1_quadratic(A, rng.standard_normal(n), l1, n)
    points = []

    def evaluate(x, g):
        points.append(x.copy())
        return smooth(x, g)

    starts = []
    _lbfgs.minimize(
        evaluate, rng.standard_normal(n), max_iter=50, gtol=1e-10, ftol=0.0, l1=l1, n_penalized=n,
        callback=lambda f, optimality: starts.append(len(points)),
    )  # fmt: skip
    # The iterate accepted at evaluation k starts the search of evaluations k+1...
    boundaries = [1, *starts]
    for begin, end in itertools.pairwise(boundaries):
        origin = points[begin - 1]
        for trial in points[begin:end]:
            moved = (origin != 0) & (trial != 0)
            assert np.all(np.sign(trial[moved]) == np.sign(origin[moved]))


def fit_lbfgs(name, penalty, fmt, **params):
    X, y, sw, C = problem(name)
    params = {"tol": 1e-10, "max_iter": 2000, **params}
    model = fastlr.LogisticRegression(solver="lbfgs", l1_ratio=L1_RATIO[penalty], C=C, **params)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        return model.fit(as_format(X, fmt), y, sample_weight=sw)


@pytest.mark.parametrize("fmt", ["dense", "csr"])
@pytest.mark.parametrize("name", ["breast_cancer", "wine"])
@pytest.mark.parametrize("penalty", ["l1", "elasticnet"])
def test_lbfgs_reaches_the_saga_optimum(name, penalty, fmt):
    X, y, sw, C = problem(name)
    ratio = L1_RATIO[penalty]
    ref_coef, _, best = sklearn_optimum(name, penalty)
    model = fit_lbfgs(name, penalty, fmt)
    value = objective(model.coef_, model.intercept_, X, y, C, ratio, sw)
    assert abs(value - best) <= 1e-8 * best
    assert np.sum(ref_coef == 0) >= 3, "the reference should switch weights off"
    np.testing.assert_array_equal(model.coef_ == 0, ref_coef == 0)
    # OWL-QN's line search tests decreases of the objective, so it stops once
    # they fall below its rounding (ftol = 64 eps relative): a step on a
    # pseudo-gradient v decreases F by about ||v||^2 / (2 L) with L <= 8 here,
    # which is below 1e-15 for ||v|| < 1e-7 (measured: 1.5e-8 to 2.8e-8).
    measure = largest_minimal_subgradient(model.coef_, model.intercept_, X, y, C, ratio, sw)
    assert measure <= 1e-7


def test_lbfgs_l1_records_and_stops_on_the_pseudo_gradient():
    X, y, sw, C = problem("breast_cancer")
    tol = 1e-6
    model = fit_lbfgs("breast_cancer", "l1", "dense", tol=tol)
    optimality = model.history_["optimality"]
    assert model.n_iter_[0] == optimality.shape[0] == model.history_["loss"].shape[0]
    assert optimality[-1] <= tol and np.all(optimality[:-1] > tol)
    at_model = largest_minimal_subgradient(model.coef_, model.intercept_, X, y, C, 1.0, sw)
    assert at_model == pytest.approx(optimality[-1], rel=1e-6, abs=1e-12)
    # OWL-QN only accepts decreases.
    assert np.all(np.diff(model.history_["loss"]) <= 0)


def test_lbfgs_l1_max_iter_warning_names_the_pseudo_gradient():
    X, y, sw, C = problem("breast_cancer")
    pattern = (
        r"^lbfgs failed to converge after 2 iterations \(max_iter=2\): the largest "
        r"pseudo-gradient entry, [0-9.e+-]+, is above tol=0\.0001\. Increase max_iter"
    )
    with pytest.warns(ConvergenceWarning, match=pattern):
        fastlr.LogisticRegression(l1_ratio=1, C=C, max_iter=2).fit(X, y, sample_weight=sw)


def test_elasticnet_with_no_l1_share_is_the_l2_fit():
    X, y, sw, C = problem("wine")
    l2 = fastlr.LogisticRegression(C=C).fit(X, y, sample_weight=sw)
    net = fastlr.LogisticRegression(penalty="elasticnet", l1_ratio=0.0, C=C)
    with pytest.warns(FutureWarning, match="'penalty' was deprecated"):
        net.fit(X, y, sample_weight=sw)
    np.testing.assert_array_equal(net.coef_, l2.coef_)
