"""fastlr.data.Dataset on files: .npy, .npz shards, Parquet, CSV, LIBSVM.

Each format must give back exactly the arrays the file was written from
(dense and CSR, float32 and float64, several blocks), the scan must find
the right classes, weights and features, and each malformed file must raise
a DataError naming the file, the line / row group / row, and the problem.
"""

import gzip
import os
import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import scipy.sparse
from data_helpers import (
    collect,
    dense,
    make_data,
    write_csv,
    write_libsvm,
    write_npz_shards,
    write_parquet,
)
from sklearn.datasets import load_svmlight_file

from fastlr._progress import _bytes_text
from fastlr.data import DataError, Dataset

DTYPES = [np.float32, np.float64]


def assert_round_trip(dataset, X, y, w=None, dtype=None):
    Xr, yr, wr, blocks = collect(dataset)
    assert Xr.dtype == (dtype or X.dtype)
    assert np.array_equal(dense(Xr), dense(X))
    assert np.array_equal(yr, y)
    if w is not None:
        assert np.array_equal(wr, w)
    return blocks


def assert_scan(dataset, y, w=None, n_features=4):
    info = dataset.scan()
    classes, inverse = np.unique(y, return_inverse=True)
    assert np.array_equal(info.classes, classes)
    assert np.array_equal(info.class_counts, np.bincount(inverse))
    weights = np.ones(len(y)) if w is None else w
    np.testing.assert_allclose(info.class_weight_sums, np.bincount(inverse, weights), rtol=1e-14)
    assert info.n_rows == len(y) and info.n_features == n_features
    return info


def assert_random_access(dataset):
    sequential = list(dataset)
    for k in reversed(range(dataset.n_blocks)):
        block = dataset.read_block(k)
        assert block.start == sequential[k].start
        assert np.array_equal(dense(block.X), dense(sequential[k].X))
        assert np.array_equal(block.y, sequential[k].y)


# --------------------------------------------------------------------------
# .npy memory maps
# --------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("block_rows", [None, 8])
def test_npy_round_trip(tmp_path, dtype, block_rows):
    X, y, w = make_data(dtype=dtype)
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "y.npy", y)
    np.save(tmp_path / "w.npy", w)
    dataset = Dataset(
        tmp_path / "X.npy",
        label=tmp_path / "y.npy",
        weight=str(tmp_path / "w.npy"),
        block_rows=block_rows,
    )
    assert dataset.format == "npy" and dataset.random_access and dataset.dtype == dtype
    blocks = assert_round_trip(dataset, X, y, w)
    assert len(blocks) == (1 if block_rows is None else 7)
    assert_scan(dataset, y, w)
    assert_random_access(dataset)


def test_npy_float32_blocks_are_views_of_the_map(tmp_path):
    X, y, _ = make_data(dtype=np.float32)
    np.save(tmp_path / "X.npy", X)
    block = next(iter(Dataset(tmp_path / "X.npy", label=y, block_rows=10)))
    assert not block.X.flags.owndata and not block.X.flags.writeable
    assert isinstance(block.X.base, memoryview) or block.X.base is not None


def test_npy_label_column_removed_from_features(tmp_path):
    X, y, w = make_data()
    np.save(tmp_path / "table.npy", np.column_stack([y, X, w]))
    dataset = Dataset(tmp_path / "table.npy", label=0, weight=5, block_rows=16)
    assert dataset.n_features == 4
    assert_round_trip(dataset, X, y.astype(float), w)


def test_npy_fortran_order(tmp_path):
    X, y, _ = make_data()
    np.save(tmp_path / "X.npy", np.asfortranarray(X))
    blocks = assert_round_trip(Dataset(tmp_path / "X.npy", label=y, block_rows=20), X, y)
    assert all(b.X.flags.c_contiguous for b in blocks)


