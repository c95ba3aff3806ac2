"""The binary cache (``write_cache`` / ``Dataset.to_cache``) and ``PredictionWriter``.

The cache must give back exactly what its source gives, carry the scan's
information in its manifest, refuse a manifest that does not match its
shards, catch altered shard contents with ``verify``, and never leave a
folder that opens as a cache when a conversion fails. Prediction files
must appear whole or not at all.
"""

import json
import os

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import scipy.sparse
from data_helpers import collect, dense, make_data, write_csv, write_libsvm

from fastlr.data import DataError, Dataset, PredictionWriter, write_cache
from fastlr.data._cache import MANIFEST


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize("shard_bytes", [None, 200])
def test_cache_round_trip(tmp_path, dtype, sparse, shard_bytes):
    X, y, w = make_data(dtype=dtype, sparse=sparse)
    source = Dataset(X, label=y, weight=w, block_rows=12)
    options = {} if shard_bytes is None else {"shard_bytes": shard_bytes}
    cache = source.to_cache(tmp_path / "c", **options)
    assert cache.format == "cache" and cache.random_access and cache.dtype == dtype
    Xr, yr, wr, blocks = collect(cache)
    assert np.array_equal(dense(Xr), dense(X)) and Xr.dtype == dtype
    assert np.array_equal(yr, y) and np.array_equal(wr, w)
    assert len(blocks) == (1 if shard_bytes is None else cache.n_blocks) and len(blocks) >= 1
    if shard_bytes is not None:
        assert len(blocks) > 3
    info, expected = cache.info, source.scan()
    for field in (
        "n_rows",
        "n_features",
        "total_weight",
        "nnz",
        "sparse",
        "has_label",
        "has_weight",
    ):
        assert getattr(info, field) == getattr(expected, field), field
    for field in ("classes", "class_counts", "class_weight_sums"):
        assert np.array_equal(getattr(info, field), getattr(expected, field)), field
    assert info.block_rows == tuple(b.n_rows for b in blocks)
    for k in reversed(range(cache.n_blocks)):
        assert np.array_equal(dense(cache.read_block(k).X), dense(blocks[k].X))
    cache.verify()


def test_cache_blocks_are_maps_not_copies(tmp_path):
    X, y, _ = make_data(dtype=np.float32)
    cache = Dataset(X, label=y).to_cache(tmp_path / "c")
    block = cache.read_block(0)
    assert not block.X.flags.writeable and not block.X.flags.owndata


def test_cache_needs_no_scan_and_keeps_names_and_string_labels(tmp_path):
    X, _, _ = make_data()
    labels = np.array(["ant", "bee", "cow"], dtype=object)[np.arange(50) % 3]
    frame = pd.DataFrame(X, columns=["a", "b", "c", "d"]).assign(kind=labels)
    cache = Dataset(frame, label="kind").to_cache(tmp_path / "c")
    assert cache._info is not None  # from the manifest
    assert cache.feature_names == ["a", "b", "c", "d"] == cache.info.feature_names
    assert list(cache.info.classes) == ["ant", "bee", "cow"]
    _, yr, _, _ = collect(cache)
    assert list(yr) == list(labels)


@pytest.mark.parametrize("kind", ["csv", "libsvm", "iterator"])
def test_sequential_sources_convert(tmp_path, kind):
    X, y, _ = make_data(sparse=kind == "libsvm")
    if kind == "csv":
        source = Dataset(write_csv(tmp_path / "d.csv", X, y), label="label", block_rows=7)
    elif kind == "libsvm":
        source = Dataset(write_libsvm(tmp_path / "d.svm", X, y), block_rows=7)
    else:  # an iterator's one pass is the conversion
        source = Dataset(iter([(X[a : a + 7], y[a : a + 7]) for a in range(0, 50, 7)]))
    cache = write_cache(source, tmp_path / "c", progress=True)
    Xr, yr, _, _ = collect(cache)
    assert np.array_equal(dense(Xr), dense(X)) and np.array_equal(yr, y)
    assert np.array_equal(cache.info.classes, np.unique(y))


