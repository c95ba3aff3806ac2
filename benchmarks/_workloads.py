"""What the benchmarks measure: zero-argument callables over fastlr and its baselines.

Gradient kernels of the four families (binary and multinomial, dense and CSR)
with their NumPy and scipy baselines, training runs, the lbfgs
time-to-optimum plan, cold start in a fresh interpreter and the peak memory of
``fit``. The pytest suite and the report both build their measurements from
these functions.
"""

import contextlib
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
import scipy.sparse
from scipy.special import logsumexp
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression as SklearnLogisticRegression
from sklearn.linear_model import SGDClassifier
from sklearn.preprocessing import StandardScaler
from threadpoolctl import ThreadpoolController

import fastlr
from fastlr import _orders, kernels, reference
from fastlr._gradient import gradient_sums
from fastlr._threads import numba_threads
from fastlr._validation import csr_arrays
from fastlr.kernels import reduction

from ._common import (
    DIGITS_SHAPE,
    DTYPES,
    EPOCH_METHODS,
    FIT_SOLVERS,
    GRID_KERNELS,
    KERNEL_EPOCHS,
    MULTINOMIAL_KERNELS,
    N_CLASSES,
    SPARSE_FAMILIES,
    SPARSE_KERNELS,
    cached_data,
    generate_data,
)

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


