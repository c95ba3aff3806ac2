"""The compiled L-BFGS (:mod:`fastlr._lbfgs`) on functions with known minima.

Tolerances: with ``gtol = 1e-10`` the largest gradient entry ends below 1e-10;
on the quadratics (smallest eigenvalue 1) the error ``x - x*`` is then at most
``||A^-1|| 1e-10 sqrt(n) < 1e-9``, and on the
Rosenbrock function (Hessian at the minimum of norm about 1000, smallest
eigenvalue 0.4) below 1e-8 as well. Against scipy's L-BFGS-B both runs stop
on a gradient of 1e-10, so their objectives agree to about ``1e-10^2 /
curvature`` relative: 1e-12 is asserted.
"""

import itertools

import numpy as np
import pytest
import scipy.optimize
from scipy.optimize import rosen, rosen_der

from fastlr import _lbfgs


def evaluator(fun, grad):
    def evaluate(x, g):
        g[:] = grad(x)
        return fun(x)

    return evaluate


def quadratic(n, condition, seed=0):
    """``(evaluate, x_star)`` of ``0.5 (x - x*)'A(x - x*)``.

    A's eigenvalues run from 1 to ``condition``. The minimum is 0, so the
    objective resolves decreases down to the tolerances.
    """
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    A = (q * np.geomspace(1.0, condition, n)) @ q.T
    x_star = rng.standard_normal(n)
    return evaluator(
        lambda x: 0.5 * (x - x_star) @ A @ (x - x_star), lambda x: A @ (x - x_star)
    ), x_star


@pytest.mark.parametrize("condition", [1.0, 1e2, 1e4])
def test_quadratic_reaches_the_solution(condition):
    evaluate, x_star = quadratic(30, condition)
    # scipy's L-BFGS-B takes 2, 114 and 1013 iterations.
    result = _lbfgs.minimize(evaluate, np.zeros(30), max_iter=2000, gtol=1e-10, ftol=0.0)
    assert result.status == _lbfgs.CONVERGED_GRADIENT and result.converged
    np.testing.assert_allclose(result.x, x_star, rtol=0, atol=1e-8)


@pytest.mark.parametrize("n", [2, 6, 20])
def test_rosenbrock_reaches_its_minimum_in_as_many_iterations_as_scipy(n):
    x0 = np.tile([-1.2, 1.0], n // 2)
    evaluate = evaluator(rosen, rosen_der)
    result = _lbfgs.minimize(evaluate, x0, max_iter=2000, gtol=1e-10, ftol=0.0)
    assert result.converged
    np.testing.assert_allclose(result.x, np.ones(n), atol=1e-8)
    reference = scipy.optimize.minimize(
        rosen, x0, jac=rosen_der, method="L-BFGS-B", options=dict(gtol=1e-10, ftol=0.0)
    )
    # Same method, a different line search: within a quarter of scipy's count.
    assert result.n_iter <= 1.25 * reference.nit


def test_logistic_objective_matches_scipy_at_the_optimum():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((400, 8))
    y = (X @ rng.standard_normal(8) + rng.logistic(size=400) > 0).astype(float)

    def fun(w):
        z = X @ w
        return np.mean(np.logaddexp(0, z) - y * z) + 0.005 * w @ w

    def grad(w):
        return X.T @ (1 / (1 + np.exp(-(X @ w))) - y) / 400 + 0.01 * w

    result = _lbfgs.minimize(evaluator(fun, grad), np.zeros(8), max_iter=500, gtol=1e-10, ftol=0)
    reference = scipy.optimize.minimize(
        fun, np.zeros(8), jac=grad, method="L-BFGS-B", options=dict(gtol=1e-10, ftol=0.0)
    )
    assert result.converged
    assert result.fun == pytest.approx(reference.fun, rel=1e-12)


def test_max_iter_stops_at_the_accepted_iterate_and_calls_back_each_iteration():
    evaluate, _ = quadratic(10, 1e3)
    seen, measures = [], []

    def callback(f, optimality):
        seen.append(f)
        measures.append(optimality)

    result = _lbfgs.minimize(
        evaluate, np.ones(10), max_iter=4, gtol=0.0, ftol=0.0, callback=callback
    )
    assert result.status == _lbfgs.MAX_ITER and not result.converged
    assert result.n_iter == 4 and len(seen) == 4
    # The result is the last accepted iterate, not a trial point of a new search.
    assert result.fun == seen[-1] == evaluate(result.x, np.empty(10))
    assert all(later < earlier for earlier, later in itertools.pairwise(seen))
    # The measure is the largest gradient entry at each accepted iterate.
    gradient = np.empty(10)
    evaluate(result.x, gradient)
    assert measures[-1] == np.abs(gradient).max()


def test_zero_max_iter_returns_the_start():
    evaluate, _ = quadratic(5, 10.0)
    x0 = np.arange(5.0)
    result = _lbfgs.minimize(evaluate, x0, max_iter=0, gtol=0.0, ftol=0.0)
    assert result.status == _lbfgs.MAX_ITER and result.n_iter == 0
    np.testing.assert_array_equal(result.x, x0)
    assert result.x is not x0


def test_a_stationary_start_converges_without_iterating():
    calls = []

    def evaluate(x, g):
        calls.append(x.copy())
        g[:] = 2 * x
        return float(x @ x)

    result = _lbfgs.minimize(evaluate, np.zeros(3), max_iter=10, gtol=0.0, ftol=0.0)
    assert result.status == _lbfgs.CONVERGED_GRADIENT and result.n_iter == 0
    assert len(calls) == 1


def test_relative_decrease_stops_the_run():
    evaluate, _ = quadratic(10, 1e2)
    result = _lbfgs.minimize(evaluate, np.ones(10), max_iter=1000, gtol=0.0, ftol=1e-6)
    assert result.status == _lbfgs.CONVERGED_DECREASE and result.converged


def test_non_finite_trial_points_shrink_the_step():
    """``x - log(x)`` is nan for ``x < 0``: the secant step from x = 30 lands there."""
    visited = []

    def evaluate(x, g):
        visited.append(x[0])
        with np.errstate(invalid="ignore", divide="ignore"):
            g[:] = 1 - 1 / x
            return float(x[0] - np.log(x[0]))

    result = _lbfgs.minimize(evaluate, np.array([30.0]), max_iter=100, gtol=1e-12, ftol=0)
    assert min(visited) < 0, "the test should reach the undefined region"
    assert result.converged
    assert result.x[0] == pytest.approx(1.0, abs=1e-10)


def test_a_failed_line_search_returns_the_last_iterate():
    """A gradient of the wrong sign: no step along ``-g`` decreases the objective."""

    def evaluate(x, g):
        g[:] = -2 * x
        return float(x @ x)

    x0 = np.array([1.0, -2.0])
    result = _lbfgs.minimize(evaluate, x0, max_iter=10, gtol=0.0, ftol=0.0)
    assert result.status == _lbfgs.SEARCH_FAILED and not result.converged
    assert result.n_iter == 0 and result.fun == 5.0
    np.testing.assert_array_equal(result.x, x0)
    assert "line search" in result.message
