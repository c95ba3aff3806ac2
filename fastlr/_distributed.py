"""Training data on a Dask cluster: row blocks kept on the workers, passes run as tasks.

The client never holds the data. A fit (:mod:`fastlr.dask`):

1. splits X, y and the sample weights into row blocks (:func:`row_blocks`):
   one per chunk of a dask array, one per partition of a dask DataFrame, one
   per block of a :class:`fastlr.Dataset` of files, which the workers read
   themselves (:func:`dataset_row_blocks`: the client sends the dataset's
   arguments and a block number, never rows);
2. validates each block where it is computed (:func:`validate_block`: bad
   input raises an error that names the block) and gathers a summary of a
   few numbers per block (rows, labels and the weight of each label);
3. encodes each block's labels and weights as the kernels take them
   (:func:`encode_block`) and keeps these blocks in the workers' memory for
   the whole fit (:class:`ClusterData`);
4. evaluates the objective with one task per block, the kernels' gradient
   contract over the block's rows (:func:`block_gradient`), and adds the
   partial sums in a tree whose shape depends on the number of blocks only
   (:func:`tree_sum`). :class:`DaskDatafit` is that pass behind the
   :class:`fastlr._datafits.Datafit` protocol, so the solvers run on the
   client unchanged.

A fit is therefore bitwise reproducible for a given chunking, wherever the
tasks run. When a worker dies, dask recomputes the blocks it held from their
graph (the same blocks, when the graph is deterministic) and runs its tasks
again elsewhere: the fit goes on and ends with the same model.

The state of a fit on the client is the coefficients and the solver's own
memory; the data on the cluster can always be rebuilt from its graph. A
checkpoint therefore needs ``(coef, intercept)`` only, and a fit resumes from
it with ``warm_start`` (losing the L-BFGS curvature pairs, not the optimum).
"""

import collections
import contextlib
import glob
import itertools
import math
import os
import threading
import time
import uuid
from typing import NamedTuple

import dask
import dask.array as da
import numba
import numpy as np
import scipy.sparse
from distributed import get_worker, wait
from distributed.comm import get_address_host

from . import _validation, kernels
from ._datafits import squared_row_norms, weighted_scores
from ._logistic import _check_no_arrays, _integer_values, _unique_inverse
from ._streaming import BlockEncoder, no_label_error
from ._threads import numba_threads
from .data import DataError, Dataset, DatasetSpec
from .data._dataset import FILE_FORMATS
from .kernels.reduction import n_chunks_for

#: Partial sums added by one task of the reduction tree; the last level's
#: (at most this many) are added on the client.
FAN_IN = 8
#: Parameters larger than this go to every worker once per evaluation
#: (a broadcast scatter) instead of inside each block's task.
SCATTER_BYTES = 1 << 16
#: Rows of the synthetic blocks that load or compile the kernels on a worker:
#: enough for every family's parallel pass, and 2 rows for its serial one.
WARM_ROWS = (2, 1 << 16)


# --------------------------------------------------------------------------
# The client's view of the input: lists of delayed row blocks.
# --------------------------------------------------------------------------


class RowBlocks(NamedTuple):
    """X, y and sample weights split into aligned row blocks (dask ``Delayed`` objects).

    Attributes
    ----------
    X, y, sample_weight : list of Delayed
        One per block; ``y`` and ``sample_weight`` are None when not given.
    names : list of str
        How error messages name each block ("chunk 2 (rows 40-59)", "partition 2").
    n_features : int
    dtype : numpy dtype
        The training dtype: float32 for float32 input, float64 otherwise.
    sparse : bool
        Whether X's chunks are scipy.sparse matrices.
    feature_names : ndarray of str or None
        A DataFrame's column names, when they are all strings; a Dataset's
        feature names.
    fingerprint : str or None
        A Dataset's :meth:`~fastlr.Dataset.fingerprint`; None for dask collections.
    """

    X: list
    y: list | None
    sample_weight: list | None
    names: list
    n_features: int
    dtype: np.dtype
    sparse: bool
    feature_names: np.ndarray | None
    fingerprint: str | None = None


def is_dask_collection(obj):
    """Whether ``obj`` is a dask array, DataFrame or Series."""
    return dask.is_dask_collection(obj) and hasattr(obj, "to_delayed")


def _is_frame(obj):
    return is_dask_collection(obj) and hasattr(obj, "npartitions") and hasattr(obj, "dtypes")


def row_blocks(X, y=None, sample_weight=None):
    """Split X (and y and the sample weights, aligned with it) into row blocks.

    Parameters
    ----------
    X : dask array of shape (n_samples, n_features), dask DataFrame or fastlr.Dataset
        Chunks may be ndarrays or scipy.sparse matrices; chunk sizes may be
        unknown. Chunks across the columns are joined (``rechunk``). A
        Dataset must be files read at random (:func:`dataset_row_blocks`)
        and brings its labels and weights.
    y, sample_weight : dask array, dask Series, array-like or None
        Partitioned like X (dask arrays with known chunk sizes are
        rechunked to X's rows); an in-memory array-like is accepted when
        X's chunk sizes are known. None with a Dataset.

    Returns
    -------
    blocks : RowBlocks

    Raises
    ------
    TypeError
        If X is neither a dask collection nor a Dataset the workers can read.
    ValueError
        If X is not 2-D or not numeric, or y or the weights cannot be aligned
        with X; if y or the weights are given with a Dataset.
    """
    if isinstance(X, Dataset):
        _check_no_arrays(y, sample_weight)
        return dataset_row_blocks(X)
    if _is_frame(X):
        X, rows, names, n_features, dtype, feature_names = _frame_parts(X)
        sparse = False
    elif isinstance(X, da.Array):
        X, rows, names, n_features, dtype, sparse = _array_parts(X)
        feature_names = None
    else:
        raise TypeError(
            f"fastlr.dask.LogisticRegression trains on a dask array, a dask DataFrame or a "
            f"fastlr.Dataset of files, got {type(X).__name__}. Wrap in-memory data with "
            f"dask.array.from_array(X, chunks=...) or train it with fastlr.LogisticRegression."
        )
    return RowBlocks(
        X,
        _aligned(y, "y", rows),
        _aligned(sample_weight, "sample_weight", rows),
        names,
        n_features,
        dtype,
        sparse,
        feature_names,
    )


