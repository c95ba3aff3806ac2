"""Conversion of user input, done once, and every user-facing error message."""

import contextlib
import numbers
import re

import numpy as np
import scipy.sparse
from sklearn.utils import assert_all_finite, check_array
from sklearn.utils.validation import validate_data

from ._threads import current_threads
from .kernels import CsrArrays, reduction

FLOAT_DTYPES = (np.float64, np.float32)


def as_features(X, *, name="X", check_finite=True):
    """Return X as a C-contiguous, finite float32/float64 2-D array.

    float32 and float64 input keep their dtype and, when already C-contiguous,
    are returned without a copy. Integer and boolean input becomes float64;
    non-contiguous input is copied once.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Training or prediction data.
    name : str, default="X"
        Name used in error messages.
    check_finite : bool, default=True
        Scan X for NaN and infinity. False leaves that pass to a caller whose
        own pass over X shows them (a non-finite gradient sum), which then
        calls again with True to raise the error.

    Returns
    -------
    X : ndarray of shape (n_samples, n_features)

    Raises
    ------
    ValueError
        If X is empty, not 2-D, non-numeric, or (``check_finite``) holds NaN or infinity.
    TypeError
        If X is a scipy sparse matrix (these functions take dense X).
    """
    if scipy.sparse.issparse(X):
        raise TypeError(_dense_only_message(X, name))
    _check_numeric_dtype(X, name)
    with _numeric_errors(name):
        return check_array(
            X, dtype=list(FLOAT_DTYPES), order="C", input_name=name, estimator="fastlr",
            ensure_all_finite=check_finite,
        )  # fmt: skip


# Densifying is worth suggesting only when the dense copy is small.
DENSE_ADVICE_BYTES = 1 << 30


def _dense_only_message(X, name):
    """Why a sparse X is refused by the dense gradient, and what to use instead.

    ``X.toarray()`` is suggested only when the dense copy takes at most
    ``DENSE_ADVICE_BYTES``: for a large sparse matrix it would exhaust memory.
    """
    n_samples, n_features = X.shape
    itemsize = X.dtype.itemsize if X.dtype.kind == "f" else 8
    dense_bytes = n_samples * n_features * itemsize
    gib = dense_bytes >= 2**30
    size = f"{dense_bytes / 2**30:.3g} GiB" if gib else f"{dense_bytes / 2**20:.3g} MiB"
    message = (
        f"{name} is a scipy.sparse matrix of shape {X.shape} ({X.nnz} stored values); "
        f"fastlr.gradient takes dense arrays only. fastlr.LogisticRegression trains on "
        f"sparse X directly, without densifying it."
    )
    if dense_bytes <= DENSE_ADVICE_BYTES:
        return f"{message} For this gradient, pass {name}.toarray() (a dense copy of {size})."
    return f"{message} A dense copy of {name} would take {size}."


def validate_features(estimator, X, y="no_validation", *, reset):
    """``as_features`` for an estimator: also records or checks ``n_features_in_``.

    Parameters
    ----------
    estimator : BaseEstimator
    X : array-like of shape (n_samples, n_features)
    y : array-like of shape (n_samples,) or None, optional
        Checked for length and finiteness along with X when given; ``None``
        (a ``fit`` called without targets) raises scikit-learn's "requires y"
        error. Leave it out in prediction.
    reset : bool
        True in ``fit`` (record the features), False in prediction (check them).

    Returns
    -------
    X : ndarray, or (X, y) when y is given
    """
    _check_numeric_dtype(X, "X")
    # Sparse input becomes CSR (the format of the sparse kernels), never dense.
    # Finiteness is checked below by a parallel pass (scikit-learn's own check
    # is a single-threaded sum: a tenth of an L-BFGS fit on 1e6 x 100).
    kwargs = dict(
        dtype=list(FLOAT_DTYPES), order="C", reset=reset, accept_sparse="csr",
        ensure_all_finite=False,
    )  # fmt: skip
    no_y = isinstance(y, str) and y == "no_validation"
    if not no_y and y is not None:
        _check_same_length(X, y, "y")
    with _numeric_errors("X"):
        result = (
            validate_data(estimator, X, **kwargs)
            if no_y
            else validate_data(estimator, X, y, **kwargs)
        )
        _check_finite(result if no_y else result[0])
    return result


