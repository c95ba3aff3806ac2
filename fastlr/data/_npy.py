"""Readers of ``.npy`` files (memory maps) and of folders or globs of ``.npy`` / ``.npz`` shards."""

import os
import zipfile
from numbers import Integral
from pathlib import Path

import numpy as np
import scipy.sparse

from ._errors import DataError
from ._mapping import map_rows, read_npy_header
from ._memory import ArrayReader, column_index, per_row_array
from ._reader import Raw, Reader, array_fingerprint, file_fingerprint, files_stamp, split_sizes
from ._types import map_block_rows


class _MappedLabel:
    """A 1-D ``.npy`` file of labels or weights, read one block's range at a time."""

    def __init__(self, path, n_rows, source, what):
        self.path = Path(path)
        self.header = read_npy_header(self.path)
        if len(self.header.shape) != 1 or self.header.shape[0] != n_rows:
            raise DataError(
                str(self.path),
                f"the {what} file has shape {self.header.shape}; {source} has {n_rows} rows, "
                f"so it needs shape ({n_rows},).",
            )

    def __getitem__(self, rows):
        return map_rows(self.path, self.header, rows.start, rows.stop)


class NpyReader(ArrayReader):
    """An ``.npy`` file of shape (rows, columns), memory-mapped one block at a time.

    The label and the weight are int column indices (removed from the
    features), paths of 1-D ``.npy`` files, or arrays.
    """

    format = "npy"

    def __init__(self, path, *, label, weight, columns, block_rows):
        self.path = Path(path)
        self.header = read_npy_header(self.path)
        if len(self.header.shape) != 2:
            raise DataError(
                str(self.path),
                f"the array must be 2-D (rows x features), got shape {self.header.shape}.",
            )
        X = np.load(self.path, mmap_mode="r", allow_pickle=False)
        if block_rows is None:
            block_rows = map_block_rows(self.header.shape[1], self.header.dtype.itemsize)
        super().__init__(
            X, label=label, weight=weight, columns=columns, block_rows=block_rows,
            name=str(self.path),
        )  # fmt: skip

    def _per_row_values(self, spec, what):
        if isinstance(spec, os.PathLike) or (isinstance(spec, str) and spec.endswith(".npy")):
            return _MappedLabel(spec, self.n_rows, self.name, what)
        return super()._per_row_values(spec, what)

    def _rows(self, a, b):
        if self.header.fortran_order:
            return self.X[a:b]
        return map_rows(self.path, self.header, a, b)

    def _files(self):
        files = [self.path]
        files += [v.path for v in (self._y, self._w) if isinstance(v, _MappedLabel)]
        return files

    def fingerprint(self, digest):
        for path in self._files():
            file_fingerprint(path, digest)
        for values in (self._y, self._w):
            if values is not None and not isinstance(values, _MappedLabel):
                array_fingerprint(values, digest)

    def stamp(self):
        return files_stamp(self._files())


NPZ_CSR_KEYS = ("data", "indices", "indptr", "shape")


def _npz_member_shape(archive, key, path):
    """Shape of array ``key`` of an ``.npz`` file, from its header only."""
    try:
        with archive.open(f"{key}.npy") as member:
            version = np.lib.format.read_magic(member)
            read = (
                np.lib.format.read_array_header_1_0
                if version == (1, 0)
                else np.lib.format.read_array_header_2_0
            )
            shape, _, dtype = read(member)
    except (KeyError, ValueError) as exc:
        raise DataError(str(path), f"cannot read array {key!r} of the .npz file ({exc}).") from exc
    return tuple(shape), dtype


