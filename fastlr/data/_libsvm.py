"""Reader of LIBSVM / svmlight text (plain or gzipped), parsed block by block into CSR.

The parsing is compiled (:mod:`fastlr.data._libsvm_parse`). A first pass (the
scan) finds the largest and smallest feature index: the number of features,
and whether indices count from 0 or 1 (scikit-learn's ``zero_based="auto"``
rule: one-based unless some index is 0). ``qid:`` fields are ignored, as
scikit-learn's ``load_svmlight_file`` ignores them unless asked for query ids.
"""

import gzip
import os
from pathlib import Path

import numpy as np

from . import _libsvm_parse as parse
from ._errors import DataError
from ._reader import Raw, Reader, file_fingerprint
from ._types import TEXT_BLOCK_BYTES, csr_view

LIBSVM_SUFFIXES = (".svm", ".svmlight", ".libsvm", ".lsvm")

# Bytes read from the file at a time while a block is filled.
READ_BYTES = 4 << 20


class _TextBuffer:
    """Bytes of a stream not yet parsed, in a NumPy buffer the parser reads."""

    def __init__(self, stream):
        self.stream = stream
        self.buf = np.empty(READ_BYTES, dtype=np.uint8)
        self.start = self.end = 0
        self.eof = False

    def read_more(self, size=READ_BYTES):
        """Move the unparsed bytes to the front and read up to ``size`` more."""
        n = self.end - self.start
        if self.start:
            self.buf[:n] = self.buf[self.start : self.end].copy()
            self.start, self.end = 0, n
        if self.buf.shape[0] - n < size:
            grown = np.empty(max(n + size, 2 * self.buf.shape[0]), dtype=np.uint8)
            grown[:n] = self.buf[:n]
            self.buf = grown
        view = memoryview(self.buf)[n : n + size]
        got = 0
        while got < size:
            count = self.stream.readinto(view[got:])
            if not count:
                self.eof = True
                break
            got += count
        self.end += got

    def complete_end(self):
        """End of the last whole line (the end of the data at the end of the file)."""
        if self.eof:
            return self.end
        return parse.last_newline(self.buf, self.start, self.end)


_MESSAGES = {
    parse.BAD_LABEL: "the label {token!r} is not a number (a LIBSVM line starts with its label).",
    parse.MULTILABEL: "multilabel lines ({token!r}) are not supported: give one label per line.",
    parse.BAD_INDEX: "expected index:value with a non-negative integer index, got {token!r}.",
    parse.BAD_VALUE: "non-numeric value {token!r}.",
    parse.NONFINITE_VALUE: (
        "NaN or infinity ({token!r}); fastlr needs finite numbers. Drop those rows or impute "
        "the values."
    ),
    parse.NONFINITE_LABEL: "the label {token!r} is not finite.",
    parse.UNSORTED: (
        "feature index {token} follows index {detail}: indices must increase along a line "
        "(sorted, without duplicates)."
    ),
    parse.INDEX_TOO_LARGE: "feature index {token} is too large (at most {max_index}).",
}


