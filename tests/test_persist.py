"""Model files: round trips, hostile files, and atomic writes.

A loaded model must predict bit for bit as the saved one; every file that
fastlr did not write as it is (truncated, altered, a pickle, a newer format,
another kind) must be refused with a ``ModelFileError`` before anything in it
runs.
"""

import dataclasses
import hashlib
import io
import json
import os
import pickle
import re
import stat
import struct
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse
from sklearn.exceptions import NotFittedError

import fastlr
from fastlr import _persist
from fastlr._persist import FORMAT_VERSION, ModelFileError, read_archive, write_archive

SOLVERS = ("lbfgs", "gd", "sgd", "minibatch")
PREDICTIONS = ("predict", "predict_proba", "predict_log_proba", "decision_function")

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def make_problem(n_classes, n_samples=90, n_features=5, seed=0):
    """Gaussian features; labels drawn from a softmax model (not separable)."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n_samples, n_features))
    scores = X @ rng.standard_normal((n_features, n_classes))
    proba = np.exp(scores - scores.max(axis=1, keepdims=True))
    proba /= proba.sum(axis=1, keepdims=True)
    y = np.array([rng.choice(n_classes, p=row) for row in proba])
    return X, y


def fit(X, y, **params):
    params = {"max_iter": 4, "tol": None, "random_state": 0, **params}
    return fastlr.LogisticRegression(**params).fit(X, y)


def same_array(actual, expected):
    """Equal dtype, shape and bytes (NaN and -0.0 included)."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    return (
        actual.dtype == expected.dtype
        and actual.shape == expected.shape
        and (
            actual.tobytes() == expected.tobytes()
            if actual.dtype != object
            else actual.tolist() == expected.tolist()
        )
    )


def assert_same_fit(loaded, model, timed=True):
    """Same class, parameters, fitted attributes and ``partial_fit`` state, bit for bit."""
    assert type(loaded) is fastlr.LogisticRegression
    assert loaded.get_params() == model.get_params()
    assert set(vars(loaded)) == set(vars(model)), "a fitted attribute was not saved"
    for name in ("coef_", "intercept_", "classes_", "n_iter_", "feature_names_in_"):
        if hasattr(model, name):
            assert same_array(getattr(loaded, name), getattr(model, name)), name
    assert loaded.n_features_in_ == model.n_features_in_
    assert list(loaded.history_) == list(model.history_)
    for key, values in model.history_.items():
        if key == "time" and not timed:  # wall-clock seconds
            continue
        assert same_array(loaded.history_[key], values), key
    assert getattr(loaded, "t_", None) == getattr(model, "t_", None)
    if getattr(model, "_partial_state", None) is not None:
        assert loaded._partial_state.key == model._partial_state.key
        assert_same_state(loaded._partial_state.state, model._partial_state.state)
    else:
        assert getattr(loaded, "_partial_state", None) is None


def assert_same_state(loaded, state):
    for field in dataclasses.fields(state):
        actual, expected = getattr(loaded, field.name), getattr(state, field.name)
        if isinstance(expected, np.random.RandomState):
            actual, expected = actual.get_state(), expected.get_state()
            assert same_array(actual[1], expected[1]), field.name
            assert actual[2:] == expected[2:], field.name
        elif expected is None:
            assert actual is None, field.name
        else:  # arrays, and numbers (a float stands for a numpy float64)
            assert same_array(actual, expected), field.name


def assert_same_model(loaded, model, X, timed=True):
    """:func:`assert_same_fit`, and the same predictions on X, bit for bit."""
    assert_same_fit(loaded, model, timed)
    for method in PREDICTIONS:
        assert same_array(getattr(loaded, method)(X), getattr(model, method)(X)), method


def save_load(model, path):
    model.save(path)
    return fastlr.load(path)


