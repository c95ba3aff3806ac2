"""``fastlr.LogisticRegressionCV`` against scikit-learn's on the same folds.

References and tolerances:

- **The chosen C** is compared exactly: with the default settings (10 values
  of C, 5 stratified folds, accuracy, ``tol=1e-4``) on breast cancer
  (standardized, binary) and digits (standardized, 10 classes), and at tight
  tolerance with accuracy and with the log-loss.
- **Paths at tight tolerance** (``tol=1e-10``, C up to 1): both libraries'
  L-BFGS stop on the same rule, a relative decrease of the objective below
  ``64 eps`` (measured: a largest gradient entry of 1e-10 to 4e-8 at the
  stop). The objective's curvature is about ``mu``, the smaller of the
  penalty's ``1 / (C n)`` and the intercepts' curvature (the rows' mean
  ``p (1 - p)``), so at a gradient ``g`` it is within ``||g||^2 / (2 mu)``
  of its optimum: from the gradients measured at the stops, 1e-10 relative
  at most (digits at C = 1). The objectives at the two libraries'
  coefficients are asserted within 1e-9 relative, room for the coupling of
  coefficients and intercepts that this estimate leaves out (measured:
  2e-12 at most). The
  coefficients are then close to ``||g|| / mu`` (the flat intercept
  directions dominate: measured 1.6e-5 of the largest coefficient of a path,
  at C = 1 on digits): they are asserted within 1e-4 of the largest
  coefficient of the path, as the estimator's tests assert against
  scikit-learn's optimum. Accuracies are then equal (no test row lies that
  close to the decision boundary) and log-losses, first-order in the
  coefficients, agree to 1e-5 relative (measured: 6e-7).
- **Each fit of a path** is fastlr's ``LogisticRegression`` fit warm-started
  from the previous C: the paths are compared bit for bit with such a loop,
  for L2, L1 and elastic net; L1 paths are also compared with scikit-learn's
  liblinear (without intercept, which liblinear would penalize).
"""

import functools
import threading
import warnings

import naive
import numpy as np
import pytest
import scipy.sparse
from sklearn.base import clone
from sklearn.datasets import load_breast_cancer, load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegressionCV as SkLogisticRegressionCV
from sklearn.model_selection import KFold, StratifiedKFold
from sklearn.utils.estimator_checks import parametrize_with_checks
from threadpoolctl import threadpool_limits

import fastlr
from fastlr._datafits import Objective, make_datafit

TIGHT = dict(tol=1e-10, max_iter=10_000)
TIGHT_CS = (1e-4, 1e-3, 1e-2, 1e-1, 1.0)


@functools.cache
def load(name):
    """Standardized ``(X, y)`` of a named data set: breast cancer or digits."""
    return naive.standardized({"breast_cancer": load_breast_cancer, "digits": load_digits}[name])


def frozen(params):
    """Hashable ``params`` for the caches (lists and arrays become tuples)."""
    return tuple(sorted((k, tuple(np.ravel(v)) if np.ndim(v) else v) for k, v in params.items()))


@functools.cache
def _sklearn(name, key, weighted):
    params = dict(key)
    for name_ in ("Cs", "l1_ratios"):
        if isinstance(params.get(name_), tuple):
            params[name_] = list(params[name_])
    X, y = load(name)
    sw = sample_weight(y) if weighted else None
    model = SkLogisticRegressionCV(use_legacy_attributes=True, **params)
    # One BLAS thread: on two cores scikit-learn's BLAS and OpenMP pools spin
    # against each other and a digits fit takes seconds.
    with threadpool_limits(1), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return model.fit(X, y, sample_weight=sw)


def sklearn_cv(name, weighted=False, **params):
    """scikit-learn's LogisticRegressionCV on a named data set, cached."""
    params = {"l1_ratios": (0.0,), "scoring": None, **params}
    return _sklearn(name, frozen(params), weighted)


