"""Model files: a versioned archive of a JSON header and ``.npy`` arrays, never a pickle.

The archive
-----------
One zip file (as ``.npz`` is), its members stored uncompressed:

- ``header.json``: ``{"format": "fastlr", "format_version": 1, "kind": ...,
  "fastlr_version": ..., "fields": {...}, "arrays": {name: {"dtype", "shape",
  "sha256"}}}``. ``kind`` says what the file holds ("model", "checkpoint"),
  ``fields`` the caller's JSON data, and ``arrays`` the dtype (as ``.npy``
  writes it, e.g. ``"<f4"``), shape and SHA-256 of every array member.
- ``NAME.npy`` for each array: numpy's own format, of plain dtypes only
  (bool, integers, floats, fixed-width unicode and bytes).

:func:`write_archive` writes atomically: a temporary file in the target's
folder, flushed and fsynced, renamed over the target with ``os.replace``, then
the folder fsynced. An error or a ``KeyboardInterrupt`` leaves the previous
file, if any, as it was and no temporary file behind.

:func:`read_archive` refuses, with a :class:`ModelFileError` that names the
file, the problem and what to do, anything it cannot vouch for: a file that is
not a fastlr archive, a truncated or corrupt zip, a member missing or not
listed, a checksum, dtype or shape that differs from the header, a newer
format version, another kind, and any pickle. Reading never executes code:
the header is parsed by ``json``, every ``.npy`` header is checked before its
data is read, arrays are read with ``allow_pickle=False``, and no name in the
file is ever imported or evaluated.

The model
---------
:func:`save_model` (``LogisticRegression.save``) and :func:`load` store the
estimator's parameters, fitted attributes and the state that ``partial_fit``
continues from, so that a loaded model predicts bit for bit as the saved one
and continues ``partial_fit`` the same way.
"""

import contextlib
import dataclasses
import errno
import hashlib
import io
import json
import math
import os
import re
import struct
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import scipy.sparse
from sklearn.utils.validation import check_is_fitted

FORMAT_NAME = "fastlr"
#: The archive layout this fastlr writes and the newest it reads.
FORMAT_VERSION = 1
HEADER_MEMBER = "header.json"
MODEL_KIND = "model"

# A header this large would be hostile; real ones are a few kilobytes.
MAX_HEADER_BYTES = 16 * 2**20
# Room for a ``.npy`` header (numpy reads at most 10000 bytes of it) and padding.
_NPY_HEADER_ROOM = 2**16
_ZIP_MAGIC = b"PK\x03\x04"
_PICKLE_PROTOCOL_BYTE = b"\x80"
_FIXED_DATE = (1980, 1, 1, 0, 0, 0)  # members carry no clock: same content, same bytes

_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]{0,199}\Z")
_DESCR = re.compile(r"[<>|](b1|[iu][1248]|f[248]|[US][0-9]{1,9})\Z")
_SHA256 = re.compile(r"[0-9a-f]{64}\Z")

_DAMAGED = "The file is incomplete or damaged (an interrupted copy or download?): copy it again"
_ALTERED = "The file was altered after fastlr wrote it: write it again, or restore it from a copy"
_NOT_FASTLR = "Pass a file written by fastlr (LogisticRegression.save)"
_PICKLE = (
    "fastlr never writes or loads pickles (loading one can run any code): this file was "
    "not written by fastlr, or was altered; do not load it with pickle either"
)
_WRITERS = {MODEL_KIND: "LogisticRegression.save"}


class ModelFileError(ValueError):
    """A fastlr model or checkpoint file that fastlr refuses to load.

    The message names the file, the problem and what to do.
    """


def _refuse(path, problem, advice):
    return ModelFileError(f"{path}: {problem.rstrip('.')}. {advice}.")


# ---------------------------------------------------------------- writing


