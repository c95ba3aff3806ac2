"""Memory maps of ``.npy`` files, one block at a time.

A block maps only its own byte range, so the pages a pass touches are
released with the block (the process's resident memory stays bounded), and
the kernel is asked to read the range ahead (``MADV_WILLNEED``) by the thread
that reads the block, while the previous one is computed.
"""

import mmap
from typing import NamedTuple

import numpy as np

from ._errors import DataError


class NpyHeader(NamedTuple):
    """Where an ``.npy`` file's array starts, and what it holds."""

    offset: int
    dtype: np.dtype
    shape: tuple
    fortran_order: bool


def read_npy_header(path, source=None):
    """Parse the header of an ``.npy`` file.

    Raises
    ------
    DataError
        If the file is not an ``.npy`` file or holds Python objects.
    """
    try:
        with open(path, "rb") as file:
            version = np.lib.format.read_magic(file)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(file)
            else:
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(file)
            offset = file.tell()
            size = file.seek(0, 2)
    except (ValueError, OSError) as exc:
        raise DataError(source or str(path), f"not a readable .npy file ({exc}).") from exc
    if dtype.hasobject:
        raise DataError(
            source or str(path),
            "the .npy file holds Python objects, which fastlr does not load (it would run "
            "pickled code). Save numbers: np.save(path, X.astype(float)).",
        )
    expected = offset + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if size < expected:
        raise DataError(
            source or str(path),
            f"the .npy file is truncated: its header announces shape {tuple(shape)} of "
            f"{dtype} ({expected} bytes with the header) but it has {size} bytes.",
        )
    return NpyHeader(offset, dtype, tuple(shape), fortran)


def map_rows(path, header, start, stop, advise=True):
    """Rows ``start:stop`` of a C-order ``.npy`` file as a read-only array on a memory map.

    Parameters
    ----------
    path : path-like
    header : NpyHeader
    start, stop : int
        Rows (first axis) to map.
    advise : bool, default=True
        Ask the kernel to read the range ahead.

    Returns
    -------
    array : ndarray of shape (stop - start, *header.shape[1:])
        Holds the map open until it is released.
    """
    row_items = int(np.prod(header.shape[1:], dtype=np.int64))
    row_bytes = row_items * header.dtype.itemsize
    shape = (stop - start, *header.shape[1:])
    if stop <= start or row_bytes == 0:
        return np.empty(shape, dtype=header.dtype)
    begin = header.offset + start * row_bytes
    length = (stop - start) * row_bytes
    aligned = begin - begin % mmap.ALLOCATIONGRANULARITY
    with open(path, "rb") as file:
        mapping = mmap.mmap(
            file.fileno(), length + begin - aligned, access=mmap.ACCESS_READ, offset=aligned
        )
    if advise and hasattr(mapping, "madvise") and hasattr(mmap, "MADV_WILLNEED"):
        mapping.madvise(mmap.MADV_WILLNEED)
    array = np.frombuffer(
        mapping, dtype=header.dtype, count=length // header.dtype.itemsize, offset=begin - aligned
    )
    return array.reshape(shape)
