"""scikit-learn's current API where fastlr followed an older one.

``l1_ratio`` and ``C=np.inf`` choose the penalty (scikit-learn >= 1.8),
``penalty`` is deprecated with scikit-learn's warnings, ``max_iter=0``
returns the starting point, ``sparsify``/``densify`` are scikit-learn's
``SparseCoefMixin`` methods, and the ConvergenceWarning starts with the words
scikit-learn's does. The references are scikit-learn's estimators (their
optima at ``tol=1e-10``, the warnings they give for the same parameters).
"""

import re
import warnings

import naive
import numpy as np
import pytest
import scipy.sparse
from sklearn.datasets import load_iris
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.linear_model import LogisticRegression as SkLogisticRegression
from sklearn.linear_model import SGDClassifier

import fastlr
from fastlr import cli

SOLVERS = ["lbfgs", "gd", "sgd", "minibatch"]
STOCHASTIC = dict(max_iter=5, tol=None, random_state=0)


def params_for(solver):
    """Settings of a quick, reproducible fit with ``solver``."""
    return dict(solver=solver, **(STOCHASTIC if solver in ("sgd", "minibatch") else {}))


def recorded(call):
    """``call()``'s result and its warnings other than ConvergenceWarning, as (category, text)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = call()
    found = [(w.category, str(w.message)) for w in caught]
    return result, [(c, text) for c, text in found if not issubclass(c, ConvergenceWarning)]


# --------------------------------------------------------------------------
# l1_ratio and C choose the penalty
# --------------------------------------------------------------------------


def test_l1_ratio_one_fits_l1_not_l2(breast_cancer):
    """The issue's reproducer: ``l1_ratio=1`` was silently the L2 fit."""
    X, y = breast_cancer
    l1 = fastlr.LogisticRegression(solver="gd", l1_ratio=1, C=0.1).fit(X, y)
    l2 = fastlr.LogisticRegression(solver="gd", l1_ratio=0, C=0.1).fit(X, y)
    assert np.sum(l1.coef_ == 0) >= 5 and not np.any(l2.coef_ == 0)
    reference = SkLogisticRegression(solver="saga", l1_ratio=1, C=0.1, tol=1e-10, max_iter=10**5)
    reference.fit(X, y)

    def value(model):
        return naive.objective(model.coef_, model.intercept_, X, y, C=0.1, l1_ratio=1.0)

    # gd stops at its default tol=1e-4 on the proximal gradient mapping.
    assert value(l1) - value(reference) <= 1e-4 * value(reference)
    np.testing.assert_array_equal(l1.coef_ == 0, reference.coef_ == 0)


@pytest.mark.parametrize("solver", ["lbfgs", "gd"])
def test_C_inf_is_scikit_learns_unpenalized_optimum(small_problem, solver):
    X, y = small_problem
    model = fastlr.LogisticRegression(solver=solver, C=np.inf, tol=1e-10, max_iter=10_000)
    model.fit(X, y)
    reference = SkLogisticRegression(C=np.inf, tol=1e-10, max_iter=10_000).fit(X, y)
    best = naive.objective(reference.coef_, reference.intercept_, X, y)
    assert naive.objective(model.coef_, model.intercept_, X, y) - best <= 1e-10 * best
    np.testing.assert_allclose(model.coef_, reference.coef_, rtol=1e-5)


@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize(
    ("deprecated", "current"),
    [
        ({"penalty": "l2"}, {}),
        ({"penalty": "l1", "l1_ratio": 1}, {"l1_ratio": 1}),
        ({"penalty": "elasticnet", "l1_ratio": 0.3}, {"l1_ratio": 0.3}),
        ({"penalty": None}, {"C": np.inf}),
    ],
    ids=["l2", "l1", "elasticnet", "none"],
)
def test_deprecated_penalty_fits_what_l1_ratio_and_C_fit(
    small_problem, solver, deprecated, current
):
    X, y = small_problem
    base = dict(params_for(solver), C=0.5)  # penalty=None ignores it (and says so)
    new = fastlr.LogisticRegression(**{**base, **current}).fit(X, y)
    old, found = recorded(lambda: fastlr.LogisticRegression(**{**base, **deprecated}).fit(X, y))
    assert found[0][0] is FutureWarning
    assert found[0][1].startswith("'penalty' was deprecated in scikit-learn 1.8")
    np.testing.assert_array_equal(old.coef_, new.coef_)
    np.testing.assert_array_equal(old.intercept_, new.intercept_)


# Parameters, and a pattern each of fastlr's UserWarnings must match (None: none).
WARNING_CASES = [
    ({}, None),
    ({"penalty": "l2"}, None),
    ({"penalty": "elasticnet", "l1_ratio": 0.5}, None),
    ({"l1_ratio": None}, None),
    (
        {"penalty": "l1"},
        r"^Inconsistent values: penalty=l1 with l1_ratio=0\.0\. .* ignores l1_ratio=0\.0",
    ),
    (
        {"penalty": "l2", "l1_ratio": 0.5},
        r"^Inconsistent values: penalty=l2 with l1_ratio=0\.5\. .* ignores l1_ratio=0\.5",
    ),
    ({"penalty": None, "C": 0.5}, r"^Setting penalty=None will ignore the C .*: C=0\.5 is ignored"),
    ({"C": np.inf, "l1_ratio": 0.5}, r"^C=np\.inf means no penalty, which ignores l1_ratio=0\.5"),
]