def test_bad_npy_files(tmp_path):
    X, y, _ = make_data()
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "short.npy", y[:-1])
    with pytest.raises(
        DataError, match=r"short.npy: the label file has shape \(49,\);.*needs shape \(50,\)"
    ):
        Dataset(tmp_path / "X.npy", label=tmp_path / "short.npy")
    with pytest.raises(
        DataError, match=r"X.npy: label column 7 does not exist: the data have 4 columns"
    ):
        Dataset(tmp_path / "X.npy", label=7)
    data = (tmp_path / "X.npy").read_bytes()
    (tmp_path / "cut.npy").write_bytes(data[:-8])
    with pytest.raises(DataError, match=r"cut.npy: the .npy file is truncated"):
        Dataset(tmp_path / "cut.npy")
    np.save(tmp_path / "objects.npy", np.array([[1, "a"]], dtype=object), allow_pickle=True)
    with pytest.raises(DataError, match=r"objects.npy: the .npy file holds Python objects"):
        Dataset(tmp_path / "objects.npy")
    np.save(tmp_path / "flat.npy", y)
    with pytest.raises(DataError, match=r"flat.npy: the array must be 2-D"):
        Dataset(tmp_path / "flat.npy")
    bad = X.copy()
    bad[31, 1] = np.nan
    np.save(tmp_path / "nan.npy", bad)
    with pytest.raises(DataError, match=r"nan.npy, row 31: NaN in column 1"):
        list(Dataset(tmp_path / "nan.npy", label=y, block_rows=10))


def test_npy_changed_after_the_scan_is_refused(tmp_path):
    X, y, _ = make_data()
    np.save(tmp_path / "X.npy", X)
    dataset = Dataset(tmp_path / "X.npy", label=y)
    dataset.scan()
    first = dataset.fingerprint()
    np.save(tmp_path / "X.npy", X * 2)
    os.utime(tmp_path / "X.npy", ns=(1, 1))
    assert dataset.fingerprint() != first
    with pytest.raises(DataError, match="the files changed since the scan"):
        dataset.reset()


# --------------------------------------------------------------------------
# Shards
# --------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize("block_rows", [None, 6])
def test_npz_shards_round_trip(tmp_path, dtype, sparse, block_rows):
    X, y, w = make_data(dtype=dtype, sparse=sparse)
    write_npz_shards(tmp_path / "shards", X, y, w)
    for source in (tmp_path / "shards", str(tmp_path / "shards" / "shard-*.npz")):
        dataset = Dataset(source, label="y", weight="w", block_rows=block_rows)
        assert dataset.format == "shards" and dataset.sparse == sparse
        blocks = assert_round_trip(dataset, X, y, w)
        assert len(blocks) == (3 if block_rows is None else 9)
        assert_scan(dataset, y, w)
        assert_random_access(dataset)


def test_npy_shards_with_label_column(tmp_path):
    X, y, _ = make_data()
    table = np.column_stack([X, y])
    (tmp_path / "s").mkdir()
    for k, a in enumerate(range(0, 50, 20)):
        np.save(tmp_path / "s" / f"part-{k}.npy", table[a : a + 20])
    dataset = Dataset(tmp_path / "s", label=-1)
    assert_round_trip(dataset, X, y.astype(float))
    assert dataset.n_blocks == 3


def test_bad_shards(tmp_path):
    X, y, _ = make_data()
    write_npz_shards(tmp_path / "a", X, y)
    with pytest.raises(
        DataError, match=r"shard-00.npz: no array 'label' for the label; the arrays are: X, y"
    ):
        Dataset(tmp_path / "a", label="label")
    np.savez(tmp_path / "a" / "shard-09.npz", X=X[:, :3], y=y)
    with pytest.raises(DataError, match=r"shards have different numbers of columns: \[3, 4\]"):
        Dataset(tmp_path / "a", label="y")
    (tmp_path / "b").mkdir()
    np.savez(tmp_path / "b" / "one.npz", features=X)
    with pytest.raises(
        DataError, match=r"one.npz: an .npz shard needs an array 'X', or the CSR arrays"
    ):
        Dataset(tmp_path / "b")
    with pytest.raises(DataError, match=r"no such file or folder"):
        Dataset(tmp_path / "missing.npy")
    with pytest.raises(DataError, match=r"the pattern matches no file"):
        Dataset(str(tmp_path / "nothing-*.npz"))


