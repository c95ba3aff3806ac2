"""``fastlr.LogisticRegression``: the estimator contract and the optimum it reaches.

The optimum is measured by the penalized objective (``objective`` fixture) at
scikit-learn's solution (``sklearn_optimum``, solved to ``tol=1e-10``):

- lbfgs with ``tol=1e-8`` stops at a gradient entry of at most 1e-8; the
  objective is strongly convex (``mu >= 1 / (C n)``), so the gap is below
  ``||g||^2 / (2 mu)``: far under the 1e-6 relative asserted (measured:
  1e-13). In float32 the gradient itself carries rounding of order
  ``eps32 = 1.2e-7`` relative, so lbfgs stalls once its steps are lost in that
  noise; the gap is then a few eps32 (measured: 4e-8) and the bound is 1e-5.
- sgd and minibatch are first-order methods run for a fixed number of
  epochs (``tol=None``, fixed seeds): the bound is 1% relative, and the epochs
  are chosen so that the measured gap stays several times below it. gd
  (accelerated proximal gradient) runs with its defaults: it stops on the
  same gradient measure as lbfgs at ``tol=1e-4`` (measured gap: 7e-5).
"""

import functools
import pickle
import re
import warnings

import numba
import numpy as np
import pytest
from scipy.special import expit
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.linear_model import LogisticRegression as SkLogisticRegression
from sklearn.utils.estimator_checks import parametrize_with_checks

import fastlr
import fastlr._logistic

SOLVERS = ["lbfgs", "gd", "sgd", "minibatch"]
EPOCH_SOLVERS = ["gd", "sgd", "minibatch"]
# Solvers whose tol is the loss-improvement rule of scikit-learn's SGD.
STOCHASTIC_SOLVERS = ["sgd", "minibatch"]
DTYPES = [np.float32, np.float64]

# Settings that bring each solver within 1% of the optimum on breast cancer (C=1).
FIRST_ORDER = {
    "gd": dict(solver="gd"),
    "sgd": dict(solver="sgd", max_iter=100, tol=None, random_state=0),
    "minibatch": dict(solver="minibatch", batch_size=32, max_iter=200, tol=None, random_state=0),
}


def relative_gap(model, X, y, reference_value, objective, C=1.0, sample_weight=None):
    """``(f(model) - f*) / f*`` with the float64 objective."""
    value = objective(model.coef_, model.intercept_, X, y, C, sample_weight)
    return (value - reference_value) / reference_value


@pytest.fixture(scope="module")
def fitted(breast_cancer):
    """lbfgs on breast cancer with the default settings."""
    return fastlr.LogisticRegression().fit(*breast_cancer)


@pytest.fixture(scope="module")
def lbfgs(breast_cancer):
    """``lbfgs(C=1.0, dtype=np.float64)``: lbfgs to ``tol=1e-8`` on breast cancer, cached."""
    X, y = breast_cancer

    @functools.cache
    def fit(C=1.0, dtype=np.float64):
        return fastlr.LogisticRegression(C=C, tol=1e-8, max_iter=1000).fit(X.astype(dtype), y)

    return fit


# --------------------------------------------------------------------------
# The optimum, against scikit-learn.
# --------------------------------------------------------------------------


@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-6), (np.float32, 1e-5)])
@pytest.mark.parametrize("C", [0.1, 1.0, 10.0])
def test_lbfgs_reaches_sklearn_optimum(
    breast_cancer, sklearn_optimum, objective, lbfgs, C, dtype, rtol
):
    X, y = breast_cancer
    _, _, best, _ = sklearn_optimum("breast_cancer", C)
    assert relative_gap(lbfgs(C, dtype), X, y, best, objective, C) <= rtol


def test_lbfgs_coefficients_match_sklearn(sklearn_optimum, lbfgs):
    coef, intercept, _, _ = sklearn_optimum("breast_cancer")
    model = lbfgs()
    # Relative to the largest coefficient: small entries are set by the same tolerance.
    scale = np.abs(coef).max()
    np.testing.assert_allclose(model.coef_[0], coef, rtol=1e-4, atol=1e-4 * scale)
    np.testing.assert_allclose(model.intercept_[0], intercept, rtol=1e-4, atol=1e-4 * scale)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("solver", EPOCH_SOLVERS)