# ---------------------------------------------------------------- round trips


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "sparse"])
@pytest.mark.parametrize("n_classes", [2, 3], ids=["binary", "multinomial"])
@pytest.mark.parametrize("solver", SOLVERS)
def test_round_trip_predicts_bit_for_bit(tmp_path, solver, n_classes, sparse, dtype):
    X, y = make_problem(n_classes)
    X = X.astype(dtype)
    X_fit = scipy.sparse.csr_matrix(X) if sparse else X
    model = fit(X_fit, y, solver=solver)
    loaded = save_load(model, tmp_path / "model.fastlr")
    assert loaded.coef_.dtype == dtype
    assert_same_model(loaded, model, X)
    assert_same_model(loaded, model, X_fit)


@pytest.mark.parametrize(
    "labels",
    [
        np.array([-3, 7, 12]),
        np.array([-1.0, 2.0, 4.0]),
        np.array(["cat", "dog", "emu"]),
        np.array([False, True]),
        np.array(["no", "yes"], dtype=object),
        np.array([np.uint8(1), np.uint8(2)]),
    ],
    ids=["int", "float", "str", "bool", "object-str", "uint8"],
)
def test_round_trip_keeps_labels_and_their_dtype(tmp_path, labels):
    X, y = make_problem(len(labels))
    model = fit(X, labels[y])
    loaded = save_load(model, tmp_path / "model.fastlr")
    assert loaded.classes_.dtype == model.classes_.dtype
    assert [type(c) for c in loaded.classes_] == [type(c) for c in model.classes_]
    assert_same_model(loaded, model, X)


def test_round_trip_with_feature_names(tmp_path):
    X, y = make_problem(3)
    frame = pd.DataFrame(X, columns=["age", "height", "weight", "income", "zone"])
    model = fit(frame, np.array(["a", "b", "c"])[y])
    loaded = save_load(model, tmp_path / "model.fastlr")
    assert loaded.feature_names_in_.dtype == object
    assert_same_model(loaded, model, frame)
    renamed = frame.rename(columns={"age": "years"})
    with pytest.raises(ValueError, match="feature names should match"):
        loaded.predict(renamed)


@pytest.mark.parametrize(
    "params",
    [
        {"class_weight": {"a": 2.0, "b": 1, "c": 0.5}},
        {"class_weight": "balanced", "C": 3, "fit_intercept": False},
        {"l1_ratio": 0.25, "solver": "gd", "alpha": 1e-3},
        {"C": np.inf, "solver": "gd"},
        {"solver": "sgd", "average": 5, "learning_rate": "invscaling", "eta0": 0.1},
        {"solver": "minibatch", "early_stopping": True, "batch_size": 16, "random_state": None},
        {"C": np.float32(0.25), "n_jobs": 1, "verbose": 0, "random_state": np.int64(7)},
    ],
)
def test_round_trip_keeps_parameters(tmp_path, params):
    X, y = make_problem(3)
    model = fit(X, np.array(["a", "b", "c"])[y], **params)
    loaded = save_load(model, tmp_path / "model.fastlr")
    assert_same_model(loaded, model, X)
    if "validation_score" in model.history_:
        assert same_array(loaded.history_["validation_score"], model.history_["validation_score"])


@pytest.mark.parametrize(
    "params",
    [
        {"solver": "sgd"},
        {"solver": "sgd", "average": True, "l1_ratio": 1, "alpha": 1e-3},
        {"solver": "minibatch", "batch_size": 8, "random_state": None},
    ],
)
@pytest.mark.parametrize("n_classes", [2, 3], ids=["binary", "multinomial"])
def test_loaded_model_continues_partial_fit_bit_for_bit(tmp_path, params, n_classes):
    X, y = make_problem(n_classes, n_samples=120)
    params = {"random_state": 0, **params}
    model = fastlr.LogisticRegression(**params)
    model.partial_fit(X[:60], y[:60], classes=np.arange(n_classes))
    loaded = save_load(model, tmp_path / "model.fastlr")
    model.partial_fit(X[60:], y[60:])
    loaded.partial_fit(X[60:], y[60:])
    assert_same_model(loaded, model, X, timed=False)