def test_cache_with_other_dtype_and_block_rows(tmp_path):
    X, y, _ = make_data()
    Dataset(X, label=y).to_cache(tmp_path / "c")
    cache = Dataset(tmp_path / "c", dtype="float32", block_rows=20)
    Xr, _, _, blocks = collect(cache)
    assert Xr.dtype == np.float32 and np.array_equal(Xr, X.astype(np.float32))
    assert [b.n_rows for b in blocks] == [20, 20, 10] and cache.info.block_rows == (20, 20, 10)


def test_existing_cache_is_kept_unless_overwrite(tmp_path):
    X, y, _ = make_data()
    Dataset(X, label=y).to_cache(tmp_path / "c")
    with pytest.raises(FileExistsError, match="exists; pass overwrite=True"):
        Dataset(X * 2, label=y).to_cache(tmp_path / "c")
    Dataset(X * 2, label=y).to_cache(tmp_path / "c", overwrite=True)
    Xr, _, _, _ = collect(Dataset(tmp_path / "c"))
    assert np.array_equal(Xr, X * 2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c"]


def test_failed_conversion_leaves_nothing(tmp_path):
    X, y, _ = make_data()
    bad = X.copy()
    bad[45, 2] = np.nan
    source = Dataset(bad, label=y, block_rows=10)
    with pytest.raises(DataError, match="row 45: NaN"):
        source.to_cache(tmp_path / "c", shard_bytes=100)
    assert list(tmp_path.iterdir()) == []

    def chunks():
        yield X[:20], y[:20]
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_cache(Dataset(chunks), tmp_path / "c")
    assert list(tmp_path.iterdir()) == []


def test_unfinished_folder_is_not_a_cache(tmp_path):
    X, y, _ = make_data()
    Dataset(X, label=y).to_cache(tmp_path / "c")
    os.remove(tmp_path / "c" / MANIFEST)
    with pytest.raises(DataError, match=r"no manifest.json: not a fastlr cache"):
        Dataset(tmp_path / "c", format="cache")


def _tamper(tmp_path, edit, sparse=False):
    X, y, w = make_data(sparse=sparse)
    Dataset(X, label=y, weight=w).to_cache(tmp_path / "c", shard_bytes=400)
    path = tmp_path / "c" / MANIFEST
    manifest = json.loads(path.read_text())
    edit(manifest, tmp_path / "c")
    path.write_text(json.dumps(manifest))
    return tmp_path / "c"


def _resize(folder, name, extra):
    with open(folder / name, "ab") as file:
        file.write(b"\0" * extra)


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda m, f: m.update(n_rows=51), r"its shards hold 50 rows but the manifest says 51"),
        (
            lambda m, f: m["shards"][1].update(rows=8),
            r"shard 1 \(X-00001.npy\): the file holds shape \(12, 4\), the manifest implies \(8, 4",
        ),
        (
            lambda m, f: m.update(dtype="float32"),
            r"shard 0 \(X-00000.npy\): the file holds float64, the manifest says float32",
        ),
        (lambda m, f: m.update(dtype="int8"), r"manifest.json gives dtype 'int8'"),
        (
            lambda m, f: m.update(n_features=5),
            r"the file holds shape \(12, 4\), the manifest implies \(12, 5\)",
        ),
        (
            lambda m, f: os.remove(f / "y-00002.npy"),
            r"shard 2 \(y-00002.npy\): the file is missing",
        ),
        (
            lambda m, f: _resize(f, "w-00001.npy", 8),
            r"shard 1 \(w-00001.npy\): the file has \d+ bytes, the manifest says \d+",
        ),
        (lambda m, f: m["shards"][0]["files"].pop("w"), r"shard 0 has no 'w' file in the manifest"),
        (lambda m, f: m.pop("classes"), r"manifest.json lacks classes"),
        (lambda m, f: m["shards"][2].pop("rows"), r"the manifest's entry of shard 2 is malformed"),
        (lambda m, f: m.update(version=99), r"cache version 99; this fastlr reads version 1"),
        (
            lambda m, f: m.update(format="other"),
            r"manifest.json is not the manifest of a fastlr cache",
        ),
    ],
)
def test_tampered_manifest_is_refused(tmp_path, edit, match):
    folder = _tamper(tmp_path, edit)
    with pytest.raises(DataError, match=match):
        Dataset(folder)