def _array_parts(X):
    if X.ndim != 2:
        raise ValueError(
            f"X must be 2-D (rows x features), got a dask array of shape {X.shape}. "
            f"Reshape a single sample with X.reshape(1, -1), a single feature with "
            f"X.reshape(-1, 1)."
        )
    if math.isnan(X.shape[1]):
        raise ValueError(
            "X's number of columns is unknown; compute it first with X.compute_chunk_sizes()."
        )
    meta = getattr(X, "_meta", None)
    sparse = scipy.sparse.issparse(meta)
    _validation._check_numeric_dtype(X, "X")
    if X.dtype.kind not in "biuf":
        raise ValueError(
            f"X must hold real numbers, got a dask array of dtype {X.dtype}. "
            f"Encode text or categorical columns as numbers before training."
        )
    if X.numblocks[1] > 1:
        X = X.rechunk({1: -1})
    rows = X.chunks[0]
    starts = np.concatenate([[0], np.cumsum(rows)]) if not _unknown(rows) else None
    names = [
        f"chunk {i} (rows {int(starts[i])}-{int(starts[i + 1]) - 1})"
        if starts is not None
        else f"chunk {i}"
        for i in range(len(rows))
    ]
    dtype = np.dtype(np.float32 if X.dtype == np.float32 else np.float64)
    return list(X.to_delayed().ravel()), rows, names, int(X.shape[1]), dtype, sparse


def _frame_parts(X):
    if X.ndim != 2:
        raise ValueError(
            "X must be 2-D (rows x features), got a dask Series; pass a DataFrame, e.g. "
            "series.to_frame()."
        )
    for column, dtype in X.dtypes.items():
        if getattr(dtype, "kind", "O") not in "biuf":
            raise ValueError(
                f"X's column {column!r} has dtype {dtype}; fastlr trains on real numbers. "
                f"Encode text or categorical columns as numbers before training."
            )
    columns = list(X.columns)
    all_float32 = all(dtype == np.float32 for dtype in X.dtypes)
    dtype = np.dtype(np.float32 if all_float32 else np.float64)
    names_are_str = columns and all(isinstance(column, str) for column in columns)
    feature_names = np.asarray(columns, dtype=object) if names_are_str else None
    rows = (np.nan,) * X.npartitions
    names = [f"partition {i}" for i in range(X.npartitions)]
    return list(X.to_delayed()), rows, names, len(columns), dtype, feature_names


def _unknown(rows):
    return any(math.isnan(n) for n in rows)


def _aligned(values, name, rows):
    """``values`` (y or weights) as delayed blocks matching X's row blocks ``rows``."""
    if values is None:
        return None
    n_blocks = len(rows)
    if isinstance(values, da.Array):
        if values.ndim != 1:
            raise ValueError(
                f"{name} must be 1-D with one value per row of X, got a dask array of shape "
                f"{values.shape}. Pass {name}[:, 0] or {name}.ravel()."
            )
        values_rows = values.chunks[0]
        if not _unknown(rows) and not _unknown(values_rows):
            _check_total(name, sum(rows), sum(values_rows))
            if values_rows != tuple(rows):
                values = values.rechunk((tuple(rows),))
        _check_blocks(name, values.numblocks[0], n_blocks)
        return list(values.to_delayed())
    if _is_frame(values) or is_dask_collection(values):
        if getattr(values, "ndim", 1) != 1:
            raise ValueError(
                f"{name} must be a dask Series or 1-D dask array, got a 2-D collection; pick "
                f"its column, e.g. df['label']."
            )
        _check_blocks(name, values.npartitions, n_blocks)
        return list(values.to_delayed())
    if _unknown(rows):
        raise TypeError(
            f"X's chunk sizes are unknown, so an in-memory {name} cannot be split like X. "
            f"Pass {name} as a dask Series or array partitioned like X (e.g. a column of the "
            f"same DataFrame)."
        )
    array = np.asarray(values)
    if array.ndim != 1:
        raise ValueError(
            f"{name} must be 1-D with one value per row of X, got shape {array.shape}."
        )
    _check_total(name, sum(rows), array.shape[0])
    return list(da.from_array(array, chunks=(tuple(rows),)).to_delayed())


def _check_total(name, n_rows, n_values):
    if n_rows != n_values:
        raise ValueError(
            f"X has {int(n_rows)} rows but {name} has {int(n_values)} entries; pass one "
            f"{name} value per row of X."
        )


def _check_blocks(name, n_values, n_blocks):
    if n_values != n_blocks:
        raise ValueError(
            f"{name} has {n_values} blocks but X has {n_blocks}; partition them alike (columns "
            f"of one DataFrame, or dask arrays with the same row chunks)."
        )


# --------------------------------------------------------------------------
# A fastlr.Dataset whose files the workers read themselves.
# --------------------------------------------------------------------------