@functools.cache
def _fastlr(name, key, weighted):
    X, y = load(name)
    sw = sample_weight(y) if weighted else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return fastlr.LogisticRegressionCV(**dict(key)).fit(X, y, sample_weight=sw)


def fastlr_cv(name, weighted=False, **params):
    """fastlr's LogisticRegressionCV on a named data set, cached."""
    return _fastlr(name, frozen(params), weighted)


def sample_weight(y):
    """Integer weights in {0, 1, 2, 3} with a fixed seed."""
    return np.random.default_rng(0).integers(0, 4, size=y.shape[0]).astype(np.float64)


def keys(model):
    """The class labels that key ``scores_`` and ``coefs_paths_``."""
    return list(model.scores_)


def sklearn_paths(model):
    """scikit-learn's ``coefs_paths_`` and ``scores_`` without their one-value l1 axis."""
    paths = {label: path[:, :, 0] for label, path in model.coefs_paths_.items()}
    scores = {label: score[:, :, 0] for label, score in model.scores_.items()}
    return paths, scores


def fold_objective(X, y, train, C, n_classes):
    """fastlr's float64 objective on a fold's training rows (scikit-learn's over ``C n``)."""
    classes, y_idx = np.unique(y[train], return_inverse=True)
    assert classes.shape[0] == n_classes
    n = train.shape[0]
    datafit = make_datafit(X[train], y_idx, np.empty(0), float(n), n_classes)
    return Objective(datafit, 1 / (C * n), True)


def path_params(paths, fold, i):
    """Flat parameters (coefficients, then intercepts) of one fit of a ``coefs_paths_``."""
    rows = np.stack([path[fold, i] for path in paths.values()])
    return np.concatenate([rows[:, :-1].ravel(), rows[:, -1]])


# --------------------------------------------------------------------------
# The chosen C, against scikit-learn.
# --------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["breast_cancer", "digits"])
def test_default_settings_choose_sklearns_C(name):
    ours, theirs = fastlr_cv(name), sklearn_cv(name)
    np.testing.assert_array_equal(ours.C_, theirs.C_)
    np.testing.assert_array_equal(ours.Cs_, theirs.Cs_)
    np.testing.assert_array_equal(ours.Cs_, np.logspace(-4, 4, 10))
    assert keys(ours) == keys(theirs)
    assert ours.n_iter_.shape == theirs.n_iter_.shape[:-1]


@pytest.mark.parametrize(
    ("name", "scoring"),
    [("breast_cancer", None), ("breast_cancer", "neg_log_loss"), ("digits", "neg_log_loss")],
)
def test_paths_match_sklearn_at_tight_tolerance(name, scoring):
    ours = fastlr_cv(name, Cs=TIGHT_CS, scoring=scoring, **TIGHT)
    theirs = sklearn_cv(name, Cs=TIGHT_CS, scoring=scoring, **TIGHT)
    np.testing.assert_array_equal(ours.C_, theirs.C_)
    their_paths, their_scores = sklearn_paths(theirs)
    assert keys(ours) == keys(theirs)
    for label in keys(ours):
        path, their_path = ours.coefs_paths_[label], their_paths[label]
        assert path.shape == their_path.shape
        scale = np.abs(their_path).max()
        np.testing.assert_allclose(path, their_path, rtol=0, atol=1e-4 * scale)
        if scoring is None:
            np.testing.assert_array_equal(ours.scores_[label], their_scores[label])
        else:
            np.testing.assert_allclose(ours.scores_[label], their_scores[label], rtol=1e-5)
    scale = np.abs(theirs.coef_).max()
    np.testing.assert_allclose(ours.coef_, theirs.coef_, rtol=0, atol=1e-4 * scale)
    np.testing.assert_allclose(ours.intercept_, theirs.intercept_, rtol=0, atol=1e-4 * scale)


