"""Odd input and odd call orders: a clear error or a finite, consistent model.

Property-based (hypothesis) over shapes, dtypes, scales from 1e-300 to 1e300,
label types, sparse storage and sequences of fit / partial_fit / set_params /
warm starts / failing calls; then one regression test per misbehaviour of the
reliability issue that lives in the estimator (its items 1, 6, 7, 10-15 and
the messages that did not name the problem).

What "consistent" means is :func:`assert_consistent`: finite coefficients,
probabilities in [0, 1] summing to 1 (no NaN), predictions that are the most
probable class, decision scores without NaN. What "left as it was" means is
:func:`frozen`: the pickled estimator, byte for byte.
"""

import math
import pickle
import warnings
from fractions import Fraction

import numpy as np
import pytest
import scipy.sparse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.special import expit, softmax
from sklearn.exceptions import ConvergenceWarning, NotFittedError

import fastlr
from fastlr import LogisticRegression as LR

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

SOLVERS = ("lbfgs", "gd", "sgd", "minibatch")
# Deterministic examples (no database), no per-example deadline (the first
# example of a dtype may compile a kernel); sizes keep the file near 20 s warm.
PROPERTY = settings(
    max_examples=80,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# Errors that name the problem. A solver that diverges raises
# FloatingPointError("... diverged ... Use a smaller eta0 ... or scale X").
CLEAR_ERRORS = (ValueError, TypeError, FloatingPointError)


def frozen(model):
    """The estimator's whole state, to compare before and after a failed call."""
    return pickle.dumps(model)


def problem(n_samples=200, n_features=5, n_classes=2, seed=0):
    """Gaussian features, labels from a noisy linear model: every class present."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n_samples, n_features))
    weights = rng.standard_normal((n_features, n_classes))
    y = np.argmax(X @ weights + 0.5 * rng.standard_normal((n_samples, n_classes)), axis=1)
    y[:n_classes] = np.arange(n_classes)
    return X, y


def assert_consistent(model, X):
    """Finite model; probabilities, log-probabilities, scores and labels that agree."""
    assert np.isfinite(model.coef_).all() and np.isfinite(model.intercept_).all()
    n_classes = len(model.classes_)
    assert model.coef_.shape == (1 if n_classes == 2 else n_classes, model.n_features_in_)
    proba = model.predict_proba(X)
    assert proba.shape == (X.shape[0], n_classes)
    assert np.isfinite(proba).all() and (proba >= 0).all() and (proba <= 1).all()
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
    log_proba = model.predict_log_proba(X)
    assert not np.isnan(log_proba).any() and (log_proba <= 0).all()
    scores = model.decision_function(X)
    assert not np.isnan(scores).any()
    predicted = model.predict(X)
    index = np.searchsorted(model.classes_, predicted)
    np.testing.assert_array_equal(model.classes_[index], predicted)
    chosen = proba[np.arange(X.shape[0]), index]
    # The predicted class is the most probable one (up to the rounding of ties).
    assert (chosen >= proba.max(axis=1) * (1 - 1e-6)).all()


# --------------------------------------------------------------------------
# Properties: fit on random problems.
# --------------------------------------------------------------------------

# Per-column scales 10**-e to 10**e: most of float64's range (float32's).
EXPONENTS = {np.float64: 300, np.float32: 30}


@st.composite
def problems(draw):
    """``(X, y, params)``: shape, dtype, per-column scales and a solver."""
    n_classes = draw(st.integers(2, 4))
    n_samples = draw(st.integers(3 * n_classes, 40))
    n_features = draw(st.integers(1, 5))
    dtype = draw(st.sampled_from([np.float64, np.float32]))
    solver = draw(st.sampled_from(SOLVERS))
    limit = EXPONENTS[dtype]
    exponents = draw(st.lists(st.integers(-limit, limit), min_size=1, max_size=n_features))
    X, y = problem(n_samples, n_features, n_classes, seed=draw(st.integers(0, 2**16)))
    scales = 10.0 ** np.resize(np.array(exponents, dtype=float), n_features)
    penalty = draw(st.sampled_from([{}, {"C": np.inf}, {"l1_ratio": 1}]))
    params = dict(solver=solver, **penalty, max_iter=30, random_state=0, batch_size=8)
    return (X * scales).astype(dtype), y, params


@PROPERTY
@given(problems(), st.booleans())
def test_fit_gives_a_finite_consistent_model_or_a_clear_error(case, sparse):
    X, y, params = case
    X = scipy.sparse.csr_matrix(X) if sparse else X
    model = LR(**params)
    try:
        model.fit(X, y)
    except CLEAR_ERRORS as error:
        assert str(error)
        assert not hasattr(model, "coef_") and not hasattr(model, "classes_")
        return
    assert_consistent(model, X)
    assert model.coef_.dtype == X.dtype


LABELS = {
    "int": lambda k: np.arange(k) * 7 - 3,
    "wide int64": lambda k: np.array([-5 * 10**18 + i * 10**19 // (k - 1) for i in range(k)]),
    "uint64 past int64": lambda k: np.array([2**63 + i for i in range(k)], dtype=np.uint64),
    "float": lambda k: np.arange(k) * 2.0 - 1.0,
    "str": lambda k: np.array([f"class {i}" for i in range(k)]),
    "object str": lambda k: np.array([f"c{i}" for i in range(k)], dtype=object),
    "bool": lambda k: np.array([False, True])[:k],
}


@PROPERTY
@given(
    st.sampled_from(sorted(LABELS)),
    st.integers(2, 4),
    st.sampled_from(SOLVERS),
    st.integers(0, 2**16),
)
def test_labels_of_any_type_train_the_model_of_their_indices(kind, n_classes, solver, seed):
    if kind == "bool":
        n_classes = 2
    X, y = problem(30, 3, n_classes, seed)
    labels = LABELS[kind](n_classes)  # increasing: class i sorts i-th
    params = dict(solver=solver, max_iter=20, random_state=0)
    model = LR(**params).fit(X, labels[y])
    reference = LR(**params).fit(X, y)
    np.testing.assert_array_equal(model.classes_, labels)
    np.testing.assert_array_equal(model.coef_, reference.coef_)
    np.testing.assert_array_equal(model.predict(X), labels[reference.predict(X)])


def csr_variant(X, kind, rng):
    """X as a CSR matrix with the same values, stored as ``kind`` says."""
    canonical = scipy.sparse.csr_matrix(X)
    if kind == "canonical":
        return canonical
    rows, cols = canonical.nonzero()
    values = canonical.data.copy()
    if kind == "duplicates":
        # Each value split into two halves (exact in binary), stored twice.
        rows, cols = np.concatenate([rows, rows]), np.concatenate([cols, cols])
        values = np.concatenate([values / 2, values / 2])
    elif kind == "explicit zeros":
        zeros = rng.integers(0, X.shape[0], size=X.shape[0])
        rows, cols = np.concatenate([rows, zeros]), np.concatenate([cols, zeros % X.shape[1]])
        values = np.concatenate([values, np.zeros(zeros.size)])
    order = np.lexsort((rng.random(rows.size), rows))  # rows in order, columns shuffled
    indptr = np.searchsorted(rows[order], np.arange(X.shape[0] + 1))
    return scipy.sparse.csr_matrix(
        (values[order], cols[order], indptr), shape=X.shape, dtype=X.dtype
    )


@PROPERTY
@given(
    st.sampled_from(["duplicates", "explicit zeros", "unsorted"]),
    st.sampled_from(SOLVERS),
    st.integers(2, 3),
    st.integers(0, 2**16),
)
def test_sparse_storage_does_not_change_the_model(kind, solver, n_classes, seed):
    """Duplicates (summed), explicit zeros and unsorted columns: the canonical model.

    The sums run in another order, so agreement is to rounding: 1e-10 of the
    coefficients' size (seen: 1e-15). Minibatch's step comes from the summed
    rows' norms (issue item 8).
    """
    rng = np.random.default_rng(seed)
    X, y = problem(40, 4, n_classes, seed)
    X[rng.random(X.shape) < 0.3] = 0.0
    params = dict(solver=solver, max_iter=20, random_state=0, batch_size=8)
    expected = LR(**params).fit(csr_variant(X, "canonical", rng), y)
    model = LR(**params).fit(csr_variant(X, kind, rng), y)
    scale = max(1.0, np.abs(expected.coef_).max())
    np.testing.assert_allclose(model.coef_, expected.coef_, rtol=0, atol=1e-10 * scale)
    np.testing.assert_allclose(model.intercept_, expected.intercept_, rtol=0, atol=1e-10 * scale)


# --------------------------------------------------------------------------
# Properties: predictions for any finite X (item 6).
# --------------------------------------------------------------------------


def exact_scores(X, coef, intercept):
    """``X W^T + b`` in exact rational arithmetic: rows of Fractions, one per output."""
    outputs = list(zip(coef.tolist(), intercept.tolist(), strict=True))
    return [[_exact_dot(row, weights, b) for weights, b in outputs] for row in X.tolist()]


def _exact_dot(row, weights, intercept, magnitude=False):
    terms = [Fraction(x) * Fraction(w) for x, w in zip(row, weights, strict=True)]
    terms.append(Fraction(intercept))
    return sum(abs(term) for term in terms) if magnitude else sum(terms)


def exact_probabilities(scores):
    """Class probabilities of exact scores, in float64 (to a few ulps).

    Scores (binary) and gaps to the best score (softmax) are clipped at 2000:
    beyond it the probabilities are 0 or 1 in float64 anyway.
    """
    if len(scores[0]) == 1:
        z = np.array([float(max(min(row[0], 2000), -2000)) for row in scores])
        return np.column_stack([expit(-z), expit(z)])
    gaps = np.array([[float(max(s - max(row), -2000)) for s in row] for row in scores])
    return softmax(gaps, axis=1)


def score_error_bounds(X, coef, intercept):
    """Rounding bound of each float64 score: ``(d + 2) eps (sum_j |x_j w_j| + |b|)``, exact.

    The largest over the outputs, as a Fraction: the magnitudes may exceed the float range.
    """
    eps = Fraction(np.finfo(np.float64).eps) * (X.shape[1] + 2)
    outputs = list(zip(coef.tolist(), intercept.tolist(), strict=True))
    return [
        eps * max(_exact_dot(row, weights, b, magnitude=True) for weights, b in outputs)
        for row in X.tolist()
    ]


@st.composite
def wild_rows(draw, n_features):
    """Rows of random signs and magnitudes 1e-300 to 1.7e308, zeros among them."""
    n_rows = draw(st.integers(1, 12))
    size = n_rows * n_features
    exponents = draw(st.lists(st.integers(-300, 308), min_size=size, max_size=size))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    mantissas = rng.uniform(1, 1.7, size=size) * rng.choice([-1, 0, 1, 1], size=size)
    return (mantissas * 10.0 ** np.array(exponents, dtype=float)).reshape(n_rows, n_features)


@pytest.fixture(scope="module")
def models():
    """lbfgs models with large coefficients (so that scores overflow): 2 and 3 classes."""
    fitted = {}
    for n_classes in (2, 3):
        X, y = problem(200, 4, n_classes, seed=n_classes)
        fitted[n_classes] = LR(C=100.0).fit(X * 0.1, y)
    return fitted


@settings(PROPERTY, max_examples=100)
@given(data=st.data(), n_classes=st.sampled_from([2, 3]), sparse=st.booleans())
def test_probabilities_are_those_of_the_exact_scores(models, data, n_classes, sparse):
    """Within the rounding of the scores, whatever the magnitudes: a score off by
    ``delta`` moves a probability by at most ``delta / 2``; a class whose exact
    score leads by more than the rounding is the one predicted."""
    model = models[n_classes]
    X = data.draw(wild_rows(model.n_features_in_))
    exact = exact_scores(X, model.coef_, model.intercept_)
    bounds = score_error_bounds(X, model.coef_, model.intercept_)
    X_in = scipy.sparse.csr_matrix(X) if sparse else X
    assert_consistent(model, X_in)
    proba = model.predict_proba(X_in)
    tolerance = np.array([float(min(bound / 2, 1)) for bound in bounds])
    error = np.abs(proba - exact_probabilities(exact))
    assert (error <= tolerance[:, None] + 8 * np.finfo(np.float64).eps).all()
    outputs = exact if n_classes > 2 else [[Fraction(0), row[0]] for row in exact]
    predicted = model.predict(X_in)
    for row, bound, label in zip(outputs, bounds, predicted, strict=True):
        best, second = sorted(row, reverse=True)[:2]
        if best - second > 2 * bound:
            assert label == model.classes_[row.index(best)]


# --------------------------------------------------------------------------
# Properties: call orders.
# --------------------------------------------------------------------------

DATA = {
    "binary": problem(60, 5, 2, seed=1),
    "three classes": problem(60, 5, 3, seed=2),
    "other features": problem(60, 7, 2, seed=3),
}
STRING_LABELS = np.array(["a", "b", "c"])

PARAMETER_CHANGES = [
    {"solver": "lbfgs"}, {"solver": "gd"}, {"solver": "sgd"}, {"solver": "minibatch"},
    {"l1_ratio": 1.0}, {"l1_ratio": 0.0}, {"C": np.inf}, {"penalty": "bogus"},
    {"average": True}, {"average": False}, {"warm_start": True}, {"warm_start": False},
    {"C": -1.0}, {"C": 1.0}, {"batch_size": 0}, {"batch_size": 16}, {"alpha": 1e-3},
    {"alpha": None}, {"n_jobs": 0}, {"n_jobs": None},
]  # fmt: skip
OPERATIONS = st.one_of(
    st.tuples(st.just("fit"), st.sampled_from(sorted(DATA)), st.booleans()),
    st.tuples(st.just("partial_fit"), st.sampled_from(sorted(DATA)), st.booleans()),
    st.tuples(
        st.just("set_params"),
        st.sampled_from(PARAMETER_CHANGES),
        st.just(None),
    ),
    st.tuples(st.just("bad sample_weight"), st.sampled_from(sorted(DATA)), st.just(None)),
)


def run(model, operation):
    """Apply one operation; return the labels the model must predict for its data."""
    name, key, flag = operation
    if name == "set_params":
        model.set_params(**key)
        return None
    X, y = DATA[key]
    labels = STRING_LABELS[y] if flag else y
    if name == "fit":
        model.fit(X, labels)
    elif name == "partial_fit":
        model.partial_fit(X, labels, classes=np.unique(labels))
    else:
        model.fit(X, labels, sample_weight=-np.ones(len(y)))
    return X


@settings(PROPERTY, max_examples=100)
@given(st.lists(OPERATIONS, min_size=1, max_size=8))
def test_any_call_order_leaves_a_fitted_or_unchanged_estimator(operations):
    """A call that raises leaves the estimator byte for byte as it was; one that
    returns leaves a finite, consistent model; nothing crashes; a model is never
    half fitted (predict raises NotFittedError or works)."""
    model = LR(max_iter=10, random_state=0)
    for operation in operations:
        before = frozen(model)
        try:
            X = run(model, operation)
        except (*CLEAR_ERRORS, AttributeError) as error:
            if isinstance(error, AttributeError):  # partial_fit of lbfgs or gd only
                assert "partial_fit" in str(error) and model.solver in ("lbfgs", "gd")
            assert frozen(model) == before, f"{operation} raised {error!r} and changed the model"
            continue
        if X is not None:
            assert_consistent(model, X)
    X = DATA["binary"][0]
    if not hasattr(model, "coef_"):
        with pytest.raises(NotFittedError):
            model.predict(X)
        return
    data = DATA["other features"] if model.n_features_in_ == 7 else DATA["binary"]
    assert_consistent(model, data[0])


# --------------------------------------------------------------------------
# Item 1: stale sgd state after a refit.
# --------------------------------------------------------------------------


@pytest.mark.parametrize("n_classes", [2, 3])
@pytest.mark.parametrize("params", [{"l1_ratio": 1}, {"average": True}], ids=["l1", "average"])
def test_partial_fit_after_a_refit_continues_the_new_model(n_classes, params):
    """The issue's reproducer (sgd state of 5 features, lbfgs refit on 40 features)
    wrote out of bounds or failed to reshape; now the state is that of the refit."""
    X5, y5 = problem(200, 5, n_classes, seed=0)
    X40, y40 = problem(200, 40, n_classes, seed=1)
    sgd = dict(solver="sgd", random_state=0, **params)
    lbfgs = dict(solver="lbfgs", l1_ratio=0, average=False)
    model = LR(**sgd).partial_fit(X5, y5, classes=np.unique(y5))
    model.set_params(**lbfgs).fit(X40, y40)
    model.set_params(**sgd).partial_fit(X40, y40)
    fresh = LR(**sgd).set_params(**lbfgs).fit(X40, y40)
    fresh.set_params(**sgd).partial_fit(X40, y40)
    np.testing.assert_array_equal(model.coef_, fresh.coef_)
    np.testing.assert_array_equal(model.intercept_, fresh.intercept_)
    assert_consistent(model, X40)


@pytest.mark.parametrize(
    ("change", "name"),
    [({"solver": "minibatch"}, "solver"), ({"l1_ratio": 1}, "penalty"), ({"C": np.inf}, "penalty"),
     ({"average": True}, "average"), ({"learning_rate": "constant"}, "learning_rate")],
)  # fmt: skip
def test_partial_fit_refuses_a_state_made_with_other_parameters(change, name):
    """The state belongs to the penalty the parameters choose (l1_ratio, C=np.inf)."""
    X, y = problem()
    model = LR(solver="sgd", random_state=0).partial_fit(X, y, classes=[0, 1])
    model.set_params(**change)
    before = frozen(model)
    with pytest.raises(ValueError, match=rf"partial_fit continues .* made with {name}="):
        model.partial_fit(X, y)
    assert frozen(model) == before


def test_partial_fit_continues_across_dtypes():
    """A float32 chunk after float64 ones: the averaged state follows the dtype."""
    X, y = problem()
    model = LR(solver="sgd", average=True, random_state=0).partial_fit(X, y, classes=[0, 1])
    model.partial_fit(X.astype(np.float32), y)
    assert model.coef_.dtype == np.float32
    assert_consistent(model, X.astype(np.float32))


# --------------------------------------------------------------------------
# Item 6: probabilities of overflowing scores.
# --------------------------------------------------------------------------


def overflow_model(n_classes, dtype=np.float64):
    """A model whose coefficients of both signs exceed 1.8: 1e308 rows overflow to inf - inf."""
    X, y = problem(200, 5, n_classes)
    model = LR().fit(X, y)
    rng = np.random.default_rng(5)
    coef = rng.uniform(2, 4, size=model.coef_.shape) * rng.choice([-1, 1], size=model.coef_.shape)
    model.coef_ = coef.astype(dtype)
    model.intercept_ = model.intercept_.astype(dtype)
    return model


@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize("n_classes", [2, 3])
def test_overflowing_scores_give_the_probabilities_of_their_sign(n_classes, sparse):
    model = overflow_model(n_classes)
    signs = np.sign(np.random.default_rng(0).standard_normal((50, 5)))
    X = 1e308 * signs
    # Rows whose exact score is moderate though the products overflow: 1e308 * (w - w).
    X[:2] = 0.0
    X[:2, :2] = 1e308
    model.coef_[:, 1] = -model.coef_[:, 0]
    exact = exact_scores(X, model.coef_, model.intercept_)
    expected = exact_probabilities(exact)
    X_in = scipy.sparse.csr_matrix(X) if sparse else X
    proba = model.predict_proba(X_in)
    np.testing.assert_allclose(proba, expected, rtol=1e-12, atol=1e-300)
    assert_consistent(model, X_in)
    np.testing.assert_array_equal(model.predict(X_in), np.argmax(expected, axis=1))
    with np.errstate(divide="ignore"):
        np.testing.assert_allclose(
            np.exp(model.predict_log_proba(X_in)), expected, rtol=1e-12, atol=1e-300
        )
    scores = model.decision_function(X_in)
    if n_classes == 2:
        signs = np.sign([float(max(min(row[0], 1), -1)) for row in exact])
        np.testing.assert_array_equal(np.sign(scores), signs)


def test_overflowing_float32_scores():
    """float32 rows near 3e38 with a float32 model: the float32 product overflows."""
    model = overflow_model(2, np.float32)
    X = (3e38 * np.sign(np.random.default_rng(1).standard_normal((20, 5)))).astype(np.float32)
    exact = exact_scores(X.astype(float), model.coef_.astype(float), model.intercept_.astype(float))
    proba = model.predict_proba(X)
    assert proba.dtype == np.float32
    np.testing.assert_array_equal(proba, exact_probabilities(exact).astype(np.float32))
    assert_consistent(model, X)


# --------------------------------------------------------------------------
# Item 7: sample weights whose sum overflows.
# --------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_huge_sample_weights_fit_the_same_objective(dtype):
    """Weights 1e307 (sum 2e309) are the unit weights with C = 1e307.

    Both minimize the mean loss plus ||w||^2 / (2e307 n): the same problem, up
    to the rounding of the scaled weights, so the optima agree to lbfgs's tol.
    """
    X, y = problem()
    X = X.astype(dtype)
    tol = 1e-10 if dtype == np.float64 else 1e-4
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        model = LR(tol=tol, max_iter=1000).fit(X, y, sample_weight=np.full(200, 1e307))
        expected = LR(C=1e307, tol=tol, max_iter=1000).fit(X, y)
    rtol = 1e-6 if dtype == np.float64 else 1e-3
    np.testing.assert_allclose(model.coef_, expected.coef_, rtol=rtol)
    assert np.abs(model.coef_).max() > 0.5


# --------------------------------------------------------------------------
# Item 10: int64 labels spanning more than 2**63.
# --------------------------------------------------------------------------


def test_int64_labels_spanning_more_than_int64():
    X, y = problem()
    labels = np.where(y == 1, 5 * 10**18, -5 * 10**18)
    model = LR().fit(X, labels)
    np.testing.assert_array_equal(model.classes_, [-5 * 10**18, 5 * 10**18])
    np.testing.assert_array_equal(model.coef_, LR().fit(X, y).coef_)
    online = LR(solver="sgd", random_state=0).partial_fit(X, labels, classes=np.unique(labels))
    assert set(online.predict(X)) <= set(model.classes_)


# --------------------------------------------------------------------------
# Items 11-14: a fit is all or nothing.
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad",
    [
        {"sample_weight": np.ones(3)},
        {"sample_weight": -np.ones(200)},
        {"params": {"n_jobs": 0}},
        {"params": {"class_weight": {7: 1.0}}},
    ],
    ids=["weight length", "negative weight", "n_jobs=0", "class_weight"],
)
@pytest.mark.parametrize("fitted", [False, True], ids=["unfitted", "fitted"])
def test_a_fit_that_raises_leaves_the_estimator_as_it_was(bad, fitted):
    X, y = problem()
    model = LR()
    if fitted:
        model.fit(X, y)
    model.set_params(**bad.get("params", {}))
    before = frozen(model)
    with pytest.raises(ValueError):
        model.fit(X, np.array(["a", "b"])[y], sample_weight=bad.get("sample_weight"))
    assert frozen(model) == before
    if fitted:
        assert set(model.predict(X)) <= {0, 1}
    else:
        with pytest.raises(NotFittedError):
            model.predict(X)


@pytest.mark.parametrize(
    "first, then",
    [((6, 2), (2, 3)), ((6, 2), (3, 2)), ((5, 3), (5, 2))],
    ids=["(1, 6) as (3, 2)", "(1, 6) as (4,)", "3 classes as 2"],
)
def test_warm_start_refuses_a_model_of_another_shape(first, then):
    X1, y1 = problem(100, first[0], first[1], seed=1)
    X2, y2 = problem(100, then[0], then[1], seed=2)
    model = LR(warm_start=True).fit(X1, y1)
    before = frozen(model)
    with pytest.raises(ValueError, match="warm_start=True starts from the previous coef_"):
        model.fit(X2, y2)
    assert frozen(model) == before
    model.set_params(warm_start=False).fit(X2, y2)
    assert_consistent(model, X2)


def test_warm_start_refuses_other_classes_of_the_same_count():
    X, y = problem()
    model = LR(warm_start=True).fit(X, y)
    with pytest.raises(ValueError, match=r"classes \[0, 1\].*classes \['a', 'b'\]"):
        model.fit(X, np.array(["a", "b"])[y])


# --------------------------------------------------------------------------
# Item 15: partial_fit checks its parameters on every call.
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "change, match",
    [
        ({"C": -1}, "'C' parameter"),
        ({"alpha": -1}, "'alpha' parameter"),
        ({"eta0": -1}, "'eta0' parameter"),
        ({"batch_size": -5}, "'batch_size' parameter"),
        ({"batch_size": 0}, "'batch_size' parameter"),
        ({"penalty": "bogus"}, "'penalty' parameter"),
        ({"average": True}, "average=True .* needs solver='sgd'"),
        ({"n_jobs": 0}, "n_jobs must be"),
    ],
)
def test_partial_fit_checks_parameters_on_every_call(change, match):
    X, y = problem()
    model = LR(solver="minibatch", random_state=0).partial_fit(X, y, classes=[0, 1])
    model.set_params(**change)
    before = frozen(model)
    with pytest.raises(ValueError, match=match):
        model.partial_fit(X, y)
    assert frozen(model) == before


# --------------------------------------------------------------------------
# Messages that name the problem.
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "class_weight, match",
    [
        ({0: 1.0, 1: 2.0, 7: 3.0}, r"class_weight names labels that are not classes of y: \[7\]"),
        ({"0": 1.0}, r"not classes of y: \['0'\].*1 and '1' are different"),
        ({0: -1.0}, "class_weight must give each class a finite weight >= 0; class 0 has -1"),
        ({0: np.nan}, "class_weight must give each class a finite weight >= 0; class 0 has nan"),
        ({1: np.inf}, "finite weight >= 0; class 1 has inf"),
        ({0: 0.0}, r"class_weight leaves a positive weight only to samples of class \[1\]"),
    ],
)
def test_class_weight_errors_name_class_weight(class_weight, match):
    X, y = problem()
    with pytest.raises(ValueError, match=match):
        LR(class_weight=class_weight).fit(X, y)


def test_balanced_class_weight_with_a_weightless_class():
    X, y = problem(n_classes=3)
    sample_weight = np.where(y == 2, 0.0, 1.0)
    with pytest.raises(ValueError, match=r"class_weight='balanced' .* classes \[2\] have none"):
        LR(class_weight="balanced").fit(X, y, sample_weight=sample_weight)


def test_sample_weight_leaving_one_class_names_sample_weight():
    X, y = problem()
    with pytest.raises(ValueError, match=r"sample_weight leaves a positive weight only .*\[1\]"):
        LR().fit(X, y, sample_weight=y.astype(float))


@pytest.mark.parametrize("solver", ["lbfgs", "gd"])
def test_partial_fit_of_a_full_batch_solver_names_the_solvers_that_have_it(solver):
    model = LR(solver=solver)
    assert not hasattr(model, "partial_fit")
    with pytest.raises(AttributeError, match="needs solver='sgd' or 'minibatch'"):
        model.partial_fit(*problem(), classes=[0, 1])


def test_gradient_of_sparse_x_points_to_the_estimator():
    X, y = problem()
    with pytest.raises(TypeError, match=r"takes dense arrays only.*LogisticRegression trains"):
        fastlr.gradient(scipy.sparse.csr_matrix(X), y, np.zeros(5), 0.0)
    # No advice to densify a matrix whose dense copy would take 745 GiB.
    huge = scipy.sparse.csr_matrix((10**6, 10**5))
    with pytest.raises(TypeError, match="would take 745 GiB") as error:
        fastlr.gradient(huge, np.zeros(10**6), np.zeros(10**5), 0.0)
    assert "toarray" not in str(error.value)


@pytest.mark.parametrize(
    "labels, match",
    [
        ([1, "a"], r"y mixes labels of different types \(number 1, str 'a'\)"),
        (["a", 1], r"y mixes labels of different types \(str 'a', number 1\)"),
        (["a", None], "y has missing labels .* the first at row 1"),
        ([None, "a"], "y has missing labels .* the first at row 0"),
    ],
)
def test_mixed_or_missing_labels_are_named(labels, match):
    X, _ = problem(40)
    y = np.array(labels * 20, dtype=object)
    with pytest.raises(ValueError, match=match):
        LR().fit(X, y)
    with pytest.raises(ValueError, match=match.replace("y ", "classes ", 1)):
        LR(solver="sgd").partial_fit(X, y, classes=y)


def test_continuous_targets_keep_scikit_learns_message():
    X, _ = problem(40)
    with pytest.raises(ValueError, match="Unknown label type"):
        LR().fit(X, np.linspace(0, 1, 40))


@pytest.mark.parametrize(
    "n_samples, fraction, match",
    [
        (4, 0.1, "validation_fraction=0.1 of the 4 rows: 1 for validation"),
        (200, 0.999, "validation_fraction=0.999 of the 200 rows: 200 for validation, 0 for"),
    ],
)
def test_early_stopping_split_errors_name_early_stopping(n_samples, fraction, match):
    X, y = problem(n_samples)
    model = LR(solver="sgd", early_stopping=True, validation_fraction=fraction)
    with pytest.raises(ValueError, match=f"early_stopping=True holds out {match}"):
        model.fit(X, y)


def test_early_stopping_needs_two_rows_of_each_class():
    X, y = problem(50, n_classes=3)
    y[3:] = np.where(y[3:] == 2, 0, y[3:])  # class 2 keeps one row, the third
    with pytest.raises(ValueError, match="early_stopping=True splits the rows by class"):
        LR(solver="sgd", early_stopping=True).fit(X, y)


def test_partial_fit_labels_of_another_type_are_unknown():
    X, y = problem()
    model = LR(solver="sgd").partial_fit(X, y, classes=[0, 1])
    with pytest.raises(ValueError, match=r"y holds labels not in classes_: \['a', 'b'\]"):
        model.partial_fit(X, np.array(["a", "b"])[y])


def test_error_listings_are_short():
    X, _ = problem(400)
    y = np.arange(400) % 40
    with pytest.raises(ValueError, match=r"\[0, 1, 2, 3, 4, 5, 6, 7, \.\.\. \(40 in all\)\]"):
        LR(warm_start=True).fit(X[:, :2], y).fit(X, y)


def test_math_of_the_exact_reference():
    """The test oracle itself: a score of exactly 0 is probability 1/2."""
    assert exact_probabilities([[Fraction(0)]]).tolist() == [[0.5, 0.5]]
    assert math.isclose(exact_probabilities([[Fraction(10**400)]])[0, 1], 1.0)