class DatasetRef(NamedTuple):
    """What a worker needs to read a Dataset's blocks: its arguments, never its rows.

    Attributes
    ----------
    spec : fastlr.data.DatasetSpec
        Opens the dataset (absolute paths, the same columns, dtype and blocks).
    fingerprint : str
        The client's :meth:`~fastlr.Dataset.fingerprint`: the files of another
        version are opened anew on the workers, never read through a stale reader.
    n_blocks : int
        Blocks the client's metadata gave; a worker that sees another count
        has other files.
    """

    spec: DatasetSpec
    fingerprint: str
    n_blocks: int


def reads_on_workers(obj):
    """Whether ``obj`` is a :class:`fastlr.Dataset` of files the workers can read at random."""
    return isinstance(obj, Dataset) and obj.format in FILE_FORMATS


def dataset_row_blocks(dataset, labels=True):
    """The :class:`RowBlocks` of a Dataset of files, each block read on a worker.

    The client opens the files' metadata only (block sizes, features,
    dtype) and their fingerprint; each block is one task that opens the
    dataset on its worker (once per process) and reads block ``k``
    (:func:`read_dataset_block`). Block names carry the rows and the source:
    ``"block 3 (rows 1200-1599) of /data/train"``.

    Parameters
    ----------
    dataset : fastlr.Dataset
        ``.npy``, shards, Parquet or the binary cache, at paths every worker can read.
    labels : bool, default=True
        Require the dataset's label (training, scoring); prediction needs none.

    Returns
    -------
    blocks : RowBlocks

    Raises
    ------
    TypeError
        If the dataset is in memory or read sequentially (CSV, LIBSVM,
        iterables), or its label, weight or columns are arrays in memory.
    ValueError
        If ``labels`` and the dataset has no label.
    """
    if not reads_on_workers(dataset):
        where = (
            "is read sequentially"
            if dataset.format in ("csv", "libsvm")
            else "is held in this process's memory"
        )
        raise TypeError(
            f"{dataset.source} ({dataset.format}) {where}, so the workers cannot read its "
            f"blocks themselves: fastlr.dask trains on a Dataset of files read at random "
            f"(.npy, shards, Parquet, the binary cache). Convert it once with "
            f"dataset.to_cache(path), on storage every worker can read, or pass the data as "
            f"a dask array or DataFrame."
        )
    if labels and not dataset.has_label:
        raise no_label_error(dataset)
    rows = dataset.block_sizes()
    ref = DatasetRef(dataset.spec(), dataset.fingerprint(), len(rows))
    starts = np.concatenate([[0], np.cumsum(rows, dtype=np.int64)])
    prefix = f"fastlr-read-{dask.base.tokenize(ref)}"
    places = [f"block {k} (rows {starts[k]}-{starts[k + 1] - 1})" for k in range(len(rows))]
    reads = [
        dask.delayed(read_dataset_block, pure=True, nout=3)(
            ref, k, places[k], n_rows, dask_key_name=f"{prefix}-{k}"
        )
        for k, n_rows in enumerate(rows)
    ]
    names = dataset.feature_names
    return RowBlocks(
        [read[0] for read in reads],
        [read[1] for read in reads] if dataset.has_label else None,
        [read[2] for read in reads] if dataset.has_weight else None,
        [f"{place} of {dataset.source}" for place in places],
        int(dataset.n_features),
        np.dtype(dataset.dtype),
        bool(dataset.sparse),
        None if names is None else np.asarray(names, dtype=object),
        ref.fingerprint,
    )


def dataset_array(dataset):
    """The features of a Dataset of files as a dask array, one chunk per block read on a worker.

    Parameters
    ----------
    dataset : fastlr.Dataset
        As :func:`dataset_row_blocks` takes it; the label is not needed.

    Returns
    -------
    X : dask array of shape (n_samples, n_features)
        Chunks of ndarrays, or of ``scipy.sparse.csr_matrix`` for sparse data.
    """
    blocks = dataset_row_blocks(dataset, labels=False)
    d, dtype = blocks.n_features, blocks.dtype
    meta = (
        scipy.sparse.csr_matrix((0, d), dtype=dtype) if blocks.sparse else np.empty((0, d), dtype)
    )
    parts = [
        da.from_delayed(x, shape=(n_rows, d), dtype=dtype, meta=meta)
        for x, n_rows in zip(blocks.X, dataset.block_sizes(), strict=True)
    ]
    return da.concatenate(parts, axis=0)


#: Datasets opened on this worker process, by (spec, fingerprint), most recent
#: last: each holds the idle Datasets of that key (one per task thread that
#: read at once, since a Dataset is read by one thread at a time).
_OPENED = collections.OrderedDict()
_OPENED_LOCK = threading.Lock()
#: Versions of datasets kept open per process; older ones are closed.
MAX_OPENED = 4
SHARED_FILES = (
    "The workers read a fastlr.Dataset's files themselves: put them on storage every worker "
    "mounts at the same path (NFS, a cluster file system), or copy them to the same path on "
    "every machine."
)


def read_dataset_block(ref, k, place, n_rows):
    """Block ``k`` of the dataset ``ref``, read on this worker.

    Parameters
    ----------
    ref : DatasetRef
    k : int
    place : str
        How messages name the block: ``"block 3 (rows 1200-1599)"``.
    n_rows : int
        The block's rows by the client's metadata.

    Returns
    -------
    X, y, sample_weight : arrays (or CSR, or None)
        Owned by this process and writeable: memory-mapped blocks are copied.

    Raises
    ------
    fastlr.DataError
        A bad value, naming the file, the block and the row; or files that
        differ from the client's.
    OSError
        A file missing or unreadable on this worker, naming the path and the worker.
    """
    with _opened_dataset(ref) as dataset:
        try:
            block = dataset.read_block(k)
        except DataError as exc:
            where = place if exc.where is None else f"{place}, {exc.where}"
            raise DataError(exc.source, exc.problem, where) from exc
        except OSError as exc:
            raise _worker_os_error(exc, ref.spec.source) from exc
    if block.n_rows != n_rows:
        raise DataError(
            ref.spec.source,
            f"{_this_worker()} reads {block.n_rows} rows where the client's metadata gave "
            f"{n_rows}: the files differ between the machines, or changed since the fit "
            f"started. Give every worker the same files.",
            place,
        )
    return _owned(block.X), _owned(block.y), _owned(block.sample_weight)