def _public(X, y, sw, coef, intercept):
    # What a caller that validated already pays: fastlr.gradient without its checks.
    return fastlr.gradient(X, y, coef, intercept, check_input=False)


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
    "public-2t": (_public, 2),
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
        only); ``"public-2t"`` (``fastlr.gradient(..., check_input=False)``, the
        mean gradient and loss); ``"read-1t"``, ``"read-2t"`` (one pass summing X: the
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
# One multinomial gradient evaluation (dense X, N_CLASSES classes)
# --------------------------------------------------------------------------


@functools.lru_cache(maxsize=2)
def multiclass_data(n, d):
    """``(X, y)``: digits when ``(n, d)`` is ``DIGITS_SHAPE``, else a learnable 10-class problem.

    The synthetic X is :func:`benchmarks._common.cached_data`'s (standard
    normal, shared with the binary benchmarks); see :func:`softmax_labels`.
    """
    if (n, d) == DIGITS_SHAPE:
        X, y = load_digits(return_X_y=True)
        return np.ascontiguousarray(StandardScaler().fit_transform(X)), y.astype(np.int64)
    X, _ = cached_data(n, d, "float64")
    return X, softmax_labels(X)


def softmax_labels(X, chunk_rows=65_536):
    """Labels drawn from a softmax model of X (the Gumbel-max trick): the optimum is finite."""
    rng = np.random.default_rng(7)
    coef = rng.standard_normal((N_CLASSES, X.shape[1])) * (3 / np.sqrt(X.shape[1]))
    y = np.empty(X.shape[0], np.int64)
    for start in range(0, X.shape[0], chunk_rows):
        rows = slice(start, start + chunk_rows)
        scores = X[rows] @ coef.T
        y[rows] = np.argmax(scores + rng.gumbel(size=scores.shape), axis=1)
    return y


def small_multiclass_data(n, d):
    """An uncached small multinomial problem (warm-up, checks): no cached X is evicted."""
    X, _ = generate_data(n, d)
    return X, softmax_labels(X)


def numpy_softmax_sums(X, y, coef, intercept):
    """The NumPy baseline: loss and gradient sums of the softmax cross-entropy.

    Two BLAS products and a stable softmax. Returns ``(grad_coef,
    grad_intercept, loss_sum)``, as the fused kernel adds up.
    """
    rows = np.arange(X.shape[0])
    scores = X @ coef.T + intercept
    scores -= scores.max(axis=1, keepdims=True)
    label_scores = scores[rows, y]
    np.exp(scores, out=scores)
    total = scores.sum(axis=1, keepdims=True)
    loss = float(np.log(total).sum() - label_scores.sum())
    scores /= total
    scores[rows, y] -= 1.0
    return scores.T @ X, scores.sum(axis=0), loss


def contract_sums(X, y, coef, intercept, with_loss=True):
    """:func:`fastlr.kernels.gradient_sums` (any family) into fresh buffers, unit weights."""
    grad, grad_b = np.zeros_like(coef), np.zeros_like(intercept)
    sw = np.empty(0, coef.dtype)
    loss = kernels.gradient_sums(X, y, sw, coef, intercept, with_loss, grad, grad_b)
    return grad, grad_b, loss


def multinomial_gradient_inputs(d):
    """Random ``(coef, intercept)`` of the scale of a fitted model."""
    rng = np.random.default_rng(1)
    return rng.standard_normal((N_CLASSES, d)) / np.sqrt(d), rng.standard_normal(N_CLASSES) * 0.1


def multinomial_gradient_call(kernel, X, y):
    """Zero-argument callable: one multinomial loss-and-gradient evaluation by ``kernel``.

    ``kernel`` is one of ``MULTINOMIAL_KERNELS``: ``"numpy"``
    (:func:`numpy_softmax_sums`), ``"fused-1t"``, ``"fused-2t"`` (the
    contract's ``gradient_sums`` with 1 or 2 numba threads) or
    ``"fused-2t-noloss"`` (the gradient only).
    """
    params = multinomial_gradient_inputs(X.shape[1])
    if kernel == "numpy":
        return functools.partial(numpy_softmax_sums, X, y, *params)
    call = functools.partial(contract_sums, X, y, *params, "noloss" not in kernel)
    return _with_threads(call, 1 if kernel == "fused-1t" else 2)


# --------------------------------------------------------------------------
# One CSR gradient evaluation (binary or N_CLASSES classes)
# --------------------------------------------------------------------------


def generate_sparse(n, d, nnz_per_row, dtype="float64", n_classes=None, seed=0):
    """A learnable CSR problem with exactly ``nnz_per_row`` entries per row.

    Column indices are uniform (int32, sorted within each row, a repeated
    column is kept as a duplicate entry), values standard normal. Labels are
    drawn from a logistic model (``n_classes`` None: 0/1 in X's dtype) or from
    a softmax model over ``n_classes`` classes (the Gumbel-max trick; int64).

    Returns
    -------
    X : csr_matrix of shape (n, d)
    y : ndarray of shape (n,)
    """
    rng = np.random.default_rng(seed)
    indices = rng.integers(0, d, size=(n, nnz_per_row), dtype=np.int32)
    indices.sort(axis=1)
    data = rng.standard_normal(n * nnz_per_row, dtype=np.dtype(dtype))
    indptr = np.arange(0, n * nnz_per_row + 1, nnz_per_row, dtype=np.int32)
    X = scipy.sparse.csr_matrix((data, indices.ravel(), indptr), shape=(n, d))
    if n_classes is None:
        true_coef = rng.standard_normal(d).astype(data.dtype) * (2 / np.sqrt(nnz_per_row))
        prob = 1 / (1 + np.exp(-(X @ true_coef)))
        return X, (rng.random(n) < prob).astype(data.dtype)
    rng = np.random.default_rng(seed + 1)
    true_coef = rng.standard_normal((d, n_classes)) * (2 / np.sqrt(nnz_per_row))
    scores = np.asarray(X @ true_coef) + rng.gumbel(size=(n, n_classes))
    return X, scores.argmax(axis=1).astype(np.int64)


# One data set in memory at a time (600 MB in float64 in the full tier).
cached_sparse = functools.lru_cache(maxsize=1)(generate_sparse)


def sparse_data(family, n, d, nnz_per_row, dtype="float64"):
    """The cached CSR problem of ``family`` (``"binary"`` or ``"multinomial"``)."""
    return cached_sparse(n, d, nnz_per_row, dtype, None if family == "binary" else N_CLASSES)


def sparse_gradient_calls(X, y, names=SPARSE_KERNELS):
    """Zero-argument callables, one gradient evaluation each, by kernel name.

    ``"scipy"`` times the two sparse products only, ``X @ W.T`` and ``X.T @ R``
    with a fixed residual ``R``: it is given neither the sigmoid or softmax nor
    the loss, which every fastlr kernel computes (``"csr-2t-noloss"`` skips the
    loss); scipy's sparse products are single-threaded. ``"csr-1t"`` and
    ``"csr-2t"``: the contract's ``gradient_sums`` on 1 or 2 numba threads.
    The family follows y: int64 classes are multinomial.
    """
    n, d = X.shape
    n_out = N_CLASSES if y.dtype == np.int64 else 1
    coef_shape, residual_shape = ((N_CLASSES, d), (n, N_CLASSES)) if n_out > 1 else (d, n)
    rng = np.random.default_rng(1)
    coef = (rng.standard_normal(coef_shape) / np.sqrt(X.nnz / n)).astype(X.dtype)
    residual = rng.standard_normal(residual_shape).astype(X.dtype)
    intercept = np.full(n_out, 0.1, X.dtype)
    arrays = csr_arrays(X)
    calls = {"scipy": lambda: (X @ coef.T, X.T @ residual)}
    for name, n_threads in (("csr-1t", 1), ("csr-2t", 2), ("csr-2t-noloss", 2)):
        call = functools.partial(contract_sums, arrays, y, coef, intercept, "noloss" not in name)
        calls[name] = _with_threads(call, n_threads)
    return {name: calls[name] for name in names}


def family_data(family, n, d, nnz_per_row=None):
    """``(X, y)`` of ``family``'s float64 problem, X as the contract takes it.

    Dense: :func:`benchmarks._common.cached_data`'s (binary) or
    :func:`multiclass_data`'s X; CSR: :func:`sparse_data`'s, as
    :class:`fastlr.kernels.CsrArrays`.
    """
    loss, storage = family.split("-")
    if storage == "csr":
        X, y = sparse_data(loss, n, d, nnz_per_row)
        return csr_arrays(X), y
    return cached_data(n, d, "float64") if loss == "binary" else multiclass_data(n, d)


# Kernel epoch name -> (batch size or None for sgd, L1 strength, averaging).
_KERNEL_EPOCHS = {
    "sgd": (None, 0.0, False),
    "sgd-average": (None, 0.0, True),
    "sgd-elasticnet": (None, 1e-5, False),
    "minibatch-256": (256, 0.0, False),
    "minibatch-256-l1": (256, 1e-5, False),
}


def kernel_epoch_call(name, X, y):
    """Zero-argument callable: one epoch of the family's kernel from zero weights.

    ``name`` is one of ``KERNEL_EPOCHS``: the contract's ``sgd_epoch`` (plain,
    averaged from the first update, or with an L1 strength of 1e-5) or
    ``minibatch_epoch`` with batches of 256 (with or without L1). L2 strength
    ``SGD_ALPHA``, a constant step of 0.01, unit weights, one fixed shuffle;
    the family follows X's type and y (int64 classes are multinomial).
    """
    batch_size, l1, average = _KERNEL_EPOCHS[name]
    multinomial = y.dtype == np.int64
    module = kernels.family(X, multinomial)
    sparse = isinstance(X, kernels.CsrArrays)
    n_features, dtype = (X.n_features, X.data.dtype) if sparse else (X.shape[1], X.dtype)
    shape = (N_CLASSES, n_features) if multinomial else (n_features,)
    order = np.random.default_rng(0).permutation(y.shape[0]).astype(np.int64)
    sw, rate = np.empty(0, dtype), np.array([0.01, 0.5, 1.0])

    def run():
        coef, intercept = np.zeros(shape, dtype), np.zeros(shape[0] if multinomial else 1, dtype)
        args = kernels.EpochArgs(
            coef, intercept, True, SGD_ALPHA, l1, np.zeros(coef.size + 1),
            kernels.steps.CONSTANT, rate, 1.0, float(average), np.zeros_like(coef),
            np.zeros_like(intercept),
        )  # fmt: skip
        if batch_size is None:
            return module.sgd_epoch(X, y, sw, order, args)
        runs = _orders.whole_run(order.shape[0])
        return module.minibatch_epoch(X, y, sw, order, runs, batch_size, args)

    return run


def sparse_n_chunks(family, n, d):
    """Row chunks of the parallel CSR gradient of ``family`` on an ``n`` x ``d`` X."""
    if family == "binary":
        return kernels.binary_csr.csr_n_chunks(n, d)
    return kernels.multinomial_csr.csr_multinomial_n_chunks(n, d, N_CLASSES)


# --------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------


def sgd_c(n_samples):
    """fastlr's ``C`` that gives the penalty of ``SGDClassifier(alpha=SGD_ALPHA)``."""
    return 1.0 / (SGD_ALPHA * n_samples)


def objective(X, y, params, alpha, chunk_rows=65_536):
    """Mean log-loss plus ``alpha / 2 ||coef||^2``, in float64: binary or multinomial.

    fastlr minimizes it with ``alpha = 1 / (C n)``, SGDClassifier with its
    ``alpha``; scikit-learn's LogisticRegression minimizes ``C n`` times it.
    Computed over row chunks so float32 X is never converted whole.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    y : ndarray of shape (n_samples,)
        0/1 targets (binary) or int64 classes (multinomial).
    params : tuple
        ``(coef, intercept)``: coef of shape (n_features,) or (1, n_features)
        for the binary loss, (n_classes, n_features) for the softmax.
    alpha : float
        L2 strength.
    chunk_rows : int
        Rows converted to float64 at a time.

    Returns
    -------
    value : float
    """
    coef = np.asarray(params[0], dtype=np.float64)
    intercept = np.asarray(params[1], dtype=np.float64)
    binary = coef.ndim == 1 or coef.shape[0] == 1
    total = 0.0
    for start in range(0, X.shape[0], chunk_rows):
        rows = slice(start, start + chunk_rows)
        if binary:
            z = X[rows].astype(np.float64) @ coef.reshape(-1) + intercept.reshape(-1)[0]
            total += float(np.sum(np.logaddexp(0.0, z) - y[rows] * z))
        else:
            scores = X[rows].astype(np.float64) @ coef.T + intercept
            labels = y[rows]
            chosen = scores[np.arange(labels.shape[0]), labels]
            total += float(np.sum(logsumexp(scores, axis=1) - chosen))
    return total / X.shape[0] + 0.5 * alpha * float(np.sum(coef**2))


def _params(model):
    return model.coef_.ravel(), float(model.intercept_[0])


def _fastlr_epochs(X, y, epochs, solver, batch_size=256, seed=0, shuffle=True):
    # sgd takes SGDClassifier's own schedule: the comparison is of one algorithm.
    schedule = {"learning_rate": "optimal"} if solver == "sgd" else {}
    model = fastlr.LogisticRegression(
        solver=solver,
        C=sgd_c(X.shape[0]),
        max_iter=epochs,
        tol=None,
        batch_size=batch_size,
        shuffle=shuffle,
        random_state=seed,
        **schedule,
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
    "minibatch-256-blocks": functools.partial(
        _fastlr_epochs, solver="minibatch", batch_size=256, shuffle="blocks"
    ),
    "numpy-gd": _numpy_gd_epochs,
    "sklearn-sgd": _sklearn_sgd_epochs,
}


def epoch_call(method, X, y, epochs=1, seed=0):
    """Zero-argument callable: a fit of ``epochs`` epochs from scratch, returning its params.

    Parameters
    ----------
    method : str
        One of ``EPOCH_METHODS``: fastlr's ``"gd"``, ``"sgd"``, ``"minibatch-<batch
        size>"``, ``"minibatch-256-blocks"`` (``shuffle="blocks"``; all with
        ``C = sgd_c(n)``, ``tol=None``), ``"numpy-gd"``
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


def _first_epoch_order(n_samples, seed):
    """The row order of the first epoch of a fit with ``random_state=seed``, drawn by the
    solvers' own :func:`fastlr._orders.row_orders`."""
    orders = _orders.row_orders(n_samples, np.random.RandomState(seed), ahead=False)
    order = next(orders).copy()
    orders.close()
    return order


def shuffled_read_call(X, seed=0):
    """Zero-argument callable: the floor of a row-shuffled mini-batch epoch.

    One parallel read (a sum, :func:`fastlr.kernels.reduction.parallel_rows_sum`,
    on numba's threads as the epoch) of X's rows in the order of the first epoch
    of a fit with ``random_state=seed``: the rows the epoch reads, in its order,
    and nothing else.
    """
    order = _first_epoch_order(X.shape[0], seed)
    n_chunks = reduction.n_chunks_for(X.shape[0])
    return functools.partial(reduction.parallel_rows_sum, X, order, n_chunks)


def minibatch_pieces_calls(X, y, batch_size=256, seed=0):
    """Zero-argument callables of the two pieces of a row-shuffled mini-batch epoch in a fit.

    ``"kernel"``: the binary dense epoch kernel alone over the order of
    :func:`shuffled_read_call` (L2 strength ``SGD_ALPHA``, a constant step of
    0.01, from zero weights); ``"shuffle"``: drawing the next epoch's order
    (:func:`fastlr._orders.row_orders` shuffles the previous one in place).
    """
    order = _first_epoch_order(X.shape[0], seed)
    runs = _orders.whole_run(order.shape[0])
    targets, sw = y.astype(X.dtype), np.empty(0, X.dtype)
    rate = np.array([0.01, 0.5, 1.0])

    def kernel():
        coef, intercept = np.zeros(X.shape[1], X.dtype), np.zeros(1, X.dtype)
        args = kernels.EpochArgs(
            coef, intercept, True, SGD_ALPHA, 0.0, np.zeros(0), kernels.steps.CONSTANT, rate, 1.0
        )
        return kernels.binary_dense.minibatch_epoch(X, targets, sw, order, runs, batch_size, args)

    shuffled, rng = order.copy(), np.random.RandomState(seed)
    return {"kernel": kernel, "shuffle": functools.partial(rng.shuffle, shuffled)}


def lbfgs_alpha(n_samples):
    """L2 strength on the mean loss of ``LogisticRegression(C=LBFGS_C)``."""
    return 1.0 / (LBFGS_C * n_samples)


@functools.cache
def _blas_controller():
    return ThreadpoolController()


def _blas_limit(n_threads):
    """BLAS limited to ``n_threads`` (None: as it is), by a controller made once.

    ``threadpool_limits`` scans the loaded libraries on every call (1-3 ms, 5% of
    a digits fit), which would be charged to the library timed.
    """
    if n_threads is None:
        return contextlib.nullcontext()
    return _blas_controller().limit(limits=n_threads, user_api="blas")


def _lbfgs_fit(library, X, y, max_iter):
    if library == "fastlr":
        model = fastlr.LogisticRegression(C=LBFGS_C, max_iter=max_iter, tol=None)
    else:
        model = SklearnLogisticRegression(C=LBFGS_C, max_iter=max_iter, tol=0.0)
    with _blas_limit(1 if library == "sklearn-blas1" else None):
        model.fit(X, y)
    return (model.coef_, model.intercept_), int(model.n_iter_[0])


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
    """Zero-argument callable: an lbfgs fit of at most ``max_iter`` iterations from zero.

    Returns ``((coef, intercept), n_iter)``. ``library`` is ``"fastlr"``,
    ``"sklearn"`` (``LogisticRegression(solver="lbfgs")``) or ``"sklearn-blas1"``
    (the same with one BLAS thread), all with ``C=LBFGS_C`` and no gradient
    tolerance, so ``max_iter`` sets the work. fastlr's lbfgs runs BLAS on one
    thread itself.
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
def lbfgs_plan(n, d, dtype="float64", multinomial=False):
    """Iterations each library's lbfgs needs to reach the optimum within ``TARGET_GAP``.

    The optimum ``f*`` is the lower objective of both libraries' tight fits
    (``max_iter=LBFGS_TIGHT_MAX_ITER``); a fit has reached it when its relative
    gap ``(f - f*) / f*`` is at most ``TARGET_GAP``. The fewest such
    iterations are found by bisection.

    Parameters
    ----------
    n, d : int
        Shape of the data: :func:`benchmarks._common.cached_data`'s (binary),
        or :func:`multiclass_data`'s with ``multinomial``.
    dtype : str
        dtype of the binary X (the multinomial one is float64).
    multinomial : bool
        The softmax loss over ``N_CLASSES`` classes. scikit-learn's plan is
        then searched with one BLAS thread (its iterates do not depend on it)
        and holds for ``"sklearn"`` and ``"sklearn-blas1"``.

    Returns
    -------
    plan : dict of str to tuple
        ``library -> (max_iter, gap)``: the fewest iterations that reach the
        optimum and the gap they reach; ``(None, gap of the tight fit)`` when
        even the tight fit misses it.
    """
    X, y = multiclass_data(n, d) if multinomial else cached_data(n, d, dtype)
    alpha = lbfgs_alpha(n)
    searched = ("fastlr", "sklearn-blas1" if multinomial else "sklearn")
    tight = {lib: lbfgs_call(lib, X, y, LBFGS_TIGHT_MAX_ITER)() for lib in searched}
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
    if multinomial:
        plan["sklearn"] = plan["sklearn-blas1"]
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
    each dtype, and the multinomial and CSR gradients on one row chunk and on
    several (the serial and the parallel kernel), so no timed call pays for
    JIT compilation.
    """
    for dtype in DTYPES:
        X, y = generate_data(512, 8, dtype)
        for kernel in GRID_KERNELS:
            gradient_call(kernel, X, y)()
        for method in EPOCH_METHODS:
            epoch_call(method, X, y)()
        shuffled_read_call(X)()
        minibatch_pieces_calls(X, y)["kernel"]()
        for solver in FIT_SOLVERS:
            fit_call(solver, X, y)()
        for family in SPARSE_FAMILIES:
            n_classes = None if family == "binary" else N_CLASSES
            X, y = generate_sparse(5000, 16, 4, dtype, n_classes)
            for rows in (slice(0, 500), slice(None)):
                for call in sparse_gradient_calls(X[rows], y[rows]).values():
                    call()
    X, y = small_multiclass_data(5000, 8)
    for storage in (X, csr_arrays(scipy.sparse.csr_matrix(X))):
        for labels in ((y == 0).astype(X.dtype), y):
            for name in KERNEL_EPOCHS:
                kernel_epoch_call(name, storage, labels)()
    for kernel in MULTINOMIAL_KERNELS:
        multinomial_gradient_call(kernel, X[:500], y[:500])()
        multinomial_gradient_call(kernel, X, y)()
    lbfgs_call("fastlr", X, y, 2)()
