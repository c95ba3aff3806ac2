"""The reader protocol: what each source format implements for :class:`Dataset`.

A reader yields *raw* blocks: features, labels and weights as the source
holds them, with a function that says where a row is for error messages.
:class:`Dataset` converts and checks them (:mod:`fastlr.data._checks`).
"""

import hashlib
import os
from pathlib import Path
from typing import NamedTuple

# Bytes read from the start and the end of a file for its fingerprint, on top
# of its size and modification time.
FINGERPRINT_SAMPLE = 1 << 16


class Raw(NamedTuple):
    """A block as a reader returns it.

    Attributes
    ----------
    X : ndarray, sparse matrix or None
        None when the reader was asked for labels only (the scan).
    y, w : ndarray or None
    n_rows : int
    locate : callable
        ``locate(row)``: where row ``row`` of this block is, as text.
    nnz : int or None
        Stored entries, when X is sparse and left out.
    """

    X: object
    y: object
    w: object
    n_rows: int
    locate: object
    nnz: object = None


class Reader:
    """Base class of the readers: one per source format.

    Attributes set by each reader: ``name`` (for messages), ``format``,
    ``sparse``, ``source_dtype`` (None for text), ``feature_names``,
    ``n_features`` (None until a scan when the source does not say),
    ``has_label``, ``has_weight``.
    """

    format = None
    random_access = True
    # True when values were checked when written (the binary cache).
    validated = False
    # True when the blocks cannot change while the reader lives unless the
    # file's stat changes: each block's values are then checked once.
    immutable = False
    feature_names = None
    source_dtype = None

    def block_rows(self):
        """Rows of each block, or None when only a pass can tell."""
        raise NotImplementedError

    def read(self, k, dtype):
        """Raw block ``k`` (random-access readers)."""
        raise NotImplementedError

    def blocks(self, dtype):
        """A new sequential pass: an iterator of raw blocks."""
        for k in range(len(self.block_rows())):
            yield self.read(k, dtype)

    def scan_parts(self, dtype):
        """The pass of the scan; readers may leave X out (None) when it is not needed."""
        return self.blocks(dtype)

    def finish_scan(self, n_features_seen):
        """Settle what the scan decides (LIBSVM: the index base); return n_features."""
        return n_features_seen

    def progress(self):
        """``(total, unit)`` of the scan's progress bar."""
        rows = self.block_rows()
        return (sum(rows) if rows is not None else None), "rows"

    def position(self):
        """Progress so far in the unit of :meth:`progress` (bytes readers only)."""
        return None

    def fingerprint(self, digest):
        """Add what identifies the source's content to a hashlib object."""
        raise NotImplementedError

    def stamp(self):
        """Changes when an immutable source's files change (see ``immutable``)."""
        return None

    def close(self):
        """Release files held open."""


def file_fingerprint(path, digest):
    """Add a file's size, modification time and first and last bytes to ``digest``."""
    stat = os.stat(path)
    digest.update(f"{Path(path).name}|{stat.st_size}|{stat.st_mtime_ns}|".encode())
    with open(path, "rb") as file:
        digest.update(file.read(FINGERPRINT_SAMPLE))
        if stat.st_size > 2 * FINGERPRINT_SAMPLE:
            file.seek(-FINGERPRINT_SAMPLE, os.SEEK_END)
            digest.update(file.read(FINGERPRINT_SAMPLE))


def files_stamp(paths):
    """Sizes and modification times of files: a cheap test that none changed."""
    stamps = []
    for path in paths:
        stat = os.stat(path)
        stamps.append((stat.st_size, stat.st_mtime_ns, stat.st_ino))
    return tuple(stamps)


def array_fingerprint(array, digest):
    """Add an in-memory array's dtype, shape and bytes to ``digest``."""
    import numpy as np
    import scipy.sparse

    if array is None:
        digest.update(b"none|")
        return
    if scipy.sparse.issparse(array):
        digest.update(f"sparse|{array.shape}|".encode())
        for part in (array.data, array.indices, array.indptr):
            array_fingerprint(part, digest)
        return
    array = np.asarray(array)
    digest.update(f"{array.dtype.str}|{array.shape}|".encode())
    if array.dtype.kind == "O":
        digest.update(repr(array.tolist()).encode())
    else:
        digest.update(np.ascontiguousarray(array).reshape(-1).view(np.uint8))


def new_digest():
    """The hash every fingerprint and checksum of fastlr.data uses."""
    return hashlib.sha256()


def split_sizes(sizes, block_rows):
    """Cut natural blocks (shards, row groups, chunks) into blocks of at most ``block_rows``.

    Parameters
    ----------
    sizes : sequence of int
        Rows of each natural block.
    block_rows : int or None
        None keeps the natural blocks.

    Returns
    -------
    parts : list of (int, int, int)
        ``(natural block, first row, stop row)`` of each block, in order.
        Empty natural blocks give no block.
    """
    parts = []
    for unit, size in enumerate(sizes):
        step = block_rows or size
        for start in range(0, size, max(step, 1)):
            parts.append((unit, start, min(start + step, size)))
    return parts