@pytest.mark.parametrize("n_classes", [2, 3], ids=["binary", "multinomial"])
def test_a_sparsified_model_loads_sparse_and_predicts_bit_for_bit(tmp_path, n_classes):
    X, y = make_problem(n_classes)
    model = fit(X, y, solver="sgd", l1_ratio=1, alpha=0.05, max_iter=20).sparsify()
    assert 0 < model.coef_.nnz < np.prod(model.coef_.shape)
    loaded = save_load(model, tmp_path / "model.fastlr")
    assert scipy.sparse.issparse(loaded.coef_) and type(loaded.coef_) is type(model.coef_)
    assert same_array(loaded.coef_.toarray(), model.coef_.toarray())
    for method in PREDICTIONS:
        assert same_array(getattr(loaded, method)(X), getattr(model, method)(X)), method
    loaded.partial_fit(X, y)
    model.partial_fit(X, y)
    assert same_array(loaded.coef_, model.coef_)


def test_save_is_deterministic(tmp_path):
    model = fit(*make_problem(2))
    model.save(tmp_path / "one")
    model.save(tmp_path / "two")
    assert (tmp_path / "one").read_bytes() == (tmp_path / "two").read_bytes()


def test_header_holds_a_training_summary(tmp_path):
    X, y = make_problem(3)
    model = fit(X.astype(np.float32), y, solver="gd")
    model.save(tmp_path / "model")
    header, _ = read_archive(tmp_path / "model", "model")
    assert header["summary"] == {
        "solver": "gd",
        "n_classes": 3,
        "n_features": 5,
        "dtype": "float32",
        "n_iter": 4,
        "final_loss": model.history_["loss"][-1],
        "training_seconds": model.history_["time"][-1],
    }


def test_saved_file_has_the_permissions_of_a_new_file(tmp_path):
    (tmp_path / "plain").touch()
    fit(*make_problem(2)).save(tmp_path / "model")
    mode = stat.S_IMODE((tmp_path / "model").stat().st_mode)
    assert mode == stat.S_IMODE((tmp_path / "plain").stat().st_mode)


def test_save_unfitted_raises_not_fitted(tmp_path):
    with pytest.raises(NotFittedError, match="not fitted"):
        fastlr.LogisticRegression().save(tmp_path / "model")
    assert not list(tmp_path.iterdir())


def test_save_refuses_a_random_state_instance(tmp_path):
    X, y = make_problem(2)
    model = fit(X, y, solver="sgd", random_state=np.random.RandomState(0))
    with pytest.raises(ValueError, match=r"random_state is a RandomState instance.*int seed"):
        model.save(tmp_path / "model")
    assert not list(tmp_path.iterdir())


def test_save_refuses_labels_of_mixed_types(tmp_path):
    model = fit(*make_problem(2))
    model.classes_ = np.array([1, "one"], dtype=object)
    with pytest.raises(ValueError, match=r"classes_ is an object array of \['int', 'str'\]"):
        model.save(tmp_path / "model")


def test_save_refuses_what_load_would_refuse(tmp_path):
    model = fit(*make_problem(2))
    model.coef_ = model.coef_.astype(np.float16)
    with pytest.raises(ValueError, match="cannot be saved: coef_ is not a float matrix"):
        model.save(tmp_path / "model")
    assert not list(tmp_path.iterdir())


def test_save_refuses_a_subclass(tmp_path):
    class Custom(fastlr.LogisticRegression):
        pass

    model = Custom(max_iter=3).fit(*make_problem(2))
    with pytest.raises(TypeError, match=r"hold fastlr.LogisticRegression models, got Custom"):
        model.save(tmp_path / "model")


def test_save_into_a_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"folder .*missing does not exist"):
        fit(*make_problem(2)).save(tmp_path / "missing" / "model")


# ---------------------------------------------------------------- the archive