def test_first_order_solvers_reach_one_percent_of_the_optimum(
    breast_cancer, sklearn_optimum, objective, solver, dtype
):
    X, y = breast_cancer
    _, _, best, _ = sklearn_optimum("breast_cancer")
    model = fastlr.LogisticRegression(**FIRST_ORDER[solver]).fit(X.astype(dtype), y)
    assert 0 <= relative_gap(model, X, y, best, objective) <= 1e-2


# Without a penalty there is no "optimal" schedule; each solver gets a step it can use.
UNPENALIZED = [
    pytest.param(dict(solver="lbfgs", tol=1e-8, max_iter=1000), 1e-6, id="lbfgs"),
    pytest.param(dict(solver="gd", max_iter=500, tol=None), 1e-2, id="gd"),
    pytest.param(
        dict(solver="sgd", learning_rate="invscaling", eta0=0.5, max_iter=50, tol=None),
        1e-2,
        id="sgd-invscaling",
    ),
    pytest.param(
        dict(solver="minibatch", batch_size=32, learning_rate="invscaling", eta0=1.0),
        1e-2,
        id="minibatch-invscaling",
    ),
]


@pytest.mark.parametrize("params, rtol", UNPENALIZED)
def test_unpenalized_optimum_matches_sklearn(
    small_problem, sklearn_optimum, objective, params, rtol
):
    X, y = small_problem
    _, _, best, _ = sklearn_optimum("small_problem", C=None)
    params = {"max_iter": 100, "tol": None, "random_state": 0, **params}
    model = fastlr.LogisticRegression(C=np.inf, **params).fit(X, y)
    assert relative_gap(model, X, y, best, objective, C=None) <= rtol


@pytest.mark.parametrize("batch_size", [32, 64])
def test_minibatch_default_schedule_reaches_the_unpenalized_optimum(
    small_problem, sklearn_optimum, objective, batch_size
):
    X, y = small_problem
    _, _, best, _ = sklearn_optimum("small_problem", C=None)
    model = fastlr.LogisticRegression(
        solver="minibatch", C=np.inf, batch_size=batch_size, max_iter=200, tol=None,
        random_state=0,
    ).fit(X, y)  # fmt: skip
    assert relative_gap(model, X, y, best, objective, C=None) <= 1e-2


def test_integer_sample_weights_equal_repeated_rows(breast_cancer, sklearn_optimum, objective):
    X, y = breast_cancer
    _, _, best, sw = sklearn_optimum("breast_cancer", sample_weight_seed=0)
    weighted = fastlr.LogisticRegression(tol=1e-8, max_iter=1000).fit(X, y, sample_weight=sw)
    assert relative_gap(weighted, X, y, best, objective, sample_weight=sw) <= 1e-6
    rows = np.repeat(np.arange(len(y)), sw)
    repeated = fastlr.LogisticRegression(tol=1e-8, max_iter=1000).fit(X[rows], y[rows])
    scale = np.abs(repeated.coef_).max()
    np.testing.assert_allclose(weighted.coef_, repeated.coef_, rtol=1e-5, atol=1e-5 * scale)
    np.testing.assert_allclose(weighted.intercept_, repeated.intercept_, atol=1e-5 * scale)


def test_no_intercept_matches_sklearn(breast_cancer, objective):
    X, y = breast_cancer
    reference = SkLogisticRegression(fit_intercept=False, tol=1e-10, max_iter=10000).fit(X, y)
    best = objective(reference.coef_, [0.0], X, y)
    for solver in SOLVERS:
        model = fastlr.LogisticRegression(
            solver=solver, fit_intercept=False, max_iter=5, tol=None
        ).fit(X, y)
        assert model.intercept_[0] == 0
    model = fastlr.LogisticRegression(fit_intercept=False, tol=1e-8, max_iter=1000).fit(X, y)
    assert relative_gap(model, X, y, best, objective) <= 1e-6


# --------------------------------------------------------------------------
# Labels and predictions.
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "labels",
    [np.array(["benign", "malignant"]), np.array([3, 7]), np.array([False, True])],
    ids=["str", "int", "bool"],
)
def test_any_two_labels_train_the_same_model(breast_cancer, fitted, labels):
    X, y = breast_cancer
    model = fastlr.LogisticRegression().fit(X, labels[y])
    np.testing.assert_array_equal(model.classes_, labels)
    np.testing.assert_array_equal(model.coef_, fitted.coef_)
    predicted = model.predict(X)
    assert predicted.dtype == labels.dtype
    np.testing.assert_array_equal(predicted, labels[fitted.predict(X)])
    assert model.score(X, labels[y]) == fitted.score(X, y)


