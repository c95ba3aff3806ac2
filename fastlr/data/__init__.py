"""Training data of any size: ``Dataset``, its block protocol, the binary cache, prediction files.

Public API
----------
Dataset
    Data in memory or on disk (NumPy, scipy.sparse, pandas, ``.npy``,
    ``.npz`` shards, Parquet, CSV, LIBSVM, iterables, the binary cache), read
    in blocks through ``reset`` / ``next_block`` / ``read_block``.
Block, DatasetInfo
    What a block holds; what the first pass (``scan``) learns.
DatasetSpec
    The arguments that open a file-backed Dataset again in another process.
DataError
    Malformed data, naming the source, the place and the problem.
write_cache
    Convert a dataset into the binary cache (memory-mapped shards + manifest).
PredictionWriter
    Stream prediction blocks to a CSV, Parquet or ``.npy`` file, atomically.
"""

from ._cache import write_cache
from ._dataset import Dataset, DatasetSpec
from ._errors import DataError
from ._types import Block, DatasetInfo
from ._writer import PredictionWriter

__all__ = [
    "Block",
    "DataError",
    "Dataset",
    "DatasetInfo",
    "DatasetSpec",
    "PredictionWriter",
    "write_cache",
]
