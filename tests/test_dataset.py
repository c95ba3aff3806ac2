"""fastlr.data.Dataset: the block protocol, in-memory sources, iterables, the scan, fingerprints.

Every source must give back exactly the arrays it holds, in the training
dtype, whatever the block size; the scan must count what numpy counts; bad
data must raise a DataError that names the place and the problem.
"""

import threading

import numpy as np
import pandas as pd
import pytest
import scipy.sparse
from data_helpers import collect, dense, make_data

import fastlr
from fastlr.data import Block, DataError, Dataset, DatasetInfo


def expected_info(X, y, w):
    classes, inverse = np.unique(y, return_inverse=True)
    return classes, np.bincount(inverse), np.bincount(inverse, weights=w)


def test_public_names():
    assert fastlr.Dataset is Dataset
    assert fastlr.DataError is DataError
    assert issubclass(DataError, ValueError)


# --------------------------------------------------------------------------
# Round trips of in-memory sources
# --------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize("block_rows", [None, 7, 50, 1000])
def test_arrays_round_trip(dtype, sparse, block_rows):
    X, y, w = make_data(dtype=dtype, sparse=sparse)
    dataset = Dataset(X, label=y, weight=w, block_rows=block_rows)
    assert dataset.dtype == dtype and dataset.sparse == sparse
    Xr, yr, wr, blocks = collect(dataset)
    assert isinstance(blocks[0], Block)
    n_blocks = 1 if block_rows is None else -(-50 // block_rows)
    assert len(blocks) == dataset.n_blocks == n_blocks
    assert [b.start for b in blocks] == list(np.cumsum([0] + [b.n_rows for b in blocks[:-1]]))
    assert np.array_equal(dense(Xr), dense(X)) and Xr.dtype == dtype
    assert np.array_equal(yr, y) and np.array_equal(wr, w)
    for block in blocks:
        if sparse:
            assert block.X.has_canonical_format
            assert block.X.indices.dtype == block.X.indptr.dtype
        else:
            assert block.X.flags.c_contiguous


def test_c_contiguous_float_arrays_are_not_copied():
    X, y, _ = make_data()
    blocks = list(Dataset(X, label=y, block_rows=20))
    assert all(np.shares_memory(b.X, X) for b in blocks)
    Xs = scipy.sparse.csr_matrix(X)
    block = next(iter(Dataset(Xs, label=y, block_rows=20)))
    assert np.shares_memory(block.X.data, Xs.data)


@pytest.mark.parametrize(
    ("source_dtype", "asked", "expected"),
    [
        (np.float32, None, np.float32),
        (np.float64, None, np.float64),
        (np.int64, None, np.float64),
        (np.float32, "float64", np.float64),
        (np.float64, np.float32, np.float32),
    ],
)
def test_training_dtype(source_dtype, asked, expected):
    X, y, _ = make_data()
    dataset = Dataset((X * 10).astype(source_dtype), label=y, dtype=asked)
    assert dataset.dtype == expected
    assert next(iter(dataset)).X.dtype == expected


@pytest.mark.parametrize("dtype", ["int64", "float16", "complex128", "bogus"])
def test_training_dtype_must_be_float32_or_float64(dtype):
    X, y, _ = make_data()
    with pytest.raises(ValueError, match="dtype must be float32 or float64"):
        Dataset(X, label=y, dtype=dtype)


def test_label_and_weight_by_column_index():
    X, y, w = make_data()
    table = np.column_stack([X[:, :2], y, X[:, 2:], w])
    dataset = Dataset(table, label=2, weight=-1, block_rows=9)
    Xr, yr, wr, _ = collect(dataset)
    assert np.array_equal(Xr, X) and np.array_equal(yr, y) and np.array_equal(wr, w)
    assert dataset.n_features == 4


def test_columns_select_features():
    X, y, _ = make_data()
    Xr, _, _, _ = collect(Dataset(X, label=y, columns=[3, 1]))
    assert np.array_equal(Xr, X[:, [3, 1]])


def test_dataframe_round_trip_and_feature_names():
    X, y, w = make_data(dtype=np.float32)
    frame = pd.DataFrame(X, columns=["a", "b", "c", "d"]).assign(target=y, sw=w, note="text")
    dataset = Dataset(
        frame, label="target", weight="sw", columns=["a", "b", "c", "d"], block_rows=16
    )
    assert dataset.feature_names == ["a", "b", "c", "d"]
    assert dataset.dtype == np.float32
    Xr, yr, wr, blocks = collect(dataset)
    assert len(blocks) == 4
    assert np.array_equal(Xr, X) and np.array_equal(yr, y) and np.array_equal(wr, w)
    assert dataset.info.feature_names == ["a", "b", "c", "d"]


def test_dataframe_with_string_labels_and_array_weights():
    X, y, w = make_data()
    names = np.array(["cat", "dog", "eel"], dtype=object)[y]
    frame = pd.DataFrame(X, columns=list("abcd")).assign(animal=names)
    dataset = Dataset(frame, label="animal", weight=w)
    assert list(dataset.info.classes) == ["cat", "dog", "eel"]
    _, yr, wr, _ = collect(dataset)
    assert list(yr) == list(names) and np.array_equal(wr, w)


# --------------------------------------------------------------------------
# The scan
# --------------------------------------------------------------------------


@pytest.mark.parametrize("sparse", [False, True])
def test_scan_counts_classes_weights_rows(sparse):
    X, y, w = make_data(sparse=sparse)
    dataset = Dataset(X, label=y, weight=w, block_rows=12)
    info = dataset.scan()
    assert isinstance(info, DatasetInfo)
    assert dataset.info is info and dataset.scan() is info
    classes, counts, sums = expected_info(X, y, w)
    assert np.array_equal(info.classes, classes)
    assert np.array_equal(info.class_counts, counts)
    np.testing.assert_allclose(info.class_weight_sums, sums, rtol=1e-15)
    assert info.total_weight == pytest.approx(w.sum(), rel=1e-15)
    assert (info.n_rows, info.n_features, info.block_rows) == (50, 4, (12, 12, 12, 12, 2))
    assert info.n_blocks == 5 and list(info.block_starts) == [0, 12, 24, 36, 48, 50]
    assert info.nnz == (X.nnz if sparse else None)
    assert info.sparse == sparse and info.dtype == np.float64
    assert info.has_label and info.has_weight


def test_scan_without_weights_counts_rows():
    X, y, _ = make_data()
    info = Dataset(X, label=y).scan()
    assert info.total_weight == 50.0 and not info.has_weight
    assert np.array_equal(info.class_weight_sums, np.bincount(y))


def test_scan_without_label():
    X, _, _ = make_data()
    info = Dataset(X).scan()
    assert not info.has_label and info.classes.size == 0 and info.n_rows == 50


def test_scan_progress_bar(capsys):
    X, y, _ = make_data()
    Dataset(X, label=y, block_rows=10).scan(progress=True)
    assert "scanning array" in capsys.readouterr().err


def test_empty_data_are_refused():
    with pytest.raises(DataError, match="has no rows"):
        Dataset(np.empty((0, 3)), label=np.empty(0)).scan()


# --------------------------------------------------------------------------
# The protocol
# --------------------------------------------------------------------------


def test_reset_and_next_block():
    X, y, _ = make_data()
    dataset = Dataset(X, label=y, block_rows=20)
    first = dataset.next_block()
    assert first.start == 0 and dataset.next_block().start == 20
    dataset.reset()
    assert dataset.next_block().start == 0
    assert dataset.next_block().start == 20
    assert dataset.next_block().start == 40
    assert dataset.next_block() is None
    assert dataset.next_block() is None
    assert [b.start for b in dataset] == [0, 20, 40]


@pytest.mark.parametrize("sparse", [False, True])
def test_random_access_equals_sequential(sparse):
    X, y, w = make_data(sparse=sparse)
    dataset = Dataset(X, label=y, weight=w, block_rows=11)
    assert dataset.random_access
    sequential = list(dataset)
    for k in [3, 0, 4, 1, 2]:
        block = dataset.read_block(k)
        assert block.start == sequential[k].start
        assert np.array_equal(dense(block.X), dense(sequential[k].X))
        assert np.array_equal(block.y, sequential[k].y)
    with pytest.raises(IndexError, match="block 5 does not exist"):
        dataset.read_block(5)


def test_blocks_read_on_another_thread_stay_valid():
    """A reader thread fills a queue ahead of the consumer; blocks must not share buffers."""
    import queue

    X, y, w = make_data(n=200)
    dataset = Dataset([(X[a : a + 30], y[a : a + 30], w[a : a + 30]) for a in range(0, 200, 30)])
    ahead = queue.Queue(maxsize=2)

    def read():
        dataset.reset()
        while (block := dataset.next_block()) is not None:
            ahead.put(block)
        ahead.put(None)

    thread = threading.Thread(target=read)
    thread.start()
    blocks = []
    while (block := ahead.get()) is not None:
        blocks.append(block)
    thread.join()
    assert np.array_equal(np.vstack([b.X for b in blocks]), X)
    assert np.array_equal(np.concatenate([b.y for b in blocks]), y)


# --------------------------------------------------------------------------
# Iterables
# --------------------------------------------------------------------------


def chunks_of(X, y, w=None, size=15):
    parts = []
    for a in range(0, X.shape[0], size):
        part = (X[a : a + size], y[a : a + size])
        parts.append(part if w is None else (*part, w[a : a + size]))
    return parts


@pytest.mark.parametrize("kind", ["list", "tuple", "callable", "iterator"])
@pytest.mark.parametrize("sparse", [False, True])
def test_iterables_round_trip(kind, sparse):
    X, y, w = make_data(sparse=sparse)
    chunks = chunks_of(X, y, w)
    source = {
        "list": chunks,
        "tuple": tuple(chunks),
        "callable": lambda: iter(chunks),
        "iterator": iter(chunks),
    }[kind]
    dataset = Dataset(source, block_rows=10)
    assert dataset.random_access == (kind in ("list", "tuple"))
    assert dataset.sparse == sparse and dataset.has_weight
    Xr, yr, wr, blocks = collect(dataset)
    assert [b.n_rows for b in blocks] == [10, 5] * 3 + [5]  # chunks of 15 cut at 10
    assert np.array_equal(dense(Xr), dense(X))
    assert np.array_equal(yr, y) and np.array_equal(wr, w)
    if kind != "iterator":
        classes, _, sums = expected_info(X, y, w)
        info = dataset.scan()
        assert np.array_equal(info.classes, classes)
        np.testing.assert_allclose(info.class_weight_sums, sums, rtol=1e-15)
        assert info.n_blocks == 7 == dataset.n_blocks


def test_iterable_of_bare_x_has_no_label():
    X, _, _ = make_data()
    dataset = Dataset([X[:20], X[20:]])
    assert not dataset.has_label
    Xr, yr, _, _ = collect(dataset)
    assert yr is None and np.array_equal(Xr, X)


def test_iterator_gives_one_pass():
    X, y, _ = make_data()
    dataset = Dataset(iter(chunks_of(X, y)))
    assert len(list(dataset)) == 4
    with pytest.raises(DataError, match=r"gives one pass.*Pass a callable.*write_cache"):
        dataset.reset()
    with pytest.raises(DataError, match="gives one pass"):
        list(dataset)


def test_iterator_scan_uses_its_pass():
    X, y, _ = make_data()
    dataset = Dataset(iter(chunks_of(X, y)))
    assert dataset.scan().n_rows == 50
    with pytest.raises(DataError, match="gives one pass"):
        dataset.reset()


def test_sequential_iterables_have_no_random_access():
    X, y, _ = make_data()
    dataset = Dataset(lambda: iter(chunks_of(X, y)))
    with pytest.raises(TypeError, match=r"read sequentially.*to_cache"):
        dataset.read_block(0)


@pytest.mark.parametrize(
    ("chunks", "match"),
    [
        ([(np.ones((2, 3)), np.ones(2), np.ones(2), 1)], r"chunk 0: a chunk must be \(X, y\)"),
        ([(np.ones(3), np.ones(3))], r"chunk 0: X must be 2-D"),
        (
            [(np.ones((2, 3)), np.ones(2)), np.ones((2, 3))],
            "chunk 1: every chunk must have the same parts",
        ),
        (
            [(np.ones((2, 3)), np.ones(2)), (np.ones((2, 4)), np.ones(2))],
            "block 1: the block has 4 features, the data before it 3",
        ),
        (
            [(np.ones((2, 3)), np.ones(2)), (scipy.sparse.csr_matrix(np.ones((2, 3))), np.ones(2))],
            "chunk 1: chunks mix dense and sparse",
        ),
        (
            [(np.ones((2, 3)), np.ones(3))],
            r"chunk 0: label has shape \(3,\); pass one label per row \(2,\)",
        ),
        ([], "holds no chunks"),
    ],
)
def test_malformed_chunks(chunks, match):
    with pytest.raises(DataError, match=match):
        list(Dataset(list(chunks) if chunks else []))


def test_iterables_take_no_label_argument():
    with pytest.raises(TypeError, match="label cannot be given for an iterable"):
        Dataset([(np.ones((2, 2)), np.ones(2))], label=np.ones(2))


def test_data_changed_between_passes_is_refused():
    X, y, _ = make_data()
    passes = []

    def chunks():
        passes.append(1)
        labels = y if len(passes) == 1 else np.where(y == 2, 7, y)
        return iter(chunks_of(X, labels))

    dataset = Dataset(chunks)
    dataset.scan()
    with pytest.raises(
        DataError,
        match=r"label 7 is not one of the classes the scan found \(0, 1, 2\): the data changed",
    ):
        list(dataset)


def test_block_sizes_changed_between_passes_are_refused():
    X, y, _ = make_data()
    sizes = iter([15, 10])
    dataset = Dataset(lambda: iter(chunks_of(X, y, size=next(sizes))))
    dataset.scan()
    with pytest.raises(DataError, match="block 0: the block has 10 rows but the scan found 15"):
        list(dataset)


# --------------------------------------------------------------------------
# Bad in-memory data
# --------------------------------------------------------------------------


def _with(array, index, value):
    out = np.array(array, dtype=float)
    out[index] = value
    return out


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (
            lambda X, y, w: dict(source=_with(X, (33, 2), np.nan), label=y),
            r"array, row 33: NaN in column 2; .*impute",
        ),
        (
            lambda X, y, w: dict(source=_with(X, (5, 0), -np.inf), label=y),
            r"array, row 5: infinity in column 0",
        ),
        (
            lambda X, y, w: dict(source=X, label=_with(y, 9, np.nan)),
            r"array, row 9: the label is missing",
        ),
        (
            lambda X, y, w: dict(source=X, label=np.array([None, *y[1:]], dtype=object)),
            r"row 0: the label is missing",
        ),
        (
            lambda X, y, w: dict(source=X, label=y, weight=_with(w, 4, -1)),
            r"row 4: sample weight -1.0 is negative",
        ),
        (
            lambda X, y, w: dict(source=X, label=y, weight=_with(w, 7, np.nan)),
            r"row 7: sample weight nan is not finite",
        ),
        (
            lambda X, y, w: dict(source=X, label=y[:-1]),
            r"label has shape \(49,\); pass one label per row \(50,\)",
        ),
        (
            lambda X, y, w: dict(source=X, label=9),
            r"label column 9 does not exist: the data have 4 columns",
        ),
        (
            lambda X, y, w: dict(source=X, label="y"),
            r"label='y' names a column, but arrays have no column names",
        ),
        (
            lambda X, y, w: dict(source=X, label=1, weight=1),
            r"column 1 is both the label and the weight",
        ),
        (
            lambda X, y, w: dict(source=X, label=0, columns=[0, 1]),
            r"column 0 is both a feature and the label",
        ),
        (
            lambda X, y, w: dict(source=X.astype(str), label=y),
            r"X holds non-numeric values \(dtype <U",
        ),
        (
            lambda X, y, w: dict(source=X[:, 0], label=y),
            r"X must be 2-D \(rows x features\), got shape \(50,\)",
        ),
        (
            lambda X, y, w: dict(source=X, label=y, n_features=5),
            r"n_features=5 was given, but the data have 4",
        ),
        (
            lambda X, y, w: dict(source=scipy.sparse.csr_matrix(_with(X, (8, 1), np.nan)), label=y),
            r"row 8: NaN in column 1",
        ),
        (
            lambda X, y, w: dict(source=scipy.sparse.csr_matrix(X), label=0),
            r"label must be an array of one label per row for sparse X",
        ),
    ],
)
def test_bad_in_memory_data(make, match):
    X, y, w = make_data()
    with pytest.raises(DataError, match=match):
        dataset = Dataset(**make(X, y.astype(float), w))
        dataset.scan()
        list(dataset)


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (
            lambda f: dict(label="nope"),
            r"DataFrame: no column 'nope' for label; the columns are: 'a', 'b', 'c', 'd', 'y'",
        ),
        (lambda f: dict(label="y", columns=["a", "zz"]), r"no column 'zz' for columns"),
        (
            lambda f: dict(label="y", source=f.assign(city="x")),
            r"non-numeric feature columns: 'city' \((object|str)\)",
        ),
        (
            lambda f: dict(label="y", source=f.assign(y=f["y"].astype("Int64").mask(f.index == 6))),
            r"DataFrame, row 6: the label is missing \(NA\)",
        ),
        (
            lambda f: dict(label="y", source=f.assign(b=f["b"].mask(f.index == 12))),
            r"DataFrame, row 12: NaN in column 'b'",
        ),
    ],
)
def test_bad_dataframes(make, match):
    X, y, _ = make_data()
    frame = pd.DataFrame(X, columns=list("abcd")).assign(y=y)
    kwargs = make(frame)
    with pytest.raises(DataError, match=match):
        list(Dataset(kwargs.pop("source", frame), **kwargs))


