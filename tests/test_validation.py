"""Input validation: every bad input gets an error that names the problem and the fix.

The same data checks guard ``fastlr.LogisticRegression.fit`` and
``fastlr.gradient``; each message is matched. Acceptable input that only needs
converting (Fortran order, strided views, integers, numeric object arrays)
must give the same result as the float64 C array, and float C-contiguous input
must not be copied at all.
"""

import numpy as np
import pytest

import fastlr
from fastlr._validation import as_features


def _set(array, index, value):
    """A float copy of ``array`` with ``array[index] = value``."""
    out = np.array(array, dtype=float)
    out[index] = value
    return out


def _object_with_string(X):
    out = X.astype(object)
    out[1, 2] = "a"
    return out


def _bad(case_id, make, error, match):
    """One bad-data case: ``make(X, y) -> (X, y, sample_weight)`` and the expected error."""
    return pytest.param(make, error, match, id=case_id)


BAD_DATA = [
    _bad("nan-in-X", lambda X, y: (_set(X, (3, 1), np.nan), y, None), ValueError,
         r"X contains NaN.*impute"),
    _bad("inf-in-X", lambda X, y: (_set(X, (0, 0), -np.inf), y, None), ValueError,
         r"X contains infinity.*clip"),
    _bad("nan-in-y", lambda X, y: (X, _set(y, 5, np.nan), None), ValueError,
         r"y contains NaN.*Drop"),
    _bad("y-too-short", lambda X, y: (X, y[:-1], None), ValueError,
         r"X has 200 rows but y has 199 entries; pass one y value per row of X"),
    _bad("y-too-long", lambda X, y: (X, np.r_[y, 0], None), ValueError,
         r"X has 200 rows but y has 201 entries"),
    _bad("empty-X", lambda X, y: (X[:0], y[:0], None), ValueError,
         r"0 sample\(s\) \(shape=\(0, 5\)\)"),
    _bad("list-of-strings", lambda X, y: (np.full(X.shape, "a").tolist(), y, None), ValueError,
         r"X must hold real numbers; could not convert string to float: 'a'. Encode text"),
    _bad("object-with-string", lambda X, y: (_object_with_string(X), y, None), ValueError,
         r"X must hold real numbers; could not convert string to float: 'a'. Encode text"),
    _bad("numpy-str", lambda X, y: (X.astype(str), y, None), ValueError,
         r"X must hold real numbers, got an array of dtype <U\d+. Encode text"),
    _bad("complex", lambda X, y: (X + 1j, y, None), ValueError,
         r"Complex data not supported.*X.real"),
    _bad("negative-weight", lambda X, y: (X, y, _set(np.ones(200), 7, -0.5)), ValueError,
         r"sample_weight must be non-negative; found -0.5. Use 0 to leave a sample out"),
    _bad("short-weight", lambda X, y: (X, y, np.ones(199)), ValueError,
         r"X has 200 rows but sample_weight has 199 entries; pass one sample_weight"),
    _bad("nan-weight", lambda X, y: (X, y, _set(np.ones(200), 0, np.nan)), ValueError,
         r"sample_weight contains NaN"),
    _bad("zero-weights", lambda X, y: (X, y, np.zeros(200)), ValueError,
         r"sample_weight sums to zero; at least one sample needs a positive weight"),
]  # fmt: skip


@pytest.mark.parametrize("make, error, match", BAD_DATA)
def test_fit_rejects_bad_data(small_problem, make, error, match):
    X, y, sw = make(*small_problem)
    with pytest.raises(error, match=match):
        fastlr.LogisticRegression().fit(X, y, sample_weight=sw)


@pytest.mark.parametrize("make, error, match", BAD_DATA)
def test_gradient_rejects_bad_data(small_problem, make, error, match):
    X, y, sw = make(*small_problem)
    with pytest.raises(error, match=match):
        fastlr.gradient(X, y, np.zeros(5), 0.0, sample_weight=sw)