# --------------------------------------------------------------------------
# Parquet
# --------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("block_rows", [None, 7])
def test_parquet_round_trip(tmp_path, dtype, block_rows):
    X, y, w = make_data(dtype=dtype)
    write_parquet(tmp_path / "d.parquet", X, y, w, row_group_size=20)
    dataset = Dataset(tmp_path / "d.parquet", label="label", weight="weight", block_rows=block_rows)
    assert dataset.dtype == dtype and dataset.random_access
    assert dataset.feature_names == ["f0", "f1", "f2", "f3"]
    blocks = assert_round_trip(dataset, X, y, w)
    assert [b.n_rows for b in blocks] == (
        [20, 20, 10] if block_rows is None else [7, 7, 6] * 2 + [7, 3]
    )
    info = assert_scan(dataset, y, w)
    assert info.feature_names == ["f0", "f1", "f2", "f3"]
    assert_random_access(dataset)


def test_parquet_folder_and_column_selection(tmp_path):
    X, y, _ = make_data()
    (tmp_path / "p").mkdir()
    write_parquet(tmp_path / "p" / "0.parquet", X[:30], y[:30], row_group_size=10)
    write_parquet(tmp_path / "p" / "1.parquet", X[30:], y[30:], row_group_size=10)
    dataset = Dataset(tmp_path / "p", label="label", columns=["f2", "f0"])
    assert dataset.feature_names == ["f2", "f0"] and dataset.n_blocks == 5
    assert_round_trip(dataset, X[:, [2, 0]], y)


def test_parquet_int_and_bool_features_train_in_float64(tmp_path):
    table = pa.table(
        {"a": pa.array([1, 2, 3], pa.int32()), "b": [True, False, True], "label": ["x", "y", "x"]}
    )
    pq.write_table(table, tmp_path / "t.parquet")
    dataset = Dataset(tmp_path / "t.parquet", label="label")
    assert dataset.dtype == np.float64
    Xr, yr, _, _ = collect(dataset)
    assert np.array_equal(Xr, [[1, 1], [2, 0], [3, 1]]) and list(yr) == ["x", "y", "x"]


def test_bad_parquet(tmp_path):
    X, y, w = make_data()
    write_parquet(tmp_path / "d.parquet", X, y, w, row_group_size=20)
    with pytest.raises(
        DataError,
        match=r"d.parquet: no column 'y' for label; the columns are: 'f0', .*, 'label', 'weight'",
    ):
        Dataset(tmp_path / "d.parquet", label="y")
    with pytest.raises(DataError, match=r"no column 'f9' for columns"):
        Dataset(tmp_path / "d.parquet", label="label", columns=["f0", "f9"])
    frame = pd.DataFrame(X, columns=list("abcd")).assign(label=y, city="x")
    frame.loc[27, "b"] = None
    frame.loc[44, "label"] = None
    frame.to_parquet(tmp_path / "bad.parquet", row_group_size=20)
    with pytest.raises(
        DataError, match=r"non-numeric feature columns: 'city' \(string|large_string\)"
    ):
        Dataset(tmp_path / "bad.parquet", label="label")
    dataset = Dataset(tmp_path / "bad.parquet", label="label", columns=list("abcd"))
    with pytest.raises(
        DataError, match=r"bad.parquet, row group 2, row 4: the label \(column 'label'\) is missing"
    ):
        dataset.scan()
    with pytest.raises(
        DataError, match=r"bad.parquet, row group 1, row 7: missing value \(null\) in column 'b'"
    ):
        list(dataset)
    (tmp_path / "junk.parquet").write_bytes(b"not parquet")
    with pytest.raises(DataError, match=r"junk.parquet: not a readable Parquet file"):
        Dataset(tmp_path / "junk.parquet")


# --------------------------------------------------------------------------
# CSV
# --------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("block_rows", [None, 9])
@pytest.mark.parametrize("gz", [False, True])
def test_csv_round_trip(tmp_path, dtype, block_rows, gz):
    X, y, w = make_data(dtype=dtype)
    path = write_csv(tmp_path / ("d.csv.gz" if gz else "d.csv"), X, y, w, gz=gz)
    dataset = Dataset(path, label="label", weight="weight", block_rows=block_rows, dtype=dtype)
    assert not dataset.random_access and dataset.feature_names == ["f0", "f1", "f2", "f3"]
    blocks = assert_round_trip(dataset, X, y, w)
    assert len(blocks) == (1 if block_rows is None else 6)
    info = assert_scan(dataset, y, w)
    assert info.block_rows == tuple(b.n_rows for b in blocks) and dataset.n_blocks == len(blocks)
    with pytest.raises(TypeError, match="read sequentially \\(csv\\)"):
        dataset.read_block(0)