def _check_finite(X):
    """Raise scikit-learn's "Input X contains NaN/infinity" error if X has one.

    A parallel sum of X is finite exactly when X is, unless finite values
    overflow it; only then (or with a NaN) is the exact elementwise check run.
    """
    values = X.data if scipy.sparse.issparse(X) else X
    if values.size == 0:
        return
    if values.ndim == 2:
        n_chunks = reduction.n_chunks_for(values.shape[0])
        if n_chunks > 1:
            with current_threads():
                total = reduction.parallel_array_sum(values, n_chunks)
        else:
            total = reduction.array_sum(values)
    else:
        with np.errstate(over="ignore", invalid="ignore"):
            total = values.sum()
    if not np.isfinite(total):
        with np.errstate(over="ignore", invalid="ignore"):  # its own sum may overflow too
            assert_all_finite(values, input_name="X")


def _n_rows(array):
    """Number of rows of an array-like, or None when it has no length."""
    shape = getattr(array, "shape", None)
    if shape is not None:
        return shape[0] if len(shape) else None
    try:
        return len(array)
    except TypeError:
        return None


def _check_same_length(X, array, name):
    """``check_length`` before conversion, for any array-like X and ``array``."""
    n_samples, n_entries = _n_rows(X), _n_rows(array)
    if n_samples is not None and n_entries is not None and n_samples != n_entries:
        raise ValueError(
            f"X has {n_samples} rows but {name} has {n_entries} entries; "
            f"pass one {name} value per row of X."
        )


_ENCODE_ADVICE = "Encode text or categorical columns as numbers before training."


def _check_numeric_dtype(X, name, advice=_ENCODE_ADVICE):
    """Reject string and complex arrays early, with a message that says what to do.

    Object arrays are left to the conversion: they may hold numbers (as a
    pandas frame of mixed columns does); strings in them fail in
    :func:`_numeric_errors`.
    """
    dtype = getattr(X, "dtype", None)
    if not isinstance(dtype, np.dtype):
        return
    if dtype.kind == "c":
        raise ValueError(
            f"Complex data not supported: {name} has dtype {dtype}. "
            f"Pass its real part ({name}.real) or its magnitude (np.abs({name}))."
        )
    if dtype.kind in "USV":
        raise ValueError(f"{name} must hold real numbers, got an array of dtype {dtype}. {advice}")


_NOT_FINITE = re.compile(r"Input (?:(\w+) )?contains (NaN|infinity)")
_DATA_FIXES = {
    "NaN": "Drop those rows or impute the values (e.g. with sklearn.impute.SimpleImputer).",
    "infinity": "Drop or clip those values, or rescale the column.",
}


@contextlib.contextmanager
def _numeric_errors(name, advice=_ENCODE_ADVICE, finite_advice=None):
    """Turn scikit-learn's conversion errors into messages that say what to do.

    "could not convert string to float" gets the input's name and ``advice``;
    "Input X contains NaN/infinity" gets ``finite_advice`` (by default, how to
    clean a data set).
    """
    try:
        yield
    except (TypeError, ValueError) as exc:
        text = str(exc)
        if "could not convert" in text or "float()" in text:
            # Keep the type: a TypeError (an unconvertible object) stays one.
            error = TypeError if isinstance(exc, TypeError) else ValueError
            raise error(f"{name} must hold real numbers; {text}. {advice}") from exc
        found = _NOT_FINITE.search(text)
        if found:
            which, what = found.group(1) or name, found.group(2)
            problem = "NaN" if what == "NaN" else "infinity or a value too large for its dtype"
            fix = finite_advice or _DATA_FIXES[what]
            message = f"{which} contains {problem}; fastlr needs finite numbers. {fix}"
            raise ValueError(message) from exc
        raise


