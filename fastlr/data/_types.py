"""The data types of the block protocol: ``Block``, ``DatasetInfo``, the training dtype."""

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import scipy.sparse

TRAINING_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))

# Sizes of the blocks when ``block_rows`` is not given: LIBSVM blocks hold the
# lines of TEXT_BLOCK_BYTES of text, CSV blocks about as many bytes of parsed
# values, and blocks cut from memory maps MAP_BLOCK_BYTES of features. A few
# blocks in flight stay far below a gigabyte, and each is large enough that
# the per-block costs (a Python call, a thread hand-over) are negligible.
TEXT_BLOCK_BYTES = 32 << 20
MAP_BLOCK_BYTES = 64 << 20


class Block(NamedTuple):
    """One block of rows, as every source yields it.

    Attributes
    ----------
    X : ndarray of shape (n_rows, n_features) or csr_matrix
        C-contiguous in the training dtype, or CSR with data in the training
        dtype, int32 or int64 ``indices`` and ``indptr`` (one dtype for both),
        sorted indices and no duplicates. Never modify it: it may be a
        read-only view of a memory map or of the caller's array.
    y : ndarray of shape (n_rows,) or None
        The raw labels, in the dtype of the source; None without a label.
    sample_weight : ndarray of shape (n_rows,) or None
        float64 or the training dtype; None for unit weights.
    start : int
        Index of the block's first row in the dataset.
    """

    X: object
    y: object
    sample_weight: object
    start: int

    @property
    def n_rows(self):
        """Rows of the block."""
        return self.X.shape[0]


@dataclass(frozen=True, eq=False)
class DatasetInfo:
    """What a first pass over a dataset learns, and what training needs.

    Attributes
    ----------
    n_rows, n_features : int
    block_rows : tuple of int
        Rows of each block, in order.
    classes : ndarray of shape (n_classes,)
        Sorted unique labels, in the label's dtype (empty without a label).
    class_counts : ndarray of shape (n_classes,), int64
        Rows of each class.
    class_weight_sums : ndarray of shape (n_classes,), float64
        Sum of the sample weights of each class (rows count 1 without weights).
    total_weight : float
        Sum of all sample weights (``n_rows`` without weights).
    feature_names : list of str or None
    dtype : numpy dtype
        The training dtype.
    sparse : bool
    nnz : int or None
        Stored entries of a sparse dataset; None for dense ones.
    has_label, has_weight : bool
    """

    n_rows: int
    n_features: int
    block_rows: tuple
    classes: np.ndarray
    class_counts: np.ndarray
    class_weight_sums: np.ndarray
    total_weight: float
    feature_names: list | None
    dtype: np.dtype
    sparse: bool
    nnz: int | None
    has_label: bool
    has_weight: bool

    @property
    def n_blocks(self):
        """Number of blocks."""
        return len(self.block_rows)

    @property
    def block_starts(self):
        """Index of each block's first row: ndarray of shape (n_blocks + 1,), int64."""
        return np.concatenate([[0], np.cumsum(self.block_rows, dtype=np.int64)])


def training_dtype(dtype, source_dtype):
    """The dtype blocks are yielded in.

    Parameters
    ----------
    dtype : dtype-like or None
        Asked for: float32 or float64.
    source_dtype : numpy dtype or None
        dtype of the source's values; None for text.

    Returns
    -------
    dtype : numpy dtype
        ``dtype`` when given, else float32 for float32 sources, else float64.

    Raises
    ------
    ValueError
        If ``dtype`` is neither float32 nor float64.
    """
    if dtype is not None:
        try:
            asked = np.dtype(dtype)
        except TypeError as exc:
            raise ValueError(f"dtype must be float32 or float64, got {dtype!r}.") from exc
        if asked not in TRAINING_DTYPES:
            raise ValueError(
                f"dtype must be float32 or float64, got {asked}. fastlr trains in those two; "
                f"integer or boolean data are converted to the dtype you pick."
            )
        return asked
    if source_dtype is not None and np.dtype(source_dtype) == np.float32:
        return np.dtype(np.float32)
    return np.dtype(np.float64)


def map_block_rows(n_features, itemsize):
    """Rows of a block of about ``MAP_BLOCK_BYTES`` of dense data."""
    return max(1, MAP_BLOCK_BYTES // max(1, n_features * itemsize))


def csr_view(data, indices, indptr, shape, canonical=False):
    """A csr_matrix on exactly these arrays, never a copy of them.

    scipy's constructor copies a view that is less than half of its base
    array (it "prunes" it), which would copy every block cut from a larger
    matrix or a memory map.

    Parameters
    ----------
    data, indices, indptr : ndarray
    shape : tuple of int
    canonical : bool, default=False
        Declare the indices sorted and unique (already checked); otherwise
        scipy checks when asked.
    """
    X = scipy.sparse.csr_matrix(shape, dtype=data.dtype)
    X.data, X.indices, X.indptr = data, indices, indptr
    for flag in ("_has_sorted_indices", "_has_canonical_format"):
        X.__dict__.pop(flag, None)
    if canonical:
        X.has_canonical_format = True
    return X
