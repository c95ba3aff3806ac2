"""Conversion of user input, done once, and every user-facing error message."""

import contextlib
import numbers

import numpy as np
from sklearn.utils import check_array
from sklearn.utils.validation import validate_data

FLOAT_DTYPES = (np.float64, np.float32)


def as_features(X, *, name="X"):
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

    Returns
    -------
    X : ndarray of shape (n_samples, n_features)

    Raises
    ------
    ValueError
        If X is empty, not 2-D, non-numeric, or holds NaN or infinity.
    """
    _check_numeric_dtype(X, name)
    with _numeric_errors(name):
        return check_array(
            X, dtype=list(FLOAT_DTYPES), order="C", input_name=name, estimator="fastlr"
        )


def validate_features(estimator, X, y=None, *, reset):
    """``as_features`` for an estimator: also records or checks ``n_features_in_``.

    Parameters
    ----------
    estimator : BaseEstimator
    X : array-like of shape (n_samples, n_features)
    y : array-like of shape (n_samples,), optional
        Checked for length and finiteness along with X when given.
    reset : bool
        True in ``fit`` (record the features), False in prediction (check them).

    Returns
    -------
    X : ndarray, or (X, y) when y is given
    """
    _check_numeric_dtype(X, "X")
    kwargs = dict(dtype=list(FLOAT_DTYPES), order="C", reset=reset)
    with _numeric_errors("X"):
        if y is None:
            return validate_data(estimator, X, **kwargs)
        return validate_data(estimator, X, y, **kwargs)


def _check_numeric_dtype(X, name):
    dtype = getattr(X, "dtype", None)
    if dtype is not None and dtype.kind in "OUSVc":
        raise ValueError(
            f"{name} must hold real numbers, got an array of dtype {dtype}. "
            f"Encode text or categorical columns as numbers before training."
        )


@contextlib.contextmanager
def _numeric_errors(name):
    """Turn numpy's "could not convert string to float" into a message that says what to do."""
    try:
        yield
    except (TypeError, ValueError) as exc:
        if "could not convert" in str(exc) or "float()" in str(exc):
            raise ValueError(
                f"{name} must hold real numbers; {exc}. "
                f"Encode text or categorical columns as numbers before training."
            ) from exc
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
    y = check_array(y, ensure_2d=False, dtype=None, input_name="y")
    if y.ndim != 1:
        raise ValueError(f"y must be 1-D with one target per row of X, got shape {y.shape}.")
    check_length(y, n_samples, "y")
    if y.dtype.kind not in "biuf":
        raise ValueError(f"y must hold 0/1 numbers, got dtype {y.dtype}.")
    bad = (y != 0) & (y != 1)
    if bad.any():
        raise ValueError(
            f"y must hold only 0 and 1 for the gradient, found {y[bad][0]!r}. "
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
    sw = check_array(sample_weight, ensure_2d=False, dtype=dtype, input_name="sample_weight")
    if sw.ndim != 1:
        raise ValueError(f"sample_weight must be 1-D, got shape {sw.shape}.")
    check_length(sw, n_samples, "sample_weight")
    if (sw < 0).any():
        raise ValueError("sample_weight must be non-negative; found a negative weight.")
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
            f"got {coef.shape}."
        )
    coef = check_array(coef, ensure_2d=False, dtype=dtype, input_name="coef")
    return np.ascontiguousarray(coef)


def as_intercept(intercept, dtype):
    """Check a scalar intercept and return it as a ``dtype`` scalar."""
    value = np.asarray(intercept)
    if value.size != 1:
        raise ValueError(f"intercept must be a scalar, got shape {value.shape}.")
    value = value.reshape(())
    if value.dtype.kind not in "biuf" or not np.isfinite(value):
        raise ValueError(f"intercept must be a finite real number, got {intercept!r}.")
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