def write_archive(path, kind, header, arrays):
    """Write ``header`` and ``arrays`` to ``path`` as one fastlr archive, atomically.

    Parameters
    ----------
    path : str or path-like
        The file to write; its folder must exist. A file already there is
        replaced only once the new one is complete and on disk.
    kind : str
        What the file holds, e.g. "model" or "checkpoint"; :func:`read_archive`
        refuses the file as any other kind.
    header : dict
        JSON data (str keys; str, int, float, bool, None, lists and dicts).
    arrays : dict of str to ndarray
        Names (letters, digits, ``_``, ``.``, ``-``) to arrays of a plain
        dtype: bool, integers, float16/32/64, fixed-width unicode or bytes.

    Raises
    ------
    TypeError
        If ``header`` is not JSON data or an array is not an ndarray.
    ValueError
        If a name is invalid or an array's dtype is not plain (object arrays
        would need pickle).
    OSError
        If the file cannot be written; the previous file is then untouched.
    """
    path = _as_path(path)
    _check_name(kind, "kind")
    _check_json(header)
    for name, array in arrays.items():
        _check_name(name, "array name")
        _check_plain_array(name, array)
    document = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "kind": kind,
        "fastlr_version": _fastlr_version(),
        "fields": header,
        "arrays": {},
    }
    folder = path.parent
    if not folder.is_dir():
        raise FileNotFoundError(
            f"Cannot write {path}: the folder {folder} does not exist; create it first."
        )
    _write_atomically(path, lambda file: _write_zip(file, document, arrays))


def _write_atomically(path, write):
    """Run ``write(file)`` on a temporary file beside ``path``, then rename it to ``path``."""
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as file:
            os.fchmod(file.fileno(), _new_file_mode(path))
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    _fsync_folder(path.parent)


def _new_file_mode(path):
    """The mode of the file being replaced, or what ``open`` would give a new one."""
    with contextlib.suppress(OSError):
        return path.stat().st_mode & 0o7777
    umask = os.umask(0o022)
    os.umask(umask)
    return 0o666 & ~umask


def _fsync_folder(folder):
    """Make the rename durable; file systems that cannot sync a folder are skipped."""
    if os.name != "posix":
        return
    fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    except OSError as error:
        if error.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EBADF):
            raise
    finally:
        os.close(fd)


def _write_zip(file, document, arrays):
    with zipfile.ZipFile(file, "w", compression=zipfile.ZIP_STORED) as archive:
        for name, array in arrays.items():
            with archive.open(_member_info(f"{name}.npy"), "w", force_zip64=True) as member:
                writer = _HashingWriter(member)
                np.lib.format.write_array(writer, array, allow_pickle=False)
            document["arrays"][name] = {
                "dtype": np.lib.format.dtype_to_descr(array.dtype),
                "shape": list(array.shape),
                "sha256": writer.digest.hexdigest(),
            }
        text = json.dumps(document, indent=1, ensure_ascii=False)
        archive.writestr(_member_info(HEADER_MEMBER), text.encode("utf-8"))


def _member_info(name):
    info = zipfile.ZipInfo(name, date_time=_FIXED_DATE)
    info.compress_type = zipfile.ZIP_STORED
    info.external_attr = 0o644 << 16
    return info


class _HashingWriter:
    """A write-only file that hashes what passes through it."""

    def __init__(self, file):
        self.file = file
        self.digest = hashlib.sha256()

    def write(self, data):
        self.digest.update(data)
        return self.file.write(data)


def _as_path(path):
    try:
        return Path(os.fspath(path))
    except TypeError:
        raise TypeError(
            f"path must be a file name (str or pathlib.Path), got {type(path).__name__}."
        ) from None


def _check_name(name, what):
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(
            f"{what} {name!r} is not valid: use 1 to 200 letters, digits, '_', '.' or '-', "
            f"not starting with '.' or '-'."
        )