def as_binary_targets(y, n_samples, dtype):
    """Check 0/1 targets for the gradient functions and return them in ``dtype``.

    Parameters
    ----------
    y : array-like of shape (n_samples,)
        Targets, each 0 or 1.
    n_samples : int
        Number of rows of X, which y must match.
    dtype : numpy dtype
        dtype of X; y is returned in it.

    Returns
    -------
    y : ndarray of shape (n_samples,)
    """
    with _numeric_errors("y", "Map the two classes to 0 and 1."):
        y = check_array(y, ensure_2d=False, dtype=None, input_name="y")
    if y.ndim != 1:
        raise ValueError(f"y must be 1-D with one target per row of X, got shape {y.shape}.")
    check_length(y, n_samples, "y")
    if y.dtype.kind not in "biuf":
        raise ValueError(
            f"y must hold 0/1 numbers, got dtype {y.dtype}. Map the two classes to 0 and 1 "
            f"(LogisticRegression does this for any labels)."
        )
    bad = (y != 0) & (y != 1)
    if bad.any():
        raise ValueError(
            f"y must hold only 0 and 1 for the gradient, found {y[bad][0].item()!r}. "
            f"Map the two classes to 0 and 1 (LogisticRegression does this for any labels)."
        )
    return np.ascontiguousarray(y, dtype=dtype)


def check_length(array, n_samples, name):
    """Raise if ``array`` does not have one entry per row of X."""
    if array.shape[0] != n_samples:
        raise ValueError(
            f"X has {n_samples} rows but {name} has {array.shape[0]} entries; "
            f"pass one {name} value per row of X."
        )


def as_sample_weight(sample_weight, n_samples, dtype):
    """Check sample weights; ``None`` becomes the empty array the kernels read as 1.

    Parameters
    ----------
    sample_weight : array-like of shape (n_samples,) or None
        Non-negative, finite weights with a positive sum.
    n_samples : int
        Number of rows of X.
    dtype : numpy dtype
        dtype of X.

    Returns
    -------
    sample_weight : ndarray of shape (n_samples,) or (0,)
    total : float
        Sum of the weights (``n_samples`` when ``sample_weight`` is None).
    """
    if sample_weight is None:
        return np.empty(0, dtype=dtype), float(n_samples)
    if isinstance(sample_weight, numbers.Number):
        sample_weight = np.full(n_samples, sample_weight)
    _check_numeric_dtype(sample_weight, "sample_weight", "Pass one number per row of X.")
    with _numeric_errors("sample_weight", "Pass one number per row of X."):
        sw = check_array(sample_weight, ensure_2d=False, dtype=dtype, input_name="sample_weight")
    if sw.ndim != 1:
        raise ValueError(
            f"sample_weight must be 1-D with one weight per row of X, got shape {sw.shape}."
        )
    check_length(sw, n_samples, "sample_weight")
    if (sw < 0).any():
        raise ValueError(
            f"sample_weight must be non-negative; found {sw[sw < 0][0].item()!r}. "
            f"Use 0 to leave a sample out."
        )
    with np.errstate(over="ignore"):  # a sum past 1.8e308 is inf, and positive
        total = float(sw.sum(dtype=np.float64))
    if total <= 0:
        raise ValueError("sample_weight sums to zero; at least one sample needs a positive weight.")
    return np.ascontiguousarray(sw), total


def as_coef(coef, n_features, dtype):
    """Check a coefficient vector against the number of features of X."""
    coef = np.asarray(coef)
    if coef.ndim == 2 and coef.shape[0] == 1:
        coef = coef[0]
    if coef.ndim != 1 or coef.shape[0] != n_features:
        raise ValueError(
            f"coef must have one entry per feature of X: expected shape ({n_features},), "
            f"got {coef.shape}. Pass a 1-D array of length {n_features}."
        )
    advice = "Pass one real coefficient per feature of X."
    _check_numeric_dtype(coef, "coef", advice)
    with _numeric_errors("coef", advice, finite_advice=advice):
        coef = check_array(coef, ensure_2d=False, dtype=dtype, input_name="coef")
    return np.ascontiguousarray(coef)


def as_intercept(intercept, dtype):
    """Check a scalar intercept and return it as a ``dtype`` scalar."""
    value = np.asarray(intercept)
    if value.size != 1:
        raise ValueError(
            f"intercept must be a scalar, got shape {value.shape}. Pass a single float."
        )
    value = value.reshape(())
    if value.dtype.kind not in "biuf" or not np.isfinite(value):
        raise ValueError(
            f"intercept must be a finite real number, got {intercept!r}. Pass a single float."
        )
    return dtype.type(value)


def check_positive(value, name):
    """Raise unless ``value`` is a finite number > 0."""
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Real)
        or not np.isfinite(value)
        or value <= 0
    ):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}.")
    return value


