"""``PredictionWriter``: prediction blocks streamed to a CSV, Parquet or ``.npy`` file."""

import os
import struct
import uuid
from pathlib import Path

import numpy as np

from ._cache import _fsync_dir

WRITER_FORMATS = {".csv": "csv", ".parquet": "parquet", ".parq": "parquet", ".pq": "parquet",
                  ".npy": "npy"}  # fmt: skip
# The .npy header is written first with room for any shape, then rewritten.
_NPY_HEADER_BYTES = 128


def _npy_header(dtype, shape):
    """An ``.npy`` version 1.0 header of exactly ``_NPY_HEADER_BYTES`` bytes."""
    text = f"{{'descr': {dtype.str!r}, 'fortran_order': False, 'shape': {tuple(shape)!r}, }}"
    padding = _NPY_HEADER_BYTES - 10 - len(text) - 1
    header = (text + " " * padding + "\n").encode("latin1")
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header


class PredictionWriter:
    """Write predictions block by block to a file, in bounded memory, atomically.

    The format follows the extension: ``.csv`` (also ``.csv.gz``),
    ``.parquet`` / ``.pq``, or ``.npy`` (a numeric array of shape
    ``(n_rows,)`` for one column, ``(n_rows, n_columns)`` for more). Rows go
    to a temporary file beside ``path``, which :meth:`close` syncs and
    renames to ``path``: readers never see a partial file, and on an
    exception (or :meth:`abort`) nothing is left at ``path``.

    Parameters
    ----------
    path : path-like
    columns : list of str
        Column names (CSV header, Parquet schema; ``.npy`` files have none).
    format : {"csv", "parquet", "npy"}, optional
        Overrides the extension.

    Examples
    --------
    >>> with PredictionWriter("pred.csv", ["label", "proba"]) as out:  # doctest: +SKIP
    ...     for block in dataset:
    ...         out.write({"label": clf.predict(block.X), "proba": ...})
    """

    def __init__(self, path, columns, *, format=None):
        self.path = Path(path)
        self.columns = [str(c) for c in columns]
        if not self.columns or len(set(self.columns)) != len(self.columns):
            raise ValueError(f"columns must be distinct names, at least one; got {columns!r}.")
        suffixes = self.path.suffixes
        suffix = (
            suffixes[-2] if suffixes[-1:] == [".gz"] and len(suffixes) > 1 else self.path.suffix
        )
        self.format = format or WRITER_FORMATS.get(suffix.lower())
        if self.format not in ("csv", "parquet", "npy"):
            raise ValueError(
                f"cannot tell the prediction file format from {self.path.name!r}; use a .csv, "
                f".csv.gz, .parquet or .npy name, or pass format=."
            )
        self.compressed = suffixes[-1:] == [".gz"]
        self.temporary = self.path.parent / f".{self.path.name}.partial-{uuid.uuid4().hex[:12]}"
        self.n_rows = 0
        self._writer = None
        self._schema = None
        self._file = None
        self._dtype = None
        self._closed = False

    def __enter__(self):
        return self

    def __exit__(self, kind, value, traceback):
        if kind is None:
            self.close()
        else:
            self.abort()

    def __del__(self):
        if not getattr(self, "_closed", True):
            self.abort()

    def _arrays(self, values):
        """The block as one 1-D array per column, all of one length."""
        if isinstance(values, dict):
            missing = [c for c in self.columns if c not in values]
            extra = [c for c in values if c not in self.columns]
            if missing or extra:
                raise ValueError(
                    f"the block's columns {sorted(values)} differ from the writer's {self.columns}."
                )
            arrays = [np.asarray(values[c]) for c in self.columns]
        elif isinstance(values, np.ndarray) and values.ndim == 2:
            arrays = list(values.T)
        elif isinstance(values, np.ndarray) and values.ndim == 1 and len(self.columns) == 1:
            arrays = [values]
        else:
            arrays = [np.asarray(v) for v in values]
        if len(arrays) != len(self.columns) or any(a.ndim != 1 for a in arrays):
            raise ValueError(
                f"write() takes {len(self.columns)} columns of one value per row; got "
                f"{[a.shape for a in arrays]}."
            )
        if len({a.shape[0] for a in arrays}) != 1:
            raise ValueError(f"the columns have different lengths: {[len(a) for a in arrays]}.")
        return arrays

    def write(self, values):
        """Append a block of rows.

        Parameters
        ----------
        values : dict, 2-D array or sequence of 1-D arrays
            One array per column (by name for a dict), one entry per row.
        """
        if self._closed:
            raise ValueError("the writer is closed.")
        arrays = self._arrays(values)
        try:
            getattr(self, f"_write_{self.format}")(arrays)
        except BaseException:
            self.abort()
            raise
        self.n_rows += arrays[0].shape[0]

    def _table(self, arrays):
        import pyarrow as pa

        table = pa.table({c: pa.array(a) for c, a in zip(self.columns, arrays, strict=True)})
        if self._schema is None:
            self._schema = table.schema
        return table.cast(self._schema)

    def _write_csv(self, arrays):
        import pyarrow as pa
        import pyarrow.csv as pcsv

        table = self._table(arrays)
        if self._writer is None:
            self._file = pa.OSFile(str(self.temporary), "wb")
            sink = pa.CompressedOutputStream(self._file, "gzip") if self.compressed else self._file
            self._sink = sink
            self._writer = pcsv.CSVWriter(sink, self._schema)
        self._writer.write_table(table)

    def _write_parquet(self, arrays):
        import pyarrow.parquet as pq

        table = self._table(arrays)
        if self._writer is None:
            self._writer = pq.ParquetWriter(str(self.temporary), self._schema)
        self._writer.write_table(table)

    def _write_npy(self, arrays):
        if self._dtype is None:
            self._dtype = np.result_type(*arrays)
            if self._dtype.kind not in "biuf":
                raise TypeError(
                    f"an .npy prediction file holds numbers; the block has dtype {self._dtype}. "
                    f"Write labels that are not numbers to .csv or .parquet."
                )
            self._file = open(self.temporary, "wb")
            self._file.write(_npy_header(self._dtype, (0,)))
        block = np.empty((arrays[0].shape[0], len(arrays)), dtype=self._dtype)
        for j, values in enumerate(arrays):
            if not np.can_cast(values.dtype, self._dtype, "same_kind"):
                raise TypeError(
                    f"column {self.columns[j]!r} has dtype {values.dtype}; the file holds "
                    f"{self._dtype} (set by the first block)."
                )
            block[:, j] = values
        self._file.write(block.reshape(-1).view(np.uint8))

    def close(self):
        """Finish the file and move it to ``path`` (an empty file if nothing was written)."""
        if self._closed:
            return
        try:
            self._finish()
            os.replace(self.temporary, self.path)
            _fsync_dir(self.path.parent)
        except BaseException:
            self.abort()
            raise
        self._closed = True

    def _finish(self):
        if self._writer is None and self._file is None:
            self._write_empty()
        if self.format == "npy":
            shape = (self.n_rows,) if len(self.columns) == 1 else (self.n_rows, len(self.columns))
            self._file.seek(0)
            self._file.write(_npy_header(self._dtype, shape))
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            return
        self._writer.close()
        if self.format == "csv":
            self._sink.close()
        with open(self.temporary, "rb+") as file:
            os.fsync(file.fileno())

    def _write_empty(self):
        if self.format == "npy":
            self._write_npy([np.empty(0) for _ in self.columns])
        else:
            getattr(self, f"_write_{self.format}")([np.empty(0) for _ in self.columns])

    def abort(self):
        """Discard what was written: nothing is left at ``path`` (nor the temporary file)."""
        if self._closed:
            return
        self._closed = True
        for resource in (self._writer, self._file):
            try:
                if resource is not None:
                    resource.close()
            except Exception:  # the file is deleted anyway
                pass
        try:
            os.unlink(self.temporary)
        except FileNotFoundError:
            pass