@pytest.mark.parametrize("method", ["loop", "vectorized", "parallel"])
@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gradient_finds_non_finite_x_from_its_sums(method, value, dtype):
    """X is scanned for NaN and infinity only when the sums are not finite: they always show.

    The entry sits in a row of weight zero, under a zero coefficient, on a
    row whose label its score would match: no product may hide it.
    """
    rng = np.random.default_rng(3)
    X = rng.standard_normal((5000, 7)).astype(dtype)
    y = (rng.random(5000) < 0.5).astype(dtype)
    X[4321, 2] = value
    y[4321] = 1.0
    weights = np.ones(5000)
    weights[4321] = 0.0
    coef = rng.standard_normal(7)
    coef[2] = 0.0
    name = "NaN" if np.isnan(value) else "infinity"
    with pytest.raises(ValueError, match=f"X contains {name}"):
        fastlr.gradient(X, y, coef, 0.0, method=method, sample_weight=weights)


@pytest.mark.parametrize(
    "y, match",
    [
        (np.zeros(200), r"y has only one class \(0.0\).*at least two classes"),
        (np.linspace(0, 1, 200), r"Unknown label type: continuous"),
        (None, r"requires y to be passed"),
    ],
    ids=["one-class", "continuous", "no-y"],
)
def test_fit_rejects_targets_that_are_not_classes(small_problem, y, match):
    with pytest.raises(ValueError, match=match):
        fastlr.LogisticRegression().fit(small_problem[0], y)


@pytest.mark.parametrize(
    "y, match",
    [
        (np.arange(200) % 3, r"y must hold only 0 and 1 for the gradient, found 2. Map the two"),
        (np.where(np.arange(200) % 2, "a", "b"), r"y must hold 0/1 numbers, got dtype <U1. Map"),
        (np.zeros((200, 1)), r"y must be 1-D with one target per row of X, got shape \(200, 1\)"),
    ],
    ids=["label-2", "strings", "column"],
)
def test_gradient_rejects_targets_that_are_not_0_1(small_problem, y, match):
    with pytest.raises(ValueError, match=match):
        fastlr.gradient(small_problem[0], y, np.zeros(5), 0.0)


@pytest.mark.parametrize(
    "coef, intercept, match",
    [
        (
            np.zeros(4),
            0.0,
            r"coef must have one entry per feature of X: expected shape \(5,\), "
            r"got \(4,\). Pass a 1-D array of length 5",
        ),
        (np.zeros((5, 1)), 0.0, r"expected shape \(5,\), got \(5, 1\)"),
        (_set(np.zeros(5), 2, np.nan), 0.0, r"coef contains NaN.*one real coefficient per feature"),
        (np.array(list("abcde")), 0.0, r"coef must hold real numbers.*one real coefficient"),
        (np.zeros(5), np.zeros(2), r"intercept must be a scalar, got shape \(2,\). Pass a single"),
        (np.zeros(5), np.inf, r"intercept must be a finite real number, got inf. Pass a single"),
    ],
    ids=["short", "column", "nan", "strings", "vector-intercept", "inf-intercept"],
)
def test_gradient_rejects_bad_coefficients(small_problem, coef, intercept, match):
    X, y = small_problem
    with pytest.raises(ValueError, match=match):
        fastlr.gradient(X, y, coef, intercept)


@pytest.mark.parametrize(
    "params, match",
    [
        (dict(solver="sgd", eta0=-0.1), r"'eta0' parameter .* must be a float in the range \(0.0"),
        (dict(solver="sgd", eta0=0), r"'eta0' parameter .* range \(0.0, inf\). Got 0 instead"),
        (dict(solver="minibatch", batch_size=0), r"'batch_size' parameter .* range \[1, inf\)"),
        (dict(C=0), r"'C' parameter .* range \(0.0, inf\]. Got 0 instead"),
        (dict(C=-1.0), r"'C' parameter .* Got -1.0 instead"),
        (dict(solver="newton"), r"'solver' parameter .* among \{.*'lbfgs'.*\}. Got 'newton'"),
        (dict(max_iter=-1), r"'max_iter' parameter .* range \[0, inf\)"),
        (dict(tol=-1e-4), r"'tol' parameter .* range \[0.0, inf\) or None"),
        (dict(n_jobs=0), r"n_jobs must be None, a positive int, or a negative int like -1"),
        (
            dict(solver="sgd", C=np.inf, learning_rate="optimal"),
            r"learning_rate='optimal' needs an L2 penalty.*\(C=np.inf\) use learning_rate='auto'",
        ),
    ],
    ids=lambda p: "-".join(f"{k}={v}" for k, v in p.items()) if isinstance(p, dict) else "",
)
def test_fit_rejects_bad_parameters(small_problem, params, match):
    with pytest.raises(ValueError, match=match):
        fastlr.LogisticRegression(**params).fit(*small_problem)


