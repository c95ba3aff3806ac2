"""Accelerated proximal gradient: :mod:`fastlr._fista` and ``solver="gd"``.

References:

- quadratics plus L1 whose minimizer is known: separable ones are solved by
  soft-thresholding; for a coupled one the optimality conditions (a zero
  subgradient) are checked directly. With ``tol=1e-12`` on the proximal
  gradient mapping (the smallest subgradient once the signs settle) and the
  smallest curvature 1, the error is at most ``sqrt(n) 1e-12``: 1e-10 is
  asserted;
- scikit-learn's optimum (lbfgs for L2, saga for L1 and elastic net, at
  ``tol=1e-10``; see ``penalized_problems``) on weighted breast cancer
  (binary) and wine (multinomial), dense and CSR. gd runs to ``tol=1e-10``:
  on these problems (local curvature above 1e-3) the objective is then within
  ``n_params 1e-20 / 1e-3`` of the optimum, and saga within 1e-12 relative,
  so 1e-8 relative is asserted, with the same zero weights.
"""

import re
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
    smooth_gradient,
)
from sklearn.exceptions import ConvergenceWarning

import fastlr
from fastlr import _fista, _lbfgs


def soft_threshold(z, threshold):
    return np.sign(z) * np.maximum(np.abs(z) - threshold, 0.0)


def quadratic(A, center):
    """``evaluate(x, g)`` of ``0.5 (x - c)' A (x - c)`` (no L1: the solver adds it)."""

    def evaluate(x, g):
        g[:] = A @ (x - center)
        return 0.5 * float((x - center) @ g)

    return evaluate


def with_l1(evaluate, l1, n_penalized):
    """The whole objective, as the solver expects it: the L1 term added to the value."""

    def whole(x, g):
        return evaluate(x, g) + l1 * float(np.abs(x[:n_penalized]).sum())

    return whole


def separable_problem(n=12, l1=0.5):
    """Diagonal curvatures 1..100; the last entry unpenalized. Returns the solver inputs."""
    rng = np.random.default_rng(0)
    curvature = np.geomspace(1.0, 100.0, n)
    # |c_i| < l1 / a_i (a zero of the minimum) for about half the entries.
    center = rng.uniform(-2.0, 2.0, n) * l1 / curvature
    center[-1] = 0.5 * l1 / curvature[-1]  # unpenalized: not thresholded
    expected = soft_threshold(center, l1 / curvature)
    expected[-1] = center[-1]
    evaluate = with_l1(quadratic(np.diag(curvature), center), l1, n - 1)
    return evaluate, expected, curvature.max()


# --------------------------------------------------------------------------
# The compiled solver
# --------------------------------------------------------------------------


@pytest.mark.parametrize("step_times_l", [1.0, 1e3, 1e-3])
def test_separable_l1_problem_reaches_the_soft_thresholded_minimum(step_times_l):
    evaluate, expected, lipschitz = separable_problem()
    assert np.sum(expected == 0) >= 3, "the problem should switch entries off"
    result = _fista.minimize(
        evaluate,
        np.zeros(12),
        step=step_times_l / lipschitz,
        max_iter=1000,
        tol=1e-12,
        l1=0.5,
        n_penalized=11,
    )
    assert result.status == _fista.CONVERGED and result.converged
    np.testing.assert_allclose(result.x, expected, rtol=0, atol=1e-10)
    np.testing.assert_array_equal(result.x == 0, expected == 0)


@pytest.mark.parametrize("factor", [1e3, 1e6, 1e-3, 1e-6])
def test_backtracking_and_growth_recover_from_a_bad_first_step(factor):
    """A first step ``factor / L`` costs about log2(factor) halvings or doublings.

    After those the run follows another path than the one started at ``1 / L``
    (other momentum, other steps): measured 0.9x to 1.45x its evaluations, so
    2x is asserted. A fixed step of ``1e-3 / L`` would need about
    ``1e3 (L / mu) log(1e12) = 3e6`` iterations here.
    """
    evaluate, _, lipschitz = separable_problem()
    settings = dict(max_iter=1000, tol=1e-12, l1=0.5, n_penalized=11)
    base = _fista.minimize(evaluate, np.zeros(12), step=1.0 / lipschitz, **settings)
    result = _fista.minimize(evaluate, np.zeros(12), step=factor / lipschitz, **settings)
    assert base.converged and result.converged
    assert result.n_eval <= 2 * base.n_eval


