"""sgd and minibatch with their defaults: the "auto" schedule and the final check.

The schedule is checked against the steps its docstring states (computed
here from the data: row norms, and the Gram matrix's largest eigenvalue by
``numpy.linalg.eigvalsh``) and against :func:`naive.naive_sgd_epoch`; its
purpose, a first step that cannot explode with ``n``, against scikit-learn's
``SGDClassifier`` defaults; the final check against the optimum of lbfgs.
"""

import re
import warnings

import naive
import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import SGDClassifier

import fastlr
from fastlr import _solvers

H = _solvers.AUTO_HALVING_SAMPLES


def logistic_data(n, d, seed=0):
    """Gaussian rows, labels drawn from a logistic model."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    scores = X @ (rng.standard_normal(d) * 3 / np.sqrt(d)) + 0.5
    return X, (rng.random(n) < 1 / (1 + np.exp(-scores))).astype(np.int64)


def per_sample_smoothness(X, sw, curvature, alpha):
    """sgd's ``L1``: the mean of ``curvature s_i (||x_i||^2 + 1)``, plus alpha."""
    return curvature * np.mean(sw * (np.einsum("ij,ij->i", X, X) + 1.0)) + alpha


def minibatch_smoothness(X, sw, curvature, alpha, batch):
    """``L(B)`` of Gower et al. from the exact largest eigenvalue of ``A^T W A / S``."""
    n, total = X.shape[0], sw.sum()
    A = np.hstack([X, np.ones((n, 1))])
    full = curvature * np.linalg.eigvalsh(A.T @ (A * sw[:, None]) / total)[-1] + alpha
    largest = curvature * np.max(sw * n / total * (np.einsum("ij,ij->i", A, A))) + alpha
    return (n * (batch - 1) * full + (n - batch) * largest) / (batch * (n - 1))


def test_harmonic_schedule_halves_after_t0_updates():
    from fastlr.kernels import steps

    eta0, t0 = 0.2, 40.0
    assert steps.learning_rate(steps.HARMONIC, 1.0, eta0, 0.5, 0.01, t0) == eta0
    assert steps.learning_rate(steps.HARMONIC, 41.0, eta0, 0.5, 0.01, t0) == pytest.approx(0.1)
    assert steps.learning_rate(steps.HARMONIC, 9e9, eta0, 0.5, 0.01, np.inf) == eta0


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("C", [1.0, 100.0])
def test_sgd_auto_schedule_takes_the_steps_it_states(breast_cancer, weighted, C):
    """``eta0 / (1 + (t - 1) / t0)``, ``eta0 = 1 / L1``, ``t0 = min(L1 / alpha, H)``:
    C = 100 makes ``L1 / alpha`` exceed ``H``."""
    X, y = breast_cancer
    n = X.shape[0]
    sw = np.random.default_rng(3).integers(1, 4, n).astype(float) if weighted else np.ones(n)
    alpha = 1.0 / (C * sw.sum())
    smooth = per_sample_smoothness(X, sw, 0.25, alpha)
    t0 = min(smooth / alpha, H)
    assert (t0 == H) == (C == 100.0)
    model = fastlr.LogisticRegression(solver="sgd", C=C, shuffle=False, max_iter=2, tol=None)
    model.fit(X, y, sample_weight=sw if weighted else None)
    state = model._partial_state.state
    assert state.eta0 == pytest.approx(1.0 / smooth, rel=1e-12)
    assert state.t0 == pytest.approx(t0, rel=1e-12)

    def eta(t):
        return (1.0 / smooth) / (1.0 + (t - 1.0) / t0)

    coef, intercept, t = np.zeros(X.shape[1]), 0.0, 1
    for _ in range(2):
        epoch = naive.naive_sgd_epoch(
            X, y, np.arange(n), coef, intercept, alpha, eta, sw=sw if weighted else None, t=t
        )
        coef, intercept, t = epoch.coef, epoch.intercept, epoch.t
    np.testing.assert_allclose(model.coef_[0], coef, rtol=1e-9, atol=1e-12)
    assert model.intercept_[0] == pytest.approx(intercept, rel=1e-9)


@pytest.mark.parametrize(("batch_size", "C"), [(32, 1.0), (256, 1.0), (32, 1e4), (1000, 1.0)])
def test_minibatch_auto_rate_is_the_stated_one(breast_cancer, batch_size, C):
    """``eta0 = 1 / L(B)``; ``t0 = min(L(B) / alpha, H (L(B) / L1) (n - 1) / (n - B))``
    batches; full batches (B >= n) keep their step."""
    X, y = breast_cancer
    n = X.shape[0]
    sw = np.ones(n)
    alpha = 1.0 / (C * n)
    batch = min(batch_size, n)
    smooth = minibatch_smoothness(X, sw, 0.25, alpha, batch)
    model = fastlr.LogisticRegression(
        solver="minibatch", C=C, batch_size=batch_size, max_iter=1, tol=None, random_state=0
    ).fit(X, y)
    state = model._partial_state.state
    # The power iteration stops at a relative change of 1e-3.
    assert state.eta0 == pytest.approx(1.0 / smooth, rel=2e-3)
    if batch >= n:
        assert state.t0 == np.inf
        return
    per_sample = per_sample_smoothness(X, sw, 0.25, alpha)
    noise = H * (smooth / per_sample) * (n - 1) / (n - batch)
    assert state.t0 == pytest.approx(min(smooth / alpha, noise), rel=2e-3)
    assert (noise < smooth / alpha) == (C == 1e4)