def test_archive_round_trip_of_every_plain_dtype(tmp_path):
    arrays = {
        name: np.arange(6).astype(dtype).reshape(2, 3)
        for name, dtype in [
            ("bool", np.bool_), ("i1", np.int8), ("i2", np.int16), ("i4", np.int32),
            ("i8", np.int64), ("u1", np.uint8), ("u2", np.uint16), ("u4", np.uint32),
            ("u8", np.uint64), ("f2", np.float16), ("f4", np.float32), ("f8", np.float64),
            ("big-endian", ">f8"), ("str", "<U3"), ("bytes", "S2"),
        ]
    }  # fmt: skip
    arrays["fortran"] = np.asfortranarray(np.arange(12.0).reshape(3, 4))
    arrays["scalar"] = np.array(2.5)
    arrays["empty"] = np.zeros((0, 3), dtype=np.float32)
    arrays["names.v1"] = np.array(["", "é", "longer name"])
    header = {"nested": {"list": [1, 2.5, None, True, "x"]}, "nan": float("nan")}
    write_archive(tmp_path / "archive", "checkpoint", header, arrays)
    read_header, read_arrays = read_archive(tmp_path / "archive", "checkpoint")
    assert read_header["nested"] == header["nested"]
    assert np.isnan(read_header["nan"])
    assert list(read_arrays) == list(arrays)
    for name, array in arrays.items():
        assert read_arrays[name].dtype == array.dtype, name
        np.testing.assert_array_equal(read_arrays[name], array)


@pytest.mark.parametrize(
    ("array", "error", "message"),
    [
        (np.array([1, "a"], dtype=object), ValueError, "dtype object, which only pickle"),
        (np.array([{"a": 1}, None]), ValueError, "dtype object, which only pickle"),
        (np.zeros(2, dtype=[("a", "O")]), ValueError, "dtype object"),
        (np.zeros(2, dtype=[("a", "f8")]), ValueError, "fastlr files hold bool, integer"),
        (np.zeros(2, dtype=np.complex128), ValueError, "dtype complex128"),
        (np.zeros(2, dtype="datetime64[s]"), ValueError, "dtype datetime64"),
        ([1.0, 2.0], TypeError, "must be a numpy ndarray, got list"),
    ],
)
def test_archive_write_refuses_arrays_that_are_not_plain(tmp_path, array, error, message):
    with pytest.raises(error, match=message):
        write_archive(tmp_path / "archive", "checkpoint", {}, {"values": array})
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("name", ["../escape", "a/b", ".hidden", "", "x" * 201, 3])
def test_archive_write_refuses_bad_names(tmp_path, name):
    with pytest.raises(ValueError, match="is not valid: use 1 to 200 letters"):
        write_archive(tmp_path / "archive", "checkpoint", {}, {name: np.zeros(1)})
    with pytest.raises(ValueError, match=r"kind .* is not valid"):
        write_archive(tmp_path / "archive", name, {}, {})


@pytest.mark.parametrize("header", [{"a": {1, 2}}, {"a": np.zeros(2)}, ["not", "a dict"]])
def test_archive_write_refuses_a_header_that_is_not_json(tmp_path, header):
    with pytest.raises(TypeError, match="header must"):
        write_archive(tmp_path / "archive", "checkpoint", header, {})
    assert not list(tmp_path.iterdir())


def test_archive_write_refuses_a_path_that_is_not_a_path(tmp_path):
    with pytest.raises(TypeError, match="path must be a file name"):
        write_archive(io.BytesIO(), "checkpoint", {}, {})


def test_checkpoint_passed_to_load_is_refused(tmp_path):
    write_archive(tmp_path / "state", "checkpoint", {}, {"w": np.zeros(3)})
    with pytest.raises(ModelFileError, match=r"fastlr checkpoint file, not a model file.*save"):
        fastlr.load(tmp_path / "state")


def test_model_file_error_is_a_value_error():
    assert issubclass(fastlr.ModelFileError, ValueError)


# ---------------------------------------------------------------- hostile files


@pytest.fixture
def model_file(tmp_path):
    """A saved sgd model (it has the most members: history, solver state, RNG)."""
    X, y = make_problem(3, n_samples=40, n_features=3)
    path = tmp_path / "model.fastlr"
    fit(X, y, solver="sgd").save(path)
    return path


def members_of(path):
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def rewrite(path, members, header=None):
    """Write ``members`` (name -> bytes) as a fresh zip; ``header`` replaces header.json."""
    if header is not None:
        members = {**members, "header.json": json.dumps(header).encode()}
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)