@pytest.mark.parametrize(("params", "pattern"), WARNING_CASES)
def test_penalty_parameters_warn_as_scikit_learn_does(small_problem, params, pattern):
    """The same warning categories as scikit-learn's LogisticRegression (saga takes
    every penalty) for the same parameters; fastlr's name what is ignored."""
    X, y = small_problem
    _, ours = recorded(lambda: fastlr.LogisticRegression(**params).fit(X, y))
    sklearn = SkLogisticRegression(solver="saga", max_iter=5, **params)
    _, theirs = recorded(lambda: sklearn.fit(X, y))
    assert {c for c, _ in ours} == {c for c, _ in theirs}
    future = [text for c, text in ours if c is FutureWarning]
    if "penalty" in params:
        assert future[0].startswith("'penalty' was deprecated in scikit-learn 1.8")
    if params.get("l1_ratio", 0) is None:
        assert future[0].startswith("'l1_ratio=None' was deprecated in scikit-learn 1.8")
    users = [text for c, text in ours if c is UserWarning]
    assert len(users) == (pattern is not None)
    if pattern is not None:
        assert re.search(pattern, users[0])


def test_ignored_alpha_and_C_are_named(small_problem):
    X, y = small_problem
    for params, pattern in [
        ({"alpha": 1e-3, "C": 2.0}, r"^alpha=0\.001 sets the penalty strength and ignores C=2\.0"),
        ({"penalty": None, "alpha": 1e-3}, r"penalty=None will ignore .*: alpha=0\.001 is ignored"),
    ]:
        _, found = recorded(lambda params=params: fastlr.LogisticRegression(**params).fit(X, y))
        assert any(c is UserWarning and re.search(pattern, text) for c, text in found)


def test_alpha_overrides_C_inf(small_problem):
    X, y = small_problem
    model, _ = recorded(lambda: fastlr.LogisticRegression(alpha=0.01, C=np.inf).fit(X, y))
    same = fastlr.LogisticRegression(alpha=0.01).fit(X, y)
    np.testing.assert_array_equal(model.coef_, same.coef_)


def test_C_zero_or_negative_is_refused(small_problem):
    for C in (0.0, -1.0, np.nan):
        with pytest.raises(ValueError, match=r"'C' parameter .* range \(0\.0, inf\]"):
            fastlr.LogisticRegression(C=C).fit(*small_problem)


# --------------------------------------------------------------------------
# max_iter=0
# --------------------------------------------------------------------------


@pytest.mark.parametrize("solver", SOLVERS)
def test_max_iter_zero_returns_the_starting_point_as_scikit_learn(solver):
    """scikit-learn's newton-cholesky (as newton-cg) returns zeros and n_iter_ 0."""
    X, y = naive.standardized(load_iris)
    reference = SkLogisticRegression(solver="newton-cholesky", max_iter=0)
    with pytest.warns(ConvergenceWarning):
        reference.fit(X, y)
    model = fastlr.LogisticRegression(solver=solver, max_iter=0)
    pattern = rf"^{solver} failed to converge after 0 iterations: max_iter=0 returns the starting"
    with pytest.warns(ConvergenceWarning, match=pattern):
        model.fit(X, y)
    np.testing.assert_array_equal(model.coef_, reference.coef_)
    np.testing.assert_array_equal(model.intercept_, reference.intercept_)
    np.testing.assert_array_equal(model.n_iter_, reference.n_iter_)
    assert model.history_["loss"].shape == (0,)
    np.testing.assert_array_equal(model.predict_proba(X), 1.0 / 3.0)


@pytest.mark.parametrize("solver", SOLVERS)
def test_max_iter_zero_with_warm_start_keeps_the_model(breast_cancer, solver):
    X, y = breast_cancer
    model = fastlr.LogisticRegression(warm_start=True, **params_for(solver)).fit(X, y)
    coef, intercept = model.coef_.copy(), model.intercept_.copy()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # tol=None: no ConvergenceWarning either
        model.set_params(max_iter=0, tol=None).fit(X, y)
    np.testing.assert_array_equal(model.coef_, coef)
    np.testing.assert_array_equal(model.intercept_, intercept)
    assert model.n_iter_[0] == 0


def test_partial_fit_continues_a_max_iter_zero_fit(breast_cancer):
    X, y = breast_cancer
    model = fastlr.LogisticRegression(
        solver="sgd", max_iter=0, tol=None, alpha=1e-3, random_state=0
    ).fit(X, y)
    assert model.t_ == 0.0
    model.partial_fit(X, y)
    fresh = fastlr.LogisticRegression(solver="sgd", alpha=1e-3, random_state=0)
    fresh.partial_fit(X, y, classes=[0, 1])
    np.testing.assert_array_equal(model.coef_, fresh.coef_)


