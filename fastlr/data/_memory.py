"""Readers of data in memory: NumPy arrays, scipy.sparse matrices, pandas DataFrames, iterables."""

import numbers

import numpy as np
import scipy.sparse

from ._checks import check_numeric
from ._errors import DataError
from ._reader import Raw, Reader, array_fingerprint, split_sizes
from ._types import csr_view


def check_block_rows(block_rows):
    """``block_rows`` as a positive int or None."""
    if block_rows is None:
        return None
    if isinstance(block_rows, bool) or not isinstance(block_rows, numbers.Integral):
        raise TypeError(f"block_rows must be a positive int or None, got {block_rows!r}.")
    if block_rows < 1:
        raise ValueError(f"block_rows must be a positive int or None, got {block_rows}.")
    return int(block_rows)


def row_locator(start):
    """``locate`` for rows numbered from the start of the data."""
    return lambda row: f"row {start + row}"


def column_index(spec, n_columns, source, what):
    """Check an int column index of an array or a header-less file."""
    index = int(spec)
    if not -n_columns <= index < n_columns:
        raise DataError(
            source,
            f"{what} column {index} does not exist: the data have {n_columns} columns "
            f"(indices 0 to {n_columns - 1}).",
        )
    return index % n_columns


def per_row_array(values, n_rows, source, what):
    """A label or weight array given beside X: 1-D, one entry per row."""
    if scipy.sparse.issparse(values):
        values = values.toarray()
    values = np.asarray(values)
    if values.ndim == 2 and 1 in values.shape:
        values = values.reshape(-1)
    if values.ndim != 1 or values.shape[0] != n_rows:
        raise DataError(
            source, f"{what} has shape {values.shape}; pass one {what} per row ({n_rows},)."
        )
    return values


def _is_column_spec(spec):
    return isinstance(spec, (str, numbers.Integral)) and not isinstance(spec, bool)


class ArrayReader(Reader):
    """A 2-D NumPy array (or a memory map of one); label and weight as arrays or column indices."""

    format = "array"
    immutable = True

    def __init__(self, X, *, label, weight, columns, block_rows, name="array"):
        self.name = name
        if X.ndim != 2:
            raise DataError(name, f"X must be 2-D (rows x features), got shape {X.shape}.")
        check_numeric(X, name)
        self.X = X
        n_rows, n_columns = X.shape
        self.n_rows = n_rows
        taken = {}
        self._y_col, self._y = self._per_row(label, "label", taken)
        self._w_col, self._w = self._per_row(weight, "weight", taken)
        if columns is not None:
            features = [column_index(c, n_columns, name, "feature") for c in _as_list(columns)]
            clash = [c for c in features if c in taken]
            if clash:
                raise DataError(
                    name, f"column {clash[0]} is both a feature and the {taken[clash[0]]}."
                )
        else:
            features = [c for c in range(n_columns) if c not in taken]
        self._features = None if features == list(range(n_columns)) else np.asarray(features)
        self.n_features = len(features)
        self.sparse = False
        self.source_dtype = X.dtype
        self.has_label = label is not None
        self.has_weight = weight is not None
        self._parts = split_sizes([n_rows], block_rows)

    def _per_row(self, spec, what, taken):
        if spec is None:
            return None, None
        if isinstance(spec, str) and not spec.endswith(".npy"):
            raise DataError(
                self.name,
                f"{what}={spec!r} names a column, but arrays have no column names: "
                f"pass the {what}s as an array or their column's int index.",
            )
        if _is_column_spec(spec) and not isinstance(spec, str):
            index = column_index(spec, self.X.shape[1], self.name, what)
            if index in taken:
                raise DataError(
                    self.name, f"column {index} is both the {taken[index]} and the {what}."
                )
            taken[index] = what
            return index, None
        return None, self._per_row_values(spec, what)

    def _per_row_values(self, spec, what):
        return per_row_array(spec, self.n_rows, self.name, what)

    def block_rows(self):
        return tuple(b - a for _, a, b in self._parts)

    def _rows(self, a, b):
        """Rows ``a:b`` of X."""
        return self.X[a:b]

    def _values(self, values, a, b):
        return values[a:b]

    def read(self, k, dtype):
        _, a, b = self._parts[k]
        return self._read_rows(a, b, with_X=True)

    def _read_rows(self, a, b, with_X):
        rows = (
            self._rows(a, b)
            if (with_X or self._y_col is not None or self._w_col is not None)
            else None
        )
        X = rows
        if with_X and self._features is not None:
            X = rows[:, self._features]
        y = rows[:, self._y_col] if self._y_col is not None else self._cut(self._y, a, b)
        w = rows[:, self._w_col] if self._w_col is not None else self._cut(self._w, a, b)
        return Raw(X if with_X else None, y, w, b - a, row_locator(a))

    def _cut(self, values, a, b):
        return None if values is None else self._values(values, a, b)

    def scan_parts(self, dtype):
        # The scan needs the labels and weights only.
        for _, a, b in self._parts:
            yield self._read_rows(a, b, with_X=False)

    def fingerprint(self, digest):
        for part in (self.X, self._y, self._w):
            array_fingerprint(part, digest)