def replace_array(path, name, data, header_edit=None):
    """Replace member ``name.npy`` by ``data``, its checksum updated as fastlr would."""
    members = members_of(path)
    header = json.loads(members["header.json"])
    header["arrays"][name]["sha256"] = hashlib.sha256(data).hexdigest()
    if header_edit:
        header_edit(header)
    rewrite(path, {**members, f"{name}.npy": data}, header)


def npy_bytes(array, allow_pickle=False):
    stream = io.BytesIO()
    np.save(stream, array, allow_pickle=allow_pickle)
    return stream.getvalue()


class Touch:
    """Unpickling this creates the file ``marker``: a stand-in for any code."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def pickled(marker):
    return pickle.dumps(Touch(marker))


def object_npy(marker):
    """A ``.npy`` member holding an object array: a pickle inside."""
    return npy_bytes(np.array([Touch(marker)], dtype=object), allow_pickle=True)


@pytest.fixture
def marker(tmp_path):
    """A path that the payloads create when unpickled; shown to work, then removed."""
    marker = tmp_path / "code-ran"
    pickle.loads(pickled(marker))
    assert marker.exists(), "the pickle payload must be live for the tests to mean anything"
    marker.unlink()
    np.load(io.BytesIO(object_npy(marker)), allow_pickle=True)
    assert marker.exists(), "the object-array payload must be live"
    marker.unlink()
    return marker


def refused(path, match):
    with pytest.raises(ModelFileError, match=match) as error:
        fastlr.load(path)
    assert str(path) in str(error.value)
    return error.value


def _whole_file(path, marker):
    path.write_bytes(pickled(marker))


def _pkl_member(path, marker):
    rewrite(path, {**members_of(path), "model.pkl": pickled(marker)})


def _npy_named_member(path, marker):
    rewrite(path, {**members_of(path), "extra.npy": pickled(marker)})


def _object_array(path, marker):
    replace_array(path, "coef_", object_npy(marker))


def _object_array_declared(path, marker):
    replace_array(path, "coef_", object_npy(marker), _set("arrays", "coef_", "dtype", "|O"))


def _pickle_as_npy(path, marker):
    replace_array(path, "coef_", pickled(marker))


def _pickle_as_header(path, marker):
    rewrite(path, {**members_of(path), "header.json": pickled(marker)})


def _pickle_in_npz(path, marker):
    with open(path, "wb") as file:
        np.savez(file, coef_=np.array([Touch(marker)], dtype=object))


@pytest.mark.parametrize(
    ("plant", "message"),
    [
        (_whole_file, "this is a pickle, not a fastlr file.*never writes or loads pickles"),
        (_pkl_member, r"member\(s\) \['model.pkl'\] are pickles"),
        (_npy_named_member, r"member\(s\) \['extra.npy'\] are pickles"),
        (_object_array, "member 'coef_.npy' is an object array"),
        (_object_array_declared, "array 'coef_' is an object array"),
        (_pickle_as_npy, "member 'coef_.npy' is a pickle"),
        (_pickle_as_header, "header.json is a pickle"),
        (_pickle_in_npz, "not a fastlr file: no header.json member"),
    ],
)
def test_pickles_are_refused_and_never_run(model_file, marker, plant, message):
    plant(model_file, marker)
    refused(model_file, message)
    assert not marker.exists(), "loading ran code from the file"


def test_truncations_are_refused(model_file):
    data = model_file.read_bytes()
    # Every length near the ends (the zip directory is at the end), a stride elsewhere.
    lengths = sorted({*range(64), *range(64, len(data), 13), *range(len(data) - 128, len(data))})
    for length in lengths:
        model_file.write_bytes(data[:length])
        refused(model_file, "empty|truncated")


def member_spans(path):
    """``(start, end)`` of every member's stored bytes in the zip file."""
    spans = []
    raw = path.read_bytes()
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            local = info.header_offset
            name_length, extra_length = struct.unpack("<HH", raw[local + 26 : local + 30])
            start = local + 30 + name_length + extra_length
            spans.append((start, start + info.compress_size))
    return spans


