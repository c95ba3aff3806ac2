"""The seed algorithms, in plain Python and pure NumPy.

These are the baselines of every benchmark and the oracles of the tests: they
follow seed 002 step by step, with its four pseudo-code errors corrected
(``dz = a - y`` per example, each weight uses its own feature, ``b -= alpha * db``,
and ``db`` divided by m). Examples are rows: X has shape (m, n_features).
The sigmoid and the loss use the numerically stable forms, so they stay
finite for every finite score.
"""

import math

import numpy as np


def _sigmoid(z):
    """Stable scalar sigmoid."""
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


def _cost(z, y):
    """Cross-entropy -(y log a + (1 - y) log(1 - a)) = log(1 + exp(z)) - y z, stably."""
    return max(z, 0.0) + math.log1p(math.exp(-abs(z))) - y * z


def python_loop_gradient(X, y, coef, intercept):
    """Seed 002's per-example loop in plain Python.

    Parameters
    ----------
    X : array-like of shape (m, n_features)
    y : array-like of shape (m,)
        0/1 targets.
    coef : array-like of shape (n_features,)
    intercept : float

    Returns
    -------
    grad_coef : ndarray of shape (n_features,)
    grad_intercept : float
    loss : float
        The mean cross-entropy J.
    """
    rows = np.asarray(X, dtype=float).tolist()
    targets = np.asarray(y, dtype=float).tolist()
    w = np.asarray(coef, dtype=float).tolist()
    b = float(intercept)
    m, n = len(rows), len(w)
    J, dw, db = 0.0, [0.0] * n, 0.0
    for i in range(m):
        x = rows[i]
        z = sum(w[k] * x[k] for k in range(n)) + b
        a = _sigmoid(z)
        J += _cost(z, targets[i])
        dz = a - targets[i]
        for k in range(n):
            dw[k] += x[k] * dz
        db += dz
    return np.array(dw) / m, db / m, J / m


def numpy_sigmoid(z):
    """Stable elementwise sigmoid in NumPy."""
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0, e) / (1.0 + e)


def numpy_gradient(X, y, coef, intercept):
    """Seed 002's vectorized algorithm in pure NumPy (examples as rows).

    Z = X w + b, A = sigma(Z), dZ = A - Y, dw = X^T dZ / m, db = sum(dZ) / m.
    Parameters and returns as :func:`python_loop_gradient`; arrays keep X's
    float dtype.
    """
    X = np.asarray(X)
    m = X.shape[0]
    Z = X @ coef + intercept
    A = numpy_sigmoid(Z)
    dZ = A - y
    dw = X.T @ dZ / m
    db = np.sum(dZ) / m
    J = np.mean(np.logaddexp(0, Z) - y * Z)
    return dw, db, J


def numpy_fit(X, y, learning_rate, n_iter):
    """Full-batch gradient descent in pure NumPy: the seed's update in a loop.

    Parameters
    ----------
    X : array-like of shape (m, n_features)
    y : array-like of shape (m,)
        0/1 targets.
    learning_rate : float
        The step alpha.
    n_iter : int
        Number of full-batch steps from w = 0, b = 0.

    Returns
    -------
    coef : ndarray of shape (n_features,)
    intercept : float
    """
    X = np.asarray(X)
    coef = np.zeros(X.shape[1], dtype=X.dtype)
    intercept = 0.0
    for _ in range(n_iter):
        dw, db, _ = numpy_gradient(X, y, coef, intercept)
        coef = coef - learning_rate * dw
        intercept = intercept - learning_rate * db
    return coef, intercept
