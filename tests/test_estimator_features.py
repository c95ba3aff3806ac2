"""The full estimator: multiclass, L1/elastic-net, class weights, sparse X, online training.

Every optimum is compared with scikit-learn's ``LogisticRegression`` through
one float64 objective (:func:`naive.objective`), the function both minimize
divided by ``C S``.
Tolerances: lbfgs converges to the exact optimum, so 1e-6 relative (the
issue's figure), and with L1 (OWL-QN) at tol=1e-10 to 1e-8; gd runs a fixed
number of iterations and is held to 1e-4; stochastic solvers to 1% (their
noise floor at a fixed budget).
"""

import functools

import naive
import numpy as np
import pytest
import scipy.sparse
from sklearn.datasets import load_digits, load_iris, load_wine
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression as SkLogisticRegression

import fastlr

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


DATASETS = {"iris": load_iris, "wine": load_wine, "digits": load_digits}


def sklearn_fit(X, y, **params):
    """scikit-learn's optimum at a tight tolerance."""
    params = {"tol": 1e-10, "max_iter": 100_000, **params}
    return SkLogisticRegression(**params).fit(X, y)


def gap(model, reference, X, y, C=1.0, l1_ratio=0.0):
    """Relative objective gap of ``model`` over ``reference`` (both fitted)."""

    def value(fitted):
        return naive.objective(
            fitted.coef_,
            fitted.intercept_,
            X,
            y,
            C=C,
            l1_ratio=l1_ratio,
            classes=reference.classes_,
        )

    best = value(reference)
    return (value(model) - best) / best


@pytest.mark.parametrize("name", list(DATASETS))
def test_multinomial_lbfgs_reaches_sklearn_optimum(name):
    X, y = naive.standardized(DATASETS[name])
    reference = sklearn_fit(X, y)
    model = fastlr.LogisticRegression(tol=1e-10, max_iter=10_000).fit(X, y)
    assert model.coef_.shape == (len(np.unique(y)), X.shape[1])
    assert model.intercept_.shape == (len(np.unique(y)),)
    assert abs(gap(model, reference, X, y)) <= 1e-6
    np.testing.assert_allclose(model.predict_proba(X), reference.predict_proba(X), atol=1e-4)


@pytest.mark.parametrize(
    "params",
    [
        dict(solver="gd", max_iter=3000, tol=None),
        dict(solver="sgd", max_iter=100, tol=None, random_state=0),
        dict(solver="minibatch", batch_size=16, max_iter=300, tol=None, random_state=0),
    ],
    ids=["gd", "sgd", "minibatch"],
)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_multinomial_first_order_solvers_reach_one_percent(params, dtype):
    X, y = naive.standardized(load_iris)
    reference = sklearn_fit(X, y)
    model = fastlr.LogisticRegression(**params).fit(X.astype(dtype), y)
    assert model.coef_.dtype == dtype
    assert -1e-10 <= gap(model, reference, X, y) <= 1e-2


def test_multinomial_predictions_follow_classes():
    X, y = naive.standardized(load_iris)
    labels = np.array(["setosa", "versicolor", "virginica"])[y]
    model = fastlr.LogisticRegression().fit(X, labels)
    np.testing.assert_array_equal(model.classes_, ["setosa", "versicolor", "virginica"])
    proba = model.predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-12)
    np.testing.assert_array_equal(model.predict(X), model.classes_[proba.argmax(axis=1)])
    np.testing.assert_allclose(np.exp(model.predict_log_proba(X)), proba, rtol=1e-10)
    assert model.decision_function(X).shape == (150, 3)
    assert model.score(X, labels) > 0.9


@pytest.fixture(scope="module")
def cancer_saga(breast_cancer):
    """``cancer_saga(l1_ratio)``: saga's optimum on breast cancer at C=0.1, computed once each."""
    X, y = breast_cancer

    @functools.cache
    def fit(l1_ratio):
        return sklearn_fit(X, y, solver="saga", C=0.1, l1_ratio=l1_ratio, tol=1e-12)

    return fit


@pytest.mark.parametrize("l1_ratio", [1.0, 0.5])
def test_l1_and_elasticnet_gd_reach_saga_optimum(breast_cancer, cancer_saga, l1_ratio):
    X, y = breast_cancer
    C = 0.1
    reference = cancer_saga(l1_ratio)
    model = fastlr.LogisticRegression(
        solver="gd", l1_ratio=l1_ratio, C=C, max_iter=20_000, tol=None
    ).fit(X, y)
    assert abs(gap(model, reference, X, y, C=C, l1_ratio=l1_ratio)) <= 1e-4
    # The same features are switched off (clear zeros of the reference).
    clearly_zero = np.abs(reference.coef_[0]) < 1e-8
    assert clearly_zero.sum() >= 5
    np.testing.assert_array_equal(model.coef_[0][clearly_zero], 0.0)


