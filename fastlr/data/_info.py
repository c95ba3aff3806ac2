"""What the scan accumulates over the blocks: rows, classes, weights, non-zeros."""

import numpy as np

from ._errors import DataError
from ._types import DatasetInfo


class InfoAccumulator:
    """Sums over the blocks of a pass, turned into a :class:`DatasetInfo` at the end."""

    def __init__(self, source):
        self.source = source
        self.block_rows = []
        self.nnz = 0
        self.total_weight = 0.0
        self._classes = None
        self._counts = None
        self._sums = None

    def add(self, y, w, n_rows, nnz=None):
        """Add one block's labels ``y`` (or None), weights ``w`` (or None) and sizes."""
        self.block_rows.append(int(n_rows))
        self.nnz += int(nnz or 0)
        self.total_weight += float(n_rows) if w is None else float(np.sum(w, dtype=np.float64))
        if y is None or not n_rows:
            return
        try:
            classes, inverse = np.unique(y, return_inverse=True)
        except TypeError as exc:
            raise DataError(
                self.source,
                f"labels of different types cannot be sorted together ({exc}); use labels of "
                f"one type.",
                f"block {len(self.block_rows) - 1}",
            ) from exc
        inverse = inverse.reshape(-1)
        counts = np.bincount(inverse, minlength=len(classes))
        sums = (
            counts.astype(np.float64)
            if w is None
            else np.bincount(
                inverse, weights=np.asarray(w, dtype=np.float64), minlength=len(classes)
            )
        )
        self._merge(classes, counts, sums)

    def _merge(self, classes, counts, sums):
        if self._classes is None:
            self._classes, self._counts, self._sums = classes, counts, sums
            return
        try:
            merged, inverse = np.unique(
                np.concatenate([self._classes, classes]), return_inverse=True
            )
        except TypeError as exc:
            raise DataError(
                self.source,
                f"labels of different types cannot be sorted together ({exc}); use labels of "
                f"one type.",
                f"block {len(self.block_rows) - 1}",
            ) from exc
        inverse = inverse.reshape(-1)
        size = len(merged)
        self._counts = np.bincount(
            inverse, weights=np.concatenate([self._counts, counts]), minlength=size
        ).astype(np.int64)
        self._sums = np.bincount(
            inverse, weights=np.concatenate([self._sums, sums]), minlength=size
        )
        self._classes = merged

    def result(self, *, n_features, feature_names, dtype, sparse, has_label, has_weight):
        """The :class:`DatasetInfo` of the blocks added."""
        classes = self._classes if self._classes is not None else np.empty(0)
        return DatasetInfo(
            n_rows=sum(self.block_rows),
            n_features=int(n_features),
            block_rows=tuple(self.block_rows),
            classes=classes,
            class_counts=(
                self._counts.astype(np.int64) if self._counts is not None else np.zeros(0, np.int64)
            ),
            class_weight_sums=self._sums if self._sums is not None else np.zeros(0),
            total_weight=self.total_weight,
            feature_names=None if feature_names is None else list(feature_names),
            dtype=np.dtype(dtype),
            sparse=bool(sparse),
            nnz=self.nnz if sparse else None,
            has_label=bool(has_label),
            has_weight=bool(has_weight),
        )