def test_csv_text_defaults_to_float64():
    assert Dataset.__init__.__kwdefaults__["dtype"] is None


def test_csv_without_header_label_by_index(tmp_path):
    X, y, _ = make_data()
    path = write_csv(tmp_path / "d.csv", np.column_stack([X[:, :1], y, X[:, 1:]]), header=False)
    dataset = Dataset(path, label=1, header=False)
    assert dataset.feature_names is None and dataset.n_features == 4
    assert dataset.dtype == np.float64
    assert_round_trip(dataset, X, y.astype(float))
    by_name = Dataset(path, label="x1", columns=["x0", "x2"], header=False)
    assert_round_trip(by_name, X[:, :2], y.astype(float))


def test_tsv_and_string_labels(tmp_path):
    X, _, _ = make_data()
    labels = np.array(["no", "yes"])[np.arange(50) % 2]
    write_csv(tmp_path / "d.tsv", X, labels, delimiter="\t")
    dataset = Dataset(tmp_path / "d.tsv", label="label")
    assert list(dataset.info.classes) == ["no", "yes"]
    assert_round_trip(dataset, X, labels.astype(object))


def _csv_with(tmp_path, edit, name="bad.csv"):
    X, y, _ = make_data(n=30)
    path = write_csv(tmp_path / name, X, y)
    lines = path.read_text().splitlines()
    edit(lines)
    path.write_text("\n".join(lines) + "\n")
    return path


def _set_field(lines, line, column, value):
    fields = lines[line - 1].split(",")
    fields[column] = value
    lines[line - 1] = ",".join(fields)


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (
            lambda L: _set_field(L, 17, 2, "abc"),
            r"bad.csv, line 17: non-numeric field 'abc' in column 'f2'",
        ),
        (
            lambda L: L.__setitem__(11, L[11] + ",9"),
            r"bad.csv, line 12: ragged row: 6 fields, expected 5",
        ),
        (
            lambda L: L.__setitem__(20, ",".join(L[20].split(",")[:3])),
            r"line 21: ragged row: 3 fields, expected 5",
        ),
        (
            lambda L: _set_field(L, 9, 1, ""),
            r"bad.csv, line 9: missing value \(null\) in column 'f1'",
        ),
        (lambda L: _set_field(L, 25, 0, "nan"), r"line 25: missing value \(null\) in column 'f0'"),
        (lambda L: _set_field(L, 8, 3, "inf"), r"bad.csv, line 8: infinity in column 'f3'"),
        (
            lambda L: _set_field(L, 14, 4, ""),
            r"bad.csv, line 14: the label \(column 'label'\) is missing",
        ),
        (lambda L: L.insert(5, ""), r"line 12: NaN in column 'f0'"),
    ],
)
def test_bad_csv(tmp_path, edit, match):
    if "NaN" in match:  # a blank line is skipped but counted: line numbers stay true

        def edit_both(lines):
            edit(lines)
            _set_field(lines, 12, 0, "NaN ")

        path = _csv_with(tmp_path, edit_both)
    else:
        path = _csv_with(tmp_path, edit)
    with pytest.raises(DataError, match=match):
        dataset = Dataset(path, label="label", block_rows=8)
        dataset.scan()
        list(dataset)


def test_csv_label_type_set_by_the_first_block(tmp_path, monkeypatch):
    from fastlr.data import _csv

    monkeypatch.setattr(_csv, "PARSE_BLOCK_BYTES", 256)  # pyarrow parses a few lines at a time
    monkeypatch.setattr(_csv, "TEXT_BLOCK_BYTES", 1024)
    path = _csv_with(tmp_path, lambda L: _set_field(L, 30, 4, "1.5"))
    with pytest.raises(
        DataError,
        match=r"bad.csv, line 30: label '1.5' \(column 'label'\) is not an integer like the labels",
    ):
        Dataset(path, label="label").scan()
    path = _csv_with(tmp_path, lambda L: _set_field(L, 28, 1, "x"), "other.csv")
    with pytest.raises(
        DataError, match=r"other.csv, line 28: non-numeric field 'x' in column 'f1'"
    ):
        Dataset(path, label="label").scan()