def _check_plain_array(name, array):
    if not isinstance(array, np.ndarray):
        raise TypeError(f"Array {name!r} must be a numpy ndarray, got {type(array).__name__}.")
    if array.dtype.hasobject:
        raise ValueError(
            f"Array {name!r} has dtype object, which only pickle can store; fastlr files hold "
            f"no pickles. Convert it to a plain dtype (e.g. np.asarray(values, dtype=str))."
        )
    descr = np.lib.format.dtype_to_descr(array.dtype)  # a list for a structured dtype
    if not (isinstance(descr, str) and _DESCR.match(descr)):
        raise ValueError(
            f"Array {name!r} has dtype {array.dtype}; fastlr files hold bool, integer, "
            f"float16/32/64, and fixed-width str or bytes arrays only."
        )


def _check_json(header):
    if not isinstance(header, dict):
        raise TypeError(f"header must be a dict, got {type(header).__name__}.")
    try:
        json.dumps(header)
    except (TypeError, ValueError) as error:
        raise TypeError(
            f"header must hold JSON data only (str keys; str, int, float, bool, None, lists, "
            f"dicts): {error}."
        ) from None


def _fastlr_version():
    from . import __version__  # imported late: the package imports this module

    return __version__


# ---------------------------------------------------------------- reading

# What zipfile raises on a damaged archive; a file it opened has no other errors.
_ZIP_ERRORS = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    EOFError,
    OSError,
    ValueError,
    OverflowError,
    NotImplementedError,
    RuntimeError,
    struct.error,
)


def read_archive(path, kind):
    """Read and verify a fastlr archive written by :func:`write_archive`.

    Parameters
    ----------
    path : str or path-like
    kind : str
        The kind the caller expects ("model", "checkpoint").

    Returns
    -------
    header : dict
        The ``header`` given to :func:`write_archive`.
    arrays : dict of str to ndarray
        Every array, with the dtype and shape it was written with.

    Raises
    ------
    ModelFileError
        If the file is not a fastlr archive, is truncated or corrupt, was
        altered, holds a pickle, is of a newer format version or of another
        kind. Nothing in the file is executed before or after the checks.
    OSError
        If the file cannot be opened (missing, unreadable).
    """
    path = _as_path(path)
    with open(path, "rb") as file:
        start = file.read(len(_ZIP_MAGIC))
        if start != _ZIP_MAGIC:
            _refuse_start(path, start)
        file.seek(0)
        try:
            with zipfile.ZipFile(file) as archive:
                document = _read_document(path, archive)
                _check_document(path, document, kind)
                _check_members(path, archive, document["arrays"])
                arrays = {
                    name: _read_array(path, archive, name, entry)
                    for name, entry in document["arrays"].items()
                }
        except ModelFileError:
            raise
        except _ZIP_ERRORS as error:
            raise _refuse(path, f"truncated or corrupt zip archive ({error})", _DAMAGED) from None
    return document["fields"], arrays


def _refuse_start(path, start):
    if not start:
        raise _refuse(path, "the file is empty", _DAMAGED)
    if start.startswith(_PICKLE_PROTOCOL_BYTE):
        raise _refuse(path, "this is a pickle, not a fastlr file", _PICKLE)
    if _ZIP_MAGIC.startswith(start):
        raise _refuse(path, "truncated zip archive", _DAMAGED)
    raise _refuse(path, "not a fastlr file (not a zip archive)", _NOT_FASTLR)


def _read_document(path, archive):
    names = archive.namelist()
    if len(set(names)) != len(names):
        raise _refuse(path, "the archive lists a member twice", _ALTERED)
    if HEADER_MEMBER not in names:
        raise _refuse(
            path,
            f"not a fastlr file: no {HEADER_MEMBER} member (a plain .npz or another zip)",
            _NOT_FASTLR,
        )
    for info in archive.infolist():
        if info.compress_type != zipfile.ZIP_STORED or info.flag_bits & 0x1:
            raise _refuse(
                path,
                f"member {info.filename!r} is compressed or encrypted, which fastlr never does",
                _ALTERED,
            )
    if archive.getinfo(HEADER_MEMBER).file_size > MAX_HEADER_BYTES:
        raise _refuse(path, f"{HEADER_MEMBER} is larger than {MAX_HEADER_BYTES} bytes", _ALTERED)
    raw = archive.read(HEADER_MEMBER)
    if raw.startswith(_PICKLE_PROTOCOL_BYTE):
        raise _refuse(path, f"{HEADER_MEMBER} is a pickle", _PICKLE)
    try:
        document = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        raise _refuse(path, f"{HEADER_MEMBER} is not valid JSON ({error})", _ALTERED) from None
    if not isinstance(document, dict) or document.get("format") != FORMAT_NAME:
        raise _refuse(path, f"not a fastlr file ({HEADER_MEMBER} is not fastlr's)", _NOT_FASTLR)
    return document