@pytest.mark.parametrize("name", ["breast_cancer", "digits"])
def test_path_objectives_match_sklearns(name):
    X, y = load(name)
    ours = fastlr_cv(name, Cs=TIGHT_CS, scoring="neg_log_loss", **TIGHT)
    theirs = sklearn_cv(name, Cs=TIGHT_CS, scoring="neg_log_loss", **TIGHT)
    their_paths = sklearn_paths(theirs)[0]
    n_classes = len(ours.classes_)
    for fold, (train, _) in enumerate(StratifiedKFold(5).split(X, y)):
        for i, C in enumerate(TIGHT_CS):
            objective = fold_objective(X, y, train, C, n_classes)
            value = objective.value_and_grad(path_params(ours.coefs_paths_, fold, i))[0]
            reference = objective.value_and_grad(path_params(their_paths, fold, i))[0]
            assert abs(value - reference) <= 1e-9 * reference


@pytest.mark.parametrize("refit", [True, False])
def test_weighted_and_balanced_choice_matches_sklearn(refit):
    params = dict(Cs=TIGHT_CS, class_weight="balanced", refit=refit, **TIGHT)
    ours = fastlr_cv("breast_cancer", weighted=True, **params)
    theirs = sklearn_cv("breast_cancer", weighted=True, **params)
    np.testing.assert_array_equal(ours.C_, theirs.C_)
    np.testing.assert_array_equal(ours.scores_[1], sklearn_paths(theirs)[1][1])
    scale = np.abs(theirs.coef_).max()
    np.testing.assert_allclose(ours.coef_, theirs.coef_, rtol=0, atol=1e-4 * scale)
    np.testing.assert_allclose(ours.intercept_, theirs.intercept_, rtol=0, atol=1e-4 * scale)


def test_refit_false_averages_the_folds_best_fits():
    X, y = load("digits")
    model = fastlr.LogisticRegressionCV(Cs=[0.01, 0.1, 1.0], cv=3, refit=False).fit(X, y)
    scores = model.scores_[0]
    best = scores.argmax(axis=1)
    np.testing.assert_array_equal(model.C_, np.full(10, np.mean(model.Cs_[best])))
    folds = np.arange(scores.shape[0])
    paths = np.stack([model.coefs_paths_[label][folds, best] for label in model.classes_], axis=1)
    np.testing.assert_array_equal(model.coef_, paths[:, :, :-1].mean(axis=0))
    np.testing.assert_array_equal(model.intercept_, paths[:, :, -1].mean(axis=0))
    np.testing.assert_array_equal(model.l1_ratio_, np.zeros(10))


def test_l1_paths_match_liblinear():
    params = dict(Cs=(0.03, 0.1, 0.3, 1.0), fit_intercept=False, scoring="neg_log_loss", **TIGHT)
    ours = fastlr_cv("breast_cancer", l1_ratios=(1.0,), **params)
    theirs = sklearn_cv("breast_cancer", solver="liblinear", l1_ratios=(1.0,), **params)
    np.testing.assert_array_equal(ours.C_, theirs.C_)
    paths, scores = sklearn_paths(theirs)
    ours_paths, ours_scores = sklearn_paths(ours)  # the same layout: one L1 share
    # liblinear's coordinate descent stops on its own rule: the same zeros,
    # coefficients within 1e-3 of the largest (measured: 1.1e-4), and log-losses,
    # first-order in them, within 1e-4 relative (measured: 1e-5).
    np.testing.assert_array_equal(ours_paths[1] == 0, paths[1] == 0)
    scale = np.abs(paths[1]).max()
    np.testing.assert_allclose(ours_paths[1], paths[1], rtol=0, atol=1e-3 * scale)
    np.testing.assert_allclose(ours_scores[1], scores[1], rtol=1e-4)
    np.testing.assert_array_equal(ours.l1_ratio_, theirs.l1_ratio_)
    np.testing.assert_array_equal(ours.l1_ratios_, [1.0])