def test_csv_missing_columns(tmp_path):
    X, y, _ = make_data()
    path = write_csv(tmp_path / "d.csv", X, y)
    with pytest.raises(
        DataError,
        match=r"d.csv: no column 'target' for label; the columns are: 'f0', 'f1', .*, 'label'",
    ):
        Dataset(path, label="target")
    with pytest.raises(DataError, match=r"label column 7 does not exist: the file has 5 columns"):
        Dataset(path, label=7)
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(DataError, match=r"empty.csv, line 1: the file is empty"):
        Dataset(tmp_path / "empty.csv")
    (tmp_path / "dup.csv").write_text("a,a,y\n1,2,0\n")
    with pytest.raises(DataError, match=r"the header repeats column names \['a'\]"):
        Dataset(tmp_path / "dup.csv", label="y")


# --------------------------------------------------------------------------
# LIBSVM
# --------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("block_rows", [None, 6])
@pytest.mark.parametrize("zero_based", [False, True])
@pytest.mark.parametrize("gz", [False, True])
def test_libsvm_round_trip(tmp_path, dtype, block_rows, zero_based, gz):
    X, y, _ = make_data(dtype=dtype, sparse=True, d=6)
    X = dense(X)
    X[:, 0] = 1.0 if zero_based else 0.0  # auto: one-based exactly when no index 0 is written
    X = scipy.sparse.csr_matrix(X)
    path = write_libsvm(
        tmp_path / ("d.svm.gz" if gz else "d.svm"), X, y, zero_based=zero_based, gz=gz
    )
    dataset = Dataset(path, block_rows=block_rows, dtype=dtype)
    assert dataset.sparse and not dataset.random_access and dataset.n_features == 6
    blocks = assert_round_trip(dataset, X, y.astype(float), dtype=dtype)
    assert all(b.X.has_canonical_format and b.X.indices.dtype == np.int32 for b in blocks)
    info = assert_scan(dataset, y.astype(float), n_features=6)
    assert info.nnz == X.nnz and info.block_rows == tuple(b.n_rows for b in blocks)
    assert len(blocks) == (1 if block_rows is None else 9)


def test_libsvm_matches_scikit_learn(tmp_path):
    rng = np.random.default_rng(3)
    X = scipy.sparse.random(200, 40, density=0.2, random_state=4, format="csr")
    X.data = rng.standard_normal(X.nnz) * 10.0 ** rng.integers(-30, 30, X.nnz)
    y = rng.integers(-1, 2, 200) * 2.0
    path = write_libsvm(tmp_path / "d.svm", X, y, comments=True, qid=True)
    X_ref, y_ref = load_svmlight_file(str(path))
    Xr, yr, _, _ = collect(Dataset(path))
    assert Xr.shape == X_ref.shape
    assert np.array_equal(Xr.indptr, X_ref.indptr) and np.array_equal(Xr.indices, X_ref.indices)
    assert np.array_equal(Xr.data, X_ref.data) and np.array_equal(yr, y_ref)


def test_libsvm_numbers_parse_as_python_floats(tmp_path):
    """Shortest round-trip reprs, long decimals, exponents, subnormals: bit for bit."""
    rng = np.random.default_rng(5)
    values = rng.standard_normal(300) * 10.0 ** rng.integers(-300, 300, 300)
    texts = [repr(float(v)) for v in values] + [
        "0.1", "-0", "1e-320", "2.2250738585072011e-308", "9007199254740993",
        "1.00000000000000011102230246251565404236316680908203125",
        "1.000000000000000111022302462515654042363166809082031250001",
        "123456789012345678901234567890", ".5", "5.", "+3", "1E5", "0.000000000000000000000000001",
    ]  # fmt: skip
    lines = [f"{t} 1:{t}" for t in texts]
    (tmp_path / "n.svm").write_text("\n".join(lines))
    _, yr, _, _ = collect(Dataset(tmp_path / "n.svm", zero_based=False, n_features=1))
    expected = np.array([float(t) for t in texts])
    assert np.array_equal(yr.view(np.int64), expected.view(np.int64))