def assert_probabilities_match_scores(model, X):
    """predict_proba and predict_log_proba against expit/logaddexp of the model's scores.

    One exp, one log1p and a division per entry: a few ulp of the exact values
    (16 eps allowed), plus the smallest normal number in absolute terms for
    probabilities that underflow to subnormals.
    """
    scores = model.decision_function(X)
    s = scores.astype(np.float64)
    finfo = np.finfo(X.dtype)
    proba = model.predict_proba(X)
    assert proba.shape == (X.shape[0], 2)
    assert np.isfinite(proba).all()
    expected = np.column_stack([expit(-s), expit(s)])
    np.testing.assert_allclose(proba, expected, rtol=16 * finfo.eps, atol=finfo.tiny)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=16 * finfo.eps)
    log_proba = model.predict_log_proba(X)
    assert np.isfinite(log_proba).all()
    expected = np.column_stack([-np.logaddexp(0, s), -np.logaddexp(0, -s)])
    np.testing.assert_allclose(log_proba, expected, rtol=16 * finfo.eps)
    np.testing.assert_array_equal(proba[:, 1] > 0.5, scores > 0)
    return scores


@pytest.mark.parametrize("dtype", DTYPES)
def test_predictions_follow_the_decision_function(breast_cancer, lbfgs, dtype):
    X, y = breast_cancer
    X = X.astype(dtype)
    model = lbfgs(1.0, dtype)
    scores = assert_probabilities_match_scores(model, X)
    assert scores.dtype == dtype
    # A dot product of d terms is within d eps of the sum of the terms' magnitudes.
    X64, coef64, intercept64 = X.astype(float), model.coef_[0].astype(float), model.intercept_[0]
    bound = X.shape[1] * np.finfo(dtype).eps * (np.abs(X64) @ np.abs(coef64) + abs(intercept64))
    assert (np.abs(scores - (X64 @ coef64 + intercept64)) <= bound).all()
    np.testing.assert_array_equal(model.predict(X), (scores > 0).astype(int))
    assert model.score(X, y) == np.mean(model.predict(X) == y)


@pytest.mark.parametrize("dtype", DTYPES)
def test_probabilities_stay_finite_for_huge_scores(breast_cancer, lbfgs, dtype):
    X = breast_cancer[0].astype(dtype) * dtype(1e6)  # scores ~1e7: exp(|s|) overflows
    scores = assert_probabilities_match_scores(lbfgs(1.0, dtype), X)
    assert np.abs(scores).max() > 1e6


def test_unfitted_model_raises_not_fitted(breast_cancer):
    model = fastlr.LogisticRegression()
    for method in ("predict", "predict_proba", "predict_log_proba", "decision_function"):
        with pytest.raises(NotFittedError, match="not fitted yet"):
            getattr(model, method)(breast_cancer[0])


# --------------------------------------------------------------------------
# Fitted attributes.
# --------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("solver", SOLVERS)
def test_fitted_attributes_have_the_documented_shapes_and_dtype(breast_cancer, solver, dtype):
    X, y = breast_cancer
    model = fastlr.LogisticRegression(solver=solver, max_iter=7, tol=None, random_state=0)
    model.fit(X.astype(dtype), y)
    assert model.coef_.shape == (1, 30) and model.coef_.dtype == dtype
    assert model.intercept_.shape == (1,) and model.intercept_.dtype == dtype
    assert model.n_features_in_ == 30
    np.testing.assert_array_equal(model.n_iter_, [7])
    loss, elapsed = model.history_["loss"], model.history_["time"]
    assert loss.shape == elapsed.shape == (7,)
    assert np.isfinite(loss).all()
    assert (elapsed >= 0).all() and (np.diff(elapsed) >= 0).all()


@pytest.mark.parametrize("solver", STOCHASTIC_SOLVERS)
def test_epoch_solvers_stop_after_n_iter_no_change_epochs_without_progress(breast_cancer, solver):
    tol, patience = 1e-3, 3
    model = fastlr.LogisticRegression(
        solver=solver, tol=tol, n_iter_no_change=patience, max_iter=1000, random_state=0
    ).fit(*breast_cancer)
    loss = model.history_["loss"]
    # scikit-learn's rule: stop at the first run of `patience` epochs whose loss is
    # not below the best earlier loss minus tol.
    stalled = 0
    for epoch in range(len(loss)):
        best = loss[:epoch].min(initial=np.inf)
        stalled = stalled + 1 if loss[epoch] > best - tol else 0
        if stalled == patience:
            break
    assert stalled == patience
    assert model.n_iter_[0] == epoch + 1 == len(loss)


