"""Slow, obviously-correct references that the kernel tests compare with, and what they share.

Everything here is plain Python loops and float64 NumPy, written to be read
rather than to be fast. The tests import it as ``import naive`` (pytest puts
``tests/`` on ``sys.path``).

Problems
    Random problems of the kernel tests (dense and CSR, binary and
    multinomial) and the standardized scikit-learn data sets.
Comparisons
    Relative closeness of arrays and of the contract's ``(grad_coef,
    grad_intercept, loss_sum)`` triples.
Oracles
    The softmax gradient sums, the penalized objective of every test, finite
    differences, and the sgd and mini-batch epochs with explicit weights.
Running the kernels
    The contract's sums into fresh buffers, epochs run back to back, and the
    check that a CSR epoch equals the dense epoch on ``X.toarray()``.

Tolerances (``RTOL``): a compiled kernel adds in another order than NumPy or
than its dense twin, a few ulps per term in float64, far below 1e-10
relative; float32 accumulates in float32, about ``sqrt(n) * 6e-8`` relative
over n ~ 1e3 to 1e4 terms, so 1e-4 leaves a wide margin.
"""

from typing import NamedTuple

import numpy as np
import pytest
import scipy.sparse
from scipy.special import logsumexp
from sklearn.preprocessing import StandardScaler

from fastlr import kernels, reference
from fastlr._orders import whole_run
from fastlr._threads import numba_threads
from fastlr._validation import csr_arrays

RTOL = {np.float64: 1e-10, np.float32: 1e-4}


# --------------------------------------------------------------------------
# Problems
# --------------------------------------------------------------------------


def binary_problem(n=5000, d=7, scale=1.0, dtype=np.float64, seed=0):
    """Random binary problem with scores of magnitude ~``scale``: ``(X, y, coef, intercept)``.

    The default n spans several chunks, so the parallel gradient runs its
    prange kernel (one chunk falls back to the serial loop). y is float 0/1,
    the intercept a Python float.
    """
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    y = (rng.random(n) < 0.4).astype(float)
    coef = rng.standard_normal(d) * scale / np.sqrt(d)
    return X.astype(dtype), y, coef.astype(dtype), 0.3 * scale


def multinomial_problem(n=5000, d=6, n_classes=4, scale=1.0, dtype=np.float64, seed=0):
    """Random multinomial problem with scores of magnitude ~``scale``.

    Labels are drawn from the model's own softmax (the Gumbel-max trick), so
    there is something to learn. Returns ``(X, y, sw, coef, intercept)``: X
    C-contiguous, y int64 classes, positive weights, coef (n_classes, d) and
    intercept (n_classes,), all floats in ``dtype``. The default n spans
    several chunks of the parallel kernel.
    """
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    coef = rng.standard_normal((n_classes, d)) * scale / np.sqrt(d)
    intercept = rng.standard_normal(n_classes) * 0.3 * scale
    scores = X @ coef.T + intercept + rng.gumbel(size=(n, n_classes))
    y = np.argmax(scores, axis=1).astype(np.int64)
    sw = rng.uniform(0.5, 2.0, size=n)
    return tuple(a.astype(dtype) if a is not y else a for a in (X, y, sw, coef, intercept))


def csr_problem(
    n=6000, d=60, n_classes=None, density=0.03, empty_rows=0.1, dtype=np.float64,
    index_dtype=np.int32, seed=0,
):  # fmt: skip
    """Random CSR problem: ~``density`` non-zeros, a fraction ``empty_rows`` of rows empty.

    The default n spans several chunks of the parallel gradient.

    Returns
    -------
    X : csr_matrix of shape (n, d)
    y : ndarray of shape (n,)
        Binary (``n_classes`` None): 0/1 in ``dtype``. Else int64 classes.
    coef : ndarray of shape (d,) or (n_classes, d)
    intercept : scalar of ``dtype`` (binary) or ndarray of shape (n_classes,)
    """
    rng = np.random.default_rng(seed)
    X = scipy.sparse.random(
        n, d, density=density, format="csr", dtype=dtype, random_state=rng,
        data_rvs=rng.standard_normal,
    )  # fmt: skip
    keep = (rng.random(n) >= empty_rows).astype(dtype)
    X = (scipy.sparse.diags(keep) @ X).tocsr()
    X.eliminate_zeros()
    X.indices = X.indices.astype(index_dtype)
    X.indptr = X.indptr.astype(index_dtype)
    if n_classes is None:
        y = (rng.random(n) < 0.4).astype(dtype)
        coef = (rng.standard_normal(d) * 2.0).astype(dtype)
        return X, y, coef, dtype(0.3)
    y = rng.integers(0, n_classes, size=n).astype(np.int64)
    coef = rng.standard_normal((n_classes, d)).astype(dtype)
    intercept = (rng.standard_normal(n_classes) * 0.3).astype(dtype)
    return X, y, coef, intercept


