"""Pinned float64 iterates: a fingerprint of every solver's result on small problems.

A refactor of the kernels must leave these bitwise unchanged. The pins hold for
the processor they were written on (numba compiles for the host CPU, whose
instruction set changes the rounding of fused and vectorized sums), so
``tests/test_pinned.py`` skips elsewhere. Regenerate them after an intended
change of the numerics with ``python -m tests.pinned --write``.
"""

import hashlib
import json
import sys
import warnings
from pathlib import Path

import numpy as np
import scipy.sparse
from numba.core import config as numba_config

PIN_FILE = Path(__file__).resolve().parent / "data" / "pinned_iterates.json"

CASES = {
    "lbfgs": dict(solver="lbfgs"),
    "lbfgs-l1": dict(solver="lbfgs", l1_ratio=1, C=0.5),
    "gd": dict(solver="gd", max_iter=30, tol=None),
    "gd-l1": dict(solver="gd", l1_ratio=1, C=0.5, max_iter=30, tol=None),
    "sgd": dict(solver="sgd", max_iter=3, tol=None, random_state=0),
    "sgd-l1-average": dict(
        solver="sgd",
        l1_ratio=0.5,
        average=True,
        max_iter=3,
        tol=None,
        random_state=0,
    ),
    "minibatch": dict(solver="minibatch", batch_size=32, max_iter=3, tol=None, random_state=0),
    "minibatch-l1": dict(
        solver="minibatch", l1_ratio=1, batch_size=32, max_iter=3, tol=None, random_state=0
    ),
}


def host_key():
    """The processor the pins belong to: numba's host CPU name and features."""
    from llvmlite import binding

    features = numba_config.CPU_FEATURES or binding.get_host_cpu_features().flatten()
    return f"{binding.get_host_cpu_name()}|{features}"


def problems():
    """Binary and 3-class problems, dense and CSR, float64, with weights."""
    rng = np.random.default_rng(7)
    X = rng.standard_normal((3000, 12))
    X[rng.random(X.shape) < 0.5] = 0.0
    scores = X @ rng.standard_normal((12, 3))
    y3 = scores.argmax(axis=1)
    y2 = (scores[:, 0] + 0.3 * rng.standard_normal(3000) > 0).astype(int)
    sw = rng.integers(1, 4, 3000).astype(float)
    csr = scipy.sparse.csr_matrix(X)
    return {
        "binary-dense": (X, y2, sw),
        "binary-csr": (csr, y2, sw),
        "multinomial-dense": (X, y3, None),
        "multinomial-csr": (csr, y3, None),
    }


def fingerprint(model):
    """Hash of the coefficients and intercepts, bit for bit, and of the loss history.

    The losses enter rounded to 12 digits: a kernel compiled in this process and
    the same kernel loaded from numba's cache may differ in the last bit of a
    loss sum (LLVM optimizes a callee inside its caller's module for the cache
    and on its own for the JIT), while the iterates agree bit for bit.
    """
    digest = hashlib.sha256()
    digest.update(np.ascontiguousarray(model.coef_).tobytes())
    digest.update(np.ascontiguousarray(model.intercept_).tobytes())
    digest.update(" ".join(f"{loss:.12e}" for loss in model.history_["loss"]).encode())
    return digest.hexdigest()[:16]


def compute():
    import fastlr

    pins = {}
    for data_name, (X, y, sw) in problems().items():
        for case, params in CASES.items():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                model = fastlr.LogisticRegression(**params).fit(X, y, sample_weight=sw)
            pins[f"{data_name}/{case}"] = fingerprint(model)
        online = fastlr.LogisticRegression(solver="sgd", alpha=1e-3, random_state=0)
        for rows in np.array_split(np.arange(X.shape[0]), 3):
            online.partial_fit(X[rows], y[rows], classes=np.unique(y))
        pins[f"{data_name}/partial_fit"] = fingerprint(online)
    return pins


if __name__ == "__main__":
    if "--write" in sys.argv:
        PIN_FILE.write_text(json.dumps({"host": host_key(), "pins": compute()}, indent=1) + "\n")
    else:
        print(json.dumps(compute(), indent=1))
