"""What the benchmarks measure: zero-argument callables over fastlr and its baselines.

Gradient kernels, training runs, the lbfgs time-to-optimum plan, cold start in
a fresh interpreter and the peak memory of ``fit``. The pytest suite and the
report both build their measurements from these functions.
"""

import functools
import json
import math
import os
import subprocess
import sys
import tempfile
import time
import tracemalloc
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression as SklearnLogisticRegression
from sklearn.linear_model import SGDClassifier

import fastlr
from fastlr import reference
from fastlr._gradient import gradient_sums
from fastlr._threads import numba_threads
from fastlr.kernels import reduction

from ._common import DTYPES, EPOCH_METHODS, FIT_SOLVERS, GRID_KERNELS, cached_data, generate_data

SGD_ALPHA = 1e-4  # SGDClassifier's default penalty; fastlr gets the same through C
GD_LEARNING_RATE = 1.0  # step of reference.numpy_fit
LBFGS_C = 1.0
LBFGS_TIGHT_MAX_ITER = 1000
TARGET_GAP = 1e-6  # relative objective gap that counts as "reached the optimum"


def quietly(call):
    """Wrap ``call`` so that ``ConvergenceWarning`` is ignored while it runs.

    The benchmarks stop solvers early on purpose (``max_iter=1``).
    """

    def run(*args, **kwargs):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            return call(*args, **kwargs)

    return run


def _with_threads(call, n_threads):
    def run():
        with numba_threads(n_threads):
            return call()

    return run


# --------------------------------------------------------------------------
# One gradient evaluation
# --------------------------------------------------------------------------


def gradient_inputs(X, y):
    """Validated arguments of ``gradient_sums``: ``(X, y, sw, coef, intercept)``.

    Unit sample weights, a fixed random ``coef`` and intercept in X's dtype.
    """
    d = X.shape[1]
    coef = (np.random.default_rng(1).standard_normal(d) / np.sqrt(d)).astype(X.dtype)
    return X, y, np.empty(0, X.dtype), coef, X.dtype.type(0.1)


def _python_loop(X, y, sw, coef, intercept):
    return reference.python_loop_gradient(X, y, coef, intercept)


def _numpy(X, y, sw, coef, intercept):
    return reference.numpy_gradient(X, y, coef, intercept)


def _compiled(method, with_loss=True):
    return functools.partial(gradient_sums, method=method, with_loss=with_loss)


def _read(X, *_):
    return reduction.array_sum(X)


def _read_parallel(X, *_):
    return reduction.parallel_array_sum(X, reduction.n_chunks_for(X.shape[0]))


# name: (function of the gradient_inputs, numba threads or None to leave them)
_GRADIENT_KERNELS = {
    "python_loop": (_python_loop, None),
    "numpy": (_numpy, None),
    "loop": (_compiled("loop"), None),
    "vectorized": (_compiled("vectorized"), None),
    "fused-1t": (_compiled("parallel"), 1),
    "fused-2t": (_compiled("parallel"), 2),
    "fused-2t-noloss": (_compiled("parallel", with_loss=False), 2),
    "read-1t": (_read, None),
    "read-2t": (_read_parallel, 2),
}


def gradient_call(kernel, X, y):
    """Zero-argument callable: one gradient evaluation (or one read of X) by ``kernel``.

    Parameters
    ----------
    kernel : str
        ``"python_loop"`` and ``"numpy"`` (:mod:`fastlr.reference`); ``"loop"``,
        ``"vectorized"``, ``"fused-1t"``, ``"fused-2t"`` (``gradient_sums`` with
        1 or 2 numba threads, loss included); ``"fused-2t-noloss"`` (the gradient
        only); ``"read-1t"``, ``"read-2t"`` (one pass summing X: the
        memory-bandwidth baseline).
    X : ndarray of shape (n_samples, n_features)
        C-contiguous float32 or float64.
    y : ndarray of shape (n_samples,)
        0/1 in X's dtype.

    Returns
    -------
    call : callable
    """
    function, n_threads = _GRADIENT_KERNELS[kernel]
    call = functools.partial(function, *gradient_inputs(X, y))
    return call if n_threads is None else _with_threads(call, n_threads)


