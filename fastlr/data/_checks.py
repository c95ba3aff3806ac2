"""Validation of each block as it is read: values, labels, weights.

Every check raises :class:`DataError` naming the source, the place (given by
the reader's ``locate(row)``) and the problem.
"""

import numpy as np

from .._jit import kernel
from ._errors import DataError
from ._types import csr_view

# first_nonfinite tests chunks of this many values with a branch-free
# comparison that vectorizes; the culprit is searched only in a failing chunk.
_FINITE_CHUNK = 4096

_FIXES = {
    "NaN": "Drop those rows or impute the values (e.g. with sklearn.impute.SimpleImputer).",
    "infinity": "Drop or clip those values, or rescale the column.",
}


@kernel(exact=True)
def first_nonfinite(values):
    """Index of the first NaN or infinity of a 1-D array, or -1.

    Parameters
    ----------
    values : ndarray of shape (n,), float32 or float64

    Returns
    -------
    index : int
    """
    n = values.shape[0]
    largest = np.finfo(values.dtype).max
    for start in range(0, n, _FINITE_CHUNK):
        stop = min(start + _FINITE_CHUNK, n)
        finite = True
        for i in range(start, stop):
            # False for NaN (every comparison with NaN is) and for infinity.
            finite &= np.abs(values[i]) <= largest
        if not finite:
            for i in range(start, stop):
                if not np.isfinite(values[i]):
                    return i
    return -1


def _column_name(col, feature_names):
    if feature_names is not None and col < len(feature_names):
        return f"column {feature_names[col]!r}"
    return f"column {col}"


def _nonfinite_problem(value, what):
    kind = "NaN" if np.isnan(value) else "infinity"
    return f"{kind} in {what}; fastlr needs finite numbers. {_FIXES[kind]}"


def check_numeric(values, source, what="X"):
    """Raise unless ``values`` holds real numbers (bool, int, unsigned, float)."""
    if values.dtype.kind not in "biuf":
        raise DataError(
            source,
            f"{what} holds non-numeric values (dtype {values.dtype}). Encode text or "
            f"categorical columns as numbers before training.",
        )


def dense_block(X, dtype, source, locate, feature_names=None, check=True):
    """X as a C-contiguous ``dtype`` array with finite values.

    Parameters
    ----------
    X : ndarray of shape (n_rows, n_features)
    dtype : numpy dtype
        The training dtype; X is converted (copied) only when it differs or
        X is not C-contiguous.
    source : str
    locate : callable
        ``locate(row)``: where row ``row`` of the block is, for messages.
    feature_names : list of str, optional
    check : bool, default=True
        Check finiteness (False for data validated when written).

    Returns
    -------
    X : ndarray
    """
    if X.ndim != 2:
        raise DataError(source, f"X must be 2-D, got an array of shape {X.shape}.", locate(0))
    check_numeric(X, source)
    with np.errstate(over="ignore"):  # an overflow to float32 is reported below
        X = np.ascontiguousarray(X, dtype=dtype)
    if check and X.size:
        bad = first_nonfinite(X.reshape(-1))
        if bad >= 0:
            row, col = divmod(bad, X.shape[1])
            where = _column_name(col, feature_names)
            raise DataError(source, _nonfinite_problem(X[row, col], where), locate(row))
    return X


def csr_block(X, dtype, n_features, source, locate, check=True):
    """X as canonical CSR: ``dtype`` data, sorted unique int32/int64 indices, finite.

    A matrix that is not canonical (unsorted or duplicate indices) is copied
    and put in canonical form (duplicates summed, as scipy does).

    Parameters
    ----------
    X : scipy sparse matrix of shape (n_rows, n_features)
    dtype : numpy dtype
    n_features : int
    source : str
    locate : callable
    check : bool, default=True

    Returns
    -------
    X : csr_matrix
    """
    if X.format != "csr":
        X = X.tocsr()
    check_numeric(X.data, source)
    index_dtype = np.int32 if X.indices.dtype == X.indptr.dtype == np.int32 else np.int64
    if X.indices.dtype != index_dtype or X.indptr.dtype != index_dtype:
        X = csr_view(X.data, X.indices.astype(index_dtype), X.indptr.astype(index_dtype), X.shape)
    if check and X.indices.size:
        low, high = X.indices.min(), X.indices.max()
        if low < 0 or high >= n_features:
            bad = low if low < 0 else high
            row = int(np.searchsorted(X.indptr, np.flatnonzero(X.indices == bad)[0], "right") - 1)
            raise DataError(
                source,
                f"column index {bad} is outside [0, {n_features}): the CSR structure is corrupt.",
                locate(row),
            )
    if not X.has_canonical_format:
        X = X.copy()
        X.sum_duplicates()
    if X.data.dtype != dtype:
        with np.errstate(over="ignore"):  # an overflow to float32 is reported below
            X = csr_view(X.data.astype(dtype), X.indices, X.indptr, X.shape, canonical=True)
    if check and X.data.size:
        bad = first_nonfinite(X.data)
        if bad >= 0:
            row = int(np.searchsorted(X.indptr, bad, "right") - 1)
            where = f"column {X.indices[bad]}"
            raise DataError(source, _nonfinite_problem(X.data[bad], where), locate(row))
    return X