def _check_document(path, document, kind):
    version = document.get("format_version")
    writer = document.get("fastlr_version")
    writer = writer if isinstance(writer, str) else "an unknown version"
    if not _is_int(version) or version < 1:
        raise _refuse(path, f"format_version {version!r} is not a version number", _ALTERED)
    if version > FORMAT_VERSION:
        raise _refuse(
            path,
            f"written by fastlr {writer} with format version {version}; this fastlr "
            f"({_fastlr_version()}) reads up to {FORMAT_VERSION}",
            "Upgrade fastlr (pip install --upgrade fastlr) to load it",
        )
    actual = document.get("kind")
    if not isinstance(actual, str):
        raise _refuse(path, f"kind {actual!r} is not a name", _ALTERED)
    if actual != kind:
        writer_hint = f" (written by {_WRITERS[kind]})" if kind in _WRITERS else ""
        raise _refuse(
            path,
            f"this is a fastlr {actual} file, not a {kind} file",
            f"Pass a {kind} file{writer_hint}",
        )
    if not isinstance(document.get("fields"), dict):
        raise _refuse(path, "the header has no fields", _ALTERED)
    entries = document.get("arrays")
    if not isinstance(entries, dict):
        raise _refuse(path, "the header has no list of arrays", _ALTERED)
    for name, entry in entries.items():
        _check_entry(path, name, entry)


def _check_entry(path, name, entry):
    valid = (
        _NAME.match(name)
        and isinstance(entry, dict)
        and set(entry) == {"dtype", "shape", "sha256"}
        and isinstance(entry["dtype"], str)
        and _DESCR.match(entry["dtype"])
        and isinstance(entry["shape"], list)
        and all(_is_int(n) and n >= 0 for n in entry["shape"])
        and isinstance(entry["sha256"], str)
        and _SHA256.match(entry["sha256"])
    )
    if not valid:
        if isinstance(entry, dict) and isinstance(entry.get("dtype"), str):
            if "O" in entry["dtype"]:
                raise _refuse(path, f"array {name!r} is an object array (a pickle)", _PICKLE)
        raise _refuse(path, f"the header's entry for array {name!r} is malformed", _ALTERED)


def _check_members(path, archive, entries):
    names = set(archive.namelist())
    expected = {HEADER_MEMBER} | {f"{name}.npy" for name in entries}
    missing = sorted(expected - names)
    if missing:
        raise _refuse(path, f"member(s) {missing} listed in the header are missing", _ALTERED)
    extra = sorted(names - expected)
    pickles = [name for name in extra if _is_pickle_member(archive, name)]
    if pickles:
        raise _refuse(path, f"member(s) {pickles} are pickles", _PICKLE)
    if extra:
        raise _refuse(path, f"member(s) {extra} are not listed in the header", _ALTERED)


def _is_pickle_member(archive, name):
    if name.endswith((".pkl", ".pickle", ".joblib")):
        return True
    with archive.open(name) as member:
        return member.read(1) == _PICKLE_PROTOCOL_BYTE