def test_unknown_source_type_and_format():
    with pytest.raises(TypeError, match="cannot read a int as a Dataset"):
        Dataset(3)
    with pytest.raises(ValueError, match="unknown format 'xls'"):
        Dataset(np.ones((2, 2)), format="xls")
    with pytest.raises(TypeError, match=r"unknown option.*header for format 'array'"):
        Dataset(np.ones((2, 2)), header=False)
    with pytest.raises(ValueError, match="block_rows must be a positive int"):
        Dataset(np.ones((2, 2)), block_rows=0)


# --------------------------------------------------------------------------
# Fingerprints
# --------------------------------------------------------------------------


def test_fingerprint_of_arrays_follows_content():
    X, y, w = make_data()
    first = Dataset(X, label=y).fingerprint()
    assert Dataset(X.copy(), label=y.copy()).fingerprint() == first
    assert Dataset(_with(X, (49, 3), 0.5), label=y).fingerprint() != first
    assert Dataset(X, label=np.roll(y, 1)).fingerprint() != first
    assert Dataset(X, label=y, weight=w).fingerprint() != first
    assert Dataset(X, label=y, dtype="float32").fingerprint() != first
    assert Dataset(X, label=y, block_rows=10).fingerprint() != first


def test_fingerprint_of_callables_hashes_the_scanned_blocks():
    X, y, _ = make_data()
    first = Dataset(lambda: iter(chunks_of(X, y))).fingerprint()
    assert Dataset(lambda: iter(chunks_of(X, y))).fingerprint() == first
    assert Dataset(lambda: iter(chunks_of(X * 2, y))).fingerprint() != first
    assert Dataset(chunks_of(X, y)).fingerprint() != Dataset(chunks_of(X, y[::-1])).fingerprint()