@contextlib.contextmanager
def _opened_dataset(ref):
    """A Dataset on ``ref``'s files for this thread: an idle one of this process, or a new one."""
    key = (ref.spec, ref.fingerprint)
    with _OPENED_LOCK:
        idle = _OPENED.pop(key, [])
        _OPENED[key] = idle
        dataset = idle.pop() if idle else None
    if dataset is None:
        dataset = _open_dataset(ref)
    try:
        yield dataset
    finally:
        with _OPENED_LOCK:
            _OPENED.setdefault(key, []).append(dataset)
            while len(_OPENED) > MAX_OPENED:
                for stale in _OPENED.popitem(last=False)[1]:
                    stale.close()


def _open_dataset(ref):
    spec = ref.spec
    missing = [path for path in _spec_paths(spec) if not _exists(path)]
    if missing:
        raise FileNotFoundError(f"{missing[0]} does not exist on {_this_worker()}. {SHARED_FILES}")
    try:
        dataset = spec.open()
    except DataError as exc:
        raise DataError(exc.source, f"{exc.problem} (on {_this_worker()})", exc.where) from exc
    except OSError as exc:
        raise _worker_os_error(exc, spec.source) from exc
    if dataset.n_blocks != ref.n_blocks:
        raise DataError(
            spec.source,
            f"{_this_worker()} finds {dataset.n_blocks} blocks where the client found "
            f"{ref.n_blocks}: the files differ between the machines, or changed since the "
            f"fit started. Give every worker the same files.",
        )
    return dataset


def _worker_os_error(exc, path):
    """``exc`` (an OSError) again, naming this worker and the dataset, of the same type."""
    error = type(exc) if type(exc).__module__ == "builtins" else OSError
    return error(f"{_this_worker()} cannot read {path}: {exc}. {SHARED_FILES}")


def _spec_paths(spec):
    """The paths a worker opens: the source, and an ``.npy`` source's label and weight files."""
    paths = [spec.source]
    if spec.format == "npy":
        paths += [value for value in (spec.label, spec.weight) if isinstance(value, str)]
    return paths


def _exists(path):
    if os.path.exists(path):
        return True
    return any(c in path for c in "*?[") and bool(glob.glob(path, recursive=True))


def _this_worker():
    try:
        return f"worker {get_worker().address}"
    except ValueError:  # not in a worker task (a direct call)
        return "this process"


def _owned(array):
    """``array`` in memory of its own and writeable, copied when it is not.

    A read-only (memory-mapped) block or a view into a larger array would
    keep a file map or a whole shard alive with the block, and numba
    compiles read-only arrays as another type.
    """
    if array is None:
        return None
    if scipy.sparse.issparse(array):
        parts = (array.data, array.indices, array.indptr)
        return array if all(map(_self_contained, parts)) else array.copy()
    array = np.asarray(array)
    return array if _self_contained(array) else array.copy()


def _self_contained(array):
    base = array
    while isinstance(base.base, np.ndarray):
        base = base.base
    return bool(array.flags.writeable) and base.nbytes <= array.nbytes


# --------------------------------------------------------------------------
# Worker tasks. Each runs on the worker that holds (or computes) its block.
# --------------------------------------------------------------------------


class ValidatedBlock(NamedTuple):
    """A block whose X is checked and converted, labels and weights not yet encoded.

    Attributes
    ----------
    X : ndarray or scipy.sparse.csr_matrix
        C-contiguous in the training dtype, or CSR with values in it.
    y : ndarray or None
        The labels as given.
    sample_weight : ndarray or None
        Checked weights in the training dtype.
    """

    X: object
    y: np.ndarray | None
    sample_weight: np.ndarray | None


class BlockSummary(NamedTuple):
    """What the client learns about a validated block (a few numbers, never its rows)."""

    n_rows: int
    labels: np.ndarray
    label_weights: np.ndarray
    index_dtype: str | None


def validate_block(X, y, sample_weight, name, n_features, dtype):
    """Check and convert one block; errors name the block.

    Parameters
    ----------
    X : ndarray, pandas DataFrame or scipy.sparse matrix
    y, sample_weight : array-like or None
    name : str
        The block's name in error messages.
    n_features : int
    dtype : str
        The training dtype.

    Returns
    -------
    block : ValidatedBlock
    """
    try:
        return _validated(X, y, sample_weight, n_features, np.dtype(dtype))
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"In {name} of the training data: {exc}") from exc


def _validated(X, y, sample_weight, n_features, dtype):
    if scipy.sparse.issparse(X):
        X = X.tocsr()
        _validation.csr_arrays(X)  # values finite, column indices in range
        X = X.astype(dtype, copy=False)
    elif X.shape[0] == 0:
        X = np.empty((0, n_features), dtype)
    else:
        X = _validation.as_features(X).astype(dtype, copy=False)
    if X.shape[1] != n_features:
        raise ValueError(
            f"it has {X.shape[1]} columns where X has {n_features}; give every chunk the "
            f"same columns."
        )
    n_rows = X.shape[0]
    labels = None if y is None else _labels(y, n_rows)
    return ValidatedBlock(X, labels, _weights(sample_weight, n_rows, dtype))