def csr_epoch_problem(
    dtype, index_dtype, weighted, n_classes=None, density=0.1, empty_rows=0.1, eta0=0.05
):
    """``(X, y, sw, order, coef, intercept, rate)``: a CSR problem of 1500 x 40 to run epochs on.

    ``rate`` is ``(eta0, 0.5, 10.0)``: eta0, power_t and t0 of the schedule.
    """
    n = 1500
    X, y, coef, intercept = csr_problem(
        n=n, d=40, n_classes=n_classes, density=density, empty_rows=empty_rows, dtype=dtype,
        index_dtype=index_dtype,
    )  # fmt: skip
    order = np.random.default_rng(4).permutation(n).astype(np.int64)
    rate = np.array([eta0, 0.5, 10.0])
    return X, y, sample_weights(n, dtype, weighted), order, coef * dtype(0.1), intercept, rate


def sample_weights(n, dtype, weighted, seed=1):
    """Integer weights in {0, 1, 2, 3}, or the empty array meaning unit weights."""
    if not weighted:
        return np.empty(0, dtype)
    return np.random.default_rng(seed).integers(0, 4, size=n).astype(dtype)


def standardized(loader):
    """A scikit-learn data set with standardized features: ``(X, y)``, X C-contiguous float64."""
    X, y = loader(return_X_y=True)
    return np.ascontiguousarray(StandardScaler().fit_transform(X)), y


# --------------------------------------------------------------------------
# Comparisons
# --------------------------------------------------------------------------


def assert_close(actual, expected, rtol):
    """Relative closeness: an array measured against its norm, a scalar by ``pytest.approx``."""
    if np.ndim(expected) == 0:
        assert actual == pytest.approx(expected, rel=rtol)
        return
    actual, expected = np.asarray(actual, float), np.asarray(expected, float)
    scale = max(np.linalg.norm(expected), 1e-300)
    assert np.linalg.norm(actual - expected) <= rtol * scale


def assert_sums_close(actual, expected, rtol, dtype=None):
    """Closeness of ``(grad_coef, grad_intercept, loss_sum)`` triples, each by :func:`assert_close`.

    With ``dtype``, the triple's arrays (not its scalars) must also be in it.
    """
    for got, want in zip(actual, expected, strict=True):
        if dtype is not None and isinstance(got, np.ndarray):
            assert got.dtype == dtype
        assert_close(got, want, rtol)


def assert_bitwise_equal_across_threads(call, thread_counts=(1, 2, 1, 2)):
    """``call()`` returns the same tuple, bit for bit, on each number of numba threads in turn."""
    results = []
    for n_threads in thread_counts:
        with numba_threads(n_threads):
            results.append(call())
    for result in results[1:]:
        for got, first in zip(result, results[0], strict=True):
            assert np.array_equal(got, first)


# --------------------------------------------------------------------------
# Oracles
# --------------------------------------------------------------------------


def softmax_sums(X, y, sw, coef, intercept):
    """Multinomial gradient and loss sums in float64 NumPy, from the stable log-softmax.

    Returns ``(grad_coef, grad_intercept, loss_sum)``: ``sum_i sw_i (p_i - e_{y_i})
    x_i^T``, ``sum_i sw_i (p_i - e_{y_i})`` and ``sum_i sw_i (logsumexp(z_i) - z_i[y_i])``;
    an empty ``sw`` means unit weights.
    """
    X = np.asarray(X, dtype=np.float64)
    n = X.shape[0]
    sw = np.ones(n) if len(sw) == 0 else np.asarray(sw, dtype=np.float64)
    scores = X @ np.asarray(coef, np.float64).T + np.asarray(intercept, np.float64)
    log_prob = scores - logsumexp(scores, axis=1, keepdims=True)
    rows = np.arange(n)
    residual = np.exp(log_prob)
    residual[rows, y] = 0.0
    residual[rows, y] = -residual.sum(axis=1)
    residual *= sw[:, None]
    return residual.T @ X, residual.sum(axis=0), float(sw @ -log_prob[rows, y])