class SparseReader(Reader):
    """A scipy.sparse matrix, as CSR; label and weight as arrays."""

    format = "sparse"
    immutable = True

    def __init__(self, X, *, label, weight, columns, block_rows, name="sparse matrix"):
        self.name = name
        X = X.tocsr() if X.format != "csr" else X
        check_numeric(X.data, name)
        if columns is not None:
            cols = [column_index(c, X.shape[1], name, "feature") for c in _as_list(columns)]
            X = X[:, cols]
        if not X.has_canonical_format:
            X = X.copy()
            X.sum_duplicates()
        self.X = X
        self.n_rows, self.n_features = X.shape
        for spec, what in ((label, "label"), (weight, "weight")):
            if spec is not None and (_is_column_spec(spec)):
                raise DataError(
                    name, f"{what} must be an array of one {what} per row for sparse X."
                )
        self._y = None if label is None else per_row_array(label, self.n_rows, name, "label")
        self._w = None if weight is None else per_row_array(weight, self.n_rows, name, "weight")
        self.sparse = True
        self.source_dtype = X.dtype
        self.has_label = label is not None
        self.has_weight = weight is not None
        self._parts = split_sizes([self.n_rows], block_rows)

    def block_rows(self):
        return tuple(b - a for _, a, b in self._parts)

    def read(self, k, dtype):
        _, a, b = self._parts[k]
        X = self.X
        lo, hi = X.indptr[a], X.indptr[b]
        # Views of data and indices; only indptr (one entry per row) is new.
        block = csr_view(
            X.data[lo:hi], X.indices[lo:hi], X.indptr[a : b + 1] - lo, (b - a, self.n_features),
            canonical=True,
        )  # fmt: skip
        y = None if self._y is None else self._y[a:b]
        w = None if self._w is None else self._w[a:b]
        return Raw(block, y, w, b - a, row_locator(a))

    def fingerprint(self, digest):
        for part in (self.X, self._y, self._w):
            array_fingerprint(part, digest)


def _as_list(columns):
    if isinstance(columns, (str, numbers.Integral)):
        return [columns]
    return list(columns)


def missing_columns_error(source, what, missing, available):
    """DataError for columns named in label/weight/columns that the source lacks."""
    names = ", ".join(repr(c) for c in missing)
    shown = ", ".join(repr(c) for c in list(available)[:50])
    more = f", ... ({len(available)} in all)" if len(available) > 50 else ""
    return DataError(source, f"no column {names} for {what}; the columns are: {shown}{more}.")