def test_tampered_sparse_cache_is_refused(tmp_path):
    folder = _tamper(
        tmp_path, lambda m, f: m["shards"][0].update(nnz=m["shards"][0]["nnz"] + 1), sparse=True
    )
    with pytest.raises(DataError, match=r"shard 0 \(data-00000.npy\): the file holds shape"):
        Dataset(folder)


def test_invalid_json_is_refused(tmp_path):
    folder = _tamper(tmp_path, lambda m, f: None)
    (folder / MANIFEST).write_text("{not json")
    with pytest.raises(
        DataError, match=r"manifest.json is not valid JSON.*convert the source again"
    ):
        Dataset(folder)


def test_altered_shard_content_fails_verification(tmp_path):
    X, y, _ = make_data()
    Dataset(X, label=y).to_cache(tmp_path / "c", shard_bytes=400)
    path = tmp_path / "c" / "X-00002.npy"
    data = bytearray(path.read_bytes())
    data[-3] ^= 0xFF  # same size, same header: only the checksum can tell
    path.write_bytes(bytes(data))
    Dataset(tmp_path / "c")  # opening checks structure only
    with pytest.raises(DataError, match=r"shard 2 \(X-00002.npy\): its checksum differs"):
        Dataset(tmp_path / "c", verify=True)
    with pytest.raises(DataError, match="its checksum differs"):
        Dataset(tmp_path / "c").verify()


def test_verify_needs_a_cache():
    with pytest.raises(TypeError, match="verify\\(\\) checks a binary cache"):
        Dataset(np.ones((2, 2))).verify()


def test_cache_fingerprint_follows_the_manifest(tmp_path):
    X, y, _ = make_data()
    first = Dataset(X, label=y).to_cache(tmp_path / "a").fingerprint()
    assert Dataset(X, label=y).to_cache(tmp_path / "b").fingerprint() == first  # same content
    Dataset(X, label=y).to_cache(tmp_path / "a", overwrite=True)
    assert Dataset(tmp_path / "a").fingerprint() == first
    Dataset(X + 1, label=y).to_cache(tmp_path / "a", overwrite=True)
    assert Dataset(tmp_path / "a").fingerprint() != first


def test_cache_takes_no_label_argument(tmp_path):
    X, y, _ = make_data()
    Dataset(X, label=y).to_cache(tmp_path / "c")
    with pytest.raises(TypeError, match="label cannot be given for the cache"):
        Dataset(tmp_path / "c", label="y")


# --------------------------------------------------------------------------
# PredictionWriter
# --------------------------------------------------------------------------


def _predictions(n=25, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 3, n), rng.random(n)


@pytest.mark.parametrize("name", ["p.csv", "p.csv.gz", "p.parquet"])
def test_prediction_writer_tables(tmp_path, name):
    labels, proba = _predictions()
    with PredictionWriter(tmp_path / name, ["label", "proba"]) as out:
        for a in range(0, 25, 10):
            out.write({"label": labels[a : a + 10], "proba": proba[a : a + 10]})
    frame = (
        pq.read_table(tmp_path / name).to_pandas()
        if name.endswith("parquet")
        else pd.read_csv(tmp_path / name)
    )
    assert list(frame.columns) == ["label", "proba"]
    assert np.array_equal(frame["label"], labels) and np.array_equal(frame["proba"], proba)
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]