def test_coupled_l1_problem_meets_the_optimality_conditions():
    rng = np.random.default_rng(1)
    n = 20
    q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    A = (q * np.geomspace(1.0, 1e3, n)) @ q.T
    center = rng.standard_normal(n)
    l1 = np.median(np.abs(A @ center))  # strong enough to switch some entries off
    smooth = quadratic(A, center)
    result = _fista.minimize(
        with_l1(smooth, l1, n), np.zeros(n), step=1e-3, max_iter=20_000, tol=1e-11, l1=l1,
        n_penalized=n,
    )  # fmt: skip
    assert result.converged
    x = result.x
    g = np.empty(n)
    smooth(x, g)
    zero = x == 0
    assert zero.sum() >= 3, "the problem should switch entries off"
    np.testing.assert_allclose(g[~zero] + l1 * np.sign(x[~zero]), 0.0, atol=1e-10)
    assert np.all(np.abs(g[zero]) <= l1 + 1e-10)


def test_callback_sees_each_accepted_iterate_and_its_measure():
    """Without L1 the measure is the largest gradient entry, whatever the step."""
    rng = np.random.default_rng(4)
    evaluate = quadratic(np.diag(np.geomspace(1.0, 100.0, 12)), rng.standard_normal(12))
    seen = []
    result = _fista.minimize(
        evaluate, np.zeros(12), step=0.01, max_iter=5, tol=0.0,
        callback=lambda f, optimality: seen.append((f, optimality)),
    )  # fmt: skip
    assert result.status == _fista.MAX_ITER and not result.converged
    assert result.n_iter == len(seen) == 5
    g = np.empty(12)
    assert seen[-1][0] == result.fun == evaluate(result.x, g)
    assert seen[-1][1] == result.optimality == np.abs(g).max()
    # Each accepted iterate is reported once; FISTA is not monotone, but from
    # the start (0: objective 0.5 c'Ac) the first step descends.
    assert seen[0][0] < evaluate(np.zeros(12), g)


def test_zero_max_iter_and_an_optimal_start_return_the_start():
    evaluate, expected, lipschitz = separable_problem()
    calls = []

    def counted(x, g):
        calls.append(1)
        return evaluate(x, g)

    start = np.arange(12.0)
    result = _fista.minimize(counted, start, step=1.0, max_iter=0, tol=0.0, l1=0.5, n_penalized=11)
    assert result.status == _fista.MAX_ITER and result.n_iter == 0 and len(calls) == 1
    np.testing.assert_array_equal(result.x, start)
    assert result.x is not start
    result = _fista.minimize(
        counted, expected, step=1.0 / lipschitz, max_iter=10, tol=1e-12, l1=0.5, n_penalized=11
    )
    assert result.status == _fista.CONVERGED and result.n_iter == 0 and len(calls) == 2


def test_an_objective_that_is_nowhere_finite_stops_at_the_start():
    def evaluate(x, g):
        g[:] = 1.0
        return 0.0 if not x.any() else np.nan

    result = _fista.minimize(evaluate, np.zeros(3), step=1.0, max_iter=10, tol=0.0)
    assert result.status == _fista.NOT_FINITE and not result.converged
    np.testing.assert_array_equal(result.x, 0.0)
    assert "not finite" in result.message


def test_a_trial_that_never_passes_stalls_at_the_last_iterate():
    """Value and gradient jump up as soon as x leaves 0: no step, however small, passes."""

    def evaluate(x, g):
        moved = bool(x.any())
        g[:] = 2 * x + (-1.0 if moved else 1.0)
        return float(x @ x + x.sum() + moved)

    result = _fista.minimize(evaluate, np.zeros(2), step=1.0, max_iter=10, tol=0.0)
    assert result.status == _fista.STALLED and not result.converged
    assert result.n_iter == 0 and result.n_eval == 1 + _fista.MAX_TRIALS
    np.testing.assert_array_equal(result.x, 0.0)