def test_scorer_gets_every_class_when_a_test_fold_lacks_one():
    X, y = load("digits")
    # Folds of consecutive rows: the last test fold of 30 rows lacks some digits.
    cv = list(KFold(3).split(X[:90]))
    params = dict(Cs=[0.01, 0.1, 1.0], cv=cv, scoring="neg_log_loss")
    ours = fastlr.LogisticRegressionCV(**params, **TIGHT).fit(X[:90], y[:90])
    with threadpool_limits(1):
        theirs = SkLogisticRegressionCV(
            **params, **TIGHT, l1_ratios=(0.0,), use_legacy_attributes=True
        ).fit(X[:90], y[:90])
    np.testing.assert_array_equal(ours.C_, theirs.C_)
    np.testing.assert_allclose(ours.scores_[0], theirs.scores_[0][:, :, 0], rtol=1e-5)


# --------------------------------------------------------------------------
# Paths: warm-started LogisticRegression fits.
# --------------------------------------------------------------------------


def warm_started_path(X, y, train, Cs, **params):
    """``coefs_paths_`` rows of one fold, from LogisticRegression warm-started along Cs."""
    model = fastlr.LogisticRegression(warm_start=True, **params)
    rows = []
    for C in Cs:
        model.set_params(C=C).fit(X[train], y[train])
        rows.append(np.column_stack([model.coef_, model.intercept_]))
    return np.stack(rows)  # (n_cs, n_outputs, n_dof)


@pytest.mark.parametrize(
    "penalty",
    [
        dict(),
        dict(l1_ratios=[1.0]),
        dict(l1_ratios=[0.0, 0.2, 0.8]),
        dict(solver="gd", l1_ratios=[1.0]),
    ],
    ids=["l2", "l1", "elasticnet", "gd-l1"],
)
def test_each_path_is_warm_started_logistic_regression(breast_cancer, penalty):
    X, y = breast_cancer
    Cs = [0.01, 0.1, 1.0]
    model = fastlr.LogisticRegressionCV(Cs=Cs, cv=3, **penalty).fit(X, y)
    l1_ratios = penalty.pop("l1_ratios", None)
    for fold, (train, _) in enumerate(StratifiedKFold(3).split(X, y)):
        path = model.coefs_paths_[1][fold]
        for j, l1_ratio in enumerate(l1_ratios or [0.0]):
            expected = warm_started_path(X, y, train, Cs, l1_ratio=l1_ratio, **penalty)[:, 0]
            np.testing.assert_array_equal(path if l1_ratios is None else path[:, j], expected)


def test_infinite_C_fits_without_penalty(small_problem):
    X, y = small_problem
    model = fastlr.LogisticRegressionCV(Cs=[0.1, np.inf], cv=3).fit(X, y)
    for fold, (train, _) in enumerate(StratifiedKFold(3).split(X, y)):
        start = warm_started_path(X, y, train, [0.1])[0, 0]
        unpenalized = fastlr.LogisticRegression(C=np.inf, warm_start=True)
        unpenalized.classes_, unpenalized.coef_ = np.unique(y), start[None, :-1]
        unpenalized.intercept_ = start[-1:]
        unpenalized.fit(X[train], y[train])
        expected = np.append(unpenalized.coef_[0], unpenalized.intercept_)
        np.testing.assert_array_equal(model.coefs_paths_[1][fold, 1], expected)


def test_elasticnet_grid_chooses_the_best_summed_score(breast_cancer):
    X, y = breast_cancer
    ratios = [0.0, 0.5, 1.0]
    model = fastlr.LogisticRegressionCV(
        Cs=[0.01, 0.1, 1.0], cv=3, l1_ratios=ratios, scoring="neg_log_loss"
    ).fit(X, y)
    assert model.scores_[1].shape == (3, 3, 3)
    assert model.coefs_paths_[1].shape == (3, 3, 3, X.shape[1] + 1)
    assert model.n_iter_.shape == (1, 3, 3, 3)
    np.testing.assert_array_equal(model.l1_ratios_, ratios)
    i_C, i_l1 = np.unravel_index(model.scores_[1].sum(axis=0).argmax(), (3, 3))
    assert model.C_[0] == model.Cs_[i_C] and model.l1_ratio_[0] == ratios[i_l1]
    # The refit: LogisticRegression at the chosen point, from the folds' mean there.
    start = model.coefs_paths_[1][:, i_C, i_l1].mean(axis=0)
    refit = fastlr.LogisticRegression(C=model.C_[0], l1_ratio=model.l1_ratio_[0], warm_start=True)
    refit.classes_, refit.coef_, refit.intercept_ = model.classes_, start[None, :-1], start[-1:]
    refit.fit(X, y)
    np.testing.assert_array_equal(model.coef_, refit.coef_)
    np.testing.assert_array_equal(model.intercept_, refit.intercept_)