def test_verbose_prints_one_line_per_epoch(breast_cancer, capsys):
    fastlr.LogisticRegression(solver="sgd", verbose=1, max_iter=3, tol=None).fit(*breast_cancer)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3
    for epoch, line in enumerate(lines, start=1):
        assert re.match(rf"\[sgd\] epoch {epoch}: loss [0-9.e+-]+, [0-9,]+ samples/s, ", line)
    fastlr.LogisticRegression(solver="sgd", max_iter=3, tol=None).fit(*breast_cancer)
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize("solver", SOLVERS)
def test_convergence_warning_names_solver_tol_and_max_iter(breast_cancer, solver):
    unit = "epochs" if solver in ("sgd", "minibatch") else "iterations"
    pattern = (
        rf"^{solver} failed to converge after 2 {unit} \(max_iter=2\).*tol=0.0001.*Increase "
        rf"max_iter"
    )
    with pytest.warns(ConvergenceWarning, match=pattern):
        fastlr.LogisticRegression(solver=solver, max_iter=2, random_state=0).fit(*breast_cancer)


@pytest.mark.parametrize("solver", SOLVERS)
def test_no_convergence_warning_when_tol_is_none(breast_cancer, solver):
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        fastlr.LogisticRegression(solver=solver, max_iter=2, tol=None).fit(*breast_cancer)


@pytest.mark.parametrize("solver", ["sgd", "minibatch"])
def test_random_state_makes_shuffling_reproducible(breast_cancer, solver):
    def fit(seed):
        params = dict(solver=solver, batch_size=16, max_iter=3, tol=None, random_state=seed)
        return fastlr.LogisticRegression(**params).fit(*breast_cancer)

    first, second, other = fit(0), fit(0), fit(1)
    np.testing.assert_array_equal(first.coef_, second.coef_)
    np.testing.assert_array_equal(first.intercept_, second.intercept_)
    assert not np.array_equal(first.coef_, other.coef_)


# --------------------------------------------------------------------------
# Threads, parameters, persistence, scikit-learn's estimator checks.
# --------------------------------------------------------------------------


@pytest.mark.parametrize("fails", [False, True], ids=["returns", "raises"])
def test_n_jobs_sets_numba_threads_during_fit_and_restores_them(breast_cancer, monkeypatch, fails):
    seen = []
    solve = fastlr._logistic.solve

    def recording_solve(*args, **kwargs):
        seen.append(numba.get_num_threads())
        if fails:
            raise RuntimeError("solver failed")
        return solve(*args, **kwargs)

    monkeypatch.setattr(fastlr._logistic, "solve", recording_solve)
    before = numba.get_num_threads()
    model = fastlr.LogisticRegression(n_jobs=1)
    if fails:
        with pytest.raises(RuntimeError, match="solver failed"):
            model.fit(*breast_cancer)
    else:
        model.fit(*breast_cancer)
    assert seen == [1]
    assert numba.get_num_threads() == before


def test_params_clone_and_pickle(breast_cancer, fitted):
    X, _ = breast_cancer
    model = fastlr.LogisticRegression(solver="sgd", C=0.5, random_state=3)
    params = model.get_params()
    assert params["solver"] == "sgd" and params["C"] == 0.5 and params["random_state"] == 3
    assert model.set_params(C=2.0, batch_size=8) is model
    assert (model.C, model.batch_size) == (2.0, 8)
    copy = clone(model)
    assert copy is not model and copy.get_params() == model.get_params()
    restored = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(restored.predict_proba(X), fitted.predict_proba(X))
    np.testing.assert_array_equal(restored.coef_, fitted.coef_)


def expected_failed_checks(estimator):
    """scikit-learn checks that cannot hold for a solver, with the reason."""
    if estimator.solver == "sgd":
        return {
            "check_sample_weight_equivalence_on_dense_data": (
                "per-example SGD takes one step per row: a row of weight 2 is one "
                "step of twice the size, not two steps (scikit-learn's SGDClassifier "
                "fails this check for the same reason)"
            ),
            "check_sample_weight_equivalence_on_sparse_data": (
                "as on dense data: one weighted step is not two repeated steps"
            ),
        }
    return {}


@parametrize_with_checks(
    [fastlr.LogisticRegression(solver=solver, random_state=0) for solver in SOLVERS],
    expected_failed_checks=expected_failed_checks,
)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)
