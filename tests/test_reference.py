"""The seed baselines in ``fastlr.reference`` agree with each other and with calculus."""

import functools

import naive
import numpy as np
import pytest

from fastlr import reference

make_problem = functools.partial(naive.binary_problem, n=40, d=3)


def test_python_loop_equals_numpy_vectorized():
    X, y, coef, b = make_problem()
    loop = reference.python_loop_gradient(X, y, coef, b)
    vec = reference.numpy_gradient(X, y, coef, b)
    np.testing.assert_allclose(loop[0], vec[0], rtol=1e-12)
    assert loop[1] == pytest.approx(vec[1], rel=1e-12)
    assert loop[2] == pytest.approx(vec[2], rel=1e-12)


def test_loss_is_the_seed_cross_entropy():
    """J = -mean(y log a + (1 - y) log(1 - a)) where it can be evaluated literally."""
    X, y, coef, b = make_problem()
    a = 1 / (1 + np.exp(-(X @ coef + b)))
    literal = -np.mean(y * np.log(a) + (1 - y) * np.log(1 - a))
    assert reference.python_loop_gradient(X, y, coef, b)[2] == pytest.approx(literal, rel=1e-12)
    assert reference.numpy_gradient(X, y, coef, b)[2] == pytest.approx(literal, rel=1e-12)


def test_intercept_gradient_is_divided_by_m():
    """Seed error 4: db must be averaged like dw (checked by finite differences)."""
    X, y, coef, b = make_problem()
    h = 1e-6
    fd = (
        reference.numpy_gradient(X, y, coef, b + h)[2]
        - reference.numpy_gradient(X, y, coef, b - h)[2]
    ) / (2 * h)
    assert reference.python_loop_gradient(X, y, coef, b)[1] == pytest.approx(fd, rel=1e-7)


def test_each_weight_uses_its_own_feature():
    """Seed error 2: dw_k accumulates x_k dz, so a zero column has zero gradient."""
    X, y, coef, b = make_problem()
    X[:, 1] = 0.0
    grad = reference.python_loop_gradient(X, y, coef, b)[0]
    assert grad[1] == 0.0 and grad[0] != 0.0


def test_extreme_scores_are_finite():
    X, y, _, _ = make_problem()
    coef = np.array([1e4, -1e4, 0.0])
    for result in (
        reference.python_loop_gradient(X, y, coef, 0.0),
        reference.numpy_gradient(X, y, coef, 0.0),
    ):
        assert np.all(np.isfinite(result[0])) and np.isfinite(result[1:]).all()


def test_numpy_fit_takes_the_corrected_seed_steps():
    """Seed error 3: b moves along db. Two steps by hand equal numpy_fit(..., 2)."""
    X, y, _, _ = make_problem()
    lr = 0.5
    coef, b = np.zeros(3), 0.0
    for _ in range(2):
        dw, db, _ = reference.numpy_gradient(X, y, coef, b)
        coef, b = coef - lr * dw, b - lr * db
    fit_coef, fit_b = reference.numpy_fit(X, y, lr, 2)
    np.testing.assert_allclose(fit_coef, coef, rtol=1e-14)
    assert fit_b == pytest.approx(b, rel=1e-14)


def test_numpy_fit_decreases_the_loss():
    X, y, _, _ = make_problem(n=200)
    start = reference.numpy_gradient(X, y, np.zeros(3), 0.0)[2]
    coef, b = reference.numpy_fit(X, y, 0.5, 50)
    assert reference.numpy_gradient(X, y, coef, b)[2] < start