def test_gd_warns_when_its_steps_stall(monkeypatch):
    X, y, sw, C = problem("wine")
    minimize = _fista.minimize

    def stalled(evaluate, x0, **kwargs):
        result = minimize(evaluate, x0, **{**kwargs, "max_iter": 3})
        result.status = _fista.STALLED
        return result

    monkeypatch.setattr(_fista, "minimize", stalled)
    pattern = (
        r"^gd failed to converge after 3 iterations: no step passed .* above tol=0\.0001\. "
        r"Raise tol"
    )
    with pytest.warns(ConvergenceWarning, match=pattern):
        model = fastlr.LogisticRegression(solver="gd", C=C).fit(X, y, sample_weight=sw)
    assert model.n_iter_[0] == 3


def test_proximal_step_is_soft_thresholding_and_its_mapping():
    rng = np.random.default_rng(2)
    x = rng.standard_normal(40)
    x[::4] = 0.0
    g = rng.standard_normal(40)
    step, l1, n_penalized = 0.3, 0.7, 35
    out = np.empty(40)
    largest = _fista.proximal_step(x, g, step, l1, n_penalized, out)
    expected = x - step * g
    expected[:n_penalized] = soft_threshold(expected[:n_penalized], step * l1)
    np.testing.assert_allclose(out, expected, rtol=0, atol=1e-15)
    assert largest == pytest.approx(np.abs((x - expected) / step).max(), rel=1e-12)