def _read_array(path, archive, name, entry):
    """The array of member ``name.npy``, once its bytes, dtype and shape match ``entry``."""
    member = f"{name}.npy"
    dtype = np.dtype(entry["dtype"])  # a plain dtype: _DESCR matched it
    shape = tuple(entry["shape"])
    n_bytes = math.prod(shape) * dtype.itemsize
    if archive.getinfo(member).file_size > n_bytes + _NPY_HEADER_ROOM:
        raise _refuse(path, f"member {member!r} is larger than its dtype and shape", _ALTERED)
    data = archive.read(member)
    if hashlib.sha256(data).hexdigest() != entry["sha256"]:
        raise _refuse(path, f"checksum mismatch in member {member!r}", _ALTERED)
    stream = io.BytesIO(data)
    try:
        version = np.lib.format.read_magic(stream)
        read_header = {
            (1, 0): np.lib.format.read_array_header_1_0,
            (2, 0): np.lib.format.read_array_header_2_0,
        }[version]
        npy_shape, _, npy_dtype = read_header(stream)
    except (ValueError, KeyError, SyntaxError, TypeError) as error:
        if data.startswith(_PICKLE_PROTOCOL_BYTE):
            raise _refuse(path, f"member {member!r} is a pickle", _PICKLE) from None
        raise _refuse(path, f"member {member!r} is not a .npy array ({error})", _ALTERED) from None
    if npy_dtype.hasobject:
        raise _refuse(path, f"member {member!r} is an object array (a pickle)", _PICKLE)
    if npy_dtype != dtype or npy_shape != shape:
        raise _refuse(
            path,
            f"member {member!r} holds {npy_dtype.str} {npy_shape}, the header says "
            f"{dtype.str} {shape}",
            _ALTERED,
        )
    stream.seek(0)
    return np.lib.format.read_array(stream, allow_pickle=False)


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


# ---------------------------------------------------------------- the model


def save_model(estimator, path):
    """Write a fitted ``LogisticRegression`` to ``path`` (see ``LogisticRegression.save``)."""
    from ._logistic import LogisticRegression

    if type(estimator) is not LogisticRegression:
        raise TypeError(
            f"fastlr model files hold fastlr.LogisticRegression models, "
            f"got {type(estimator).__name__}."
        )
    check_is_fitted(estimator)
    header, arrays = _model_contents(estimator)
    try:  # what load would refuse is not written
        _model_from_contents(header, arrays)
    except _Invalid as error:
        raise ValueError(f"This model cannot be saved: {error}.") from None
    write_archive(path, MODEL_KIND, header, arrays)


def load(path):
    """Load a model written by ``LogisticRegression.save``; no code in the file runs.

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    model : LogisticRegression
        Fitted, with the saved parameters: it predicts bit for bit as the
        saved model did, and sgd/minibatch models continue ``partial_fit``
        from the saved state.

    Raises
    ------
    ModelFileError
        If the file is not a fastlr model file, is truncated, corrupt or
        altered, holds a pickle, or was written in a newer format version.
    OSError
        If the file cannot be opened.
    """
    header, arrays = read_archive(path, MODEL_KIND)
    try:
        return _model_from_contents(header, arrays)
    except _Invalid as error:
        raise _refuse(_as_path(path), f"inconsistent model: {error}", _ALTERED) from None


class _Invalid(Exception):
    """A model header or array that does not fit the rest (caught by ``load``)."""


def _model_contents(estimator):
    """The header fields and arrays of a fitted estimator."""
    classes, classes_object = _label_array(estimator.classes_, "classes_")
    sparse_coef = scipy.sparse.issparse(estimator.coef_)
    arrays = {
        # A coef_ made sparse by sparsify() is stored dense (it is one row per
        # class) and made sparse again on load.
        "coef_": estimator.coef_.toarray() if sparse_coef else estimator.coef_,
        "intercept_": estimator.intercept_,
        "classes_": classes,
        "n_iter_": estimator.n_iter_,
    }
    header = {
        "estimator": type(estimator).__name__,
        "params": _encode_params(estimator.get_params(deep=False)),
        "n_features_in_": int(estimator.n_features_in_),
        "classes_object": classes_object,
    }
    if sparse_coef:
        header["coef_sparse"] = True
    if hasattr(estimator, "feature_names_in_"):
        names, _ = _label_array(estimator.feature_names_in_, "feature_names_in_")
        arrays["feature_names_in_"] = names
    header["history_"] = list(estimator.history_)
    for key, values in estimator.history_.items():
        arrays[f"history.{key}"] = np.asarray(values)
    if hasattr(estimator, "t_"):
        header["t_"] = float(estimator.t_)
    partial = getattr(estimator, "_partial_state", None)
    if partial is not None:
        header["state"] = _encode_state(partial.state, arrays)
        header["state_key"] = dict(partial.key)
    header["summary"] = _summary(estimator)
    return header, arrays