# --------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------


def sgd_c(n_samples):
    """fastlr's ``C`` that gives the penalty of ``SGDClassifier(alpha=SGD_ALPHA)``."""
    return 1.0 / (SGD_ALPHA * n_samples)


def objective(X, y, params, alpha, chunk_rows=65_536):
    """Mean log-loss plus ``alpha / 2 ||coef||^2``, in float64.

    fastlr minimizes it with ``alpha = 1 / (C n)``, SGDClassifier with its
    ``alpha``; scikit-learn's LogisticRegression minimizes ``C n`` times it.
    Computed over row chunks so float32 X is never converted whole.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    y : ndarray of shape (n_samples,)
        0/1 targets.
    params : tuple
        ``(coef, intercept)``, coef of shape (n_features,).
    alpha : float
        L2 strength.
    chunk_rows : int
        Rows converted to float64 at a time.

    Returns
    -------
    value : float
    """
    coef = np.asarray(params[0], dtype=np.float64)
    total = 0.0
    for start in range(0, X.shape[0], chunk_rows):
        rows = slice(start, start + chunk_rows)
        z = X[rows].astype(np.float64) @ coef + params[1]
        total += float(np.sum(np.logaddexp(0.0, z) - y[rows] * z))
    return total / X.shape[0] + 0.5 * alpha * float(coef @ coef)


def _params(model):
    return model.coef_.ravel(), float(model.intercept_[0])


def _fastlr_epochs(X, y, epochs, solver, batch_size=256, seed=0):
    model = fastlr.LogisticRegression(
        solver=solver,
        C=sgd_c(X.shape[0]),
        max_iter=epochs,
        tol=None,
        batch_size=batch_size,
        random_state=seed,
    )
    return _params(model.fit(X, y))


def _sklearn_sgd_epochs(X, y, epochs, seed=0):
    model = SGDClassifier(
        loss="log_loss", alpha=SGD_ALPHA, max_iter=epochs, tol=None, random_state=seed
    )
    return _params(model.fit(X, y))


def _numpy_gd_epochs(X, y, epochs, seed=0):
    coef, intercept = reference.numpy_fit(X, y, GD_LEARNING_RATE, epochs)
    return coef, float(intercept)


_EPOCH_FITS = {
    "gd": functools.partial(_fastlr_epochs, solver="gd"),
    "sgd": functools.partial(_fastlr_epochs, solver="sgd"),
    **{
        f"minibatch-{size}": functools.partial(_fastlr_epochs, solver="minibatch", batch_size=size)
        for size in (32, 256, 4096)
    },
    "numpy-gd": _numpy_gd_epochs,
    "sklearn-sgd": _sklearn_sgd_epochs,
}


def epoch_call(method, X, y, epochs=1, seed=0):
    """Zero-argument callable: a fit of ``epochs`` epochs from scratch, returning its params.

    Parameters
    ----------
    method : str
        One of ``EPOCH_METHODS``: fastlr's ``"gd"``, ``"sgd"``, ``"minibatch-<batch
        size>"`` (all with ``C = sgd_c(n)``, ``tol=None``), ``"numpy-gd"``
        (:func:`fastlr.reference.numpy_fit`) or ``"sklearn-sgd"`` (``SGDClassifier``
        with ``loss="log_loss"``, ``alpha=SGD_ALPHA``, ``tol=None``).
    X, y : ndarray
        Training data; y 0/1.
    epochs : int
        ``max_iter``: passes over the data.
    seed : int
        ``random_state`` of the fit: the order of the shuffled passes.

    Returns
    -------
    call : callable returning ``(coef, intercept)``
    """
    return quietly(functools.partial(_EPOCH_FITS[method], X, y, epochs, seed=seed))


