"""``Dataset``: one object for training data in memory or on disk, read block by block."""

import glob
import os
from pathlib import Path
from typing import NamedTuple

import numpy as np
import scipy.sparse

from ._checks import csr_block, dense_block, label_block, weight_block
from ._errors import DataError
from ._info import InfoAccumulator
from ._memory import ArrayReader, FrameReader, IterableReader, SparseReader, check_block_rows
from ._reader import array_fingerprint, new_digest
from ._types import Block, training_dtype

FORMATS = (
    "array", "sparse", "dataframe", "iterable", "npy", "shards", "parquet", "csv", "libsvm",
    "cache",
)  # fmt: skip
# Options each file format accepts besides Dataset's own arguments.
FORMAT_OPTIONS = {
    "csv": ("header", "delimiter"),
    "libsvm": ("zero_based",),
    "cache": ("verify",),
}
_CSV_SUFFIXES = (".csv", ".tsv")
#: Formats that another process opens from the files alone and reads at random
#: (:meth:`Dataset.spec`).
FILE_FORMATS = ("npy", "shards", "parquet", "cache")


def progress_bar(enabled, description, total, unit):
    """A progress bar for a pass (a no-op one when ``enabled`` is False).

    A tqdm bar on a terminal, log lines elsewhere (see :mod:`fastlr._progress`).
    """
    if not enabled:
        return _NoBar()
    from .._progress import Progress

    return Progress().pass_bar(description, total, unit)


class _NoBar:
    n = 0

    def update(self, n=1, nbytes=0):
        self.n += n

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def _suffix(path):
    """Format suffix of a path, ignoring a final ``.gz``."""
    suffixes = Path(path).suffixes
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    return suffixes[-1].lower() if suffixes else ""


def _path_format(path):
    from ._cache import MANIFEST
    from ._libsvm import LIBSVM_SUFFIXES
    from ._parquet import PARQUET_SUFFIXES

    text = str(path)
    if any(c in text for c in "*?[") and not Path(text).exists():
        matches = glob.glob(text, recursive=True)
        suffixes = {Path(m).suffix for m in matches}
        if not matches:
            raise DataError(text, "the pattern matches no file.")
        if suffixes <= {".npy", ".npz"}:
            return "shards"
        if suffixes <= set(PARQUET_SUFFIXES):
            return "parquet"
        raise DataError(
            text, f"the pattern matches {sorted(suffixes)} files; it may match .npy/.npz shards "
            f"or Parquet files."
        )  # fmt: skip
    path = Path(path)
    if path.is_dir():
        if (path / MANIFEST).is_file():
            return "cache"
        suffixes = {p.suffix for p in path.rglob("*") if p.is_file()}
        if suffixes & set(PARQUET_SUFFIXES):
            return "parquet"
        if suffixes & {".npy", ".npz"}:
            return "shards"
        raise DataError(
            str(path), "the folder holds no manifest.json, Parquet files or .npy/.npz shards."
        )
    if not path.exists():
        raise DataError(str(path), "no such file or folder.")
    suffix = _suffix(path)
    if path.name == MANIFEST:
        return "cache"
    if suffix == ".npy":
        return "npy"
    if suffix == ".npz":
        return "shards"
    if suffix in PARQUET_SUFFIXES:
        return "parquet"
    if suffix in _CSV_SUFFIXES:
        return "csv"
    if suffix in LIBSVM_SUFFIXES:
        return "libsvm"
    raise DataError(
        str(path),
        f"cannot tell the format from the extension {''.join(path.suffixes)!r}; pass format= "
        f"one of {', '.join(FORMATS[4:])}.",
    )


def detect_format(source):
    """The format name of ``source`` (see ``Dataset``)."""
    if isinstance(source, (str, os.PathLike)):
        return _path_format(source)
    if isinstance(source, np.ndarray):
        return "array"
    if scipy.sparse.issparse(source):
        return "sparse"
    if type(source).__name__ == "DataFrame" and hasattr(source, "columns"):
        return "dataframe"
    if isinstance(source, (list, tuple)) or callable(source) or hasattr(source, "__next__"):
        return "iterable"
    raise TypeError(
        f"cannot read a {type(source).__name__} as a Dataset. Pass an array, a scipy.sparse "
        f"matrix, a pandas DataFrame, a path (.npy, .npz, Parquet, CSV, LIBSVM, a cache folder) "
        f"or an iterable of (X, y) chunks."
    )