# --------------------------------------------------------------------------
# Conversion, done once, outside the kernels.
# --------------------------------------------------------------------------


def csr_arrays(X):
    """Check a scipy sparse matrix and return its CSR arrays for the kernels.

    Other sparse formats are converted once with ``.tocsr()``. Nothing is
    sorted and nothing is densified; duplicate entries of a row are summed, as
    scipy does. float32 and float64 values are kept as they are; integer and
    boolean values become float64. ``indices`` and ``indptr`` share one dtype:
    int32 when both are int32 already (no copy), int64 otherwise.

    Parameters
    ----------
    X : scipy sparse matrix or array of shape (n_samples, n_features)

    Returns
    -------
    arrays : CsrArrays
        ``(data, indices, indptr, n_features)``.

    Raises
    ------
    TypeError
        If X is not a scipy sparse matrix.
    ValueError
        If X's values are not real numbers, are NaN or infinite, or its column
        indices fall outside ``[0, n_features)``.
    """
    if not scipy.sparse.issparse(X):
        raise TypeError(
            f"X must be a scipy.sparse matrix, got {type(X).__name__}. Use the dense "
            f"kernels for arrays, or pass scipy.sparse.csr_matrix(X)."
        )
    if X.format != "csr":
        X = X.tocsr()
    n_features = X.shape[1]
    data = _as_float_data(X.data)
    index_dtype = np.int32 if X.indices.dtype == X.indptr.dtype == np.int32 else np.int64
    indices = np.ascontiguousarray(X.indices, dtype=index_dtype)
    indptr = np.ascontiguousarray(X.indptr, dtype=index_dtype)
    _check_column_indices(indices, n_features)
    return CsrArrays(data, indices, indptr, n_features)


def _as_float_data(data):
    """The stored values as a contiguous, finite float32/float64 array."""
    _check_numeric_dtype(data, "X")
    if data.dtype.kind not in "biuf":
        raise ValueError(f"X must hold real numbers, got a sparse matrix of dtype {data.dtype}.")
    if data.dtype not in (np.float32, np.float64):
        data = data.astype(np.float64)
    data = np.ascontiguousarray(data)
    if not np.isfinite(data).all():
        what = "NaN" if np.isnan(data).any() else "infinity"
        raise ValueError(
            f"X contains {what} among its stored values; fastlr needs finite numbers. "
            f"{_DATA_FIXES[what]}"
        )
    return data


def _check_column_indices(indices, n_features):
    """Raise unless every column index is in ``[0, n_features)`` (the kernels trust it)."""
    if indices.shape[0] and (indices.min() < 0 or indices.max() >= n_features):
        raise ValueError(
            f"X has column indices outside [0, {n_features}); its CSR structure is "
            f"corrupt. Rebuild it with scipy.sparse.csr_matrix((data, indices, indptr), "
            f"shape=...) and check it with X.check_format(full_check=True)."
        )


# --------------------------------------------------------------------------
# Labels, class weights and sample weights of the estimator.
# --------------------------------------------------------------------------


def show_labels(labels, limit=8):
    """A short text listing of labels for a message: the first ``limit`` of them."""
    values = np.asarray(labels).ravel().tolist()
    shown = ", ".join(repr(value) for value in values[:limit])
    more = f", ... ({len(values)} in all)" if len(values) > limit else ""
    return f"[{shown}{more}]"


@contextlib.contextmanager
def label_errors(y, name="y"):
    """Name the problem when object labels fail to sort or to classify.

    Missing labels (None or NaN among objects) and labels of several types
    (say ints and strings from a mixed column) fail deep in NumPy or
    scikit-learn with messages about comparisons or regression targets. Other
    errors pass through unchanged; the labels are inspected only after a
    failure, so valid labels cost nothing extra.
    """
    try:
        yield
    except (TypeError, ValueError) as exc:
        problem = _object_label_problem(np.asarray(y, dtype=object).ravel(), name)
        if problem is None:
            raise
        raise ValueError(problem) from exc