# --------------------------------------------------------------------------
# sparsify / densify
# --------------------------------------------------------------------------


@pytest.mark.parametrize("data", ["binary", "multinomial"])
@pytest.mark.parametrize("sparse_X", [False, True])
def test_sparsify_keeps_the_predictions(breast_cancer, data, sparse_X):
    X, y = breast_cancer if data == "binary" else naive.standardized(load_iris)
    model = fastlr.LogisticRegression(l1_ratio=1, C=0.1).fit(X, y)
    dense_coef = model.coef_.copy()
    expected = {m: getattr(model, m)(X) for m in ("decision_function", "predict_proba")}
    labels = model.predict(X)
    reference = SGDClassifier(max_iter=5, tol=None).fit(X, y).sparsify()
    assert model.sparsify() is model
    assert type(model.coef_) is type(reference.coef_)
    assert model.coef_.nnz == np.count_nonzero(dense_coef) < dense_coef.size
    X_in = scipy.sparse.csr_matrix(X) if sparse_X else X
    for method, values in expected.items():
        np.testing.assert_allclose(getattr(model, method)(X_in), values, rtol=1e-12, atol=1e-14)
    np.testing.assert_array_equal(model.predict(X_in), labels)
    assert model.score(X_in, y) == pytest.approx((labels == y).mean())
    assert model.densify() is model
    assert isinstance(model.coef_, np.ndarray)
    np.testing.assert_array_equal(model.coef_, dense_coef)


def test_sparsify_and_densify_need_a_fitted_model():
    for method, word in (("sparsify", "sparsifying"), ("densify", "densifying")):
        match = rf"Estimator, LogisticRegression, must be fitted before {word}\."
        with pytest.raises(NotFittedError, match=match):
            getattr(fastlr.LogisticRegression(), method)()


@pytest.mark.parametrize("solver", SOLVERS)
def test_training_from_a_sparse_coef_equals_training_from_the_dense_one(breast_cancer, solver):
    """warm_start (fit) and partial_fit continue from coef_, sparse or not."""
    X, y = breast_cancer
    params = dict(params_for(solver), l1_ratio=1, C=0.1, warm_start=True)

    def train(sparsify):
        model = fastlr.LogisticRegression(**params).fit(X, y)
        if sparsify:
            model.sparsify()
        model.fit(X[::2], y[::2])
        if solver in ("sgd", "minibatch"):
            if sparsify:
                model.sparsify()
            model.partial_fit(X, y)
        return model

    sparse, dense = train(True), train(False)
    assert isinstance(sparse.coef_, np.ndarray)
    np.testing.assert_array_equal(sparse.coef_, dense.coef_)


# --------------------------------------------------------------------------
# The ConvergenceWarning's first words
# --------------------------------------------------------------------------


@pytest.mark.parametrize("solver", SOLVERS)
def test_convergence_warning_starts_as_scikit_learns(breast_cancer, solver):
    """``"<solver> failed to converge"`` first, as scikit-learn's lbfgs warning
    starts: a filter written for scikit-learn's message catches fastlr's."""
    X, y = breast_cancer
    with pytest.warns(ConvergenceWarning) as theirs:
        SkLogisticRegression(max_iter=2).fit(X, y)
    assert str(theirs[0].message).startswith("lbfgs failed to converge")
    model = fastlr.LogisticRegression(solver=solver, max_iter=2, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.filterwarnings(
            "ignore", message=f"{solver} failed to converge", category=ConvergenceWarning
        )
        model.fit(X, y)


# --------------------------------------------------------------------------
# The command line and the Dask estimator take the same parameters
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        ([], {"l1_ratio": 0.0, "C": 1.0}),
        (["--l1-ratio", "0.4"], {"l1_ratio": 0.4, "C": 1.0}),
        (["--penalty", "l1", "--C", "0.5"], {"l1_ratio": 1.0, "C": 0.5}),
        (["--penalty", "elasticnet", "--l1-ratio", "0.2"], {"l1_ratio": 0.2, "C": 1.0}),
        (["--penalty", "none"], {"l1_ratio": 0.0, "C": np.inf}),
    ],
)
def test_cli_penalty_options_map_to_l1_ratio_and_C(argv, expected):
    args = cli.build_parser().parse_args(["train", "data.csv", "--out", "m.fastlr", *argv])
    assert cli._penalty_params(args) == expected


@pytest.mark.parametrize(
    ("argv", "match"),
    [
        (["--penalty", "elasticnet"], r"--penalty elasticnet needs --l1-ratio"),
        (["--penalty", "l2", "--l1-ratio", "0.5"], r"--penalty l2 takes no --l1-ratio"),
    ],
)
def test_cli_penalty_options_that_conflict_are_refused(argv, match):
    args = cli.build_parser().parse_args(["train", "data.csv", "--out", "m.fastlr", *argv])
    with pytest.raises(ValueError, match=match):
        cli._penalty_params(args)


def test_dask_estimator_has_the_same_defaults():
    dask = pytest.importorskip("fastlr.dask")
    local = fastlr.LogisticRegression().get_params()
    remote = dask.LogisticRegression().get_params()
    remote.pop("client")
    assert remote == local