def open_reader(source, fmt, *, label, weight, columns, block_rows, n_features, options):
    """The reader of ``source`` in format ``fmt``."""
    allowed = FORMAT_OPTIONS.get(fmt, ())
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        accepted = ", ".join(allowed) if allowed else "none"
        raise TypeError(
            f"unknown option(s) {', '.join(unknown)} for format {fmt!r}; it accepts: {accepted}."
        )
    common = dict(label=label, weight=weight, columns=columns, block_rows=block_rows)
    if fmt == "array":
        return ArrayReader(np.asarray(source), **common)
    if fmt == "sparse":
        return SparseReader(source, **common)
    if fmt == "dataframe":
        return FrameReader(source, **common)
    if fmt == "iterable":
        _no_columns(label, weight, columns, "an iterable of chunks: the chunks carry them")
        return IterableReader(source, block_rows=block_rows)
    if fmt == "npy":
        from ._npy import NpyReader

        return NpyReader(source, **common)
    if fmt == "shards":
        from ._npy import ShardReader
        from ._parquet import list_files

        path = Path(source)
        paths = [path] if path.is_file() else list_files(source, (".npy", ".npz"))
        return ShardReader(paths, **common, name=str(source))
    if fmt == "parquet":
        from ._parquet import ParquetReader

        return ParquetReader(source, **common)
    if fmt == "csv":
        from ._csv import CsvReader

        return CsvReader(source, **common, **options)
    if fmt == "libsvm":
        from ._libsvm import LibsvmReader

        _no_columns(label, weight, columns, "LIBSVM text: each line starts with its label")
        return LibsvmReader(source, block_rows=block_rows, n_features=n_features, **options)
    if fmt == "cache":
        from ._cache import CacheReader

        _no_columns(label, weight, columns, "the cache: it holds its labels and weights")
        return CacheReader(source, block_rows=block_rows, **options)
    raise ValueError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}.")


def _no_columns(label, weight, columns, what):
    given = [
        n for n, v in (("label", label), ("weight", weight), ("columns", columns)) if v is not None
    ]
    if given:
        raise TypeError(f"{', '.join(given)} cannot be given for {what}.")


class DatasetSpec(NamedTuple):
    """The arguments that open a file-backed :class:`Dataset` again, in any process.

    Small and picklable (paths, column names or indices, options; never
    data), and hashable. Made by :meth:`Dataset.spec`; :meth:`open` returns
    a new Dataset on the same files, read the same way.
    """

    source: str
    format: str
    label: object
    weight: object
    columns: object
    dtype: str
    block_rows: int | None
    n_features: int | None
    options: tuple

    def open(self):
        """A new :class:`Dataset` on these files, with these arguments."""
        columns = self.columns if not isinstance(self.columns, tuple) else list(self.columns)
        return Dataset(
            self.source, format=self.format, label=self.label, weight=self.weight,
            columns=columns, dtype=self.dtype, block_rows=self.block_rows,
            n_features=self.n_features, **dict(self.options),
        )  # fmt: skip


def _spec_value(value, what, source, fmt):
    """A label, weight or columns argument as a plain, hashable value (paths made absolute)."""
    is_path = isinstance(value, os.PathLike) or (isinstance(value, str) and value.endswith(".npy"))
    if fmt == "npy" and is_path:  # a 1-D .npy file beside the source
        return os.path.abspath(value)
    if value is None or isinstance(value, (int, str)):
        return value
    if isinstance(value, np.integer):
        return int(value)
    if what == "columns" and isinstance(value, (list, tuple, np.ndarray)):
        return tuple(item.item() if isinstance(item, np.generic) else item for item in value)
    raise TypeError(
        f"{what} of {source} is a {type(value).__name__} held in this process's memory, so "
        f"another process cannot open the dataset from its files. Save it as a .npy file "
        f"and pass its path, or pass a column name or index."
    )