class FrameReader(Reader):
    """A pandas DataFrame: column names become feature names."""

    format = "dataframe"
    immutable = True

    def __init__(self, frame, *, label, weight, columns, block_rows, name="DataFrame"):
        self.name = name
        self.frame = frame
        self.n_rows = len(frame)
        present = list(frame.columns)
        self._y_col, self._y = self._per_row(label, "label", present)
        self._w_col, self._w = self._per_row(weight, "weight", present)
        taken = {c for c in (self._y_col, self._w_col) if c is not None}
        if columns is not None:
            features = _as_list(columns)
            missing = [c for c in features if c not in present]
            if missing:
                raise missing_columns_error(name, "columns", missing, present)
            clash = [c for c in features if c in taken]
            if clash:
                raise DataError(name, f"column {clash[0]!r} is both a feature and a label/weight.")
        else:
            features = [c for c in present if c not in taken]
        self._features = features
        self._check_numeric(features)
        self.n_features = len(features)
        self.feature_names = (
            [str(c) for c in features] if all(isinstance(c, str) for c in features) else None
        )
        dtypes = [frame[c].dtype for c in features]
        all_float32 = bool(dtypes) and all(d == np.float32 for d in dtypes)
        self.source_dtype = np.dtype(np.float32) if all_float32 else np.dtype(np.float64)
        self.sparse = False
        self.has_label = label is not None
        self.has_weight = weight is not None
        self._parts = split_sizes([self.n_rows], block_rows)

    def _per_row(self, spec, what, present):
        if spec is None:
            return None, None
        if _is_column_spec(spec):
            if spec not in present:
                raise missing_columns_error(self.name, what, [spec], present)
            return spec, None
        return None, per_row_array(spec, self.n_rows, self.name, what)

    def _check_numeric(self, features):
        import pandas as pd

        bad = [
            f"{c!r} ({self.frame[c].dtype})"
            for c in features
            if not (
                pd.api.types.is_numeric_dtype(self.frame[c].dtype)
                or pd.api.types.is_bool_dtype(self.frame[c].dtype)
            )
        ]
        if bad:
            raise DataError(
                self.name,
                f"non-numeric feature columns: {', '.join(bad)}. Encode them as numbers, or "
                f"leave them out with columns=[...].",
            )

    def block_rows(self):
        return tuple(b - a for _, a, b in self._parts)

    def read(self, k, dtype):
        _, a, b = self._parts[k]
        rows = self.frame.iloc[a:b]
        X = rows[self._features].to_numpy(dtype=dtype, na_value=np.nan)
        y = self._column(rows, self._y_col, self._y, a, b, "label")
        w = self._column(rows, self._w_col, self._w, a, b, "weight")
        return Raw(X, y, w, b - a, row_locator(a))

    def _column(self, rows, col, values, a, b, what):
        if col is None:
            return None if values is None else values[a:b]
        series = rows[col]
        missing = series.isna().to_numpy()
        if missing.any():
            row = int(np.argmax(missing))
            raise DataError(self.name, f"the {what} is missing (NA).", f"row {a + row}")
        numpy_dtype = getattr(series.dtype, "numpy_dtype", None)
        if numpy_dtype is not None:
            return series.to_numpy(dtype=numpy_dtype)
        return np.asarray(series)

    def fingerprint(self, digest):
        import pandas as pd

        digest.update(repr(list(self.frame.columns)).encode())
        hashed = pd.util.hash_pandas_object(self.frame, index=False).to_numpy()
        array_fingerprint(hashed, digest)
        for part in (self._y, self._w):
            array_fingerprint(part, digest)