def _missing(y):
    """Boolean mask of missing labels: NaN, or None / NaN in object arrays."""
    if y.dtype.kind == "f":
        return np.isnan(y)
    if y.dtype.kind == "O":
        return np.fromiter(
            (v is None or (isinstance(v, float) and v != v) for v in y), bool, len(y)
        )
    return None


def label_block(y, n_rows, source, locate, classes=None):
    """Check the labels of a block: one per row, none missing, all in ``classes``.

    Parameters
    ----------
    y : ndarray of shape (n_rows,)
    n_rows : int
    source : str
    locate : callable
    classes : ndarray, optional
        The sorted classes the scan found; None before the scan.

    Returns
    -------
    y : ndarray
    """
    y = np.asarray(y)
    if y.ndim != 1 or y.shape[0] != n_rows:
        raise DataError(
            source,
            f"the label has shape {y.shape}, expected one label per row ({n_rows},).",
            locate(0),
        )
    missing = _missing(y)
    if missing is not None and missing.any():
        row = int(np.argmax(missing))
        raise DataError(source, "the label is missing (empty, NaN or null).", locate(row))
    if y.dtype.kind not in "biufUSO":
        raise DataError(source, f"labels of dtype {y.dtype} are not supported.", locate(0))
    if classes is not None and n_rows:
        outside = ~_in_sorted(y, classes)
        if outside.any():
            row = int(np.argmax(outside))
            raise DataError(
                source,
                f"label {_scalar(y[row])!r} is not one of the classes the scan found "
                f"({_short_list(classes)}): the data changed since the scan. "
                f"Build a new Dataset on the changed data.",
                locate(row),
            )
    return y


def _scalar(value):
    """A NumPy scalar as the Python value it holds, for messages."""
    return value.item() if hasattr(value, "item") else value


def _in_sorted(values, sorted_classes):
    """``np.isin`` for a sorted class array, in O(n log n_classes)."""
    try:
        position = np.searchsorted(sorted_classes, values)
    except TypeError:  # labels of another type than the classes (str against numbers)
        return np.zeros(len(values), dtype=bool)
    position = np.minimum(position, len(sorted_classes) - 1)
    return sorted_classes[position] == values


def _short_list(values, limit=10):
    shown = ", ".join(repr(_scalar(v)) for v in values[:limit])
    return shown + (f", ... ({len(values)} in all)" if len(values) > limit else "")


def weight_block(w, n_rows, dtype, source, locate):
    """Check the sample weights of a block: one per row, finite, non-negative.

    Returns
    -------
    w : ndarray of shape (n_rows,)
        Weights already in float64 or in the training ``dtype`` are kept;
        others become float64.
    """
    w = np.asarray(w)
    if w.ndim != 1 or w.shape[0] != n_rows:
        raise DataError(
            source,
            f"the sample weight has shape {w.shape}, expected one weight per row ({n_rows},).",
            locate(0),
        )
    if w.dtype.kind not in "biuf":
        raise DataError(source, f"sample weights must be numbers, got dtype {w.dtype}.", locate(0))
    if w.dtype not in (np.float64, dtype):
        w = w.astype(np.float64)
    bad = ~np.isfinite(w) | (w < 0)
    if bad.any():
        row = int(np.argmax(bad))
        value = _scalar(w[row])
        problem = "is negative" if value < 0 else "is not finite"
        raise DataError(
            source,
            f"sample weight {value!r} {problem}; weights must be finite and >= 0 "
            f"(0 leaves a row out).",
            locate(row),
        )
    return w