class LibsvmReader(Reader):
    """A LIBSVM / svmlight file, read sequentially into CSR blocks.

    Parameters
    ----------
    path : path-like
    block_rows : int or None
        None: blocks of the lines in about ``TEXT_BLOCK_BYTES`` of text.
    n_features : int or None
        None: the largest index found by the scan, plus one.
    zero_based : {"auto", True, False}, default="auto"
        Whether indices count from 0; "auto" decides by the scan.
    """

    format = "libsvm"
    random_access = False
    validated = True  # the parser checks every value and index
    sparse = True
    has_label = True
    has_weight = False

    def __init__(self, path, *, block_rows, n_features=None, zero_based="auto"):
        self.path = Path(path)
        self.name = str(path)
        if not self.path.is_file():
            raise DataError(self.name, "no such file.")
        if zero_based not in ("auto", True, False):
            raise ValueError(f'zero_based must be "auto", True or False, got {zero_based!r}.')
        self.zero_based = zero_based
        self.offset = None if zero_based == "auto" else int(not zero_based)
        self.n_features = n_features
        self._given_n_features = n_features
        self._block_rows = block_rows
        self._raw = None

    @property
    def needs_scan(self):
        """True until the number of features and the index base are known."""
        return self.offset is None or self.n_features is None

    def block_rows(self):
        return None

    def progress(self):
        return os.path.getsize(self.path), "B"

    def position(self):
        try:
            return self._raw.tell() if self._raw is not None else None
        except (OSError, ValueError):
            return None

    def _open(self):
        self._raw = open(self.path, "rb", buffering=0)
        if self.name.endswith(".gz"):
            return gzip.GzipFile(fileobj=self._raw, mode="rb")
        return self._raw

    def blocks(self, dtype):
        if self.needs_scan:
            raise RuntimeError("LibsvmReader.blocks needs the scan first.")
        for raw in self._pass(self.offset, self.n_features):
            # The parser checked that indices increase along each line.
            X = csr_view(*raw.X, (raw.n_rows, self.n_features), canonical=True)
            yield raw._replace(X=X)

    def scan_parts(self, dtype):
        self._min_index, self._max_index = np.iinfo(np.int64).max, -1
        offset = 0 if self.offset is None else self.offset
        for raw in self._pass(offset, -1, scanning=True):
            yield raw._replace(X=None)

    def finish_scan(self, n_features_seen):
        """Decide the index base and the number of features from the indices seen."""
        if self.offset is None:
            self.offset = int(0 < self._min_index < np.iinfo(np.int64).max)
        seen = max(self._max_index + 1 - self.offset, 0)
        given = self._given_n_features
        if given is not None and given < seen:
            base = "one" if self.offset else "zero"
            raise DataError(
                self.name,
                f"n_features={given} was given, but the file has feature index "
                f"{self._max_index} ({base}-based), so at least {seen} features. Pass "
                f"n_features={seen} or more, or leave it out.",
            )
        self.n_features = given if given is not None else seen
        return self.n_features

    def _pass(self, offset, n_features, scanning=False):
        stream = self._open()
        try:
            text = _TextBuffer(stream)
            line = 0
            parts = []
            while True:
                goal = self._block_rows - sum(p[0] for p in parts) if self._block_rows else None
                self._fill(text, goal)
                stop = text.complete_end()
                if stop == text.start and not text.eof:  # a line longer than the buffer
                    text.read_more(max(READ_BYTES, text.end - text.start))
                    continue
                if stop > text.start:
                    part, line = self._parse(text, stop, goal, offset, n_features, line, scanning)
                    if part[0]:
                        parts.append(part)
                done = text.eof and text.start >= text.end
                full = goal is None or sum(p[0] for p in parts) >= self._block_rows
                if parts and (full or done):
                    yield self._assemble(parts)
                    parts = []
                if done:
                    break
        finally:
            stream.close()
            self._raw.close()
            self._raw = None

    def _fill(self, text, goal):
        """Read until the buffer holds a block's worth of text (or the file ends)."""
        if goal is None:
            while not text.eof and text.end - text.start < TEXT_BLOCK_BYTES:
                text.read_more(min(READ_BYTES, TEXT_BLOCK_BYTES))
            return
        while not text.eof:
            lines, _ = parse.count_lines(text.buf, text.start, text.end)
            if lines >= goal:
                return
            text.read_more(max(READ_BYTES, text.end - text.start))

    def _parse(self, text, stop, goal, offset, n_features, line, scanning):
        """Parse whole lines of ``text`` up to ``stop`` (at most ``goal`` rows)."""
        buf, start = text.buf, text.start
        lines, colons = parse.count_lines(buf, start, stop)
        cap = lines + 1 if goal is None else min(lines + 1, goal)
        labels = np.empty(cap, dtype=np.float64)
        indptr = np.zeros(cap + 1, dtype=np.int32)
        indices = np.empty(colons, dtype=np.int32)
        data = np.empty(colons, dtype=np.float64)
        row_line = np.empty(cap, dtype=np.int64)
        low = self._min_index if scanning else np.iinfo(np.int64).max
        high = self._max_index if scanning else -1
        state = np.array([start, 0, 0, line, 0, 0, low, high], dtype=np.int64)
        out = (labels, indptr, indices, data, row_line)
        over_pos, over_val = np.empty(0, dtype=np.int64), np.empty(0)
        while True:
            status = parse.parse_lines(
                buf, state[0], stop, cap - state[1], offset, n_features, out, state,
                over_pos, over_val, parse.POW5, parse.POW10,
            )  # fmt: skip
            if status == parse.OK:
                break
            token = self._token(buf, state[4], stop)
            if status != parse.NEED_VALUE:
                raise self._error(status, token, state, offset, n_features)
            k = np.searchsorted(over_pos, state[4])
            over_pos = np.insert(over_pos, k, state[4])
            over_val = np.insert(over_val, k, float(token))
        if scanning:
            self._min_index, self._max_index = int(state[6]), int(state[7])
        text.start = int(state[0])
        rows, nnz = int(state[1]), int(state[2])
        part = (rows, labels[:rows], indptr[: rows + 1], indices[:nnz], data[:nnz], row_line[:rows])
        return part, int(state[3])

    @staticmethod
    def _token(buf, pos, stop):
        end = parse.token_end(buf, pos, stop)
        if end == pos:  # an empty field: show what follows
            end = min(pos + 1, stop)
        return bytes(buf[pos : min(end, pos + 60)]).decode("utf-8", "replace")

    def _error(self, status, token, state, offset, n_features):
        where = f"line {int(state[3]) + 1}"
        if status == parse.INDEX_RANGE:
            index = int(state[5])
            if index - offset < 0:
                problem = (
                    f"feature index {index} in a file read as one-based (zero_based=False); "
                    f"pass zero_based=True or 'auto'."
                )
            else:
                base = "one" if offset else "zero"
                problem = (
                    f"feature index {index} is out of range for n_features={n_features} "
                    f"({base}-based indices). The data changed since the scan, or n_features "
                    f"is too small."
                )
            return DataError(self.name, problem, where)
        message = _MESSAGES[status].format(
            token=token, detail=int(state[5]), max_index=parse.MAX_INDEX
        )
        return DataError(self.name, message, where)

    @staticmethod
    def _assemble(parts):
        """One raw block from parsed parts (usually one)."""
        if len(parts) == 1:
            rows, labels, indptr, indices, data, row_line = parts[0]
        else:
            rows = sum(p[0] for p in parts)
            labels = np.concatenate([p[1] for p in parts])
            shifts = np.cumsum([0] + [p[3].shape[0] for p in parts[:-1]])
            indptr = np.concatenate(
                [[0]] + [p[2][1:] + shift for p, shift in zip(parts, shifts, strict=True)]
            ).astype(np.int32)
            indices = np.concatenate([p[3] for p in parts])
            data = np.concatenate([p[4] for p in parts])
            row_line = np.concatenate([p[5] for p in parts])

        def locate(row):
            return f"line {int(row_line[row]) + 1}"

        return Raw((data, indices, indptr), labels, None, rows, locate, nnz=int(indptr[-1]))

    def fingerprint(self, digest):
        file_fingerprint(self.path, digest)