class IterableReader(Reader):
    """Chunks ``(X, y)`` or ``(X, y, w)`` (or bare ``X``) from a Python iterable.

    A list or tuple is re-read and indexed (random access); a callable is
    called for a fresh iterator at every pass; an iterator (a generator)
    gives one pass only.
    """

    format = "iterable"

    def __init__(self, source, *, block_rows, name=None):
        self.source = source
        self._block_rows = block_rows
        if isinstance(source, (list, tuple)):
            self.kind, self.name = "sequence", name or f"{type(source).__name__} of chunks"
            if not source:
                raise DataError(self.name, "holds no chunks.")
            first = source[0]
        elif callable(source):
            self.kind = "callable"
            self.name = name or f"chunks of {getattr(source, '__name__', 'a callable')}()"
            self._pending = iter(source())
            first = self._first(self._pending)
        else:
            self.kind, self.name = "iterator", name or f"{type(source).__name__} of chunks"
            self._pending = iter(source)
            first = self._first(self._pending)
        self._first_chunk = first
        columns = getattr(first[0] if isinstance(first, tuple) else first, "columns", None)
        if columns is not None and all(isinstance(c, str) for c in columns):
            self.feature_names = [str(c) for c in columns]  # a DataFrame's column names
        X, y, w = self.unpack(first, 0)
        self.sparse = scipy.sparse.issparse(X)
        self.n_features = X.shape[1]
        self.source_dtype = X.dtype
        self.has_label = y is not None
        self.has_weight = w is not None
        self.random_access = self.kind == "sequence"
        if self.random_access:
            sizes = [self.unpack(chunk, k)[0].shape[0] for k, chunk in enumerate(source)]
            self._parts = split_sizes(sizes, block_rows)

    def _first(self, iterator):
        try:
            return next(iterator)
        except StopIteration:
            raise DataError(self.name, "holds no chunks.") from None

    def unpack(self, chunk, k):
        """``(X, y, w)`` of chunk ``k``, checked for shape and agreement with chunk 0."""
        if isinstance(chunk, tuple):
            if len(chunk) not in (2, 3):
                raise DataError(
                    self.name,
                    f"a chunk must be (X, y) or (X, y, sample_weight); got a tuple of "
                    f"{len(chunk)} items.",
                    f"chunk {k}",
                )
            X, y, w = (*chunk, None) if len(chunk) == 2 else chunk
        else:
            X, y, w = chunk, None, None
        if hasattr(X, "to_numpy") and hasattr(X, "columns"):
            X = X.to_numpy()
        if not scipy.sparse.issparse(X):
            X = np.asarray(X)
            if X.ndim != 2:
                raise DataError(self.name, f"X must be 2-D, got shape {X.shape}.", f"chunk {k}")
        if k and hasattr(self, "has_label"):
            if (y is not None) != self.has_label or (w is not None) != self.has_weight:
                raise DataError(
                    self.name,
                    "every chunk must have the same parts as the first (a label, a weight).",
                    f"chunk {k}",
                )
            if scipy.sparse.issparse(X) != self.sparse:
                raise DataError(
                    self.name, "chunks mix dense and sparse X; pass one kind.", f"chunk {k}"
                )
        n_rows = X.shape[0]
        if y is not None:
            y = per_row_array(y, n_rows, f"{self.name}, chunk {k}", "label")
        if w is not None:
            w = per_row_array(w, n_rows, f"{self.name}, chunk {k}", "weight")
        return X, y, w

    def block_rows(self):
        if not self.random_access:
            return None
        return tuple(b - a for _, a, b in self._parts)

    def read(self, k, dtype):
        unit, a, b = self._parts[k]
        X, y, w = self.unpack(self.source[unit], unit)
        return self._raw(X, y, w, unit, a, b)

    def _raw(self, X, y, w, unit, a, b):
        if (a, b) != (0, X.shape[0]):
            X, y, w = X[a:b], _cut(y, a, b), _cut(w, a, b)
        return Raw(X, y, w, b - a, lambda row: f"chunk {unit}, row {a + row}")

    def blocks(self, dtype):
        if self.random_access:
            yield from super().blocks(dtype)
            return
        iterator = self._new_pass()
        for unit, chunk in enumerate(iterator):
            X, y, w = self.unpack(chunk, unit)
            n = X.shape[0]
            step = self._block_rows or n
            for a in range(0, n, max(step, 1)):
                yield self._raw(X, y, w, unit, a, min(a + step, n))

    def _new_pass(self):
        pending = getattr(self, "_pending", None)
        if pending is not None:
            self._pending = None
            return _prepend(self._first_chunk, pending)
        if self.kind == "iterator":
            raise self.one_pass_error()
        return iter(self.source())

    def one_pass_error(self):
        """The DataError for a second pass over an iterator."""
        return DataError(
            self.name,
            "an iterator gives one pass over its chunks, and it was used. Pass a "
            "callable that returns a new iterator (e.g. lambda: read_chunks(...)), a list, "
            "or write the chunks to the binary cache once with "
            "fastlr.data.write_cache(dataset, path) and train on that.",
        )

    def can_restart(self):
        """False for an iterator that has been read."""
        return not (self.kind == "iterator" and getattr(self, "_pending", None) is None)

    def fingerprint(self, digest):
        # Only the blocks can tell: Dataset hashes them during the scan.
        raise NotImplementedError


def _cut(values, a, b):
    return None if values is None else values[a:b]


def _prepend(first, rest):
    yield first
    yield from rest