def _summary(estimator):
    """What the model is and how it was trained, for people reading the header."""
    loss = estimator.history_.get("loss", ())
    elapsed = estimator.history_.get("time", ())
    return {
        "solver": estimator.solver,
        "n_classes": len(estimator.classes_),
        "n_features": int(estimator.n_features_in_),
        "dtype": str(estimator.coef_.dtype),
        "n_iter": int(estimator.n_iter_[0]),
        "final_loss": float(loss[-1]) if len(loss) else None,
        "training_seconds": float(elapsed[-1]) if len(elapsed) else None,
    }


def _label_array(values, name):
    """``(values as a plain array, whether they were an object array)``.

    Labels given as an object array of strings (a pandas column, say) are
    stored as a str array and turned back into an object array on load.
    """
    values = np.asarray(values)
    if not values.dtype.hasobject:
        return values, False
    items = values.tolist()
    if values.ndim == 1 and all(isinstance(item, str) for item in items):
        return np.array(items, dtype=np.str_), True
    kinds = sorted({type(item).__name__ for item in items})
    raise ValueError(
        f"{name} is an object array of {kinds}, which a model file cannot store: labels must "
        f"be a plain array (ints, floats, bools, str) or an object array of str."
    )


def _encode_params(params):
    """``get_params()`` as JSON: scalars as they are, dicts (class_weight) as item lists."""
    encoded = {}
    for name, value in params.items():
        if isinstance(value, dict):
            items = [[_param_scalar(name, key), _param_scalar(name, v)] for key, v in value.items()]
            encoded[name] = {"items": items}
        else:
            encoded[name] = _param_scalar(name, value)
    return encoded


def _param_scalar(name, value):
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if name == "random_state":
        raise ValueError(
            f"random_state is a {type(value).__name__} instance, which a model file cannot "
            f"store: set an int seed or None (model.set_params(random_state=0)) before saving."
        )
    raise ValueError(
        f"Parameter {name}={value!r} cannot be stored in a model file: parameters must be "
        f"None, bool, int, float, str, or a dict of those."
    )


def _decode_params(encoded, known):
    if not isinstance(encoded, dict):
        raise _Invalid("the parameters are not a dict")
    unknown = sorted(set(encoded) - set(known))
    if unknown:
        raise _Invalid(f"parameters {unknown} are unknown to this fastlr")
    params = {}
    for name, value in encoded.items():
        if isinstance(value, dict):
            items = value.get("items")
            if set(value) != {"items"} or not isinstance(items, list):
                raise _Invalid(f"parameter {name} is malformed")
            if not all(_is_pair(item) for item in items):
                raise _Invalid(f"parameter {name} is malformed")
            value = dict(items)
        elif isinstance(value, list):
            raise _Invalid(f"parameter {name} is malformed")
        params[name] = value
    return params


def _is_pair(item):
    scalar = (type(None), bool, int, float, str)
    return isinstance(item, list) and len(item) == 2 and all(isinstance(v, scalar) for v in item)