@pytest.mark.parametrize("min_work", [0, np.inf], ids=["fold-threads", "in-turn"])
def test_fold_threads_give_the_same_result_bit_for_bit(breast_cancer, monkeypatch, min_work):
    X, y = breast_cancer
    one = fastlr.LogisticRegressionCV(Cs=4, cv=3, n_jobs=1).fit(X, y)
    monkeypatch.setattr(fastlr._cv, "FOLD_THREADS_MIN_WORK", min_work)
    two = fastlr.LogisticRegressionCV(Cs=4, cv=3, n_jobs=2).fit(X, y)
    np.testing.assert_array_equal(one.coefs_paths_[1], two.coefs_paths_[1])
    np.testing.assert_array_equal(one.coef_, two.coef_)


@pytest.mark.parametrize(("name", "n_threads"), [("breast_cancer", 1), ("digits", 2)])
def test_folds_run_on_threads_when_a_pass_is_long(name, n_threads):
    """breast cancer: 455 x 30 multiply-adds a pass; digits: 1198 x 64 x 10."""
    X, y = load(name)
    threads = set()

    def scorer(estimator, X_test, y_test):
        threads.add(threading.get_ident())
        return 0.0

    fastlr.LogisticRegressionCV(Cs=2, cv=3, scoring=scorer, n_jobs=2).fit(X, y)
    assert len(threads) == n_threads


def test_csr_and_float32_follow_the_dense_float64_fit(breast_cancer):
    X, y = breast_cancer
    params = dict(Cs=[0.01, 0.1, 1.0], cv=3, tol=1e-8, max_iter=1000)
    dense = fastlr.LogisticRegressionCV(**params).fit(X, y)
    sparse = fastlr.LogisticRegressionCV(**params).fit(scipy.sparse.csr_matrix(X), y)
    with warnings.catch_warnings():  # float32 rounding stops the line search before tol=1e-8
        warnings.simplefilter("ignore", ConvergenceWarning)
        single = fastlr.LogisticRegressionCV(**params).fit(X.astype(np.float32), y)
    assert single.coefs_paths_[1].dtype == np.float32 and single.coef_.dtype == np.float32
    np.testing.assert_array_equal(sparse.C_, dense.C_)
    np.testing.assert_allclose(sparse.coefs_paths_[1], dense.coefs_paths_[1], atol=1e-6)
    np.testing.assert_array_equal(single.C_, dense.C_)
    np.testing.assert_allclose(single.coefs_paths_[1], dense.coefs_paths_[1], atol=1e-3)


# --------------------------------------------------------------------------
# The estimator.
# --------------------------------------------------------------------------


def test_attributes_of_a_multinomial_fit():
    X, y = load("digits")
    model = fastlr_cv("digits")
    labels = list(range(10))
    assert keys(model) == labels and list(model.coefs_paths_) == labels
    assert model.coefs_paths_[3].shape == (5, 10, X.shape[1] + 1)
    assert model.scores_[3].shape == (5, 10)
    assert model.n_iter_.shape == (1, 5, 10) and model.n_iter_.dtype == np.int32
    np.testing.assert_array_equal(model.scores_[0], model.scores_[9])
    assert model.C_.shape == (10,) and np.all(model.C_ == model.C_[0])
    assert model.l1_ratios_.tolist() == [None] and model.l1_ratio_.tolist() == [0.0] * 10
    assert model.coef_.shape == (10, X.shape[1]) and model.intercept_.shape == (10,)
    assert model.n_features_in_ == X.shape[1]
    assert model.score(X, y) == pytest.approx(np.mean(model.predict(X) == y))