@pytest.mark.parametrize(
    ("weight_dtype", "dtype", "expected"),
    [
        (np.float32, np.float32, np.float32),
        (np.float32, np.float64, np.float64),
        (np.float64, np.float32, np.float64),
        (np.int64, np.float64, np.float64),
    ],
)
def test_weights_in_float64_or_the_training_dtype(weight_dtype, dtype, expected):
    X, y, _ = make_data()
    w = np.arange(50).astype(weight_dtype)
    block = next(iter(Dataset(X, label=y, weight=w, dtype=dtype)))
    assert block.sample_weight.dtype == expected
    assert np.array_equal(block.sample_weight, np.arange(50))


def test_dataframe_chunks_give_feature_names():
    X, y, _ = make_data()
    frame = pd.DataFrame(X, columns=["a", "b", "c", "d"])
    dataset = Dataset(lambda: iter([(frame[:25], y[:25]), (frame[25:], y[25:])]))
    assert dataset.feature_names == ["a", "b", "c", "d"]
    Xr, _, _, _ = collect(dataset)
    assert np.array_equal(Xr, X)


def test_csr_column_indices_out_of_range():
    bad = scipy.sparse.csr_matrix(
        (np.ones(3), np.array([0, 7, 1], dtype=np.int32), np.array([0, 1, 2, 3], dtype=np.int32)),
        shape=(3, 3),
    )
    good = scipy.sparse.csr_matrix(np.eye(3))
    dataset = Dataset([(good, np.arange(3)), (bad, np.arange(3))])
    with pytest.raises(DataError, match=r"chunk 1, row 1: column index 7 is outside \[0, 3\)"):
        list(dataset)


def test_data_error_parts_and_pickling():
    import pickle

    error = DataError("d.csv", "ragged row.", "line 3")
    assert str(error) == "d.csv, line 3: ragged row."
    assert (error.source, error.where, error.problem) == ("d.csv", "line 3", "ragged row.")
    assert str(pickle.loads(pickle.dumps(error))) == str(error)
    assert str(DataError("array", "has no rows.")) == "array: has no rows."