def _labels(y, n_rows):
    labels = np.asarray(y)
    if labels.ndim != 1:
        raise ValueError(f"y must be 1-D with one label per row, got shape {labels.shape}.")
    _validation.check_length(labels, n_rows, "y")
    missing = False
    if labels.dtype.kind == "f":
        missing = not np.isfinite(labels).all()
    elif labels.dtype.kind == "O":
        import pandas

        missing = bool(pandas.isna(labels).any())
    if missing:
        raise ValueError(
            "y contains missing labels (NaN, None or infinity); every row needs a label. "
            "Drop those rows before training."
        )
    return labels


def _weights(sample_weight, n_rows, dtype):
    """Checked block weights; a block may weigh zero in all (the total is checked later)."""
    if sample_weight is None:
        return None
    values = np.asarray(sample_weight)
    all_zero = values.ndim == 1 and values.dtype.kind in "biuf" and not values.any()
    if all_zero:
        _validation.check_length(values, n_rows, "sample_weight")
        return np.zeros(n_rows, dtype)
    return _validation.as_sample_weight(values, n_rows, dtype)[0]


def summarize_block(block):
    """The :class:`BlockSummary` of a :class:`ValidatedBlock`."""
    # Integer-valued labels are counted rather than sorted (a tenth of the time).
    labels, inverse = _unique_inverse(block.y, _integer_values(block.y))
    weights = np.bincount(inverse.ravel(), weights=block.sample_weight, minlength=labels.shape[0])
    index_dtype = None
    if scipy.sparse.issparse(block.X):
        # The index dtype the kernels will get (see _validation.csr_arrays).
        int32 = block.X.indices.dtype == block.X.indptr.dtype == np.int32
        index_dtype = "int32" if int32 else "int64"
    return BlockSummary(block.X.shape[0], labels, weights.astype(np.float64), index_dtype)


class _BlockEncoder(BlockEncoder):
    """:class:`fastlr._streaming.BlockEncoder` with a message for dask's recomputed blocks."""

    def unknown_labels(self, index, unknown):
        return (
            f"{self.source} holds labels that are not among the classes "
            f"{self.classes.tolist()} found when the fit started: {unknown}. Its graph gave "
            f"other data when dask computed it again (after a worker was lost); persist "
            f"X and y from a deterministic graph and fit again."
        )


def encode_block(block, classes, class_weight, dtype, name):
    """The kernels' :class:`fastlr._streaming.PreparedBlock` of a validated block."""
    encoder = _BlockEncoder(classes, dtype, class_weight, source=name[0].upper() + name[1:])
    return encoder(block, 0)


def block_weight(block):
    """Total weight of a prepared block (its rows without weights)."""
    if block.sw.shape[0]:
        return float(block.sw.sum(dtype=np.float64))
    return float(block.n_rows)


def _writeable(array):
    # Numba compiles read-only arrays as another type: copy the (small) parameters.
    return array if array.flags.writeable else array.copy()


def block_gradient(block, coef, intercept, with_loss, n_threads):
    """The gradient contract over one block.

    Returns
    -------
    sums : ndarray of shape (coef.size + intercept.size + 1,)
        float64: the gradient sums of the coefficients (flattened), of the
        intercepts, then the loss sum (0 without ``with_loss``).
    """
    coef, intercept = _writeable(coef), _writeable(intercept)
    split, n_params = coef.size, coef.size + intercept.size
    out = np.zeros(n_params + 1)
    dtype = block.X.data.dtype if isinstance(block.X, kernels.CsrArrays) else block.X.dtype
    buffer = out[:n_params] if dtype == np.float64 else np.zeros(n_params, dtype)
    with numba_threads(n_threads):
        loss = kernels.gradient_sums(
            block.X, block.y, block.sw, coef, intercept, with_loss,
            buffer[:split].reshape(coef.shape), buffer[split:],
        )  # fmt: skip
    out[:n_params] = buffer
    out[n_params] = loss
    return out


def block_gram(block, v, v0, n_threads, weight_scale=1.0):
    """``A^T (c W) A [v, v0]`` over one block (``A = [X, 1]``, ``c = weight_scale``), as float64."""
    v = _writeable(v)
    d = v.shape[0]
    if isinstance(block.X, np.ndarray):
        out = np.zeros(d + 1, block.X.dtype)
        with numba_threads(n_threads):
            kernels.binary_dense.gram_matvec(
                block.X, block.sw, v, block.X.dtype.type(v0), weight_scale,
                n_chunks_for(block.n_rows), out,
            )  # fmt: skip
        return out.astype(np.float64)
    z = weighted_scores(block.matrix, block.sw, v, v0, weight_scale)
    out = np.empty(d + 1)
    out[:d] = block.matrix.T @ z
    out[d] = z.sum()
    return out


def block_max_row_norm(block, scale, intercept_term, feature_scale=1.0):
    """``max_i (scale sw_i) (||s x_i||^2 + s^2 intercept_term)`` over one block (0 when empty)."""
    if not block.n_rows:
        return 0.0
    norms = squared_row_norms(block.matrix, feature_scale)
    norms += intercept_term * feature_scale * feature_scale
    weights = block.sw * scale if block.sw.shape[0] else scale
    return float(np.max(weights * norms))


def add_partials(*parts):
    """Sum of float64 arrays, added in argument order (a node of the reduction tree)."""
    total = np.array(parts[0], dtype=np.float64)
    for part in parts[1:]:
        total += part
    return total


def add_group(parts):
    """:func:`add_partials` of a list (a task's argument list holds its futures)."""
    return add_partials(*parts)


