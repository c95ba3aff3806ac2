"""The binary cache: row-major shards in the training dtype and a JSON manifest.

Converting a source once (:func:`write_cache`) makes every later pass a read
of memory-mapped shards: page-cache or disk speed, no parsing, random
access, and no scan (the manifest holds what the scan learns). As with
Vowpal Wabbit's cache file, the conversion validates every value; a pass over
the cache checks the labels and weights but trusts the features, whose
checksums :meth:`CacheReader.verify` compares on request.

Layout of a cache folder::

    manifest.json
    X-00000.npy ...                          dense features, (rows, n_features)
    data-00000.npy indices-00000.npy indptr-00000.npy ...   CSR features
    y-00000.npy ...                          labels (if any)
    w-00000.npy ...                          sample weights, float64 (if any)

The folder is written under a temporary name beside its target, synced to
disk and renamed: an interrupted conversion leaves no folder that opens as
a cache.
"""

import io
import json
import os
import shutil
import uuid
from pathlib import Path

import numpy as np
import scipy.sparse

from ._errors import DataError
from ._info import InfoAccumulator
from ._mapping import map_rows, read_npy_header
from ._reader import Raw, Reader, new_digest, split_sizes
from ._types import DatasetInfo, csr_view

CACHE_FORMAT = "fastlr-cache"
CACHE_VERSION = 1
MANIFEST = "manifest.json"
# Bytes of features per shard: large enough that a pass makes few system calls,
# small enough that a block (a shard, by default) stays far below a gigabyte.
SHARD_BYTES = 64 << 20
_CHECKSUM_READ = 16 << 20


# --------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------