def test_byte_flips_are_refused_or_outside_the_contents(model_file):
    """A flipped byte that zip's CRC, the checksums and the checks all let through can
    only be in zip bookkeeping (a timestamp, an attribute) and must change nothing."""
    data = bytearray(model_file.read_bytes())
    spans = member_spans(model_file)
    model = fastlr.load(model_file)
    for offset in range(0, len(data), 5):
        data[offset] ^= 0x10
        model_file.write_bytes(data)
        data[offset] ^= 0x10
        try:
            loaded = fastlr.load(model_file)
        except ModelFileError:
            continue
        assert not any(start <= offset < end for start, end in spans), offset
        assert_same_fit(loaded, model)


def test_a_flipped_byte_in_an_array_is_refused(model_file):
    members = members_of(model_file)
    data = bytearray(members["coef_.npy"])
    data[-1] ^= 0x01  # the last byte of the last coefficient
    rewrite(model_file, {**members, "coef_.npy": bytes(data)})  # zip's CRC is right
    refused(model_file, "checksum mismatch in member 'coef_.npy'.*altered")


def test_a_flipped_byte_in_the_raw_file_is_refused(model_file):
    data = bytearray(model_file.read_bytes())
    coef = members_of(model_file)["coef_.npy"]
    data[data.index(coef) + len(coef) - 1] ^= 0x01
    model_file.write_bytes(data)
    refused(model_file, "corrupt zip archive .*CRC.*damaged")


def edit_header(path, edit):
    members = members_of(path)
    header = json.loads(members["header.json"])
    edit(header)
    rewrite(path, members, header)


def _set(*keys_and_value):
    *keys, value = keys_and_value

    def edit(header):
        target = header
        for key in keys[:-1]:
            target = target[key]
        target[keys[-1]] = value

    return edit


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (_set("arrays", "coef_", "shape", [1, 9]), r"holds <f8 \(3, 3\), the header says"),
        (_set("arrays", "coef_", "shape", [3, 3, 1]), r"holds <f8 \(3, 3\), the header says"),
        (_set("arrays", "coef_", "dtype", "<f4"), r"holds <f8 \(3, 3\), the header says <f4"),
        (_set("arrays", "coef_", "dtype", "<c16"), "entry for array 'coef_' is malformed"),
        (_set("arrays", "coef_", "shape", [-3, 3]), "entry for array 'coef_' is malformed"),
        (_set("arrays", "coef_", "sha256", "0" * 64), "checksum mismatch in member 'coef_.npy'"),
        (_set("arrays", "coef_", "extra", 1), "entry for array 'coef_' is malformed"),
        (_set("kind", "checkpoint"), "fastlr checkpoint file, not a model file"),
        (_set("kind", None), "kind None is not a name"),
        (_set("format_version", "1"), "format_version '1' is not a version number"),
        (_set("format_version", 0), "format_version 0 is not a version number"),
        (_set("format", "other"), "not a fastlr file"),
        (_set("fields", []), "the header has no fields"),
        (_set("arrays", None), "the header has no list of arrays"),
        (_set("fields", "estimator", "Pipeline"), "estimator 'Pipeline' is not LogisticRegression"),
        (_set("fields", "params", "solver", "newton"), "inconsistent model: The 'solver' param"),
        (_set("fields", "params", "gamma", 1.0), r"parameters \['gamma'\] are unknown"),
        (_set("fields", "params", "class_weight", {"x": 1}), "parameter class_weight is malform"),
        (_set("fields", "n_features_in_", 4), "coef_ is not a float matrix"),
        (_set("fields", "n_features_in_", True), "coef_ is not a float matrix"),
        (_set("fields", "history_", ["loss"]), r"arrays \['history.time'\] are not part of"),
        (_set("fields", "history_", ["loss", "time", "x"]), "array 'history.x' is missing"),
        (_set("fields", "t_", "40"), "t_ is not a number"),
        (_set("fields", "state", "t", None), "state's t is not a number"),
        (_set("fields", "state", "seed", 1), "state holds fields unknown"),
        (_set("fields", "state", "rng", "pos", 10**6), "random state is malformed"),
        (_set("fields", "state", "rng", "has_gauss", 2), "random state is malformed"),
        (_set("fields", "state", "rng", "type", "generator"), "state field is malformed"),
        (_set("fields", "state", "l1_state", [1.0]), "state field 'l1_state' is malformed"),
        (_set("fields", "state", "coef", 1.0), "state's coef does not fit coef_"),
        (_set("fields", "state", "t", "1"), "state's t is not a number"),
        (_set("fields", "state", "t0", "inf"), "state's t0 is not a number"),
        (_set("fields", "coef_sparse", 1), "coef_sparse is not true or false"),
        (_set("fields", "state", "rng", 3), "state's rng is not a random generator"),
    ],
)
def test_edited_header_is_refused(model_file, edit, message):
    edit_header(model_file, edit)
    refused(model_file, message)