def _encode_state(state, arrays):
    """A dataclass of solver state as JSON, its arrays added to ``arrays`` as ``state.NAME``."""
    encoded = {}
    for field in dataclasses.fields(state):
        value = getattr(state, field.name)
        key = f"state.{field.name}"
        if isinstance(value, np.generic):
            value = value.item()
        if value is None or isinstance(value, (bool, int, float, str)):
            encoded[field.name] = value
        elif isinstance(value, np.ndarray):
            arrays[key] = value
            encoded[field.name] = {"type": "array", "name": key}
        elif isinstance(value, np.random.RandomState):
            encoded[field.name] = _encode_random_state(value, key, arrays)
        else:
            raise TypeError(
                f"Solver state field {field.name!r} of type {type(value).__name__} has no "
                f"model-file encoding; add one in fastlr/_persist.py."
            )
    return encoded


def _encode_random_state(rng, key, arrays):
    name, keys, pos, has_gauss, cached_gaussian = rng.get_state(legacy=True)
    if name != "MT19937":
        raise TypeError(f"A {name} random generator has no model-file encoding.")
    arrays[f"{key}.key"] = keys
    return {
        "type": "random_state",
        "key": f"{key}.key",
        "pos": int(pos),
        "has_gauss": int(has_gauss),
        "cached_gaussian": float(cached_gaussian),
    }


def _decode_state(encoded, arrays, used):
    from ._solvers import StochasticState

    known = {field.name for field in dataclasses.fields(StochasticState)}
    if not isinstance(encoded, dict) or not set(encoded) <= known:
        raise _Invalid("the solver state holds fields unknown to this fastlr")
    values = {}
    for name, value in encoded.items():
        if isinstance(value, dict):
            value = _decode_state_value(value, arrays, used)
        elif isinstance(value, list):
            raise _Invalid(f"solver state field {name!r} is malformed")
        values[name] = value
    return StochasticState(**values)


def _decode_state_value(value, arrays, used):
    kind = value.get("type")
    if kind == "array" and set(value) == {"type", "name"}:
        return _take(arrays, value["name"], used)
    if kind == "random_state" and set(value) == {
        "type", "key", "pos", "has_gauss", "cached_gaussian",
    }:  # fmt: skip
        return _decode_random_state(value, _take(arrays, value["key"], used))
    raise _Invalid("a solver state field is malformed")


def _decode_random_state(value, key):
    """An MT19937 ``RandomState``; its state is checked first (numpy does not check ``pos``)."""
    valid = (
        key.shape == (624,)
        and key.dtype == np.uint32
        and _is_int(value["pos"])
        and 0 <= value["pos"] <= 624
        and value["has_gauss"] in (0, 1)
        and not isinstance(value["has_gauss"], bool)
        and isinstance(value["cached_gaussian"], float)
    )
    if not valid:
        raise _Invalid("the solver's random state is malformed")
    rng = np.random.RandomState()
    rng.set_state(("MT19937", key, value["pos"], value["has_gauss"], value["cached_gaussian"]))
    return rng


def _take(arrays, name, used):
    if not isinstance(name, str) or name not in arrays:
        raise _Invalid(f"array {name!r} is missing")
    used.add(name)
    return arrays[name]


def _model_from_contents(header, arrays):
    """A fitted ``LogisticRegression`` from verified archive contents; ``_Invalid`` if they
    do not make one."""
    from ._logistic import LogisticRegression

    if header.get("estimator") != "LogisticRegression":
        raise _Invalid(f"estimator {header.get('estimator')!r} is not LogisticRegression")
    model = LogisticRegression()
    params = _decode_params(header.get("params"), model.get_params(deep=False))
    model.set_params(**params)
    try:
        model._validate_params()
    except (TypeError, ValueError) as error:
        raise _Invalid(str(error)) from None
    used = set()
    _set_fitted(model, header, arrays, used)
    if "state" in header:
        from ._logistic import _PartialState

        state = _decode_state(header["state"], arrays, used)
        _check_state(state, model.coef_, model.intercept_)
        key = header.get("state_key")
        if not isinstance(key, dict) or not all(isinstance(k, str) for k in key):
            raise _Invalid("the solver state has no parameters it was made with")
        model._partial_state = _PartialState(key, state)
    unused = sorted(set(arrays) - used)
    if unused:
        raise _Invalid(f"arrays {unused} are not part of a model")
    sparse_coef = header.get("coef_sparse", False)
    if not isinstance(sparse_coef, bool):
        raise _Invalid("coef_sparse is not true or false")
    if sparse_coef:
        model.coef_ = scipy.sparse.csr_matrix(model.coef_)
    return model