def _object_label_problem(values, name):
    missing = [i for i, v in enumerate(values) if v is None or (isinstance(v, float) and v != v)]
    if missing:
        return (
            f"{name} has missing labels (None or NaN) at {len(missing)} rows, the first at row "
            f"{missing[0]}; every sample needs a class. Drop those rows or give them a label."
        )
    kinds = {}
    for v in values:
        kind = "str" if isinstance(v, str) else "number" if isinstance(v, numbers.Number) else None
        kind = kind or type(v).__name__
        kinds.setdefault(kind, v)
    if len(kinds) > 1:
        examples = ", ".join(f"{kind} {value!r}" for kind, value in kinds.items())
        return (
            f"{name} mixes labels of different types ({examples}); every label must have the "
            f"same type. Convert them to one, e.g. {name}.astype(str)."
        )
    return None


def class_weights(class_weight, classes, counts):
    """Weight of each class, checked; ``None`` when ``class_weight`` is None.

    Parameters
    ----------
    class_weight : dict, "balanced" or None
    classes : ndarray of shape (n_classes,)
        The model's classes.
    counts : ndarray of shape (n_classes,) or callable
        Total sample weight of each class (rows count 1 without weights), or
        a function returning it: "balanced" divides by it.

    Returns
    -------
    weights : ndarray of shape (n_classes,) or None
        float64, finite and non-negative.
    """
    if class_weight is None:
        return None
    if isinstance(class_weight, str):
        counts = np.asarray(counts() if callable(counts) else counts, dtype=np.float64)
        empty = counts <= 0
        if empty.any():
            raise ValueError(
                f"class_weight='balanced' divides by each class's total sample weight, and "
                f"classes {show_labels(classes[empty])} have none (no samples, or only samples "
                f"of weight 0). Pass class_weight as a dict, or drop those classes."
            )
        return counts.sum() / (len(classes) * counts)
    known = set(classes.tolist())
    unknown = [label for label in class_weight if label not in known]
    if unknown:
        raise ValueError(
            f"class_weight names labels that are not classes of y: {show_labels(unknown)}; "
            f"the classes are {show_labels(classes)}. Check the keys' values and types "
            f"(1 and '1' are different labels)."
        )
    weights = [class_weight.get(label, 1.0) for label in classes.tolist()]
    for label, weight in zip(classes.tolist(), weights, strict=True):
        if (
            isinstance(weight, bool)
            or not isinstance(weight, numbers.Real)
            or not np.isfinite(weight)
            or weight < 0
        ):
            raise ValueError(
                f"class_weight must give each class a finite weight >= 0; class {label!r} has "
                f"{weight!r}."
            )
    return np.array(weights, dtype=np.float64)


def check_two_weighted_classes(y_idx, weights, classes, cause):
    """Raise unless samples of two classes or more keep a positive weight.

    A class whose samples all weigh 0 takes no part in the fit; with one class
    left, the model could only predict that class. ``cause`` names the
    parameters that set the weights, for the message ("sample_weight leaves").
    """
    totals = np.bincount(y_idx, weights=weights, minlength=len(classes))
    kept = classes[totals > 0]
    if len(kept) >= 2:
        return
    raise ValueError(
        f"{cause} a positive weight only to samples of class {show_labels(kept)}; logistic "
        f"regression needs samples of two classes or more with a positive weight."
    )


def _largest_total(dtype):
    """Weights summing above this are scaled: their weighted sums could overflow ``dtype``."""
    return float(np.sqrt(np.finfo(dtype).max))


def scale_weights(weights, dtype):
    """Scale float64 weights whose sum is too large for ``dtype``, by an exact power of two.

    The objective ``sum_i sw_i loss_i / S + alpha / 2 ||w||^2`` with
    ``alpha = 1 / (C S)`` is the same after ``sw -> sw 2^-k`` when ``alpha``
    is computed from the unscaled total: the caller multiplies ``1 / (C S')``
    by ``2^-k``. Weights summing below ``sqrt(max(dtype))`` are left as they
    are (sgd's steps depend on their scale, as in scikit-learn).

    Returns
    -------
    weights : ndarray of shape (n_samples,)
        In ``dtype``.
    exponent : int
        ``k``: the weights were divided by ``2**k`` (0 when not scaled).
    """
    with np.errstate(over="ignore"):
        total = float(weights.sum())
    if weights.shape[0] == 0 or total <= _largest_total(dtype):
        return weights.astype(dtype, copy=False), 0
    exponent = int(np.frexp(weights.max())[1])
    return np.ldexp(weights, -exponent).astype(dtype, copy=False), exponent