def test_score_uses_scoring(breast_cancer):
    from sklearn.metrics import log_loss

    X, y = breast_cancer
    model = fastlr.LogisticRegressionCV(Cs=3, cv=3, scoring="neg_log_loss").fit(X, y)
    assert model.score(X, y) == pytest.approx(-log_loss(y, model.predict_proba(X)))


def test_string_labels_and_a_callable_scorer(breast_cancer):
    X, y = breast_cancer
    labels = np.array(["benign", "malignant"])[y]
    calls = []

    def scorer(estimator, X_test, y_test):
        calls.append(set(np.unique(y_test)))
        return float(np.mean(estimator.predict(X_test) == y_test))

    model = fastlr.LogisticRegressionCV(Cs=2, cv=3, scoring=scorer).fit(X, labels)
    reference = fastlr.LogisticRegressionCV(Cs=2, cv=3).fit(X, y)
    assert list(model.scores_) == ["malignant"] and len(calls) == 6
    assert calls[0] == {"benign", "malignant"}
    np.testing.assert_array_equal(model.scores_["malignant"], reference.scores_[1])


def test_clone_get_params_and_no_partial_fit():
    model = fastlr.LogisticRegressionCV(Cs=[0.1, 1.0], solver="sgd", refit=False)
    params = model.get_params()
    assert params["Cs"] == [0.1, 1.0] and params["refit"] is False
    assert "C" not in params and "warm_start" not in params
    assert clone(model).get_params()["solver"] == "sgd"
    assert not hasattr(model, "partial_fit")
    with pytest.raises(AttributeError, match="has no partial_fit: it chooses C"):
        _ = model.partial_fit


def test_save_says_how_to_save_the_chosen_model(breast_cancer, tmp_path):
    model = fastlr.LogisticRegressionCV(Cs=2, cv=3).fit(*breast_cancer)
    with pytest.raises(TypeError, match=r"Save the chosen model as one: fit"):
        model.save(tmp_path / "model.fastlr")
    assert not (tmp_path / "model.fastlr").exists()


def test_a_failed_fit_leaves_the_model_as_it_was(breast_cancer):
    X, y = breast_cancer
    model = fastlr.LogisticRegressionCV(Cs=2, cv=3).fit(X, y)
    before = {name: value for name, value in vars(model).items() if name.endswith("_")}
    with pytest.raises(ValueError, match="contains NaN"):
        model.fit(np.where(np.arange(X.size).reshape(X.shape) == 5, np.nan, X), y)
    after = {name: value for name, value in vars(model).items() if name.endswith("_")}
    assert before.keys() == after.keys()
    np.testing.assert_array_equal(model.coef_, before["coef_"])


# --------------------------------------------------------------------------
# Errors.
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "match"),
    [
        (dict(Cs=[]), r"Cs must be a non-empty 1-D list of numbers"),
        (dict(Cs=[[0.1, 1.0]]), r"Cs must be a non-empty 1-D list of numbers"),
        (dict(Cs=["a", "b"]), r"Cs must hold numbers"),
        (dict(Cs=[0.1, -1.0]), r"Cs must hold values of C > 0 \(np.inf for no penalty\); got -1.0"),
        (dict(Cs=[0.1, np.nan]), r"Cs holds NaN"),
        (dict(Cs=0), r"The 'Cs' parameter of LogisticRegressionCV must be"),
        (dict(penalty="elasticnet"), r"penalty='elasticnet' needs l1_ratios"),
        (dict(l1_ratios=[0.5, 1.5]), r"l1_ratios must lie in \[0, 1\]; got 1.5"),
        (dict(l1_ratios=[]), r"l1_ratios must be a non-empty 1-D list"),
        (dict(l1_ratios=0.5), r"The .l1_ratios. parameter of LogisticRegressionCV must be"),
        (dict(penalty=None), r"The 'penalty' parameter of LogisticRegressionCV must be"),
        (dict(scoring="accuracy_typo"), r"'accuracy_typo' is not a valid scoring value"),
        (dict(cv=1), r"The 'cv' parameter of LogisticRegressionCV must be an int in the range"),
        (dict(average=True), r"average=True \(averaged SGD\) needs solver='sgd'"),
        (dict(refit="yes"), r"The 'refit' parameter of LogisticRegressionCV must be"),
    ],
)
def test_bad_parameters_raise_clear_errors(breast_cancer, params, match):
    X, y = breast_cancer
    with pytest.raises(ValueError, match=match):
        fastlr.LogisticRegressionCV(**params).fit(X, y)


