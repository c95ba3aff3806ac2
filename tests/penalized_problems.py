"""Weighted L1 / elastic-net / L2 problems and scikit-learn's optima on them.

Shared by ``test_fista.py`` (gd) and ``test_owlqn.py`` (lbfgs with L1).

Problems (standardized, integer sample weights in {0, 1, 2, 3} drawn with a
fixed seed, so some rows drop out and others count several times):

- ``"breast_cancer"``: binary, 569 x 30, ``C = 0.05``;
- ``"wine"``: multinomial, 178 x 13, 3 classes, ``C = 0.1``.

Each in the strengths where scikit-learn's ``saga`` at ``tol=1e-10`` takes
seconds at most; there it reaches the optimum within 1e-12 relative
(measured against OWL-QN at ``tol=1e-10``), so it is a reference for a 1e-8
comparison of objectives. The L2 reference is scikit-learn's lbfgs at
``tol=1e-10``.

The objective is :func:`naive.objective`: scikit-learn's divided by ``C S``
(``S`` the total sample weight), as :class:`fastlr._datafits.Objective`
defines it. The smallest subgradient (:func:`largest_minimal_subgradient`)
is the reference-free optimality check of the L1 tests.
"""

import functools

import naive
import numpy as np
import scipy.sparse
from scipy.special import logsumexp
from sklearn.datasets import load_breast_cancer, load_wine
from sklearn.linear_model import LogisticRegression as SkLogisticRegression

PROBLEMS = {"breast_cancer": (load_breast_cancer, 0.05), "wine": (load_wine, 0.1)}
#: The L1 share of each penalty.
L1_RATIO = {"l2": 0.0, "l1": 1.0, "elasticnet": 0.5}


@functools.cache
def problem(name):
    """``(X, y, sample_weight, C)``: X float64 C-contiguous and standardized."""
    loader, C = PROBLEMS[name]
    X, y = naive.standardized(loader)
    sw = np.random.default_rng(0).integers(0, 4, size=y.shape[0]).astype(np.float64)
    return X, y, sw, C


def as_format(X, fmt):
    """X itself (``"dense"``) or as a CSR matrix (``"csr"``)."""
    return scipy.sparse.csr_matrix(X) if fmt == "csr" else X


def objective(coef, intercept, X, y, C, l1_ratio, sample_weight):
    """:func:`naive.objective` with scikit-learn's ``C`` and ``l1_ratio``, labels as given."""
    return naive.objective(
        coef, intercept, X, y, sample_weight, C=C, l1_ratio=l1_ratio, classes=np.unique(y)
    )


def smooth_gradient(coef, intercept, X, y, C, l1_ratio, sample_weight):
    """Gradient of the objective without its L1 term: ``(grad_coef, grad_intercept)``.

    Shapes are those of ``coef_`` (2-D) and ``intercept_``.
    """
    coef = np.atleast_2d(np.asarray(coef, dtype=np.float64))
    scores = X @ coef.T + np.asarray(intercept, dtype=np.float64)
    y_idx = np.searchsorted(np.unique(y), y)
    if coef.shape[0] == 1:
        residual = (1.0 / (1.0 + np.exp(-scores[:, 0])) - (y_idx == 1))[:, None]
    else:
        residual = np.exp(scores - logsumexp(scores, axis=1, keepdims=True))
        residual[np.arange(y.shape[0]), y_idx] -= 1.0
    total = sample_weight.sum()
    weighted = residual * sample_weight[:, None] / total
    grad_coef = weighted.T @ X + (1 - l1_ratio) / (C * total) * coef
    return grad_coef, weighted.sum(axis=0)


def largest_minimal_subgradient(coef, intercept, X, y, C, l1_ratio, sample_weight):
    """The largest entry of the subgradient of smallest magnitude (intercepts included).

    0 exactly at the optimum: where a weight is non-zero, the smooth gradient
    plus ``l1 sign(w)``; where it is zero, the smooth gradient shrunk by
    ``l1`` towards 0.
    """
    grad_coef, grad_intercept = smooth_gradient(coef, intercept, X, y, C, l1_ratio, sample_weight)
    l1 = l1_ratio / (C * sample_weight.sum())
    coef = np.atleast_2d(coef)
    minimal = np.where(
        coef != 0,
        grad_coef + l1 * np.sign(coef),
        np.sign(grad_coef) * np.maximum(np.abs(grad_coef) - l1, 0.0),
    )
    return max(np.abs(minimal).max(), np.abs(grad_intercept).max())


@functools.cache
def sklearn_optimum(name, penalty):
    """``(coef, intercept, objective value)`` of scikit-learn on :func:`problem` ``name``.

    lbfgs for ``"l2"``, saga for ``"l1"`` and ``"elasticnet"``, both at ``tol=1e-10``.
    """
    X, y, sw, C = problem(name)
    ratio = L1_RATIO[penalty]
    if penalty == "l2":
        model = SkLogisticRegression(C=C, tol=1e-10, max_iter=10_000)
    else:
        model = SkLogisticRegression(
            solver="saga", l1_ratio=ratio, C=C, tol=1e-10, max_iter=100_000
        )
    model.fit(X, y, sample_weight=sw)
    value = objective(model.coef_, model.intercept_, X, y, C, ratio, sw)
    return model.coef_.copy(), model.intercept_.copy(), value