class Dataset:
    """Training data in memory or on disk, read in blocks through one small protocol.

    The protocol is XGBoost's iterator (``reset`` / ``next_block``), plus
    random access (``read_block``) where the source allows it, and a first
    pass (``scan``) that learns what training needs. Every block is converted
    to the training dtype and checked as it is read (NaN or infinity,
    non-numeric fields, ragged rows, missing labels, labels outside the
    classes the scan found, negative or non-finite weights): a bad block
    raises :class:`DataError` naming the file, the place and the problem.

    Parameters
    ----------
    source : array, sparse matrix, DataFrame, path, iterable or callable
        - a 2-D NumPy array, a scipy.sparse matrix (read as CSR), a pandas
          DataFrame (column names become ``feature_names``);
        - a ``.npy`` file (memory-mapped), a folder or glob of ``.npy`` /
          ``.npz`` shards;
        - a Parquet file or folder (row groups are blocks);
        - a CSV file, plain or gzipped (``.csv``, ``.tsv``, ``.csv.gz``);
        - a LIBSVM / svmlight file, plain or gzipped (``.svm``, ``.svmlight``,
          ``.libsvm``, ``.lsvm``, and ``.gz``);
        - a binary cache folder (see :meth:`to_cache`);
        - a list or tuple of ``(X, y)`` or ``(X, y, w)`` chunks, a callable
          returning a new iterator of them, or an iterator (one pass only).
    label, weight : array, str or int, optional
        The labels and sample weights: arrays (in-memory sources), column
        names (DataFrame, Parquet, CSV; keys of ``.npz`` shards), int column
        indices (arrays, ``.npy``, CSV), or paths of 1-D ``.npy`` files
        (beside an ``.npy`` source). A column used as label or weight is not
        a feature.
    columns : list of str or int, optional
        The feature columns (default: all but the label and weight).
    format : str, optional
        Force a format: one of ``"array"``, ``"sparse"``, ``"dataframe"``,
        ``"iterable"``, ``"npy"``, ``"shards"``, ``"parquet"``, ``"csv"``,
        ``"libsvm"``, ``"cache"``. By default the type and file extension decide.
    dtype : {"float32", "float64"}, optional
        The training dtype. Default: float32 for float32 sources, else float64.
    block_rows : int, optional
        Rows per block. In-memory sources default to one block; memory maps
        to about 64 MiB blocks; Parquet to its row groups; shards and the
        cache to one block per shard; text to about 32 MiB of text. Natural
        blocks larger than ``block_rows`` are cut.
    n_features : int, optional
        LIBSVM: the number of features (default: from the data). Other
        sources: checked against the data.
    **format_options
        CSV: ``header`` (default True), ``delimiter``. LIBSVM:
        ``zero_based`` ("auto", True or False). Cache: ``verify`` (compare
        every checksum on opening).

    Attributes
    ----------
    random_access : bool
        Whether :meth:`read_block` works (not for CSV, LIBSVM, callables and iterators).
    dtype : numpy dtype
    sparse : bool
    feature_names : list of str or None
    n_features : int
    format : str
    source : str
        The source's name in messages.

    Notes
    -----
    Blocks may be read on one thread while the previous block is used on
    another: a block shares no mutable state with the dataset. Only one
    thread at a time may call the reading methods.
    """

    def __init__(
        self,
        source,
        *,
        label=None,
        weight=None,
        columns=None,
        format=None,
        dtype=None,
        block_rows=None,
        n_features=None,
        **format_options,
    ):
        fmt = detect_format(source) if format is None else format
        if fmt not in FORMATS:
            raise ValueError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}.")
        self._options = (label, weight, columns, dtype, block_rows, n_features, format_options)
        block_rows = check_block_rows(block_rows)
        if n_features is not None and (isinstance(n_features, bool) or int(n_features) < 1):
            raise ValueError(f"n_features must be a positive int, got {n_features!r}.")
        self._reader = open_reader(
            source, fmt, label=label, weight=weight, columns=columns, block_rows=block_rows,
            n_features=n_features, options=format_options,
        )  # fmt: skip
        reader = self._reader
        self.format = fmt
        self.source = reader.name
        self.dtype = training_dtype(dtype, reader.source_dtype)
        if n_features is not None and fmt != "libsvm" and reader.n_features != n_features:
            raise DataError(
                self.source, f"n_features={n_features} was given, but the data have "
                f"{reader.n_features} features."
            )  # fmt: skip
        self._info = reader.known_info(self.dtype) if hasattr(reader, "known_info") else None
        self._checked = set()
        self._stamp = reader.stamp()
        self._position = 0
        self._pass = None
        self._passes = 0
        self._fingerprint = None
        self._scan_digest = None
        self._starts = None  # first row of each block, for read_block

    # ------------------------------------------------------------------
    # What the source says
    # ------------------------------------------------------------------

    @property
    def random_access(self):
        """Whether blocks can be read in any order (:meth:`read_block`)."""
        return self._reader.random_access

    @property
    def sparse(self):
        """Whether blocks hold CSR matrices."""
        return self._reader.sparse

    @property
    def feature_names(self):
        """Names of the features (column names), or None."""
        names = self._reader.feature_names
        return None if names is None else list(names)

    @property
    def n_features(self):
        """Number of features (LIBSVM without ``n_features``: after the scan)."""
        if self._reader.n_features is None:
            self.scan()
        return self._reader.n_features

    @property
    def has_label(self):
        """Whether blocks carry labels."""
        return self._reader.has_label

    @property
    def has_weight(self):
        """Whether blocks carry sample weights."""
        return self._reader.has_weight

    @property
    def n_blocks(self):
        """Number of blocks (for sequential sources, after a scan, which it runs if needed)."""
        rows = self._reader.block_rows()
        if rows is not None:
            return len(rows)
        return self.scan().n_blocks

    @property
    def info(self):
        """The :class:`DatasetInfo`; scans the data on first access."""
        return self.scan()

    def block_sizes(self):
        """Rows of each block: from the source's metadata, or a scan for sequential sources.

        Returns
        -------
        rows : tuple of int
        """
        rows = self._reader.block_rows()
        return tuple(int(n) for n in rows) if rows is not None else self.scan().block_rows

    def spec(self):
        """The :class:`DatasetSpec` that opens this dataset again, e.g. in another process.

        Paths are made absolute, so that a process with another working
        directory finds the same files. The files are not read.

        Returns
        -------
        spec : DatasetSpec

        Raises
        ------
        TypeError
            If the data are not files read at random (``.npy``, shards,
            Parquet, the binary cache), or if the label, weight or columns
            are arrays in memory.
        """
        if self.format not in FILE_FORMATS:
            raise TypeError(
                f"{self.source} ({self.format}) cannot be opened again from its arguments: only "
                f"{', '.join(FILE_FORMATS)} data are files read at random. Convert it with "
                f"dataset.to_cache(path)."
            )
        label, weight, columns, _, block_rows, n_features, options = self._options
        return DatasetSpec(
            os.path.abspath(self.source), self.format,
            _spec_value(label, "label", self.source, self.format),
            _spec_value(weight, "weight", self.source, self.format),
            _spec_value(columns, "columns", self.source, self.format), self.dtype.name, block_rows,
            None if n_features is None else int(n_features), tuple(sorted(options.items())),
        )  # fmt: skip

    def __repr__(self):
        return f"Dataset({self.source!r}, format={self.format!r}, dtype={self.dtype.name})"

    # ------------------------------------------------------------------
    # The iterator protocol
    # ------------------------------------------------------------------

    def reset(self):
        """Start a new pass: the next :meth:`next_block` returns block 0.

        Raises
        ------
        DataError
            If the source is an iterator that was already read (it gives one
            pass), or if files changed since the scan.
        """
        self._check_unchanged()
        if self._pass is not None:
            self._pass.close()
        self._pass = None
        self._position = 0
        reader = self._reader
        if self._passes and isinstance(reader, IterableReader) and not reader.can_restart():
            raise reader.one_pass_error()

    def next_block(self):
        """The next block of the pass, or None at its end.

        Returns
        -------
        block : Block or None
        """
        if self._reader.random_access:
            if self._position >= self.n_blocks:
                return None
            block = self.read_block(self._position)
            self._position += 1
            return block
        if self._pass is None:
            self._pass = self._sequential_pass()
        return next(self._pass, None)

    def __iter__(self):
        """Reset, then yield every block in order."""
        self.reset()
        while (block := self.next_block()) is not None:
            yield block

    def read_block(self, k):
        """Block ``k``, for random-access sources.

        Raises
        ------
        TypeError
            For sequential sources (CSV, LIBSVM, callables, iterators).
        IndexError
            If ``k`` is not in ``[0, n_blocks)``.
        """
        if not self._reader.random_access:
            raise TypeError(
                f"{self.source} is read sequentially ({self.format}): it has no random access "
                f"to blocks. Iterate over it, or convert it to the binary cache "
                f"(dataset.to_cache(path)) for shuffled block orders."
            )
        if self._starts is None:
            self._starts = np.concatenate([[0], np.cumsum(self._reader.block_rows())])
        n_blocks = len(self._starts) - 1
        if not 0 <= k < n_blocks:
            raise IndexError(f"block {k} does not exist: {self.source} has {n_blocks} blocks.")
        if k == 0:
            self._check_unchanged()
        return self._finish(self._reader.read(k, self.dtype), k, int(self._starts[k]))

    def _sequential_pass(self):
        reader = self._reader
        if getattr(reader, "needs_scan", False):
            self.scan()
        info = self._info
        self._passes += 1
        start, k = 0, -1
        for k, raw in enumerate(reader.blocks(self.dtype)):
            if info is not None and (k >= info.n_blocks or raw.n_rows != info.block_rows[k]):
                raise DataError(
                    self.source,
                    f"the block has {raw.n_rows} rows but the scan found "
                    f"{info.block_rows[k] if k < info.n_blocks else 'no such block'}: the data "
                    f"changed since the scan. Build a new Dataset on the changed data.",
                    f"block {k}",
                )
            block = self._finish(raw, k, start)
            start += raw.n_rows
            yield block
        if info is not None and k + 1 != info.n_blocks:
            raise DataError(
                self.source,
                f"the pass gave {k + 1} blocks but the scan found {info.n_blocks}: the data "
                f"changed since the scan. Build a new Dataset on the changed data.",
            )

    def _check_unchanged(self):
        stamp = self._reader.stamp()
        if stamp == self._stamp:
            return
        if self._info is not None and self.format != "cache":
            raise DataError(
                self.source,
                "the files changed since the scan (size or modification time); build a new "
                "Dataset on the changed data.",
            )
        self._stamp = stamp
        self._checked.clear()

    # ------------------------------------------------------------------
    # Conversion and checks of each block
    # ------------------------------------------------------------------

    def _finish(self, raw, k, start, scanning=False):
        """Convert and check a raw block; return a :class:`Block`."""
        reader = self._reader
        X = raw.X
        # Values checked when written (the cache, the LIBSVM parser) are checked
        # again only when converted to another dtype, where float32 may overflow.
        values = X.data if scipy.sparse.issparse(X) else X
        converted = values is not None and values.dtype != self.dtype
        check = (not reader.validated or converted) and not (
            reader.immutable and k in self._checked
        )
        if X is not None:
            n_features = reader.n_features
            if X.shape[1] != n_features and n_features is not None:
                raise DataError(
                    self.source,
                    f"the block has {X.shape[1]} features, the data before it {n_features}.",
                    f"block {k}" if self.format == "iterable" else raw.locate(0),
                )
            if scipy.sparse.issparse(X):
                X = csr_block(X, self.dtype, X.shape[1], self.source, raw.locate, check)
            else:
                names = reader.feature_names
                X = dense_block(X, self.dtype, self.source, raw.locate, names, check)
        classes = None if scanning or self._info is None else self._info.classes
        y = raw.y
        if y is not None:
            y = label_block(y, raw.n_rows, self.source, raw.locate, classes)
        w = raw.w
        if w is not None:
            w = weight_block(w, raw.n_rows, self.dtype, self.source, raw.locate)
        if check and reader.immutable and X is not None:
            self._checked.add(k)
        return Block(X, y, w, start)

    # ------------------------------------------------------------------
    # The first pass
    # ------------------------------------------------------------------

    def scan(self, progress=False):
        """Read the data once and learn what training needs; cached.

        Parameters
        ----------
        progress : bool, default=False
            Show a tqdm progress bar "scanning <source>".

        Returns
        -------
        info : DatasetInfo

        Raises
        ------
        DataError
            If a block is malformed, or the data have no rows.
        """
        if self._info is not None:
            return self._info
        reader = self._reader
        accumulator = InfoAccumulator(self.source)
        hashing = isinstance(reader, IterableReader) and not reader.random_access
        digest = new_digest() if hashing else None
        total, unit = reader.progress()
        if not reader.random_access:
            self._passes += 1
        with progress_bar(progress, f"scanning {self.source}", total, unit) as bar:
            start = 0
            for k, raw in enumerate(reader.scan_parts(self.dtype)):
                block = self._finish(raw, k, start, scanning=True)
                nnz = raw.nnz if raw.nnz is not None else getattr(block.X, "nnz", None)
                accumulator.add(block.y, block.sample_weight, raw.n_rows, nnz)
                if digest is not None:
                    for part in block[:3]:
                        array_fingerprint(part, digest)
                start += raw.n_rows
                position = reader.position() if unit == "B" else None
                bar.update((position - bar.n) if position is not None else raw.n_rows)
        n_features = reader.finish_scan(reader.n_features)
        if start == 0:
            raise DataError(self.source, "has no rows.")
        self._scan_digest = None if digest is None else digest.hexdigest()
        self._info = accumulator.result(
            n_features=n_features, feature_names=self.feature_names, dtype=self.dtype,
            sparse=self.sparse, has_label=self.has_label, has_weight=self.has_weight,
        )  # fmt: skip
        return self._info

    # ------------------------------------------------------------------
    # Identity, verification, conversion
    # ------------------------------------------------------------------

    def fingerprint(self):
        """A hex digest that changes when the data (or how they are read) change.

        Files: their sizes, modification times and first and last bytes.
        Arrays and lists: their content (hashed once per Dataset). Callables
        and iterators: the blocks of the scan (which it runs if needed). The
        cache: its manifest, which holds every shard's checksum.

        Returns
        -------
        fingerprint : str
        """
        if self._fingerprint is not None:
            return self._fingerprint
        reader = self._reader
        digest = new_digest()
        label, weight, columns, _, block_rows, n_features, options = self._options
        settings = [self.format, self.dtype.name, block_rows, n_features, sorted(options.items())]
        for spec in (label, weight, columns):
            settings.append(
                spec if isinstance(spec, (str, int, list, tuple, type(None))) else "array"
            )
        digest.update(repr(settings).encode())
        if isinstance(reader, IterableReader) and not reader.random_access:
            self.scan()
            digest.update(self._scan_digest.encode())
        elif isinstance(reader, IterableReader):
            for chunk in reader.source:
                for part in reader.unpack(chunk, 0):
                    array_fingerprint(part, digest)
        else:
            reader.fingerprint(digest)
        result = digest.hexdigest()
        if reader.format in ("array", "sparse", "dataframe", "iterable"):
            self._fingerprint = result  # in memory: assumed unchanged while the Dataset lives
        return result

    def verify(self):
        """Compare the cache's checksums with its manifest (binary cache only).

        Raises
        ------
        DataError
            If a shard's content differs from its checksum.
        TypeError
            If the dataset is not on a cache.
        """
        if self.format != "cache":
            raise TypeError(
                f"verify() checks a binary cache's checksums; {self.source} is {self.format}."
            )
        self._reader.verify()

    def to_cache(self, path, *, progress=False, overwrite=False, **options):
        """Write the binary cache of this dataset at ``path``; return a Dataset on it.

        See :func:`fastlr.data.write_cache`.
        """
        from ._cache import write_cache

        return write_cache(self, path, progress=progress, overwrite=overwrite, **options)

    def close(self):
        """Release open files."""
        self._reader.close()