@pytest.mark.parametrize(
    ("penalty", "l1_ratios", "share"),
    [("l2", None, 0.0), ("l1", None, 1.0), ("elasticnet", [0.5], 0.5)],
)
def test_the_deprecated_penalty_warns_and_still_decides(breast_cancer, penalty, l1_ratios, share):
    X, y = breast_cancer
    params = dict(Cs=[0.1, 1.0], cv=3)
    with pytest.warns(FutureWarning, match="'penalty' was deprecated in scikit-learn 1.8"):
        model = fastlr.LogisticRegressionCV(penalty=penalty, l1_ratios=l1_ratios, **params)
        model.fit(X, y)
    same = fastlr.LogisticRegressionCV(l1_ratios=[share], **params).fit(X, y)
    path = same.coefs_paths_[1] if l1_ratios else same.coefs_paths_[1][:, :, 0]
    np.testing.assert_array_equal(model.coefs_paths_[1], path)
    np.testing.assert_array_equal(model.l1_ratio_, [share])


def test_l1_ratios_with_the_penalty_l1_or_l2_are_ignored_with_a_warning(breast_cancer):
    X, y = breast_cancer
    with (
        pytest.warns(FutureWarning, match="'penalty' was deprecated"),
        pytest.warns(UserWarning, match=r"penalty='l1' fits l1_ratio=1 alone and ignores"),
    ):
        model = fastlr.LogisticRegressionCV(Cs=2, cv=3, penalty="l1", l1_ratios=[0.5]).fit(X, y)
    assert model.coefs_paths_[1].shape == (3, 2, X.shape[1] + 1)
    assert model.l1_ratios_.tolist() == [None] and model.l1_ratio_.tolist() == [1.0]


def test_a_fold_without_weight_is_refused(breast_cancer):
    X, y = breast_cancer
    sw = np.zeros(y.shape[0])
    sw[:100] = 1.0  # the rows of KFold's first test fold: the others weigh nothing
    with pytest.raises(ValueError, match="The training rows of fold 0 all have sample weight 0"):
        fastlr.LogisticRegressionCV(Cs=2, cv=KFold(5)).fit(X, y, sample_weight=sw)


def test_a_dataset_is_refused(breast_cancer):
    X, y = breast_cancer
    with pytest.raises(TypeError, match="its folds pick rows of X in memory"):
        fastlr.LogisticRegressionCV().fit(fastlr.Dataset(X, label=y))


def test_input_errors_name_the_estimator(breast_cancer):
    X, y = breast_cancer
    with pytest.raises(ValueError, match="y has only one class"):
        fastlr.LogisticRegressionCV().fit(X, np.zeros_like(y))
    with pytest.raises(ValueError, match="X has 569 rows but y has 568 entries"):
        fastlr.LogisticRegressionCV().fit(X, y[:-1])


@parametrize_with_checks(
    [
        fastlr.LogisticRegressionCV(Cs=3, cv=3),
        fastlr.LogisticRegressionCV(Cs=2, cv=3, l1_ratios=[0.5, 1.0]),
    ]
)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)