def _check_state(state, coef, intercept):
    """The solver state must fit the model: ``partial_fit`` hands it to the kernels."""
    like = {
        "coef": coef,
        "avg_coef": coef,
        "intercept": intercept,
        "avg_intercept": intercept,
        "l1_state": np.empty(coef.size + 1),  # per weight, then the total
    }
    for name, model_array in like.items():
        value = getattr(state, name, None)
        fits = value is None or (
            isinstance(value, np.ndarray)
            and value.size == model_array.size
            and value.dtype == model_array.dtype
        )
        if not fits:
            raise _Invalid(f"the solver state's {name} does not fit coef_")
    for name in ("t", "eta0", "t0"):
        value = getattr(state, name, None)
        if isinstance(value, bool) or not isinstance(value, (int, float, type(None))):
            raise _Invalid(f"the solver state's {name} is not a number")
    if state.t is None:
        raise _Invalid("the solver state's t is not a number")
    if not isinstance(getattr(state, "rng", None), (np.random.RandomState, type(None))):
        raise _Invalid("the solver state's rng is not a random generator")


def _set_fitted(model, header, arrays, used):
    """Set and cross-check the fitted attributes."""
    coef = _take(arrays, "coef_", used)
    intercept = _take(arrays, "intercept_", used)
    classes = _take(arrays, "classes_", used)
    n_iter = _take(arrays, "n_iter_", used)
    n_features = header.get("n_features_in_")
    n_classes = classes.shape[0] if classes.ndim == 1 else 0
    n_outputs = 1 if n_classes == 2 else n_classes
    checks = {
        "coef_ is not a float matrix of one row per class (one for two classes) and one "
        "column per feature": coef.dtype.kind == "f"
        and coef.itemsize >= 4
        and coef.shape == (n_outputs, n_features),
        "intercept_ does not match coef_": intercept.shape == (n_outputs,)
        and intercept.dtype == coef.dtype,
        "classes_ does not hold two or more distinct, sorted labels": n_classes >= 2
        and bool(np.all(classes[1:] > classes[:-1])),
        "n_iter_ is not one integer": n_iter.shape == (1,) and n_iter.dtype.kind in "iu",
        "n_features_in_ is not a positive integer": _is_int(n_features) and n_features > 0,
    }
    problems = [problem for problem, ok in checks.items() if not ok]
    if problems:
        raise _Invalid(problems[0])
    model.coef_, model.intercept_, model.n_iter_ = coef, intercept, n_iter
    model.classes_ = classes.astype(object) if header.get("classes_object") is True else classes
    model.n_features_in_ = n_features
    if "feature_names_in_" in arrays:
        names = _take(arrays, "feature_names_in_", used)
        if names.shape != (n_features,) or names.dtype.kind != "U":
            raise _Invalid("feature_names_in_ is not one str per feature")
        model.feature_names_in_ = names.astype(object)
    model.history_ = _history(header.get("history_"), arrays, used)
    if "t_" in header:
        if not isinstance(header["t_"], (int, float)) or isinstance(header["t_"], bool):
            raise _Invalid("t_ is not a number")
        model.t_ = float(header["t_"])


def _history(keys, arrays, used):
    if not isinstance(keys, list) or not all(isinstance(key, str) for key in keys):
        raise _Invalid("history_ is not a list of names")
    history = {key: _take(arrays, f"history.{key}", used) for key in keys}
    if any(values.ndim != 1 for values in history.values()):
        raise _Invalid("a history_ entry is not one value per epoch")
    return history