def test_gradient_rejects_unknown_method_and_zero_jobs(small_problem):
    X, y = small_problem
    with pytest.raises(ValueError, match=r"method must be one of \('loop', 'vectorized', "):
        fastlr.gradient(X, y, np.zeros(5), 0.0, method="fast")
    with pytest.raises(ValueError, match=r"n_jobs must be None, a positive int"):
        fastlr.gradient(X, y, np.zeros(5), 0.0, n_jobs=0)


def test_unconvertible_object_raises_type_error(small_problem):
    X, y = small_problem
    X = X.astype(object)
    X[0, 0] = {"a": 1}
    with pytest.raises(TypeError, match=r"X must hold real numbers; float\(\) argument must be"):
        fastlr.LogisticRegression().fit(X, y)


def _equivalent_inputs(X):
    """Inputs that hold the values of float64 ``X`` but need converting."""
    wide = np.repeat(X, 2, axis=1)
    return {
        "fortran": np.asfortranarray(X),
        "strided": wide[:, ::2],
        "object": X.astype(object),
        "list": X.tolist(),
    }


@pytest.fixture(scope="module")
def integer_problem(small_problem):
    """small_problem with X rounded to integers: (X int64, X float64, y)."""
    X, y = small_problem
    X_int = np.round(3 * X).astype(np.int64)
    return X_int, X_int.astype(np.float64), y


@pytest.mark.parametrize("kind", ["fortran", "strided", "object", "list", "int"])
def test_converted_input_gives_the_same_model_and_gradient(integer_problem, kind):
    X_int, X, y = integer_problem
    given = X_int if kind == "int" else _equivalent_inputs(X)[kind]
    expected = fastlr.LogisticRegression().fit(X, y)
    model = fastlr.LogisticRegression().fit(given, y)
    # Conversion yields the same float64 C array, so training is the same computation.
    np.testing.assert_array_equal(model.coef_, expected.coef_)
    np.testing.assert_array_equal(model.intercept_, expected.intercept_)
    coef = np.linspace(-1, 1, X.shape[1])
    for got, want in zip(
        fastlr.gradient(given, y, coef, 0.5), fastlr.gradient(X, y, coef, 0.5), strict=True
    ):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_as_features_does_not_copy_c_contiguous_floats(small_problem, dtype):
    X = np.ascontiguousarray(small_problem[0], dtype=dtype)
    assert as_features(X) is X
    rows = X[10:50]  # a C-contiguous view
    converted = as_features(rows)
    assert converted.dtype == dtype
    assert np.shares_memory(converted, X)


@pytest.mark.parametrize(
    "make, dtype",
    [
        (lambda X: np.asfortranarray(X, dtype=np.float32), np.float32),
        (lambda X: X[:, ::2], np.float64),
        (lambda X: np.round(X).astype(np.int32), np.float64),
        (lambda X: X > 0, np.float64),
    ],
    ids=["fortran-float32", "strided", "int32", "bool"],
)
def test_as_features_converts_other_input_once_to_c_float(small_problem, make, dtype):
    given = make(small_problem[0])
    X = as_features(given)
    assert X.dtype == dtype
    assert X.flags.c_contiguous
    np.testing.assert_array_equal(X, np.asarray(given, dtype=dtype))


def test_predict_rejects_a_different_number_of_features(breast_cancer):
    X, y = breast_cancer
    model = fastlr.LogisticRegression().fit(X, y)
    with pytest.raises(
        ValueError, match=r"X has 5 features, but LogisticRegression is expecting 30"
    ):
        model.predict(X[:, :5])
    with pytest.raises(ValueError, match=r"X contains NaN"):
        model.predict_proba(_set(X, (0, 0), np.nan))


def test_finite_check_is_exact_when_the_fast_sum_overflows():
    """A parallel sum decides quickly; an overflowing sum falls back to the exact check."""
    from fastlr._validation import _check_finite

    X = np.zeros((10_000, 3))
    X[5, 1] = X[7000, 2] = 1e308  # finite values whose sum overflows
    _check_finite(X)
    X[9000, 0] = np.nan
    with pytest.raises(ValueError, match="Input X contains NaN"):
        _check_finite(X)
