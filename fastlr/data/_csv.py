"""Reader of CSV and gzipped CSV files, through pyarrow's streaming reader (``open_csv``).

pyarrow parses and converts in compiled code. Its errors do not say which
line is wrong, so when a block fails (or holds a missing or non-finite value)
the file is read again with Python's ``csv`` module up to the culprit: slow,
but only on the way to an error message.
"""

import csv
import gzip
import io
import os
from pathlib import Path

import numpy as np

from ._errors import DataError
from ._memory import missing_columns_error
from ._parquet import fill_dense, per_row_column
from ._reader import Raw, Reader, file_fingerprint
from ._types import TEXT_BLOCK_BYTES

# Bytes of text pyarrow parses at a time. Measured on a 1e6 x 20 float file:
# 512 KiB pieces parse 1.3x faster than 2 MiB ones and 2.3x faster than 8 MiB
# ones (the parser's intermediate data stay in the core's cache); a block
# gathers the pieces up to TEXT_BLOCK_BYTES of parsed values.
PARSE_BLOCK_BYTES = 512 << 10


def open_text(path):
    """A text stream over a plain or gzipped file."""
    if str(path).endswith(".gz"):
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", newline="")
    return open(path, encoding="utf-8", newline="")


class CsvReader(Reader):
    """A CSV file read block by block; sequential (no random access).

    Parameters
    ----------
    path : path-like
    label, weight : str or int or None
        Column names, or indices into the file's columns.
    columns : list of str or int, optional
        The feature columns (default: every other column).
    block_rows : int or None
        None: blocks of about ``TEXT_BLOCK_BYTES`` of parsed values.
    header : bool, default=True
        Whether the first line names the columns. Without a header the
        columns are called ``x0``, ``x1``, ... by position and the fitted
        model gets no feature names.
    delimiter : str, default="," ("\\t" for ``.tsv``)
    """

    format = "csv"
    random_access = False

    def __init__(self, path, *, label, weight, columns, block_rows, header=True, delimiter=None):
        self.path = Path(path)
        self.name = str(path)
        self.header = bool(header)
        if delimiter is None:
            delimiter = "\t" if ".tsv" in self.path.suffixes else ","
        self.delimiter = delimiter
        self._block_rows = block_rows
        self.names = self._read_names()
        self.label = self._column_name(label, "label")
        self.weight = self._column_name(weight, "weight")
        taken = {self.label, self.weight} - {None}
        if columns is not None:
            columns = [columns] if isinstance(columns, (str, int)) else list(columns)
            features = [self._column_name(c, "columns") for c in columns]
        else:
            features = [c for c in self.names if c not in taken]
        self.features = features
        self.n_features = len(features)
        self.feature_names = list(features) if self.header else None
        self.sparse = False
        self.has_label, self.has_weight = label is not None, weight is not None
        self._rows_read = 0

    def _read_names(self):
        try:
            with open_text(self.path) as text:
                first = next(csv.reader(text, delimiter=self.delimiter), None)
        except (OSError, UnicodeDecodeError, EOFError, gzip.BadGzipFile) as exc:
            raise DataError(self.name, f"cannot read the file as CSV text ({exc}).") from exc
        if not first:
            raise DataError(self.name, "the file is empty: no header and no rows.", "line 1")
        if self.header:
            duplicates = sorted({n for n in first if first.count(n) > 1})
            if duplicates:
                raise DataError(
                    self.name, f"the header repeats column names {duplicates}.", "line 1"
                )
            return first
        return [f"x{i}" for i in range(len(first))]

    def _column_name(self, spec, what):
        if spec is None:
            return None
        if isinstance(spec, str):
            if spec not in self.names:
                raise missing_columns_error(self.name, what, [spec], self.names)
            return spec
        if isinstance(spec, (int, np.integer)) and not isinstance(spec, bool):
            if not -len(self.names) <= spec < len(self.names):
                raise DataError(
                    self.name,
                    f"{what} column {spec} does not exist: the file has {len(self.names)} "
                    f"columns (indices 0 to {len(self.names) - 1}).",
                )
            return self.names[spec]
        raise DataError(self.name, f"{what} must be a column name or index, got {spec!r}.")

    def block_rows(self):
        return None

    def progress(self):
        return os.path.getsize(self.path), "B"

    def position(self):
        raw = getattr(self, "_raw", None)
        try:
            return raw.tell() if raw is not None else None
        except (OSError, ValueError):
            return None

    def _open_reader(self, dtype):
        import pyarrow as pa
        import pyarrow.csv as pcsv

        self._raw = pa.OSFile(str(self.path))
        stream = (
            pa.CompressedInputStream(self._raw, "gzip")
            if str(self.path).endswith(".gz")
            else self._raw
        )
        value_type = pa.float32() if dtype == np.float32 else pa.float64()
        types = {name: value_type for name in self.features}
        if self.weight is not None:
            types[self.weight] = pa.float64()
        needed = list(dict.fromkeys([*self.features, *(c for c in (self.label, self.weight) if c)]))
        return pcsv.open_csv(
            stream,
            read_options=pcsv.ReadOptions(
                block_size=PARSE_BLOCK_BYTES, column_names=self.names, skip_rows=int(self.header)
            ),
            parse_options=pcsv.ParseOptions(delimiter=self.delimiter),
            convert_options=pcsv.ConvertOptions(column_types=types, include_columns=needed),
        )

    def blocks(self, dtype):
        return self._pass(dtype, with_X=True)

    def scan_parts(self, dtype):
        return self._pass(dtype, with_X=True)

    def _pass(self, dtype, with_X):
        import pyarrow as pa

        try:
            reader = self._open_reader(dtype)
        except pa.ArrowInvalid as exc:
            raise self._arrow_error(exc, 0) from exc
        start = 0
        pending, pending_rows, pending_bytes = [], 0, 0
        while True:
            try:
                batch = reader.read_next_batch()
            except StopIteration:
                break
            except pa.ArrowInvalid as exc:
                raise self._arrow_error(exc, start + pending_rows) from exc
            pending.append(batch)
            pending_rows += batch.num_rows
            pending_bytes += batch.nbytes
            if self._block_rows is None:
                if pending_bytes >= TEXT_BLOCK_BYTES:
                    yield self._raw_block(pa.Table.from_batches(pending), start, dtype)
                    start += pending_rows
                    pending, pending_rows, pending_bytes = [], 0, 0
                continue
            while pending_rows >= self._block_rows:
                table = pa.Table.from_batches(pending)
                yield self._raw_block(table.slice(0, self._block_rows), start, dtype)
                start += self._block_rows
                rest = table.slice(self._block_rows)
                pending, pending_rows = rest.to_batches(), rest.num_rows
        if pending_rows:
            yield self._raw_block(pa.Table.from_batches(pending), start, dtype)

    def _raw_block(self, table, start, dtype):
        def locate(row):
            return f"line {self.line_of_row(start + row)}"

        X = fill_dense(table, self.features, dtype, self.name, locate)
        y = per_row_column(table, self.label, self.name, locate, "label") if self.label else None
        w = (
            per_row_column(table, self.weight, self.name, locate, "weight", np.float64)
            if self.weight
            else None
        )
        return Raw(X, y, w, table.num_rows, locate)

    def _data_rows(self, text):
        """``(line number, fields)`` of every data row (pyarrow skips empty lines too)."""
        reader = csv.reader(text, delimiter=self.delimiter)
        if self.header:
            next(reader, None)
        for fields in reader:
            if fields:
                yield reader.line_num, fields

    def line_of_row(self, row):
        """Line number (from 1) of data row ``row`` (from 0): reads the file up to it."""
        with open_text(self.path) as text:
            for k, (line, _) in enumerate(self._data_rows(text)):
                if k == row:
                    return line
        return "?"

    def _arrow_error(self, exc, rows_before):
        """DataError for a block pyarrow refused, naming the line and the problem."""
        label_type = None
        with open_text(self.path) as text:
            for k, (line, fields) in enumerate(self._data_rows(text)):
                if k < rows_before:
                    if k == 0:
                        label_type = self._label_kind(fields)
                    continue
                problem = self._row_problem(fields, label_type)
                if problem:
                    return DataError(self.name, problem, f"line {line}")
                if label_type is None:
                    label_type = self._label_kind(fields)
        return DataError(
            self.name,
            f"pyarrow cannot read the block that starts at data row {rows_before}: {exc}",
        )

    def _label_kind(self, fields):
        if self.label is None:
            return None
        value = fields[self.names.index(self.label)]
        for kind, convert in (("integer", int), ("number", float)):
            try:
                convert(value)
                return kind
            except ValueError:
                pass
        return "text"

    def _row_problem(self, fields, label_kind):
        if len(fields) != len(self.names):
            return (
                f"ragged row: {len(fields)} fields, expected {len(self.names)} "
                f"(as {'the header' if self.header else 'the first line'} has)."
            )
        numeric = [*self.features, *([self.weight] if self.weight else [])]
        for name in numeric:
            value = fields[self.names.index(name)]
            try:
                float(value)
            except ValueError:
                if value.strip() in ("", "NA", "N/A", "NULL", "null", "-nan", "-NaN", "#N/A"):
                    continue
                return f"non-numeric field {value!r} in column {name!r}."
        if label_kind in ("integer", "number"):
            value = fields[self.names.index(self.label)]
            article = "an" if label_kind == "integer" else "a"
            try:
                (int if label_kind == "integer" else float)(value)
            except ValueError:
                return (
                    f"label {value!r} (column {self.label!r}) is not {article} {label_kind} "
                    f"like the labels of the first rows, from which the label's type was set. "
                    f"Write all labels alike."
                )
        return None

    def fingerprint(self, digest):
        file_fingerprint(self.path, digest)

    def close(self):
        raw = getattr(self, "_raw", None)
        if raw is not None:
            raw.close()
            self._raw = None