class ShardReader(Reader):
    """Shards: ``.npy`` files of X (label by column index), or ``.npz`` files.

    An ``.npz`` shard holds ``X`` (dense) or the CSR arrays ``data``,
    ``indices``, ``indptr`` and ``shape`` (as ``scipy.sparse.save_npz``
    writes them), and the label and weight under the keys given as
    ``label`` and ``weight``.
    """

    format = "shards"
    immutable = True

    def __init__(self, paths, *, label, weight, columns, block_rows, name):
        self.name = name
        self.paths = [Path(p) for p in paths]
        suffixes = {p.suffix for p in self.paths}
        if len(suffixes) != 1:
            raise DataError(name, f"shards mix {sorted(suffixes)} files; use one kind.")
        self.npz = suffixes == {".npz"}
        self.label, self.weight = label, weight
        self.has_label, self.has_weight = label is not None, weight is not None
        if columns is not None:
            raise DataError(name, "columns= is not supported for .npy/.npz shards.")
        if self.npz:
            self._open_npz()
        else:
            self._open_npy()
        self._parts = split_sizes(self._sizes, block_rows)

    def _open_npy(self):
        for what, spec in (("label", self.label), ("weight", self.weight)):
            if spec is not None and (isinstance(spec, bool) or not isinstance(spec, Integral)):
                raise DataError(
                    self.name, f"{what} of .npy shards must be an int column index, got {spec!r}."
                )
        self.headers = [read_npy_header(p) for p in self.paths]
        widths = set()
        for path, header in zip(self.paths, self.headers, strict=True):
            if len(header.shape) != 2:
                raise DataError(str(path), f"a shard must be 2-D, got shape {header.shape}.")
            widths.add(header.shape[1])
        if len(widths) != 1:
            raise DataError(
                self.name, f"shards have different numbers of columns: {sorted(widths)}."
            )
        n_columns = widths.pop()
        taken = [
            column_index(spec, n_columns, self.name, what)
            for what, spec in (("label", self.label), ("weight", self.weight))
            if spec is not None
        ]
        self._y_col = (
            column_index(self.label, n_columns, self.name, "label") if self.has_label else None
        )
        self._w_col = (
            column_index(self.weight, n_columns, self.name, "weight") if self.has_weight else None
        )
        self._features = [c for c in range(n_columns) if c not in taken] if taken else None
        self.n_features = n_columns - len(taken)
        self.sparse = False
        dtypes = {h.dtype for h in self.headers}
        self.source_dtype = dtypes.pop() if len(dtypes) == 1 else np.dtype(np.float64)
        self._sizes = [h.shape[0] for h in self.headers]

    def _open_npz(self):
        for what, spec in (("label", self.label), ("weight", self.weight)):
            if spec is not None and not isinstance(spec, str):
                raise DataError(
                    self.name, f"{what} of .npz shards must be the name of an array in them."
                )
        self._sizes, kinds, widths, dtypes = [], set(), set(), set()
        for path in self.paths:
            try:
                archive = zipfile.ZipFile(path)
            except (OSError, zipfile.BadZipFile) as exc:
                raise DataError(str(path), f"not a readable .npz file ({exc}).") from exc
            with archive:
                keys = {n[:-4] for n in archive.namelist() if n.endswith(".npy")}
                for what, key in (("label", self.label), ("weight", self.weight)):
                    if key is not None and key not in keys:
                        raise DataError(
                            str(path),
                            f"no array {key!r} for the {what}; the arrays are: "
                            f"{', '.join(sorted(keys))}.",
                        )
                if "X" in keys:
                    shape, dtype = _npz_member_shape(archive, "X", path)
                    if len(shape) != 2:
                        raise DataError(str(path), f"X must be 2-D, got shape {shape}.")
                    kinds.add("dense")
                elif set(NPZ_CSR_KEYS) <= keys:
                    with archive.open("shape.npy") as member:
                        shape = tuple(int(v) for v in np.lib.format.read_array(member))
                    _, dtype = _npz_member_shape(archive, "data", path)
                    kinds.add("csr")
                else:
                    raise DataError(
                        str(path),
                        f"an .npz shard needs an array 'X', or the CSR arrays "
                        f"{', '.join(NPZ_CSR_KEYS)} (scipy.sparse.save_npz); it has "
                        f"{', '.join(sorted(keys))}.",
                    )
            self._sizes.append(shape[0])
            widths.add(shape[1])
            dtypes.add(dtype)
        if len(kinds) != 1:
            raise DataError(self.name, "shards mix dense and CSR arrays; use one kind.")
        if len(widths) != 1:
            raise DataError(
                self.name, f"shards have different numbers of columns: {sorted(widths)}."
            )
        self.sparse = kinds == {"csr"}
        self.n_features = widths.pop()
        self.source_dtype = dtypes.pop() if len(dtypes) == 1 else np.dtype(np.float64)

    def block_rows(self):
        return tuple(b - a for _, a, b in self._parts)

    def read(self, k, dtype):
        shard, a, b = self._parts[k]
        path = self.paths[shard]

        def locate(row):
            return f"shard {path.name}, row {a + row}"

        if self.npz:
            X, y, w = self._read_npz(path, a, b)
        else:
            rows = (
                map_rows(path, self.headers[shard], a, b)
                if not self.headers[shard].fortran_order
                else np.load(path, mmap_mode="r")[a:b]
            )
            X = rows if self._features is None else rows[:, self._features]
            y = rows[:, self._y_col] if self.has_label else None
            w = rows[:, self._w_col] if self.has_weight else None
        return Raw(X, y, w, b - a, locate)

    def _read_npz(self, path, a, b):
        n_rows = self._sizes[self.paths.index(path)]
        with np.load(path, allow_pickle=False) as arrays:
            if self.sparse:
                shape = tuple(int(v) for v in arrays["shape"])
                X = scipy.sparse.csr_matrix(
                    (arrays["data"], arrays["indices"], arrays["indptr"]), shape=shape
                )
                X = X if (a, b) == (0, shape[0]) else X[a:b]
            else:
                X = arrays["X"][a:b]
            y, w = (
                None if key is None else per_row_array(arrays[key], n_rows, str(path), what)[a:b]
                for key, what in ((self.label, "label"), (self.weight, "weight"))
            )
        return X, y, w

    def fingerprint(self, digest):
        for path in self.paths:
            file_fingerprint(path, digest)

    def stamp(self):
        return files_stamp(self.paths)
