"""Shared fixtures: data sets, the penalized objective, and scikit-learn's optimum.

Fixtures
--------
breast_cancer
    scikit-learn's breast-cancer data, standardized: a real, non-separable,
    well-conditioned binary problem of shape (569, 30).
small_problem
    A random binary problem of shape (200, 5) with labels drawn from a
    logistic model, so that it is not separable and the unpenalized optimum
    is finite.
objective
    The penalized mean log-loss, computed in float64 with ``np.logaddexp``:
    the yardstick every optimum is measured with.
sklearn_optimum
    scikit-learn's ``LogisticRegression`` solved to ``tol=1e-10``, cached per
    data set and settings.
"""

import functools

import naive
import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression as SkLogisticRegression


def load_standardized_breast_cancer():
    """X float64 C-contiguous of shape (569, 30), standardized; y in {0, 1}."""
    return naive.standardized(load_breast_cancer)


def make_small_problem():
    """200 x 5 Gaussian features, labels drawn from a logistic model (not separable)."""
    rng = np.random.default_rng(42)
    X = rng.standard_normal((200, 5))
    scores = X @ np.array([1.0, -0.5, 0.25, 0.0, 0.75]) + 0.3
    y = (rng.random(200) < 1.0 / (1.0 + np.exp(-scores))).astype(np.int64)
    return X, y


_DATA = {"breast_cancer": load_standardized_breast_cancer, "small_problem": make_small_problem}


@pytest.fixture(scope="session")
def breast_cancer():
    """Standardized breast cancer: ``(X, y)``, X float64 (569, 30), y in {0, 1}."""
    return load_standardized_breast_cancer()


@pytest.fixture(scope="session")
def small_problem():
    """A random, non-separable binary problem: ``(X, y)``, X float64 (200, 5)."""
    return make_small_problem()


def penalized_objective(coef, intercept, X, y, C=1.0, sample_weight=None):
    """``sum_i sw_i loss_i / sum_i sw_i + ||w||^2 / (2 C sum_i sw_i)``, in float64.

    scikit-learn's ``LogisticRegression`` objective divided by ``C sum_i sw_i``
    (the same optimum); ``C=None`` means no penalty. :func:`naive.objective`.
    """
    return naive.objective(coef, intercept, X, y, sample_weight, C=C)


@pytest.fixture(scope="session")
def objective():
    """The function :func:`penalized_objective`."""
    return penalized_objective


@functools.cache
def _sklearn_fit(data_name, C, sample_weight_seed):
    X, y = _DATA[data_name]()
    sw = None
    if sample_weight_seed is not None:
        sw = np.random.default_rng(sample_weight_seed).integers(0, 4, size=X.shape[0])
    # C=inf is scikit-learn's spelling of "no penalty" (penalty=None is deprecated).
    model = SkLogisticRegression(C=np.inf if C is None else C, tol=1e-10, max_iter=10000)
    model.fit(X, y, sample_weight=sw)
    value = penalized_objective(model.coef_, model.intercept_, X, y, C, sw)
    return model.coef_[0].copy(), float(model.intercept_[0]), value, sw


@pytest.fixture(scope="session")
def sklearn_optimum():
    """``sklearn_optimum(data_name, C=1.0, sample_weight_seed=None)``.

    Returns ``(coef, intercept, objective_value, sample_weight)`` of scikit-learn's
    ``LogisticRegression(C=C, tol=1e-10, max_iter=10000)`` on the named fixture's
    data (``C=None``: no penalty). ``sample_weight_seed`` draws integer weights in
    {0, 1, 2, 3}.
    """

    def optimum(data_name, C=1.0, sample_weight_seed=None):
        return _sklearn_fit(data_name, C, sample_weight_seed)

    return optimum