def tree_sum(client, futures, key_prefix):
    """Sum of the arrays behind ``futures`` in a tree fixed by their number.

    Nodes of :data:`FAN_IN` consecutive partials run on the workers, level by
    level, until at most :data:`FAN_IN` remain; the client adds those. The
    order of every addition depends on the number of partials only, never on
    where or when the tasks ran.
    """
    level = 0
    while len(futures) > FAN_IN:
        starts = range(0, len(futures), FAN_IN)
        futures = client.map(
            add_group,
            [futures[i : i + FAN_IN] for i in starts],
            key=[f"{key_prefix}-sum{level}-{i}" for i in starts],
        )
        level += 1
    return add_partials(*client.gather(futures))


# --------------------------------------------------------------------------
# Kernels ready on every worker before the first pass.
# --------------------------------------------------------------------------


class KernelKind(NamedTuple):
    """The compiled signatures a fit needs: family, dtype, CSR index dtype, Gram product."""

    sparse: bool
    multinomial: bool
    dtype: str
    index_dtype: str | None
    gram: bool


def warm_worker(kinds):
    """Load (or compile) the kernels of ``kinds`` in this worker process.

    Returns
    -------
    report : dict
        ``compiled`` (functions compiled rather than loaded from numba's
        cache), ``seconds``, ``address``, ``host``, ``cpus`` (cores this process
        may run on),
        ``nthreads`` (the worker's task threads) and ``layer`` (numba's
        threading layer).
    """
    from numba.core import event

    start = time.perf_counter()
    with event.install_recorder("numba:compile") as recorder:
        for kind in kinds:
            for n_rows in WARM_ROWS:
                _run_kind(kind, n_rows)
    compiled = sum(1 for item in recorder.buffer if item[1].is_start)
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    worker = get_worker()
    return {
        "compiled": compiled,
        "seconds": time.perf_counter() - start,
        "address": worker.address,
        "host": get_address_host(worker.address),
        "cpus": cpus or 1,
        "nthreads": worker.state.nthreads,
        "layer": numba.threading_layer(),
    }


def _run_kind(kind, n_rows):
    """One pass of the kind's kernels over ``n_rows`` synthetic rows of one feature."""
    dtype = np.dtype(kind.dtype)
    dense = np.ones((n_rows, 1), dtype)
    X = dense
    if kind.sparse:
        index = np.dtype(kind.index_dtype)
        X = kernels.CsrArrays(
            np.ones(n_rows, dtype), np.zeros(n_rows, index), np.arange(n_rows + 1, dtype=index), 1
        )
    n_outputs = 3 if kind.multinomial else 1
    y = np.zeros(n_rows, np.int64 if kind.multinomial else dtype)
    coef = np.zeros((3, 1) if kind.multinomial else 1, dtype)
    intercept = np.zeros(n_outputs, dtype)
    for sw in (np.empty(0, dtype), np.ones(n_rows, dtype)):
        kernels.gradient_sums(
            X, y, sw, coef, intercept, True, np.zeros_like(coef), np.zeros_like(intercept)
        )
        if kind.gram and not kind.sparse:
            out = np.zeros(2, dtype)
            kernels.binary_dense.gram_matvec(
                dense, sw, np.ones(1, dtype), dtype.type(1), 1.0, n_chunks_for(n_rows), out
            )


#: Worker address -> (the kinds readied there, its last warm-up report), for
#: the workers this process has readied: a later fit skips them.
_READY = {}


def warm_up(client, kinds, token, verbose=0):
    """Ready the kernels of ``kinds`` on every worker; return the numba threads per task.

    One task per worker that has not readied them for this process yet (it
    may run elsewhere if that worker is gone): first on one worker of each
    host, which compiles what numba's disk cache lacks, then on the others,
    which load it from that cache. The threads per task default to each
    host's cores over the task threads of its workers (the smallest over the
    hosts), so the block tasks running at once share the cores instead of
    oversubscribing them.

    Raises
    ------
    RuntimeError
        If a worker runs tasks on several threads with numba's workqueue
        threading layer, which aborts the process when two threads enter it.
    """
    workers = client.scheduler_info(n_workers=-1)["workers"]
    kinds = set(kinds)
    pending = [address for address in workers if not kinds <= _ready_kinds(address)]
    start = time.perf_counter()
    if verbose and pending:
        print(f"[fastlr.dask] readying the kernels on {len(pending)} workers ...", flush=True)
    first_of_host = {}
    for address in pending:
        first_of_host.setdefault(workers[address]["host"], address)
    rounds = [list(first_of_host.values())]
    rounds.append([address for address in pending if address not in rounds[0]])
    compiled = 0
    for number, addresses in enumerate(rounds):
        futures = [
            client.submit(
                warm_worker,
                sorted(kinds),
                key=f"fastlr-warm-{token}-{number}-{i}",
                workers=[address],
                allow_other_workers=True,
                pure=False,
            )
            for i, address in enumerate(addresses)
        ]
        for report in client.gather(futures):
            _check_threading_layer(report)
            compiled += report["compiled"]
            _READY[report["address"]] = (kinds | _ready_kinds(report["address"]), report)
    if verbose and pending:
        done = f"compiled {compiled} functions" if compiled else "loaded from numba's cache"
        print(
            f"[fastlr.dask] kernels ready: {done} in {time.perf_counter() - start:.2f} s",
            flush=True,
        )
    reports = [_READY[address][1] for address in workers if address in _READY]
    return _threads_per_task(workers, reports)


def _ready_kinds(address):
    return _READY[address][0] if address in _READY else frozenset()


def _check_threading_layer(report):
    if report["layer"] == "workqueue" and report["nthreads"] > 1:
        raise RuntimeError(
            "A worker runs tasks on several threads with numba's workqueue threading "
            "layer, which cannot be entered by two threads at once. Install the OpenMP "
            "runtime (libgomp1) or tbb on the workers, or start them with one thread each "
            "(threads_per_worker=1, nworkers=cores)."
        )