def objective(
    coef, intercept, X, y, sample_weight=None, *, alpha=0.0, C=None, l1_ratio=0.0, classes=None
):
    """The penalized (weighted) mean log-loss, in float64: binary or multinomial, dense or sparse.

    ``sum_i sw_i loss_i / S + alpha / 2 ||W||^2 + ((1 - r) / 2 ||W||^2 + r ||W||_1) / (C S)``
    with ``S = sum_i sw_i`` and ``r = l1_ratio``: ``alpha`` is the L2 strength
    on the mean loss (``SGDClassifier``'s and the kernels'), ``C`` that of
    scikit-learn's ``LogisticRegression`` (whose objective is this one times
    ``C S``; None: no such term).

    Parameters
    ----------
    coef : array-like of shape (n_features,), (1, n_features) or (n_classes, n_features)
        One row (or a 1-D array): the binary loss of the sigmoid; several: the softmax.
    intercept : float or array-like of shape (1,) or (n_classes,)
    X : array-like or sparse matrix of shape (n_samples, n_features)
    y : array-like of shape (n_samples,)
        Class indices (0/1 for the binary loss), or labels when ``classes`` is given.
    sample_weight : array-like of shape (n_samples,), optional
        None or empty: unit weights.
    classes : array-like, optional
        Sorted labels whose positions are the class indices.
    """
    X = np.asarray(X.toarray() if scipy.sparse.issparse(X) else X, dtype=np.float64)
    coef = np.atleast_2d(np.asarray(coef, dtype=np.float64))
    scores = X @ coef.T + np.asarray(intercept, dtype=np.float64)
    labels = np.asarray(y) if classes is None else np.searchsorted(classes, y)
    if coef.shape[0] == 1:
        z = scores[:, 0]
        losses = np.logaddexp(0.0, z) - labels * z
    else:
        losses = logsumexp(scores, axis=1) - scores[np.arange(len(labels)), labels]
    no_weights = sample_weight is None or len(sample_weight) == 0
    sw = np.ones(len(labels)) if no_weights else np.asarray(sample_weight, dtype=np.float64)
    total = sw.sum()
    squares, absolutes = float(np.sum(coef**2)), float(np.abs(coef).sum())
    value = sw @ losses / total + 0.5 * alpha * squares
    if C is not None:
        value += ((1 - l1_ratio) / 2 * squares + l1_ratio * absolutes) / (C * total)
    return float(value)


# Central differences: (shift, weight) pairs and the denominator's multiple of h.
STENCILS = {
    2: (((-1, -1.0), (1, 1.0)), 2),
    4: (((-2, 1.0), (-1, -8.0), (1, 8.0), (2, -1.0)), 12),
}


def finite_difference(f, x, h, order=2):
    """Gradient of ``f`` at ``x`` by central differences, one coordinate at a time.

    ``order`` 2: ``(f(x + h) - f(x - h)) / 2h``, truncation error ``~h^2 f'''``;
    ``order`` 4: ``(f(x - 2h) - 8 f(x - h) + 8 f(x + h) - f(x + 2h)) / 12h``,
    truncation error ``h^4 f^(5) / 30``.
    """
    stencil, multiple = STENCILS[order]
    grad = np.empty_like(x)
    for j in range(x.shape[0]):
        step = np.zeros_like(x)
        step[j] = h
        grad[j] = sum(weight * f(x + shift * step) for shift, weight in stencil) / (multiple * h)
    return grad


class SgdEpoch(NamedTuple):
    """What :func:`naive_sgd_epoch` returns."""

    coef: np.ndarray
    intercept: object  # a float when the intercept came as a scalar, else an ndarray
    avg_coef: np.ndarray
    avg_intercept: object
    t: int
    loss_sum: float