def lbfgs_alpha(n_samples):
    """L2 strength on the mean loss of ``LogisticRegression(C=LBFGS_C)``."""
    return 1.0 / (LBFGS_C * n_samples)


def _lbfgs_fit(library, X, y, max_iter):
    if library == "fastlr":
        model = fastlr.LogisticRegression(C=LBFGS_C, max_iter=max_iter, tol=None)
    else:
        model = SklearnLogisticRegression(C=LBFGS_C, max_iter=max_iter, tol=0.0)
    return _params(model.fit(X, y)), int(model.n_iter_[0])


def _default_fit(library, X, y):
    model = fastlr.LogisticRegression() if library == "fastlr" else SklearnLogisticRegression()
    return int(model.fit(X, y).n_iter_[0])


def default_fit_call(library, X, y):
    """Zero-argument callable: a fit with the library's default LogisticRegression.

    Both default to lbfgs, ``C=1`` and a gradient tolerance of 1e-4; the
    callable returns the iterations taken. ``library``: ``"fastlr"`` or ``"sklearn"``.
    """
    return quietly(functools.partial(_default_fit, library, X, y))


def lbfgs_call(library, X, y, max_iter):
    """Zero-argument callable: an lbfgs fit of at most ``max_iter`` iterations.

    Returns ``((coef, intercept), n_iter)``. ``library`` is ``"fastlr"`` or ``"sklearn"``
    (``LogisticRegression(solver="lbfgs")``), both with ``C=LBFGS_C`` and no
    gradient tolerance, so ``max_iter`` sets the work.
    """
    return quietly(functools.partial(_lbfgs_fit, library, X, y, max_iter))


def smallest_true(predicate, high):
    """Smallest ``k`` in ``[1, high]`` with ``predicate(k)``, by bisection.

    ``predicate`` must be false then true as ``k`` grows; returns None when
    ``predicate(high)`` is false.
    """
    if not predicate(high):
        return None
    low = 1
    while low < high:
        middle = (low + high) // 2
        if predicate(middle):
            high = middle
        else:
            low = middle + 1
    return high


@functools.lru_cache
def lbfgs_plan(n, d, dtype="float64"):
    """Iterations each library's lbfgs needs to reach the optimum within ``TARGET_GAP``.

    The optimum ``f*`` is the lower objective of both libraries' tight fits
    (``max_iter=LBFGS_TIGHT_MAX_ITER``); a fit has reached it when its relative
    gap ``(f - f*) / f*`` is at most ``TARGET_GAP``.

    Parameters
    ----------
    n, d : int
        Shape of the data, from :func:`benchmarks._common.cached_data`.
    dtype : str
        dtype of X.

    Returns
    -------
    plan : dict of str to tuple
        ``library -> (max_iter, gap)``: the fewest iterations that reach the
        optimum and the gap they reach; ``(None, gap of the tight fit)`` when
        even the tight fit misses it.
    """
    X, y = cached_data(n, d, dtype)
    alpha = lbfgs_alpha(n)
    tight = {lib: lbfgs_call(lib, X, y, LBFGS_TIGHT_MAX_ITER)() for lib in ("fastlr", "sklearn")}
    f_star = min(objective(X, y, params, alpha) for params, _ in tight.values())
    plan = {}
    for library, (_, n_iter) in tight.items():
        gaps = {}

        def reaches(k, library=library, gaps=gaps):
            params, _ = lbfgs_call(library, X, y, k)()
            gaps[k] = (objective(X, y, params, alpha) - f_star) / abs(f_star)
            return gaps[k] <= TARGET_GAP

        k = smallest_true(reaches, n_iter)
        plan[library] = (k, gaps[n_iter if k is None else k])
    return plan


