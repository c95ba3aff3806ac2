"""Compile the kernels of common fits into numba's cache before the first fit needs them.

A kernel compiles on its first call with a new signature, and numba keeps the
machine code on disk (see :mod:`fastlr._jit`): a process that finds it there
loads it in milliseconds. :func:`warmup` makes those first calls ahead of
time, with tiny fits of every solver on the common signatures (float64 and
float32, dense and CSR, two and three classes), split into groups that run
in separate processes, one per core. The groups share few kernels; one that
two processes compiled at once may be missing from numba's index afterwards,
so a last pass in this process runs every group again, loading what is
cached and compiling what is not.
"""

import itertools
import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import scipy.sparse

from .kernels.reduction import MIN_CHUNK_ROWS

#: The fits of each group: solvers whose kernels differ (gradient passes,
#: sample-by-sample epochs, mini-batch epochs), and prediction.
GROUPS = {
    "lbfgs and gd": [dict(solver="lbfgs"), dict(solver="gd"), dict(solver="lbfgs", l1_ratio=1.0)],
    "sgd": [dict(solver="sgd"), dict(solver="sgd", average=True)],
    "minibatch": [dict(solver="minibatch")],
}
DTYPES = (np.float64, np.float32)
#: Rows of each group's tiny problems: one chunk (the serial passes of small
#: fits) and, for the gradient group, more than one: the parallel passes every
#: larger fit takes (the fused gradients, also in sgd's and minibatch's final
#: check, and the parallel finite check). Compiled by one group, not by three
#: processes at once.
SIZES = {"lbfgs and gd": (64, 2 * MIN_CHUNK_ROWS + 1), "sgd": (64,), "minibatch": (64,)}


def warmup(n_jobs=None, report=None):
    """Compile the kernels of common fits into numba's cache.

    Parameters
    ----------
    n_jobs : int, optional
        Processes compiling at once; default: the cores available, at most
        one per group.
    report : callable, optional
        ``report(text)`` for a line per finished group.

    Returns
    -------
    seconds : dict of str to float
        Wall time of each group, of the last pass (``"check"``) and of the
        whole (``"total"``).
    """
    start = time.perf_counter()
    names = list(GROUPS)
    if n_jobs is None:
        n_jobs = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1
    n_jobs = max(1, min(int(n_jobs), len(names)))
    seconds = {}
    if n_jobs > 1:
        # "spawn": a forked child of a process that already ran OpenMP code is unsafe.
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(n_jobs, mp_context=context) as pool:
            for name, elapsed in zip(names, pool.map(run_group, names), strict=True):
                seconds[name] = elapsed
                if report is not None:
                    report(f"compiled the kernels of {name} in {elapsed:.1f} s")
    check = time.perf_counter()
    for name in names:
        elapsed = run_group(name)
        if n_jobs == 1:
            seconds[name] = elapsed
            if report is not None:
                report(f"compiled the kernels of {name} in {elapsed:.1f} s")
    seconds["check"] = time.perf_counter() - check
    seconds["total"] = time.perf_counter() - start
    return seconds


def run_group(name):
    """Run the tiny fits of group ``name`` (and a prediction); return the seconds taken."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    from ._logistic import LogisticRegression

    start = time.perf_counter()
    for dtype, n_samples in itertools.product(DTYPES, SIZES[name]):
        for n_classes in (2, 3):
            X, y = _problem(dtype, n_classes, n_samples)
            for data in (X, scipy.sparse.csr_matrix(X)):
                for params in GROUPS[name]:
                    model = LogisticRegression(max_iter=2, random_state=0, **params)
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore", ConvergenceWarning)
                        model.fit(data, y)
                    if name == "lbfgs and gd":
                        model.predict_proba(data)
            if name == "lbfgs and gd":
                _public_gradient(X, y)
    return time.perf_counter() - start


def _public_gradient(X, y):
    from ._gradient import gradient

    binary = (y > 0).astype(X.dtype)
    gradient(X, binary, np.zeros(X.shape[1], X.dtype), 0.0)


def _problem(dtype, n_classes, n_samples=64, n_features=4):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((n_samples, n_features)).astype(dtype)
    return X, np.arange(n_samples) % n_classes