def naive_sgd_epoch(
    X, y, order, coef, intercept, alpha, eta, *, l1=0.0, sw=None, average_start=0, t=1
):
    """Per-example SGD with an explicit L2 shrink, in float64 NumPy: the rule the kernels follow.

    For each example ``i`` of ``order``, with step ``eta_t``: the residual
    ``r = sw_i (p - y_i)`` (binary: the sigmoid, ``coef`` 1-D; multinomial:
    ``p - e_{y_i}`` of the softmax, ``coef`` 2-D), then ``W <- (1 - eta_t
    alpha) W - eta_t r x_i`` and ``b <- b - eta_t r``. With ``l1``, the
    cumulative L1 penalty of Tsuruoka et al. on the explicit weights: each
    weight moves toward 0, never across it, by the penalty ``u`` accumulated
    so far less what it already received. With ``average_start``, from update
    ``t >= average_start`` on, the running mean of the iterates after each
    update.

    Parameters
    ----------
    eta : float or callable
        The step size, or a function of the update counter ``t`` returning it.
    sw : ndarray, optional
        Sample weights (None: unit weights).
    t : int
        The counter of the first update (counted from 1).

    Returns
    -------
    SgdEpoch
        The final weights, the averages (zero until averaging starts), the
        counter after the epoch and the sum of each example's weighted loss
        before its update.
    """
    scalar_intercept = np.ndim(intercept) == 0
    coef, intercept = np.array(coef, float), np.array(intercept, float)
    avg_coef, avg_intercept = np.zeros_like(coef), np.zeros_like(intercept)
    flat = coef.reshape(-1)  # a view: the L1 step works on flat weights
    received, penalty, loss_sum = np.zeros(flat.shape[0]), 0.0, 0.0
    for i in order:
        step = eta(t) if callable(eta) else eta
        weight = 1.0 if sw is None else sw[i]
        scores = coef @ X[i] + intercept
        if coef.ndim == 1:
            residual = weight * (float(reference.numpy_sigmoid(np.array(scores))) - y[i])
            loss_sum += weight * (np.logaddexp(0.0, scores) - y[i] * scores)
        else:
            log_prob = scores - logsumexp(scores)
            residual = weight * (np.exp(log_prob) - np.eye(coef.shape[0])[y[i]])
            loss_sum -= weight * log_prob[y[i]]
        coef *= 1 - step * alpha
        coef -= step * np.multiply.outer(residual, X[i])
        if l1 > 0.0:
            penalty += step * l1
            for j in range(flat.shape[0]):
                before = flat[j]
                if before > 0:
                    flat[j] = max(0.0, before - (penalty + received[j]))
                elif before < 0:
                    flat[j] = min(0.0, before + (penalty - received[j]))
                received[j] += flat[j] - before
        intercept = intercept - step * residual
        if average_start > 0 and t >= average_start:
            mu = 1.0 / (t - average_start + 1)
            avg_coef += mu * (coef - avg_coef)
            avg_intercept += mu * (intercept - avg_intercept)
        t += 1
    if scalar_intercept:
        intercept, avg_intercept = float(intercept), float(avg_intercept)
    return SgdEpoch(coef, intercept, avg_coef, avg_intercept, t, loss_sum)


def naive_minibatch_epoch(X, y, sw, order, batch_size, coef, intercept, alpha, eta, runs=None):
    """Multinomial mini-batch SGD on the weighted mean gradient plus ``alpha W``, in NumPy.

    ``eta`` is a function of the batch counter (from 1). The batches are cut
    from each ``[start, stop)`` run of positions in turn (default: one run
    over ``order``); position ``k`` is row ``order[k]``, or ``k`` when
    ``order`` is empty. Returns ``(coef, intercept)``.
    """
    coef, intercept = coef.astype(float), intercept.astype(float)
    runs = [(0, len(order))] if runs is None else runs
    positions = np.asarray(order) if len(order) else np.arange(max(stop for _, stop in runs))
    batches = [
        positions[start : min(start + batch_size, stop)]
        for first, stop in runs
        for start in range(first, stop, batch_size)
    ]
    for t, rows in enumerate(batches, start=1):
        grad, grad_b, _ = softmax_sums(X[rows], y[rows], sw[rows], coef, intercept)
        weight = float(np.sum(sw[rows]))
        coef = coef - eta(t) * (grad / weight + alpha * coef)
        intercept = intercept - eta(t) * grad_b / weight
    return coef, intercept


def invscaling(eta0, power_t):
    """scikit-learn's "invscaling" schedule as a function of the update counter."""
    return lambda t: eta0 / t**power_t


# --------------------------------------------------------------------------
# Running the kernels
# --------------------------------------------------------------------------


def contract_sums(X, y, sw, coef, intercept, with_loss=True):
    """:func:`fastlr.kernels.gradient_sums` into fresh zero buffers: ``(grad, grad_b, loss)``."""
    grad, grad_b = np.zeros_like(coef), np.zeros_like(intercept)
    loss = kernels.gradient_sums(X, y, sw, coef, intercept, with_loss, grad, grad_b)
    return grad, grad_b, loss