def test_inconsistent_arrays_are_refused(model_file):
    replace_array(
        model_file,
        "intercept_",
        npy_bytes(np.zeros(2)),
        _set("arrays", "intercept_", "shape", [2]),
    )
    refused(model_file, "inconsistent model: intercept_ does not match coef_")


def test_unsorted_classes_are_refused(model_file):
    replace_array(model_file, "classes_", npy_bytes(np.array([2, 0, 1])))
    refused(model_file, "classes_ does not hold two or more distinct, sorted labels")


@pytest.mark.parametrize(
    ("name", "array"),
    [("state.l1_state", np.zeros(3)), ("state.coef", np.zeros((3, 3), dtype=np.float32))],
)
def test_state_that_does_not_fit_the_model_is_refused(model_file, name, array):
    shape = _set("arrays", name, "shape", list(array.shape))
    dtype = _set("arrays", name, "dtype", array.dtype.str)
    replace_array(model_file, name, npy_bytes(array), lambda h: (shape(h), dtype(h)))
    refused(model_file, f"state's {name[6:]} does not fit coef_")


def test_a_future_format_version_is_refused_with_upgrade_advice(model_file):
    def future(header):
        header["format_version"] = FORMAT_VERSION + 1
        header["fastlr_version"] = "9.1.0"
        header["arrays"] = "a layout this fastlr does not know"

    edit_header(model_file, future)
    expected = (
        f"written by fastlr 9.1.0 with format version {FORMAT_VERSION + 1}; this fastlr "
        f"({fastlr.__version__}) reads up to {FORMAT_VERSION}. Upgrade fastlr"
    )
    refused(model_file, re.escape(expected))


def test_a_missing_member_is_refused(model_file):
    members = members_of(model_file)
    del members["history.loss.npy"]
    rewrite(model_file, members)
    refused(model_file, r"member\(s\) \['history.loss.npy'\] listed in the header are missing")


def test_an_added_member_is_refused(model_file):
    rewrite(model_file, {**members_of(model_file), "notes.txt": b"hello"})
    refused(model_file, r"member\(s\) \['notes.txt'\] are not listed in the header")


def test_an_added_array_listed_in_the_header_is_refused(model_file):
    members = members_of(model_file)
    header = json.loads(members["header.json"])
    data = npy_bytes(np.zeros(2))
    header["arrays"]["extra"] = {
        "dtype": "<f8", "shape": [2], "sha256": hashlib.sha256(data).hexdigest(),
    }  # fmt: skip
    rewrite(model_file, {**members, "extra.npy": data}, header)
    refused(model_file, r"arrays \['extra'\] are not part of a model")


def test_a_duplicated_member_is_refused(model_file):
    members = members_of(model_file)
    with pytest.warns(UserWarning, match="Duplicate name"):
        with zipfile.ZipFile(model_file, "a") as archive:
            archive.writestr("coef_.npy", members["coef_.npy"])
    refused(model_file, "lists a member twice")