def test_libsvm_n_features_given(tmp_path):
    X, y, _ = make_data(sparse=True)
    path = write_libsvm(tmp_path / "d.svm", X, y)
    dataset = Dataset(path, n_features=10, zero_based=False)
    Xr, _, _, _ = collect(dataset)
    assert Xr.shape == (50, 10) and np.array_equal(Xr[:, :4].toarray(), X.toarray())
    with pytest.raises(
        DataError,
        match=r"n_features=2 was given, but the file has feature index 4 \(one-based\), so at",
    ):
        Dataset(path, n_features=2).scan()


def _libsvm_with(tmp_path, line, text):
    X, y, _ = make_data(sparse=True, n=20)
    path = write_libsvm(tmp_path / "bad.svm", X, y)
    lines = path.read_text().splitlines()
    lines[line - 1] = text
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize(
    ("line", "text", "match"),
    [
        (4, "abc 1:2", r"bad.svm, line 4: the label 'abc' is not a number"),
        (5, "1:0.5 2:3", r"line 5: the label '1' is not a number"),
        (6, "1,2 1:3", r"line 6: multilabel lines \('1,2'\) are not supported"),
        (7, "1 x:3", r"line 7: expected index:value with a non-negative integer index, got 'x'"),
        (8, "1 2 3", r"line 8: expected index:value .*got '2'"),
        (9, "1 -2:3", r"line 9: expected index:value .*got '-2'"),
        (10, "1 2:abc", r"bad.svm, line 10: non-numeric value 'abc'"),
        (11, "1 2:1.5.5", r"line 11: non-numeric value '1.5.5'"),
        (12, "1 2:nan", r"line 12: NaN or infinity \('nan'\); fastlr needs finite numbers"),
        (13, "1 2:-Inf", r"line 13: NaN or infinity \('-Inf'\)"),
        (14, "inf 2:1", r"line 14: the label 'inf' is not finite"),
        (15, "1 3:1 2:1", r"line 15: feature index 2 follows index 3: indices must increase"),
        (16, "1 2:1 2:1", r"line 16: feature index 2 follows index 2"),
        (17, "1 99999999999:1", r"line 17: feature index 99999999999 is too large"),
        (18, "1 2:1e", r"line 18: non-numeric value '1e'"),
    ],
)
def test_bad_libsvm(tmp_path, line, text, match):
    path = _libsvm_with(tmp_path, line, text)
    with pytest.raises(DataError, match=match):
        Dataset(path, block_rows=3).scan()


def test_libsvm_index_errors_after_the_scan(tmp_path):
    path = _libsvm_with(tmp_path, 6, "1 0:2.5 3:1")
    with pytest.raises(
        DataError, match=r"line 6: feature index 0 in a file read as one-based \(zero_based=False\)"
    ):
        list(Dataset(path, zero_based=False, n_features=4))
    path = _libsvm_with(tmp_path, 3, "1 9:2.5")
    with pytest.raises(
        DataError, match=r"line 3: feature index 9 is out of range for n_features=5 \(zero-based"
    ):
        list(Dataset(path, zero_based=True, n_features=5))


def test_libsvm_label_outside_classes_names_the_line(tmp_path):
    X, y, _ = make_data(sparse=True, n=20)
    path = write_libsvm(tmp_path / "d.svm", X, y)
    dataset = Dataset(path, block_rows=4)
    dataset.scan()
    lines = path.read_text().splitlines()
    lines[13] = "7" + lines[13][1:]
    path.write_text("\n".join(lines) + "\n")
    dataset._stamp = dataset._reader.stamp()  # same size: only the label check can tell
    with pytest.raises(DataError, match=r"d.svm, line 14: label 7.0 is not one of the classes"):
        list(dataset)


def test_libsvm_comments_blank_lines_and_qid(tmp_path):
    X, y, _ = make_data(sparse=True, n=20)
    plain = collect(Dataset(write_libsvm(tmp_path / "a.svm", X, y)))
    decorated = collect(Dataset(write_libsvm(tmp_path / "b.svm", X, y, comments=True, qid=True)))
    assert np.array_equal(plain[0].toarray(), decorated[0].toarray())
    assert np.array_equal(plain[1], decorated[1])


def test_libsvm_long_line_and_crlf(tmp_path):
    n_features = 300_000
    line = "1 " + " ".join(f"{j}:{j % 7 + 1}" for j in range(1, n_features + 1))
    (tmp_path / "wide.svm").write_bytes((line + "\r\n0 5:1\r\n").encode())
    Xr, yr, _, _ = collect(Dataset(tmp_path / "wide.svm"))
    assert Xr.shape == (2, n_features) and Xr.nnz == n_features + 1
    assert np.array_equal(yr, [1.0, 0.0])