class EpochRun(NamedTuple):
    """The state after :func:`run_epochs`."""

    coef: np.ndarray
    intercept: np.ndarray
    l1_state: np.ndarray
    losses: list
    t: float
    avg_coef: np.ndarray
    avg_intercept: np.ndarray


def run_epochs(
    epoch, data_args, y, sw, order, coef, intercept, *, alpha, l1, schedule, rate,
    batch_size=None, fit_intercept=True, average_start=0, n_epochs=1, runs=None,
):  # fmt: skip
    """``n_epochs`` epochs of an epoch kernel from copies of ``(coef, intercept)``.

    ``epoch`` is an sgd kernel, or with ``batch_size`` a mini-batch one, called
    positionally after ``data_args`` (``(X,)`` or the CSR arrays), with
    ``runs`` (default: one run over ``order``) before ``batch_size``; ``t``, the
    L1 state and the averages (sgd, from update ``average_start`` on; 0: off)
    carry over from one epoch to the next. Returns an :class:`EpochRun` with
    one loss sum per epoch.
    """
    coef = coef.copy()
    intercept = np.array(intercept, coef.dtype).reshape(-1)
    avg_coef, avg_intercept = np.zeros_like(coef), np.zeros_like(intercept)
    l1_state = np.zeros(coef.size + 1)
    runs = whole_run(order.shape[0]) if runs is None else runs
    batch = () if batch_size is None else (runs, batch_size)
    averaging = () if batch else (float(average_start), avg_coef, avg_intercept)
    t, losses = 1.0, []
    for _ in range(n_epochs):
        loss_sum, t = epoch(
            *data_args, y, sw, order, *batch, coef, intercept, fit_intercept, alpha, l1,
            l1_state, schedule, rate, t, *averaging,
        )  # fmt: skip
        losses.append(loss_sum)
    return EpochRun(coef, intercept, l1_state, losses, t, avg_coef, avg_intercept)


# (alpha, l1) and schedule of the CSR sgd epochs compared with the dense ones.
CSR_SGD_CASES = [
    ((0.0, 0.0), kernels.steps.INVSCALING),
    ((0.01, 0.0), kernels.steps.OPTIMAL),
    # W shrinks by 0.975 a step: the weight scale falls below 1e-9 every
    # ~800 steps and is folded back into coef mid-epoch.
    ((0.5, 0.0), kernels.steps.CONSTANT),
    # Pure L1: the lazy truncation catches up to the dense one exactly.
    ((0.0, 0.01), kernels.steps.CONSTANT),
    ((0.0, 0.002), kernels.steps.OPTIMAL),
]


def assert_csr_epochs_equal(
    epoch_pair, problem, dtype, *, penalty, schedule, batch_size=None, fit_intercept=True,
    runs=None,
):  # fmt: skip
    """Two epochs of the CSR kernel and of the dense one on ``X.toarray()`` reach the same state.

    ``epoch_pair`` is ``(csr_epoch, dense_epoch)``, ``problem`` a
    :func:`csr_epoch_problem`; ``penalty`` is ``(alpha, l1)``. With ``runs``
    (mini-batch epochs), the batches are cut from those runs of contiguous
    rows instead of the problem's order. The weights,
    the L1 state and the losses agree to ``RTOL[dtype]``, ``t`` exactly; a
    binary intercept is compared as a scalar. Returns the CSR run.
    """
    X, y, sw, order, coef, intercept, rate = problem
    if runs is not None:
        order = np.empty(0, np.int64)  # positions are rows
    settings = dict(
        alpha=penalty[0], l1=penalty[1], schedule=schedule, rate=rate, batch_size=batch_size,
        fit_intercept=fit_intercept, n_epochs=2, runs=runs,
    )  # fmt: skip
    start = (y, sw, order, coef, intercept)
    ours = run_epochs(epoch_pair[0], csr_arrays(X)[:3], *start, **settings)
    dense = run_epochs(epoch_pair[1], (X.toarray(),), *start, **settings)
    rtol = RTOL[dtype]
    assert ours.coef.dtype == dtype and ours.intercept.dtype == dtype and ours.t == dense.t
    assert_close(ours.coef, dense.coef, rtol)
    if coef.ndim == 1:
        assert_close(ours.intercept[0], dense.intercept[0], rtol)
    else:
        assert_close(ours.intercept, dense.intercept, rtol)
    assert_close(ours.l1_state, dense.l1_state, rtol)
    assert ours.losses == pytest.approx(dense.losses, rel=rtol)
    return ours