@pytest.mark.parametrize("columns", [["proba"], ["p0", "p1"]])
def test_prediction_writer_npy(tmp_path, columns):
    _, proba = _predictions()
    values = np.column_stack([proba, 1 - proba])[:, : len(columns)]
    with PredictionWriter(tmp_path / "p.npy", columns) as out:
        out.write(values[:10])
        out.write([values[10:, j] for j in range(len(columns))])
    loaded = np.load(tmp_path / "p.npy")
    assert np.array_equal(loaded, values[:, 0] if len(columns) == 1 else values)


def test_prediction_writer_leaves_nothing_on_error(tmp_path):
    labels, proba = _predictions()
    (tmp_path / "p.csv").write_text("old\n")
    with pytest.raises(RuntimeError, match="stop"):
        with PredictionWriter(tmp_path / "p.csv", ["label", "proba"]) as out:
            out.write({"label": labels, "proba": proba})
            raise RuntimeError("stop")
    assert (tmp_path / "p.csv").read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.csv"]
    out = PredictionWriter(tmp_path / "q.npy", ["p"])
    out.write([proba])
    out.abort()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.csv"]


def test_prediction_writer_errors(tmp_path):
    with pytest.raises(ValueError, match=r"cannot tell the prediction file format from 'p.txt'"):
        PredictionWriter(tmp_path / "p.txt", ["a"])
    with pytest.raises(ValueError, match="columns must be distinct names"):
        PredictionWriter(tmp_path / "p.csv", ["a", "a"])
    out = PredictionWriter(tmp_path / "p.csv", ["a", "b"])
    with pytest.raises(
        ValueError, match=r"the block's columns \['a'\] differ from the writer's \['a', 'b'\]"
    ):
        out.write({"a": [1]})
    with pytest.raises(ValueError, match=r"the columns have different lengths: \[1, 2\]"):
        out.write([[1], [1, 2]])
    out = PredictionWriter(tmp_path / "p.npy", ["label"])
    with pytest.raises(TypeError, match=r"an .npy prediction file holds numbers"):
        out.write([np.array(["cat"])])
    assert list(tmp_path.iterdir()) == []


def test_prediction_writer_empty_file(tmp_path):
    PredictionWriter(tmp_path / "p.npy", ["a", "b"]).close()
    assert np.load(tmp_path / "p.npy").shape == (0, 2)
    PredictionWriter(tmp_path / "p.csv", ["a"]).close()
    assert (tmp_path / "p.csv").read_text().strip() == '"a"'


def test_sparse_cache_from_scipy(tmp_path):
    X = scipy.sparse.random(40, 300, density=0.05, random_state=0, format="csr", dtype=np.float32)
    y = np.arange(40) % 2
    cache = Dataset(X, label=y).to_cache(tmp_path / "c", shard_bytes=300)
    Xr, _, _, blocks = collect(cache)
    assert (Xr != X).nnz == 0 and len(blocks) > 1 and cache.info.nnz == X.nnz
    assert all(b.X.has_canonical_format for b in blocks)


def test_values_converted_to_float32_are_checked_again(tmp_path):
    X, y, _ = make_data()
    X[17, 3] = 1e300  # finite in float64, infinite in float32
    Dataset(X, label=y).to_cache(tmp_path / "c")
    assert len(list(Dataset(tmp_path / "c"))) == 1
    with pytest.raises(DataError, match=r"shard 0, row 17: infinity in column 3"):
        list(Dataset(tmp_path / "c", dtype="float32"))
    (tmp_path / "big.svm").write_text("1 1:2\n0 2:1e300\n")
    with pytest.raises(DataError, match=r"big.svm, line 2: infinity in column 1"):
        list(Dataset(tmp_path / "big.svm", dtype="float32"))