def _fsync_dir(path):
    """Sync a folder's entries to disk (where the platform allows it)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_npy(folder, name, array):
    """Write ``array`` as ``folder/name`` (``.npy``), synced; return its manifest entry."""
    array = np.ascontiguousarray(array)
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, np.lib.format.header_data_from_array_1_0(array))
    digest = new_digest()
    with open(Path(folder) / name, "wb") as file:
        for part in (header.getvalue(), array.reshape(-1).view(np.uint8)):
            file.write(part)
            digest.update(part)
        file.flush()
        os.fsync(file.fileno())
    return {
        "name": name,
        "bytes": len(header.getvalue()) + array.nbytes,
        "sha256": digest.hexdigest(),
        "dtype": array.dtype.str,
        "shape": list(array.shape),
    }


def _storable_labels(y, source):
    """Labels as a NumPy array without Python objects (strings become fixed-width)."""
    y = np.asarray(y)
    if y.dtype.kind != "O":
        return y
    if all(isinstance(v, str) for v in y):
        return y.astype(str)
    kinds = sorted({type(v).__name__ for v in y})
    raise DataError(
        source,
        f"labels of types {kinds} cannot be written to the cache; use numbers, booleans or "
        f"strings.",
    )


class _ShardWriter:
    """Collects blocks into shards of about ``shard_bytes`` and writes them."""

    def __init__(self, folder, *, dtype, sparse, n_features, shard_bytes, source):
        self.folder = Path(folder)
        self.dtype = np.dtype(dtype)
        self.sparse = sparse
        self.n_features = n_features
        self.source = source
        self.index_dtype = np.int64 if n_features > np.iinfo(np.int32).max else np.int32
        self.row_bytes = max(1, n_features * self.dtype.itemsize)
        self.shard_rows = max(1, shard_bytes // self.row_bytes)
        self.shard_bytes = shard_bytes
        self.entry_bytes = self.dtype.itemsize + np.dtype(self.index_dtype).itemsize
        self.shards = []
        self._reset()

    def _reset(self):
        self.X, self.y, self.w = [], [], []
        self.rows = self.nnz = 0

    def add(self, block):
        """Add a :class:`Block`, cutting dense blocks at shard boundaries."""
        X, y, w = block.X, block.y, block.sample_weight
        a, n = 0, X.shape[0]
        while a < n:
            b = a + self._rows_that_fit(X, a)
            self._append(X[a:b], None if y is None else y[a:b], None if w is None else w[a:b])
            a = b
            if self._full():
                self._flush()

    def _rows_that_fit(self, X, a):
        """Rows of X from row ``a`` that fill the current shard (at least one)."""
        if not self.sparse:
            return min(X.shape[0] - a, self.shard_rows - self.rows)
        room = self.shard_bytes // self.entry_bytes - self.nnz
        stop = np.searchsorted(X.indptr, X.indptr[a] + room, side="right") - 1
        return int(max(min(stop, X.shape[0]) - a, 1))

    def _full(self):
        if self.sparse:
            return self.nnz * self.entry_bytes >= self.shard_bytes
        return self.rows == self.shard_rows

    def _append(self, X, y, w):
        self.X.append(X)
        if y is not None:
            self.y.append(_storable_labels(y, self.source))
        if w is not None:
            self.w.append(np.asarray(w, dtype=np.float64))
        self.rows += X.shape[0]
        self.nnz += X.nnz if self.sparse else 0

    def _flush(self):
        if not self.rows:
            return
        k = len(self.shards)
        files = {}
        if self.sparse:
            X = scipy.sparse.vstack(self.X, format="csr") if len(self.X) > 1 else self.X[0]
            files["data"] = write_npy(self.folder, f"data-{k:05d}.npy", X.data.astype(self.dtype))
            for part in ("indices", "indptr"):
                values = getattr(X, part).astype(self.index_dtype)
                files[part] = write_npy(self.folder, f"{part}-{k:05d}.npy", values)
        else:
            X = np.concatenate(self.X) if len(self.X) > 1 else self.X[0]
            files["X"] = write_npy(self.folder, f"X-{k:05d}.npy", X.astype(self.dtype, copy=False))
        if self.y:
            files["y"] = write_npy(self.folder, f"y-{k:05d}.npy", np.concatenate(self.y))
        if self.w:
            files["w"] = write_npy(self.folder, f"w-{k:05d}.npy", np.concatenate(self.w))
        self.shards.append(
            {"rows": self.rows, "nnz": int(X.nnz) if self.sparse else None, "files": files}
        )
        self._reset()

    def finish(self):
        self._flush()
        return self.shards


def _json_values(values):
    """Classes as JSON values (numbers, booleans, strings), exactly."""
    return [v.item() if hasattr(v, "item") else v for v in values]


def write_cache(dataset, path, *, progress=False, overwrite=False, shard_bytes=SHARD_BYTES):
    """Convert a dataset into the binary cache at ``path`` (a folder), atomically.

    One pass reads and validates every block (as training would) and writes
    shards of about ``shard_bytes`` of features in the training dtype, the
    labels and the weights, then the manifest. The folder is built under a
    temporary name beside ``path`` and renamed when complete.

    Parameters
    ----------
    dataset : Dataset
        Any source; an iterator of chunks gives its one pass to the conversion.
    path : path-like
        The cache folder to create.
    progress : bool, default=False
        Show a progress bar.
    overwrite : bool, default=False
        Replace an existing folder at ``path`` (after the new one is complete).
    shard_bytes : int, default=64 MiB
        Target size of a feature shard.

    Returns
    -------
    dataset : Dataset
        A dataset on the new cache.

    Raises
    ------
    FileExistsError
        If ``path`` exists and ``overwrite`` is False.
    DataError
        If a block is malformed; nothing is left at ``path``.
    """
    from ._dataset import Dataset, progress_bar

    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True to replace it.")
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.parent / f".{path.name}.partial-{uuid.uuid4().hex[:12]}"
    temporary.mkdir()
    try:
        with progress_bar(progress, f"writing {path}", _rows_if_known(dataset), "rows") as bar:
            manifest = _write_shards(dataset, temporary, shard_bytes, bar)
        with open(temporary / MANIFEST, "w", encoding="utf-8") as file:
            json.dump(manifest, file, indent=1)
            file.flush()
            os.fsync(file.fileno())
        _fsync_dir(temporary)
        _move_into_place(temporary, path, overwrite)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    return Dataset(path, format="cache")


def _rows_if_known(dataset):
    """Rows of a dataset that are known without a pass, else None."""
    if dataset._info is not None:
        return dataset._info.n_rows
    rows = dataset._reader.block_rows()
    return None if rows is None else sum(rows)


def _write_shards(dataset, folder, shard_bytes, bar):
    """Write the shards of every block of ``dataset`` into ``folder``; return the manifest."""
    writer = _ShardWriter(
        folder,
        dtype=dataset.dtype,
        sparse=dataset.sparse,
        n_features=dataset.n_features,
        shard_bytes=shard_bytes,
        source=dataset.source,
    )
    accumulator = InfoAccumulator(dataset.source)
    for block in dataset:
        writer.add(block)
        nnz = block.X.nnz if dataset.sparse else None
        accumulator.add(block.y, block.sample_weight, block.n_rows, nnz)
        bar.update(block.n_rows)
    shards = writer.finish()
    info = accumulator.result(
        n_features=dataset.n_features,
        feature_names=dataset.feature_names,
        dtype=dataset.dtype,
        sparse=dataset.sparse,
        has_label=dataset.has_label,
        has_weight=dataset.has_weight,
    )
    if info.n_rows == 0:
        raise DataError(dataset.source, "has no rows; there is nothing to cache.")
    classes = _storable_labels(info.classes, dataset.source) if info.has_label else None
    return {
        "format": CACHE_FORMAT,
        "version": CACHE_VERSION,
        "dtype": np.dtype(dataset.dtype).name,
        "sparse": info.sparse,
        "index_dtype": np.dtype(writer.index_dtype).name if info.sparse else None,
        "n_rows": info.n_rows,
        "n_features": info.n_features,
        "nnz": info.nnz,
        "feature_names": info.feature_names,
        "has_label": info.has_label,
        "has_weight": info.has_weight,
        "label_dtype": classes.dtype.str if classes is not None else None,
        "classes": _json_values(classes) if classes is not None else [],
        "class_counts": info.class_counts.tolist(),
        "class_weight_sums": info.class_weight_sums.tolist(),
        "total_weight": info.total_weight,
        "source": str(dataset.source),
        "shards": shards,
    }


def _move_into_place(temporary, path, overwrite):
    """Rename the finished folder to ``path``, replacing an old one only when it is complete."""
    old = None
    if path.exists():
        if not overwrite:
            raise FileExistsError(f"{path} exists; pass overwrite=True to replace it.")
        old = path.parent / f".{path.name}.old-{uuid.uuid4().hex[:12]}"
        os.rename(path, old)
    try:
        os.rename(temporary, path)
    except BaseException:
        if old is not None:
            os.rename(old, path)
        raise
    _fsync_dir(path.parent)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


# --------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------


_REQUIRED = (
    "format", "version", "dtype", "sparse", "n_rows", "n_features", "feature_names",
    "has_label", "has_weight", "classes", "total_weight", "shards",
)  # fmt: skip


class CacheReader(Reader):
    """A cache folder: shards memory-mapped one block at a time, info from the manifest.

    Parameters
    ----------
    path : path-like
        The folder (or its ``manifest.json``).
    block_rows : int or None
        None: one block per shard.
    verify : bool, default=False
        Compare every shard's checksum with the manifest on opening.
    """

    format = "cache"
    validated = True
    immutable = True

    def __init__(self, path, *, block_rows, verify=False):
        path = Path(path)
        self.folder = path.parent if path.name == MANIFEST else path
        self.name = str(self.folder)
        self.manifest = self._load_manifest()
        m = self.manifest
        self.sparse = bool(m["sparse"])
        self.source_dtype = np.dtype(m["dtype"])
        self.n_features = int(m["n_features"])
        self.feature_names = m["feature_names"]
        self.has_label, self.has_weight = bool(m["has_label"]), bool(m["has_weight"])
        self.headers = []
        for k, shard in enumerate(m["shards"]):
            try:
                self.headers.append(self._check_shard(k, shard))
            except (KeyError, TypeError, ValueError) as exc:
                if isinstance(exc, DataError):
                    raise
                self._damaged(f"the manifest's entry of shard {k} is malformed ({exc!r}).")
        rows = [int(shard["rows"]) for shard in m["shards"]]
        if sum(rows) != m["n_rows"]:
            self._damaged(f"its shards hold {sum(rows)} rows but the manifest says {m['n_rows']}.")
        self._parts = split_sizes(rows, block_rows)
        if verify:
            self.verify()

    def _damaged(self, problem, where=None):
        raise DataError(
            self.name,
            f"{problem} The cache is damaged or was edited; convert the source again.",
            where,
        )

    def _load_manifest(self):
        path = self.folder / MANIFEST
        if not path.is_file():
            raise DataError(self.name, f"no {MANIFEST}: not a fastlr cache (or an unfinished one).")
        try:
            manifest = json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:
            self._damaged(f"{MANIFEST} is not valid JSON ({exc}).")
        if not isinstance(manifest, dict) or manifest.get("format") != CACHE_FORMAT:
            raise DataError(self.name, f"{MANIFEST} is not the manifest of a fastlr cache.")
        if manifest.get("version") != CACHE_VERSION:
            raise DataError(
                self.name,
                f"cache version {manifest.get('version')!r}; this fastlr reads version "
                f"{CACHE_VERSION}. Convert the source again with this fastlr.",
            )
        missing = [key for key in _REQUIRED if key not in manifest]
        if missing:
            self._damaged(f"{MANIFEST} lacks {', '.join(missing)}.")
        if manifest["dtype"] not in ("float32", "float64"):
            self._damaged(f"{MANIFEST} gives dtype {manifest['dtype']!r}.")
        return manifest

    def _expected_files(self, shard):
        m = self.manifest
        rows, nnz = int(shard["rows"]), shard.get("nnz")
        index = np.dtype(m.get("index_dtype") or "int32")
        if self.sparse:
            expected = {
                "data": (np.dtype(m["dtype"]), (nnz,)),
                "indices": (index, (nnz,)),
                "indptr": (index, (rows + 1,)),
            }
        else:
            expected = {"X": (np.dtype(m["dtype"]), (rows, self.n_features))}
        if self.has_label:
            expected["y"] = (None, (rows,))
        if self.has_weight:
            expected["w"] = (np.dtype(np.float64), (rows,))
        return expected

    def _check_shard(self, k, shard):
        """Check a shard's files against the manifest: names, sizes, dtypes, shapes."""
        headers = {}
        files = shard.get("files", {})
        for part, (dtype, shape) in self._expected_files(shard).items():
            entry = files.get(part)
            if entry is None:
                self._damaged(f"shard {k} has no {part!r} file in the manifest.")
            path = self.folder / entry["name"]
            where = f"shard {k} ({entry['name']})"
            if not path.is_file():
                self._damaged("the file is missing.", where)
            size = path.stat().st_size
            if size != entry["bytes"]:
                self._damaged(
                    f"the file has {size} bytes, the manifest says {entry['bytes']}.", where
                )
            header = read_npy_header(path, self.name)
            if list(header.shape) != list(shape) or list(header.shape) != list(entry["shape"]):
                self._damaged(
                    f"the file holds shape {header.shape}, the manifest implies {tuple(shape)}.",
                    where,
                )
            want = dtype if dtype is not None else np.dtype(entry["dtype"])
            if header.dtype != want or header.dtype.str != entry["dtype"] or header.fortran_order:
                self._damaged(f"the file holds {header.dtype}, the manifest says {want}.", where)
            headers[part] = (path, header)
        if self.sparse:
            indptr = map_rows(*headers["indptr"], 0, int(shard["rows"]) + 1, advise=False)
            if indptr[0] != 0 or indptr[-1] != shard["nnz"]:
                self._damaged("indptr does not span the shard's non-zeros.", f"shard {k}")
        return headers

    def verify(self):
        """Compare every file's SHA-256 with the manifest.

        Raises
        ------
        DataError
            Naming the first file whose content differs.
        """
        for k, shard in enumerate(self.manifest["shards"]):
            for entry in shard["files"].values():
                digest = new_digest()
                with open(self.folder / entry["name"], "rb") as file:
                    while chunk := file.read(_CHECKSUM_READ):
                        digest.update(chunk)
                if digest.hexdigest() != entry["sha256"]:
                    self._damaged(
                        "its checksum differs from the manifest's.", f"shard {k} ({entry['name']})"
                    )

    def known_info(self, dtype):
        """The :class:`DatasetInfo` the manifest holds (no scan needed)."""
        m = self.manifest
        label_dtype = np.dtype(m["label_dtype"]) if m.get("label_dtype") else None
        classes = np.array(m["classes"], dtype=label_dtype) if m["has_label"] else np.empty(0)
        return DatasetInfo(
            n_rows=int(m["n_rows"]),
            n_features=self.n_features,
            block_rows=self.block_rows(),
            classes=classes,
            class_counts=np.array(m.get("class_counts", []), dtype=np.int64),
            class_weight_sums=np.array(m.get("class_weight_sums", []), dtype=np.float64),
            total_weight=float(m["total_weight"]),
            feature_names=m["feature_names"],
            dtype=np.dtype(dtype),
            sparse=self.sparse,
            nnz=m.get("nnz") if self.sparse else None,
            has_label=self.has_label,
            has_weight=self.has_weight,
        )

    def block_rows(self):
        return tuple(b - a for _, a, b in self._parts)

    def read(self, k, dtype):
        shard, a, b = self._parts[k]
        headers = self.headers[shard]

        def locate(row):
            return f"shard {shard}, row {a + row}"

        if self.sparse:
            indptr = map_rows(*headers["indptr"], a, b + 1, advise=False)
            lo, hi = int(indptr[0]), int(indptr[-1])
            if lo:
                indptr = indptr - indptr.dtype.type(lo)
            data = map_rows(*headers["data"], lo, hi)
            indices = map_rows(*headers["indices"], lo, hi)
            X = csr_view(data, indices, indptr, (b - a, self.n_features), canonical=True)
        else:
            X = map_rows(*headers["X"], a, b)
        y = map_rows(*headers["y"], a, b) if self.has_label else None
        w = map_rows(*headers["w"], a, b) if self.has_weight else None
        return Raw(X, y, w, b - a, locate)

    def fingerprint(self, digest):
        digest.update((self.folder / MANIFEST).read_bytes())

    def stamp(self):
        return (self.folder / MANIFEST).stat().st_mtime_ns