def test_libsvm_takes_no_label_column(tmp_path):
    path = write_libsvm(tmp_path / "d.svm", *make_data(sparse=True)[:2])
    with pytest.raises(TypeError, match="label cannot be given for LIBSVM text"):
        Dataset(path, label=0)


def test_format_detection_and_forcing(tmp_path):
    X, y, _ = make_data(sparse=True)
    path = write_libsvm(tmp_path / "data.txt", X, y)
    with pytest.raises(
        DataError, match=r"cannot tell the format from the extension '.txt'; pass format="
    ):
        Dataset(path)
    assert Dataset(path, format="libsvm").format == "libsvm"
    with pytest.raises(
        TypeError,
        match=r"unknown option\(s\) zero_based for format 'csv'; it accepts: header, delimiter",
    ):
        Dataset(path, format="csv", zero_based=True)
    gz = tmp_path / "data.svmlight.gz"
    gz.write_bytes(gzip.compress(path.read_bytes()))
    assert Dataset(gz).format == "libsvm"


def test_text_scan_progress_counts_file_bytes(tmp_path, capsys):
    X, y, _ = make_data(sparse=True)
    path = write_libsvm(tmp_path / "d.svm.gz", X, y, gz=True)
    Dataset(path).scan(progress=True)
    err = capsys.readouterr().err
    # Off a terminal the scan logs one line at its end, counting the file's bytes.
    size = _bytes_text(path.stat().st_size)
    assert f"scanning {path}: {size} in " in err, err


def _files_of_each_format(X, y, w):
    """Relative paths (the working directory is the data's folder) and their Dataset arguments."""
    np.save("X.npy", dense(X))
    np.save("y.npy", y)
    write_npz_shards(Path("shards"), X, y, w)
    write_parquet("data.parquet", X, y, w)
    Dataset(X, label=y, weight=w).to_cache("cache")
    return {
        "npy": ("X.npy", dict(label="y.npy", block_rows=15)),
        "shards": ("shards", dict(label="y", weight="w")),
        "parquet": ("data.parquet", dict(label="label", weight="weight", columns=["f1", "f0"])),
        "cache": ("cache", dict(block_rows=20, verify=True)),
    }


def test_spec_opens_the_same_dataset_in_another_directory(tmp_path, monkeypatch):
    """The spec is small and picklable, with absolute paths; it reads the same blocks."""
    X, y, w = make_data(n=60)
    monkeypatch.chdir(tmp_path)
    for fmt, (source, options) in _files_of_each_format(X, y, w).items():
        dataset = Dataset(source, dtype="float32", **options)
        spec = dataset.spec()
        assert spec.format == fmt and os.path.isabs(spec.source)
        assert pickle.loads(pickle.dumps(spec)) == spec and hash(spec) == hash(spec)
        expected = collect(dataset)[:3]
        monkeypatch.chdir(tmp_path.parent)
        reopened = spec.open()
        assert reopened.block_sizes() == dataset.block_sizes()
        assert reopened.dtype == np.float32 and reopened.feature_names == dataset.feature_names
        for ours, theirs in zip(collect(reopened)[:3], expected, strict=True):
            assert (ours is None and theirs is None) or np.array_equal(dense(ours), dense(theirs))
        monkeypatch.chdir(tmp_path)


def test_spec_refuses_data_another_process_cannot_open(tmp_path):
    X, y, _ = make_data(n=30)
    path = write_csv(tmp_path / "d.csv", X, y)
    csv = Dataset(path, label="label")
    with pytest.raises(TypeError, match=r"\(csv\) cannot be opened again.*to_cache"):
        csv.spec()
    assert csv.block_sizes() == csv.scan().block_rows
    with pytest.raises(TypeError, match=r"\(array\) cannot be opened again"):
        Dataset(X, label=y).spec()
    np.save(tmp_path / "X.npy", X)
    with pytest.raises(TypeError, match=r"weight of .*X\.npy is a ndarray held in this process"):
        Dataset(tmp_path / "X.npy", weight=np.ones(30)).spec()