@pytest.mark.parametrize("solver", ["sgd", "minibatch"])
def test_l1_stochastic_solvers_reach_one_percent_and_sparsity(breast_cancer, cancer_saga, solver):
    X, y = breast_cancer
    C = 0.1
    reference = cancer_saga(1.0)
    model = fastlr.LogisticRegression(
        solver=solver, l1_ratio=1, C=C, max_iter=200, tol=None, random_state=0, batch_size=32
    ).fit(X, y)
    assert -1e-10 <= gap(model, reference, X, y, C=C, l1_ratio=1.0) <= 1e-2
    assert np.sum(model.coef_ == 0) >= 5


@pytest.mark.parametrize("l1_ratio", [1.0, 0.5])
def test_l1_and_elasticnet_lbfgs_reach_saga_optimum_exactly(breast_cancer, cancer_saga, l1_ratio):
    """OWL-QN to tol=1e-10 on the pseudo-gradient: the exact optimum (1e-8), the same zeros."""
    X, y = breast_cancer
    C = 0.1
    reference = cancer_saga(l1_ratio)
    model = fastlr.LogisticRegression(l1_ratio=l1_ratio, C=C, max_iter=1000, tol=1e-10).fit(X, y)
    assert abs(gap(model, reference, X, y, C=C, l1_ratio=l1_ratio)) <= 1e-8
    np.testing.assert_array_equal(model.coef_ == 0, reference.coef_ == 0)
    assert np.sum(model.coef_ == 0) >= 5


def test_elasticnet_needs_l1_ratio(breast_cancer):
    X, y = breast_cancer
    for solver in ("lbfgs", "gd"):
        model = fastlr.LogisticRegression(solver=solver, penalty="elasticnet", l1_ratio=None)
        with pytest.raises(ValueError, match=r"elasticnet' needs l1_ratio"):
            model.fit(X, y)