# --------------------------------------------------------------------------
# Cold start and memory
# --------------------------------------------------------------------------

_COLD_START_SCRIPT = """
import json, time
start = time.perf_counter()
import fastlr
imported = time.perf_counter()
import numpy as np
X = np.random.default_rng(0).standard_normal((200, 5))
y = (X[:, 0] > 0).astype(np.int64)
fastlr.LogisticRegression().fit(X, y)
fitted = time.perf_counter()
print(json.dumps({"import_s": imported - start, "first_fit_s": fitted - imported}))
"""


def run_fresh_interpreter(cache_dir):
    """Run ``import fastlr`` and a first ``fit`` (200 x 5, lbfgs) in a new interpreter.

    Parameters
    ----------
    cache_dir : str
        ``NUMBA_CACHE_DIR`` of the run: an empty or missing directory means
        every kernel the fit uses is compiled.

    Returns
    -------
    timings : dict of str to float
        ``import_s``, ``first_fit_s`` (measured inside the interpreter) and
        ``process_s`` (the whole subprocess, interpreter start included).
    """
    env = {**os.environ, "NUMBA_CACHE_DIR": cache_dir}
    start = time.perf_counter()
    completed = subprocess.run(
        [sys.executable, "-c", _COLD_START_SCRIPT],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    timings = json.loads(completed.stdout.strip().splitlines()[-1])
    timings["process_s"] = time.perf_counter() - start
    return timings


def cold_start(warm_cache, repeats=1):
    """Best times of :func:`run_fresh_interpreter` over ``repeats`` runs.

    Parameters
    ----------
    warm_cache : bool
        True: numba's on-disk cache (``NUMBA_CACHE_DIR``, a temporary directory)
        is filled by one untimed run first. False: every run starts from an
        empty cache directory, so every kernel it uses is compiled.
    repeats : int
        Runs; the best time of each phase counts.

    Returns
    -------
    timings : dict of str to float
        As :func:`run_fresh_interpreter`, each the best of the runs.
    """
    best = {}
    with tempfile.TemporaryDirectory(prefix="fastlr-numba-cache-") as root:
        if warm_cache:
            run_fresh_interpreter(root)
        for run in range(repeats):
            cache_dir = root if warm_cache else os.path.join(root, f"empty-{run}")
            for phase, seconds in run_fresh_interpreter(cache_dir).items():
                best[phase] = min(best.get(phase, math.inf), seconds)
    return best


def fit_call(solver, X, y):
    """Zero-argument callable: a two-epoch (or two-iteration) fastlr fit with ``solver``."""
    model = fastlr.LogisticRegression(solver=solver, C=sgd_c(X.shape[0]), max_iter=2, tol=None)
    return quietly(functools.partial(model.fit, X, y))


def fit_peak_extra(solver, X, y):
    """Peak bytes a fastlr ``fit`` allocates on top of what was live before it.

    Measured with :mod:`tracemalloc`, which sees Python's and NumPy's
    allocations but not the small scratch arrays numba allocates inside kernels.

    Returns
    -------
    peak_extra : int
        A copy of X would add at least ``X.nbytes``.
    """
    call = fit_call(solver, X, y)
    was_tracing = tracemalloc.is_tracing()
    if not was_tracing:
        tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]
        call()
        return tracemalloc.get_traced_memory()[1] - before
    finally:
        if not was_tracing:
            tracemalloc.stop()


def warm_up():
    """Compile, or load from numba's cache, every kernel the benchmarks time.

    Runs each gradient kernel, training method and solver once on tiny data of
    each dtype, so no timed call pays for JIT compilation.
    """
    for dtype in DTYPES:
        X, y = generate_data(512, 8, dtype)
        for kernel in GRID_KERNELS:
            gradient_call(kernel, X, y)()
        for method in EPOCH_METHODS:
            epoch_call(method, X, y)()
        for solver in FIT_SOLVERS:
            fit_call(solver, X, y)()