def test_partial_fit_keeps_the_rate_of_its_first_call(breast_cancer):
    X, y = breast_cancer
    model = fastlr.LogisticRegression(solver="sgd", alpha=1e-3, random_state=0)
    model.partial_fit(X[:300], y[:300], classes=[0, 1])
    first = model._partial_state.state
    eta0, t0 = first.eta0, first.t0
    model.partial_fit(X[300:], y[300:])
    state = model._partial_state.state
    assert (state.eta0, state.t0) == (eta0, t0) and state.t == 570.0


def training_loss(model, X, y):
    z = X @ model.coef_.ravel() + model.intercept_[0]
    return float(np.mean(np.logaddexp(0.0, z) - y * z))


@pytest.mark.parametrize("epochs", [1, 3])
def test_default_schedules_do_not_blow_up_with_n(epochs):
    """The issue's problem at a test's size: with C = 1 on many rows (alpha = 1 / n),
    scikit-learn's "optimal" steps (the former default) start at alpha ** -0.25 and
    decay as 1 / (alpha t): the loss ends far above SGDClassifier's (alpha = 1e-4).
    The defaults end below it."""
    X, y = logistic_data(20_000, 20)
    common = dict(max_iter=epochs, tol=None, random_state=0)
    reference = training_loss(SGDClassifier(loss="log_loss", **common).fit(X, y), X, y)
    optimal = fastlr.LogisticRegression(solver="sgd", learning_rate="optimal", **common)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # it may say it diverged
        optimal.fit(X, y)
    assert training_loss(optimal, X, y) > 1.5 * reference
    for solver in ("sgd", "minibatch"):
        model = fastlr.LogisticRegression(solver=solver, **common).fit(X, y)
        assert training_loss(model, X, y) <= reference


def relative_gap(model, X, y, C):
    """``(f(model) - f*) / f*`` against lbfgs at tol=1e-10 (naive.objective)."""
    best = fastlr.LogisticRegression(C=C, tol=1e-10, max_iter=10_000).fit(X, y)
    classes = np.unique(y)

    def value(m):
        return naive.objective(m.coef_, m.intercept_, X, y, C=C, classes=classes)

    return (value(model) - value(best)) / value(best)


def fit_recording(X, y, **params):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        model = fastlr.LogisticRegression(random_state=0, **params).fit(X, y)
    return model, [str(w.message) for w in caught if issubclass(w.category, ConvergenceWarning)]


@pytest.mark.parametrize(
    ("data", "solver", "C"), [("breast_cancer", "sgd", 1.0), ("iris", "minibatch", 0.1)]
)
def test_a_default_fit_within_one_percent_says_nothing(breast_cancer, data, solver, C):
    X, y = breast_cancer if data == "breast_cancer" else naive.standardized(load_iris)
    model, messages = fit_recording(X, y, solver=solver, C=C)
    assert messages == []
    assert 0 <= relative_gap(model, X, y, C) <= 0.01


@pytest.mark.parametrize(("data", "C"), [("breast_cancer", 1.0), ("iris", 1.0)])
def test_a_default_fit_far_from_the_optimum_warns_with_its_distance(breast_cancer, data, C):
    """minibatch of 256 rows on a few hundred is slow gradient descent: the objective
    stays several percent above the optimum's when the loss stops improving by tol
    (breast cancer), or at max_iter (iris)."""
    X, y = breast_cancer if data == "breast_cancer" else naive.standardized(load_iris)
    model, messages = fit_recording(X, y, solver="minibatch", C=C)
    (message,) = messages
    start = {
        "breast_cancer": "minibatch failed to converge: its loss changed by less than tol",
        "iris": "minibatch failed to converge after 100 epochs (max_iter=100)",
    }[data]
    assert message.startswith(start)
    found = re.search(r"at least (\d+\.\d+)% above the optimum's \(L-BFGS run from", message)
    assert found and "use solver='lbfgs'" in message
    gap = relative_gap(model, X, y, C)
    assert 0.01 < float(found.group(1)) / 100 <= gap * (1 + 1e-6)


def test_max_iter_warning_names_the_distance(breast_cancer):
    X, y = breast_cancer
    model, messages = fit_recording(X, y, solver="sgd", max_iter=3)
    (message,) = messages
    pattern = (
        r"^sgd failed to converge after 3 epochs \(max_iter=3\) before its loss changed by less "
        r"than tol=0\.0001 for 5 epochs; its objective is at least (\d+\.\d+)% above the "
        r"optimum's"
    )
    found = re.match(pattern, message)
    assert found and float(found.group(1)) / 100 <= relative_gap(model, X, y, 1.0)


def test_no_check_with_early_stopping_or_without_tol(breast_cancer):
    X, y = breast_cancer
    _, messages = fit_recording(
        X, y, solver="minibatch", early_stopping=True, n_iter_no_change=1, max_iter=50
    )
    assert messages == []  # stopped by the validation score, far from the optimum
    _, messages = fit_recording(X, y, solver="minibatch", tol=None, max_iter=3)
    assert messages == []