def test_a_compressed_member_is_refused(model_file):
    members = members_of(model_file)
    with zipfile.ZipFile(model_file, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    refused(model_file, "is compressed or encrypted, which fastlr never does")


def test_other_files_are_refused(tmp_path):
    npz = tmp_path / "weights.npz"
    with open(npz, "wb") as file:
        np.savez(file, coef_=np.zeros((1, 3)), intercept_=np.zeros(1))
    refused(npz, "not a fastlr file: no header.json member.*LogisticRegression.save")
    noise = tmp_path / "noise.bin"
    noise.write_bytes(np.random.default_rng(0).bytes(4096))
    refused(noise, r"not a fastlr file \(not a zip archive\)")
    zip_noise = tmp_path / "zip-noise.bin"
    zip_noise.write_bytes(b"PK\x03\x04" + np.random.default_rng(1).bytes(4096))
    refused(zip_noise, "truncated or corrupt zip archive")
    text = tmp_path / "model.json"
    text.write_text('{"format": "fastlr"}')
    refused(text, "not a zip archive")
    empty = tmp_path / "empty"
    empty.touch()
    refused(empty, "the file is empty")
    with pytest.raises(FileNotFoundError):
        fastlr.load(tmp_path / "absent")


# ---------------------------------------------------------------- atomic writes


@pytest.fixture
def two_models():
    X, y = make_problem(2)
    return fit(X, y), fit(X, y, solver="sgd")


class Interrupted(Exception):
    pass


def fail_on_second_array(monkeypatch, error):
    """Make the archive writer raise ``error`` after one array and part of a second."""
    write_array = np.lib.format.write_array
    calls = []

    def failing(file, array, **kwargs):
        calls.append(array)
        if len(calls) == 2:
            file.write(b"\x93NUMPY partial")
            raise error
        return write_array(file, array, **kwargs)

    monkeypatch.setattr(np.lib.format, "write_array", failing)


@pytest.mark.parametrize("error", [Interrupted("disk full"), KeyboardInterrupt()])
def test_an_interrupted_save_keeps_the_previous_file(tmp_path, monkeypatch, two_models, error):
    old, new = two_models
    path = tmp_path / "model.fastlr"
    old.save(path)
    before = path.read_bytes()
    fail_on_second_array(monkeypatch, error)
    with pytest.raises(type(error)):
        new.save(path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["model.fastlr"]
    monkeypatch.undo()
    assert_same_model(fastlr.load(path), old, make_problem(2)[0])


@pytest.mark.parametrize("step", ["fsync", "replace"])
def test_a_failed_fsync_or_rename_keeps_the_previous_file(tmp_path, monkeypatch, two_models, step):
    old, new = two_models
    path = tmp_path / "model.fastlr"
    old.save(path)
    before = path.read_bytes()

    def failing(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(_persist.os, step, failing)
    with pytest.raises(OSError, match="No space left"):
        new.save(path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["model.fastlr"]


def test_an_interrupted_first_save_leaves_nothing(tmp_path, monkeypatch, two_models):
    fail_on_second_array(monkeypatch, KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        two_models[0].save(tmp_path / "model.fastlr")
    assert not list(tmp_path.iterdir())


def test_save_syncs_the_file_then_renames_then_syncs_the_folder(tmp_path, monkeypatch, two_models):
    events = []
    fsync, replace = os.fsync, os.replace

    def logged_fsync(fd):
        events.append("fsync folder" if stat.S_ISDIR(os.fstat(fd).st_mode) else "fsync file")
        fsync(fd)

    def logged_replace(source, target):
        events.append("replace")
        replace(source, target)

    monkeypatch.setattr(_persist.os, "fsync", logged_fsync)
    monkeypatch.setattr(_persist.os, "replace", logged_replace)
    two_models[0].save(tmp_path / "model.fastlr")
    assert events == ["fsync file", "replace", "fsync folder"]


def test_save_replaces_a_previous_file(tmp_path, two_models):
    old, new = two_models
    path = tmp_path / "model.fastlr"
    old.save(path)
    new.save(path)
    assert fastlr.load(path).solver == "sgd"
    assert [p.name for p in tmp_path.iterdir()] == ["model.fastlr"]
