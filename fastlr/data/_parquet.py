"""Reader of Parquet files and folders (pyarrow): row groups are the blocks."""

import glob
from pathlib import Path

import numpy as np

from ._errors import DataError
from ._memory import missing_columns_error
from ._reader import Raw, Reader, file_fingerprint, files_stamp, split_sizes

PARQUET_SUFFIXES = (".parquet", ".parq", ".pq")


def _is_numeric(arrow_type):
    import pyarrow as pa

    return (
        pa.types.is_integer(arrow_type)
        or pa.types.is_floating(arrow_type)
        or pa.types.is_boolean(arrow_type)
        or pa.types.is_decimal(arrow_type)
    )


def first_null(column):
    """Index of the first null of a pyarrow (chunked) array, or -1."""
    if column.null_count == 0:
        return -1
    return int(np.argmax(column.is_null().to_numpy(zero_copy_only=False)))


def column_values(column, dtype=None):
    """A pyarrow column without nulls as a NumPy array (no copy where pyarrow allows)."""
    import pyarrow as pa

    if pa.types.is_dictionary(column.type):
        column = column.cast(column.type.value_type)
    if pa.types.is_decimal(column.type):
        column = column.cast(pa.float64())
    values = (
        column.to_numpy()
        if hasattr(column, "num_chunks")
        else column.to_numpy(zero_copy_only=False)
    )
    return values if dtype is None else values.astype(dtype, copy=False)


# fill_dense writes rows in slices of about this many bytes: the strided
# column writes then stay in the core's cache (measured 1e6 x 20 float64:
# 6x faster than writing whole columns into the block).
_FILL_BYTES = 256 << 10


def fill_dense(table, names, dtype, source, locate):
    """The named columns of a pyarrow table as a C-contiguous (rows, columns) array.

    Raises
    ------
    DataError
        If a column holds a null (a missing value).
    """
    for name in names:
        row = first_null(table.column(name))
        if row >= 0:
            raise DataError(
                source,
                f"missing value (null) in column {name!r}; fastlr needs a number in every "
                f"feature. Drop those rows or impute the values.",
                locate(row),
            )
    out = np.empty((table.num_rows, len(names)), dtype=dtype)
    step = max(16, _FILL_BYTES // max(1, len(names) * out.itemsize))
    row = 0
    for batch in table.select(names).to_batches(max_chunksize=step):
        stop = row + batch.num_rows
        for j in range(len(names)):
            out[row:stop, j] = column_values(batch.column(j))
        row = stop
    return out


def per_row_column(table, name, source, locate, what, dtype=None):
    """A label or weight column of a pyarrow table, refused when a value is missing."""
    column = table.column(name)
    row = first_null(column)
    if row >= 0:
        raise DataError(source, f"the {what} (column {name!r}) is missing (null).", locate(row))
    return column_values(column, dtype)


def list_files(source, suffixes):
    """Files of a folder (recursively) or a glob pattern with one of ``suffixes``, sorted."""
    path = Path(source)
    if path.is_dir():
        candidates = path.rglob("*")
    else:
        candidates = (Path(p) for p in glob.glob(str(source), recursive=True))
    files = sorted(p for p in candidates if p.is_file() and p.suffix in suffixes)
    if not files:
        raise DataError(str(source), f"no {' / '.join(suffixes)} files found.")
    return files


class ParquetReader(Reader):
    """Parquet files: every row group is a block (cut by ``block_rows`` when larger).

    ``label`` and ``weight`` name columns; ``columns`` selects the features
    (by default every other column, which must then all be numeric).
    """

    format = "parquet"
    immutable = True

    def __init__(self, source, *, label, weight, columns, block_rows):
        import pyarrow.parquet as pq

        self.name = str(source)
        path = Path(source)
        self.files = [path] if path.is_file() else list_files(source, PARQUET_SUFFIXES)
        metadata = []
        for file in self.files:
            try:
                metadata.append(pq.read_metadata(file))
            except (OSError, ValueError) as exc:
                raise DataError(str(file), f"not a readable Parquet file ({exc}).") from exc
        schema = metadata[0].schema.to_arrow_schema()
        present = schema.names
        for what, spec in (("label", label), ("weight", weight)):
            if spec is not None and not isinstance(spec, str):
                raise DataError(self.name, f"{what} must name a column of the Parquet data.")
            if spec is not None and spec not in present:
                raise missing_columns_error(self.name, what, [spec], present)
        taken = {label, weight} - {None}
        if columns is not None:
            features = [columns] if isinstance(columns, str) else list(columns)
            missing = [c for c in features if c not in present]
            if missing:
                raise missing_columns_error(self.name, "columns", missing, present)
        else:
            features = [c for c in present if c not in taken]
        bad = [
            f"{c!r} ({schema.field(c).type})"
            for c in features
            if not _is_numeric(schema.field(c).type)
        ]
        if bad:
            raise DataError(
                self.name,
                f"non-numeric feature columns: {', '.join(bad)}. Encode them as numbers, or "
                f"leave them out with columns=[...].",
            )
        self._check_files(metadata, features + sorted(taken))
        self.label, self.weight, self.features = label, weight, features
        self.feature_names = list(features)
        self.n_features = len(features)
        types = {str(schema.field(c).type) for c in features}
        self.source_dtype = np.dtype(np.float32) if types == {"float"} else np.dtype(np.float64)
        self.sparse = False
        self.has_label, self.has_weight = label is not None, weight is not None
        self._groups = [
            (f, g) for f, meta in enumerate(metadata) for g in range(meta.num_row_groups)
        ]
        sizes = [metadata[f].row_group(g).num_rows for f, g in self._groups]
        self._parts = split_sizes(sizes, block_rows)
        self._open = (None, None)

    def _check_files(self, metadata, needed):
        for file, meta in zip(self.files[1:], metadata[1:], strict=True):
            names = meta.schema.to_arrow_schema().names
            missing = [c for c in needed if c not in names]
            if missing:
                raise missing_columns_error(
                    str(file), "the columns of the first file", missing, names
                )

    def block_rows(self):
        return tuple(b - a for _, a, b in self._parts)

    def _file(self, f):
        import pyarrow.parquet as pq

        if self._open[0] != f:
            self._open = (f, pq.ParquetFile(self.files[f]))
        return self._open[1]

    def _read(self, k, columns):
        group, a, b = self._parts[k]
        f, g = self._groups[group]
        table = self._file(f).read_row_group(g, columns=columns)
        if (a, b) != (0, table.num_rows):
            table = table.slice(a, b - a)
        return table, str(self.files[f]), lambda row: f"row group {g}, row {a + row}", b - a

    def read(self, k, dtype, with_X=True):
        needed = (self.features if with_X else []) + [
            c for c in (self.label, self.weight) if c is not None
        ]
        table, source, locate, n = self._read(k, list(dict.fromkeys(needed)))
        X = fill_dense(table, self.features, dtype, source, locate) if with_X else None
        y = per_row_column(table, self.label, source, locate, "label") if self.has_label else None
        w = (
            per_row_column(table, self.weight, source, locate, "weight", np.float64)
            if self.has_weight
            else None
        )
        return Raw(X, y, w, n, locate)

    def scan_parts(self, dtype):
        for k in range(len(self._parts)):
            if self.has_label or self.has_weight:
                yield self.read(k, dtype, with_X=False)
            else:
                n = self._parts[k][2] - self._parts[k][1]
                yield Raw(None, None, None, n, lambda row: "")

    def fingerprint(self, digest):
        for file in self.files:
            file_fingerprint(file, digest)

    def stamp(self):
        return files_stamp(self.files)

    def close(self):
        self._open = (None, None)