@pytest.mark.parametrize("class_weight", ["balanced", {0: 3.0, 1: 0.5}])
def test_class_weight_matches_sklearn(breast_cancer, class_weight):
    X, y = breast_cancer
    sw = np.random.default_rng(0).integers(1, 4, size=len(y)).astype(float)
    reference = sklearn_fit(X, y, class_weight=class_weight)
    model = fastlr.LogisticRegression(class_weight=class_weight, tol=1e-10, max_iter=1000)
    model.fit(X, y)
    np.testing.assert_allclose(model.coef_, reference.coef_, rtol=1e-4, atol=1e-6)
    reference = sklearn_fit(X, y, class_weight=class_weight).fit(X, y, sample_weight=sw)
    model.fit(X, y, sample_weight=sw)
    np.testing.assert_allclose(model.coef_, reference.coef_, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("solver", ["lbfgs", "gd", "sgd", "minibatch"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_csr_input_gives_the_dense_model(breast_cancer, solver, dtype):
    X, y = breast_cancer
    X = np.where(np.abs(X) < 0.5, 0.0, X).astype(dtype)  # ~40% zeros
    params = dict(solver=solver, max_iter=20, tol=None, random_state=0, shuffle=True)
    dense = fastlr.LogisticRegression(**params).fit(X, y)
    sparse = fastlr.LogisticRegression(**params).fit(scipy.sparse.csr_matrix(X), y)
    assert sparse.coef_.dtype == dtype
    rtol = 1e-9 if dtype == np.float64 else 1e-4
    np.testing.assert_allclose(sparse.coef_, dense.coef_, rtol=rtol, atol=rtol * 1e-2)
    np.testing.assert_allclose(
        sparse.predict_proba(scipy.sparse.csr_matrix(X)), dense.predict_proba(X), atol=rtol
    )


@pytest.mark.parametrize("solver, batch_size", [("sgd", 1), ("minibatch", 25)])
def test_partial_fit_over_chunks_equals_one_epoch_of_fit(breast_cancer, solver, batch_size):
    X, y = breast_cancer
    X, y = X[:500], y[:500]
    params = dict(
        solver=solver, alpha=1e-3, shuffle=False, learning_rate="optimal", batch_size=batch_size
    )
    fit = fastlr.LogisticRegression(max_iter=1, tol=None, **params).fit(X, y)
    online = fastlr.LogisticRegression(**params)
    for rows in np.split(np.arange(500), 4):
        online.partial_fit(X[rows], y[rows], classes=[0, 1])
    np.testing.assert_allclose(online.coef_, fit.coef_, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(online.intercept_, fit.intercept_, rtol=1e-12)
    assert online.t_ == fit.t_ == (500 if solver == "sgd" else 20)


def test_partial_fit_needs_classes_and_known_labels(breast_cancer):
    X, y = breast_cancer
    model = fastlr.LogisticRegression(solver="sgd")
    with pytest.raises(ValueError, match="first call to partial_fit needs classes="):
        model.partial_fit(X, y)
    model.partial_fit(X, y, classes=[0, 1])
    with pytest.raises(ValueError, match=r"labels not in classes_: \[2\]"):
        model.partial_fit(X[:3], [0, 1, 2])
    assert not hasattr(fastlr.LogisticRegression(solver="lbfgs"), "partial_fit")


def test_warm_start_continues_from_the_previous_solution(breast_cancer):
    X, y = breast_cancer
    model = fastlr.LogisticRegression(warm_start=True, tol=1e-8, max_iter=1000).fit(X, y)
    first = model.n_iter_[0]
    model.fit(X, y)
    assert model.n_iter_[0] < first / 4
    cold = fastlr.LogisticRegression(tol=1e-8, max_iter=1000).fit(X, y)
    assert cold.n_iter_[0] == first


def test_early_stopping_watches_a_held_out_score(breast_cancer):
    X, y = breast_cancer
    params = dict(
        solver="sgd", early_stopping=True, validation_fraction=0.2, random_state=0, max_iter=500
    )
    model = fastlr.LogisticRegression(**params).fit(X, y)
    scores = model.history_["validation_score"]
    assert len(scores) == model.n_iter_[0] < 500
    best = scores.max()
    # The last n_iter_no_change epochs did not beat the best score by tol.
    assert np.all(scores[-5:] <= best)
    again = fastlr.LogisticRegression(**params).fit(X, y)
    np.testing.assert_array_equal(again.coef_, model.coef_)


def test_max_iter_warning_for_multinomial(breast_cancer):
    X, y = naive.standardized(load_iris)
    with pytest.warns(ConvergenceWarning, match="^lbfgs failed to converge after 2 iterations"):
        fastlr.LogisticRegression(max_iter=2).fit(X, y)


def test_dataframe_input_records_feature_names(breast_cancer):
    pd = pytest.importorskip("pandas")
    X, y = breast_cancer
    frame = pd.DataFrame(X[:, :4], columns=["a", "b", "c", "d"])
    model = fastlr.LogisticRegression().fit(frame, y)
    np.testing.assert_array_equal(model.feature_names_in_, ["a", "b", "c", "d"])
    assert model.n_features_in_ == 4
    with pytest.warns(UserWarning, match="does not have valid feature names"):
        np.testing.assert_array_equal(model.predict(frame), model.predict(X[:, :4]))
    renamed = frame.rename(columns={"a": "z"})
    with pytest.raises(ValueError, match="feature names"):
        model.predict(renamed)


@pytest.mark.parametrize(
    "y",
    [
        np.array([1, 0, 1, 1]),
        np.array([-5, 3, 3, 120], dtype=np.int8),
        np.array([True, False, True]),
        np.array([3, 7, 10**9, 3]),  # wide range: np.unique
        np.array([2, 0, 2], dtype=np.uint64),
        np.array([2**63 + 1, 0, 2**63 + 1], dtype=np.uint64),  # past int64: np.unique
        np.array(["b", "a", "b"]),
        np.array([1.0, 0.0, 1.0, -3.0]),
        np.array([0.5, 0.0, 0.5]),  # fractions: np.unique
        np.array([1.0, np.nan, 1.0]),
        np.array([1e300, 0.0], dtype=np.float64),
        np.array([2.0, 1.0], dtype=np.float32),
    ],
)
def test_label_encoding_equals_np_unique(y):
    from fastlr._logistic import _integer_values, _unique_inverse

    classes, inverse = _unique_inverse(y, _integer_values(y))
    expected_classes, expected_inverse = np.unique(y, return_inverse=True)
    assert classes.dtype == expected_classes.dtype
    np.testing.assert_array_equal(classes, expected_classes)
    np.testing.assert_array_equal(inverse, expected_inverse)