def test_proximal_mapping_tends_to_the_pseudo_gradient_as_the_step_shrinks():
    """Both solvers' measures agree: FISTA's at a tiny step is OWL-QN's pseudo-gradient."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal(30)
    x[::3] = 0.0
    g = rng.standard_normal(30)
    pseudo = np.empty(30)
    _lbfgs.pseudo_gradient(x, g, 0.5, 25, pseudo)
    # 1e-30 is below every entry's rounding: a subtraction would give 0 or garbage.
    largest = _fista.proximal_step(x, g, 1e-30, 0.5, 25, np.empty(30))
    assert largest == np.abs(pseudo).max()


# --------------------------------------------------------------------------
# solver="gd" against scikit-learn
# --------------------------------------------------------------------------


def fit_gd(name, penalty, fmt, **params):
    X, y, sw, C = problem(name)
    params = {"tol": 1e-10, "max_iter": 5000, **params}
    model = fastlr.LogisticRegression(solver="gd", l1_ratio=L1_RATIO[penalty], C=C, **params)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        return model.fit(as_format(X, fmt), y, sample_weight=sw)


@pytest.mark.parametrize("fmt", ["dense", "csr"])
@pytest.mark.parametrize("name", ["breast_cancer", "wine"])
@pytest.mark.parametrize("penalty", ["l2", "l1", "elasticnet"])
def test_gd_reaches_sklearn_optimum(name, penalty, fmt):
    X, y, sw, C = problem(name)
    ratio = L1_RATIO[penalty]
    ref_coef, _, best = sklearn_optimum(name, penalty)
    model = fit_gd(name, penalty, fmt)
    value = objective(model.coef_, model.intercept_, X, y, C, ratio, sw)
    assert abs(value - best) <= 1e-8 * best
    if penalty != "l2":
        assert np.sum(ref_coef == 0) >= 3, "the reference should switch weights off"
        np.testing.assert_array_equal(model.coef_ == 0, ref_coef == 0)
    # Independently of the reference: the smallest subgradient vanishes.
    measure = largest_minimal_subgradient(model.coef_, model.intercept_, X, y, C, ratio, sw)
    assert measure <= 1e-9


@pytest.mark.parametrize("penalty", ["l2", "l1"])
def test_gd_stops_at_the_first_iterate_whose_measure_is_below_tol(penalty):
    X, y, sw, C = problem("wine")
    tol = 1e-5
    model = fit_gd("wine", penalty, "dense", tol=tol)
    optimality = model.history_["optimality"]
    assert model.n_iter_[0] == optimality.shape[0] == model.history_["loss"].shape[0]
    assert optimality[-1] <= tol and np.all(optimality[:-1] > tol)
    # The recorded measure is the one at the returned model (a tiny step's mapping
    # is the smallest subgradient, up to rounding of the gradient).
    ratio = L1_RATIO[penalty]
    at_model = largest_minimal_subgradient(model.coef_, model.intercept_, X, y, C, ratio, sw)
    assert at_model <= tol + 1e-12
    assert model.history_["loss"][-1] == pytest.approx(
        objective(model.coef_, model.intercept_, X, y, C, ratio, sw), rel=1e-12
    )


def test_gd_max_iter_warning_names_the_measure_and_what_to_change():
    X, y, sw, C = problem("breast_cancer")
    model = fastlr.LogisticRegression(solver="gd", C=C, max_iter=3, tol=1e-6)
    pattern = (
        r"^gd failed to converge after 3 iterations \(max_iter=3\): the largest entry of its "
        r"proximal gradient mapping, [0-9.e+-]+, is above tol=1e-06\. Increase max_iter"
    )
    with pytest.warns(ConvergenceWarning, match=pattern):
        model.fit(X, y, sample_weight=sw)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        fastlr.LogisticRegression(solver="gd", C=C, max_iter=3, tol=None).fit(X, y)


def naive_proximal_gradient(X, y, sw, C, l1_ratio, steps):
    """Plain proximal gradient steps on the binary problem, in NumPy."""
    coef, intercept = np.zeros((1, X.shape[1])), np.zeros(1)
    l1 = l1_ratio / (C * sw.sum())
    for step in steps:
        grad_coef, grad_intercept = smooth_gradient(coef, intercept, X, y, C, l1_ratio, sw)
        coef = soft_threshold(coef - step * grad_coef, step * l1)
        intercept = intercept - step * grad_intercept
    return coef, intercept


@pytest.mark.parametrize(
    "learning_rate, steps",
    [("constant", [0.2] * 4), ("invscaling", [0.2 / t**0.5 for t in range(1, 5)])],
)
def test_fixed_schedules_take_plain_proximal_gradient_steps(learning_rate, steps):
    X, y, sw, C = problem("breast_cancer")
    model = fastlr.LogisticRegression(
        solver="gd", l1_ratio=1, C=C, learning_rate=learning_rate, eta0=0.2, power_t=0.5,
        max_iter=4, tol=None,
    ).fit(X, y, sample_weight=sw)  # fmt: skip
    coef, intercept = naive_proximal_gradient(X, y, sw, C, 1.0, steps)
    np.testing.assert_allclose(model.coef_, coef, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(model.intercept_, intercept, rtol=1e-10, atol=1e-14)
    # The history is taken at the point each step starts from: the first at zero.
    assert model.history_["loss"][0] == pytest.approx(np.log(2.0), rel=1e-12)


def test_a_constant_step_that_diverges_raises():
    X, y, sw, C = problem("breast_cancer")
    model = fastlr.LogisticRegression(
        solver="gd", C=C, learning_rate="constant", eta0=1e5, max_iter=1000
    )
    with pytest.raises(FloatingPointError, match=r"diverged at iteration \d+.*smaller eta0"):
        model.fit(X, y, sample_weight=sw)


def test_optimal_learning_rate_means_the_accelerated_method():
    X, y, sw, C = problem("wine")
    auto = fastlr.LogisticRegression(solver="gd", C=C).fit(X, y, sample_weight=sw)
    optimal = fastlr.LogisticRegression(solver="gd", C=C, learning_rate="optimal")
    optimal.fit(X, y, sample_weight=sw)
    np.testing.assert_array_equal(optimal.coef_, auto.coef_)
    np.testing.assert_array_equal(optimal.n_iter_, auto.n_iter_)


def test_gd_verbose_prints_one_line_per_iteration(capsys):
    X, y, _, C = problem("wine")
    fastlr.LogisticRegression(solver="gd", C=C, max_iter=3, tol=None, verbose=1).fit(X, y)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3
    for iteration, line in enumerate(lines, start=1):
        assert re.match(
            rf"\[gd\] iteration {iteration}: objective [0-9.e+-]+, optimality [0-9.e+-]+, ", line
        )