def _threads_per_task(workers, reports):
    """Cores per task thread on each host (at least 1), the smallest over the hosts."""
    cpus = {report["host"]: report["cpus"] for report in reports}
    threads = {}
    for info in workers.values():
        threads[info["host"]] = threads.get(info["host"], 0) + info["nthreads"]
    shares = [cpus[host] // count for host, count in threads.items() if host in cpus]
    return max(1, min(shares, default=1))


# --------------------------------------------------------------------------
# The data of one fit on the cluster, and its datafit.
# --------------------------------------------------------------------------


class Summary(NamedTuple):
    """The gathered block summaries of a fit."""

    n_rows: list
    labels: np.ndarray
    index_dtypes: set


class ClusterData:
    """The row blocks of one fit, validated and then encoded on the workers.

    Use as a context manager: on exit the blocks are released from the
    workers' memory.

    Parameters
    ----------
    client : distributed.Client
    blocks : RowBlocks
    """

    def __init__(self, client, blocks):
        self.client = client
        self.blocks = blocks
        self.token = uuid.uuid4().hex[:12]
        self.futures = []
        self.names = []
        self.summaries = []
        self._datafit = None

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.release()

    def release(self):
        """Drop the blocks from the workers (these futures are the only references)."""
        self.futures = []
        if self._datafit is not None:
            self._datafit.blocks = []

    def validate(self):
        """Validate every block where it is computed; return the :class:`Summary`.

        Blocks without rows are dropped here.
        """
        blocks = self.blocks
        ys = blocks.y if blocks.y is not None else itertools.repeat(None)
        sws = blocks.sample_weight if blocks.sample_weight is not None else itertools.repeat(None)
        tasks = [
            dask.delayed(validate_block, pure=True)(
                x,
                y,
                sw,
                name,
                blocks.n_features,
                blocks.dtype.name,
                dask_key_name=f"fastlr-validate-{self.token}-{i}",
            )
            for i, (x, y, sw, name) in enumerate(zip(blocks.X, ys, sws, blocks.names, strict=False))
        ]
        summary_tasks = [
            dask.delayed(summarize_block, pure=True)(
                task, dask_key_name=f"fastlr-summary-{self.token}-{i}"
            )
            for i, task in enumerate(tasks)
        ]
        # One submission; the summaries come back as soon as the blocks are valid.
        futures = self.client.compute(tasks + summary_tasks)
        futures, summary_futures = futures[: len(tasks)], futures[len(tasks) :]
        _raise_first_error(futures)
        summaries = self.client.gather(summary_futures)
        kept = [i for i, summary in enumerate(summaries) if summary.n_rows]
        if not kept:
            raise ValueError("X has no rows: every chunk is empty. Pass at least one sample.")
        self.futures = [futures[i] for i in kept]
        self.names = [blocks.names[i] for i in kept]
        self.summaries = [summaries[i] for i in kept]
        labels = np.unique(np.concatenate([summary.labels for summary in self.summaries]))
        index_dtypes = {summary.index_dtype for summary in self.summaries} - {None}
        return Summary([summary.n_rows for summary in self.summaries], labels, index_dtypes)

    def label_weights(self, classes):
        """Summed weight of each class over the blocks, added in block order."""
        totals = np.zeros(classes.shape[0])
        for summary in self.summaries:
            np.add.at(totals, np.searchsorted(classes, summary.labels), summary.label_weights)
        return totals

    def encode(self, classes, class_weight):
        """Encode labels and weights of every block; keep those blocks. Return the total weight.

        A block is encoded where it is, or on another worker when that
        balances the rows per task thread (:func:`balanced_placement`): a
        pass lasts as long as its busiest worker.
        """
        dtype = self.blocks.dtype.name
        targets = self._placement()
        encoded = []
        for i, (future, name, target) in enumerate(
            zip(self.futures, self.names, targets, strict=True)
        ):
            # A move is a loose restriction: the block goes elsewhere if the target is gone.
            where = {} if target is None else dict(workers=[target], allow_other_workers=True)
            encoded.append(
                self.client.submit(
                    encode_block,
                    future,
                    classes,
                    class_weight,
                    dtype,
                    name,
                    key=f"fastlr-block-{self.token}-{i}",
                    **where,
                )
            )
        weights = self.client.gather(
            self.client.map(block_weight, encoded, key=[f"fastlr-weight-{f.key}" for f in encoded])
        )
        # The validated blocks are released now; dask keeps their graph to
        # compute them again if a worker holding an encoded block is lost.
        self.futures = encoded
        return math.fsum(weights)

    def _placement(self):
        """The worker each block should be encoded on (None: where it is)."""
        holders = self.client.who_has(self.futures)
        current = [(holders.get(future.key) or [None])[0] for future in self.futures]
        workers = self.client.scheduler_info(n_workers=-1)["workers"]
        threads = {address: info["nthreads"] for address, info in workers.items()}
        if None in current or not set(current) <= set(threads):
            return [None] * len(current)
        rows = [summary.n_rows for summary in self.summaries]
        return balanced_placement(current, rows, threads)

    def datafit(self, loss, n_samples, total_weight, n_threads):
        """The :class:`DaskDatafit` over the encoded blocks."""
        self._datafit = DaskDatafit(
            self.client, self.futures, loss, n_samples=n_samples,
            n_features=self.blocks.n_features, dtype=self.blocks.dtype,
            total_weight=total_weight, n_threads=n_threads, token=self.token,
        )  # fmt: skip
        return self._datafit


def balanced_placement(current, rows, threads):
    """Moves that even out the rows per task thread over the workers.

    Blocks move one at a time from the most loaded worker (rows per thread)
    to the least loaded one, the smallest block that lowers the larger of
    the two loads first, until no move helps.

    Parameters
    ----------
    current : list of str
        The worker holding each block.
    rows : list of int
        Rows of each block.
    threads : dict of str to int
        Task threads of each worker.

    Returns
    -------
    targets : list of str or None
        The worker to move each block to, or None to leave it.
    """
    load = dict.fromkeys(threads, 0)
    for worker, n_rows in zip(current, rows, strict=True):
        load[worker] += n_rows
    where = list(current)
    for _ in range(len(rows)):
        source = max(load, key=lambda worker: load[worker] / threads[worker])
        target = min(load, key=lambda worker: load[worker] / threads[worker])
        worst = load[source] / threads[source]
        movable = sorted(
            (n_rows, i)
            for i, (worker, n_rows) in enumerate(zip(where, rows, strict=True))
            if worker == source
            and max(
                (load[source] - n_rows) / threads[source], (load[target] + n_rows) / threads[target]
            )
            < worst
        )
        if not movable:
            break
        n_rows, i = movable[0]
        where[i] = target
        load[source] -= n_rows
        load[target] += n_rows
    return [None if new == old else new for new, old in zip(where, current, strict=True)]


def _raise_first_error(futures):
    """Wait for every future; raise the error of the first failed one, in block order.

    Whichever failed block finished first would otherwise decide the message.
    """
    wait(futures)
    for future in futures:
        if future.status == "error":
            future.result()


class DaskDatafit:
    """A :class:`fastlr._datafits.Datafit` whose passes run on a Dask cluster.

    Each pass sends the parameters (inside each task, or by one broadcast
    scatter when they are large), runs one task per block on the worker
    that holds it, and adds the partial sums by :func:`tree_sum`. The
    stochastic epochs are not available: see :mod:`fastlr.dask`.

    Parameters
    ----------
    client : distributed.Client
    blocks : list of Future
        Encoded blocks (:class:`fastlr._streaming.PreparedBlock`) on the workers.
    loss : BinaryLoss or MultinomialLoss
    n_samples, n_features : int
    dtype : numpy dtype
    total_weight : float
    n_threads : int
        numba threads of each block task.
    token : str
        Makes the task keys of this fit unique.
    """

    def __init__(
        self, client, blocks, loss, *, n_samples, n_features, dtype, total_weight, n_threads,
        token,
    ):  # fmt: skip
        self.client, self.blocks, self.loss = client, blocks, loss
        self.dtype = np.dtype(dtype)
        self.n_samples, self.n_features = n_samples, n_features
        self.coef_shape = loss.coef_shape(n_features)
        self.n_outputs = loss.n_outputs
        self.curvature = loss.curvature
        self.total_weight = total_weight
        self.n_threads = n_threads
        self.token = token
        self.n_passes = 0

    def _prefix(self, kind):
        self.n_passes += 1
        return f"fastlr-{kind}-{self.token}-{self.n_passes}"

    def _send(self, *arrays):
        """The arrays as task arguments: themselves, or futures of a broadcast when large."""
        if sum(array.nbytes for array in arrays) <= SCATTER_BYTES:
            return arrays
        return self.client.scatter(list(arrays), broadcast=True, hash=False)

    def _pass(self, function, *args):
        """Run ``function(block, *args)`` on every block; return the tree sum."""
        prefix = self._prefix(function.__name__)
        n_blocks = len(self.blocks)
        partials = self.client.map(
            function,
            self.blocks,
            *[[arg] * n_blocks for arg in args],
            key=[f"{prefix}-{i}" for i in range(n_blocks)],
        )
        return self.sum_partials(partials, prefix)

    def sum_partials(self, partials, prefix):
        """The fixed-tree sum of the blocks' partials (:func:`tree_sum`)."""
        return tree_sum(self.client, partials, prefix)

    def gradient_sums(self, coef, intercept, with_loss, grad_coef, grad_intercept):
        """One pass on the cluster: the sums added into the buffers; returns the loss sum."""
        coef_arg, intercept_arg = self._send(coef, intercept)
        total = self._pass(block_gradient, coef_arg, intercept_arg, bool(with_loss), self.n_threads)
        split = coef.size
        np.add(
            grad_coef, total[:split].reshape(grad_coef.shape), out=grad_coef, casting="same_kind"
        )
        np.add(grad_intercept, total[split:-1], out=grad_intercept, casting="same_kind")
        return float(total[-1])

    def gram_matvec(self, v, v0, weight_scale=1.0):
        """``A^T (c W) A [v, v0]`` with ``A = [X, 1]``, summed over the blocks in one pass."""
        (v_arg,) = self._send(np.ascontiguousarray(v, dtype=self.dtype))
        total = self._pass(block_gram, v_arg, float(v0), self.n_threads, weight_scale)
        return total.astype(self.dtype)

    def max_weighted_row_norm(self, scale, intercept_term, feature_scale=1.0):
        """``max_i (scale sw_i) (||s x_i||^2 + s^2 intercept_term)``, in one pass."""
        prefix = self._prefix("row-norm")
        futures = self.client.map(
            block_max_row_norm,
            self.blocks,
            scale=scale,
            intercept_term=intercept_term,
            feature_scale=feature_scale,
            key=[f"{prefix}-{i}" for i in range(len(self.blocks))],
        )
        return max(self.client.gather(futures))

    def _stochastic(self, *args):
        raise NotImplementedError(
            "sgd and minibatch epochs do not run on a Dask cluster; use the lbfgs or gd solver."
        )

    sgd_epoch = minibatch_epoch = epoch_orders = mean_weighted_row_norm = _stochastic
