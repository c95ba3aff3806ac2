"""CSR multinomial kernels and estimator against the dense ones on ``X.toarray()``.

Tolerances, as in :mod:`fastlr.kernels.multinomial_csr`: the CSR and dense kernels
add the same products in a different order (the dense loops also add the
zeros, vectorized under reassociation); everything after the scores is the
same code. float64 differs by a few ulps per term, far below 1e-10 relative;
float32 accumulates about ``sqrt(n) * 6e-8`` relative over n ~ 1e3 to 1e4
terms, so 1e-4 leaves a wide margin. The epochs and the solvers apply the same
steps to values that differ by that rounding; on these well-conditioned
problems (standardized, penalized) the iterations contract, so the same
tolerances hold for the trained models. The parallel gradient is compared with
itself bitwise across thread counts.
"""

import numpy as np
import pytest
import scipy.sparse
from sklearn.base import clone
from sklearn.datasets import load_iris, load_wine
from sklearn.preprocessing import StandardScaler

import fastlr
from fastlr._datafits import make_datafit
from fastlr._threads import numba_threads
from fastlr._validation import csr_arrays
from fastlr.kernels import binary_csr, multinomial_csr, multinomial_dense, reduction, steps
from fastlr.kernels.multinomial_csr import (
    csr_multinomial_fused_gradient,
    csr_multinomial_minibatch_epoch,
    csr_multinomial_n_chunks,
    csr_multinomial_rows_gradient,
    csr_multinomial_sgd_epoch,
)
from fastlr.kernels.multinomial_dense import (
    multinomial_minibatch_epoch,
    multinomial_rows_gradient,
    multinomial_sgd_epoch,
)

DTYPES = (np.float64, np.float32)
# (data dtype, index dtype): int64 indices in float64 only, which saves
# compiling a fourth signature of every kernel (~10 s).
FORMATS = [(np.float64, np.int32), (np.float32, np.int32), (np.float64, np.int64)]
RTOL = {np.float64: 1e-10, np.float32: 1e-4}
NO_ORDER = np.empty(0, np.int64)


def make_problem(
    n=6000, d=40, n_classes=4, density=0.1, empty_rows=0.1, dtype=np.float64,
    index_dtype=np.int32, seed=0,
):  # fmt: skip
    """Random CSR problem: ~``density`` non-zeros, a fraction ``empty_rows`` of rows empty.

    The default n spans several chunks of the parallel gradient.

    Returns
    -------
    X : csr_matrix of shape (n, d)
    y : ndarray of shape (n,)
        int64 classes.
    coef : ndarray of shape (n_classes, d)
    intercept : ndarray of shape (n_classes,)
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
    y = rng.integers(0, n_classes, size=n).astype(np.int64)
    coef = rng.standard_normal((n_classes, d)).astype(dtype)
    intercept = (rng.standard_normal(n_classes) * 0.3).astype(dtype)
    return X, y, coef, intercept


def make_weights(n, dtype, weighted, seed=1):
    """Integer weights in {0, 1, 2, 3}, or the empty array meaning unit weights."""
    if not weighted:
        return np.empty(0, dtype)
    return np.random.default_rng(seed).integers(0, 4, size=n).astype(dtype)


def csr_sums(X, y, sw, coef, intercept, with_loss=True):
    """``multinomial_csr.gradient_sums`` into fresh zero buffers."""
    grad, grad_b = np.zeros_like(coef), np.zeros_like(intercept)
    cost = multinomial_csr.gradient_sums(
        csr_arrays(X), y, sw, coef, intercept, with_loss, grad, grad_b
    )
    return grad, grad_b, cost


def dense_sums(X, y, sw, coef, intercept):
    """The dense kernel's sums on ``X.toarray()``."""
    grad, grad_b = np.zeros_like(coef), np.zeros_like(intercept)
    cost = multinomial_dense.gradient_sums(X.toarray(), y, sw, coef, intercept, True, grad, grad_b)
    return grad, grad_b, cost


def assert_close(actual, expected, rtol):
    """Relative closeness of an array measured against its norm."""
    actual, expected = np.asarray(actual, float), np.asarray(expected, float)
    scale = max(np.linalg.norm(expected), 1e-300)
    assert np.linalg.norm(actual - expected) <= rtol * scale


def assert_sums_close(actual, expected, dtype):
    """``(grad_coef, grad_intercept, loss_sum)`` of a CSR kernel against a dense one."""
    assert actual[0].dtype == dtype and actual[1].dtype == dtype
    assert_close(actual[0], expected[0], RTOL[dtype])
    assert_close(actual[1], expected[1], RTOL[dtype])
    assert actual[2] == pytest.approx(expected[2], rel=RTOL[dtype])


# --------------------------------------------------------------------------
# Gradient
# --------------------------------------------------------------------------


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize(("dtype", "index_dtype"), FORMATS)
def test_gradient_sums_equal_the_dense_kernel(dtype, index_dtype, weighted):
    X, y, coef, intercept = make_problem(dtype=dtype, index_dtype=index_dtype)
    assert (np.diff(X.indptr) == 0).any()
    assert csr_multinomial_n_chunks(*X.shape, coef.shape[0]) > 1
    sw = make_weights(X.shape[0], dtype, weighted)
    actual = csr_sums(X, y, sw, coef, intercept)
    assert_sums_close(actual, dense_sums(X, y, sw, coef, intercept), dtype)


# (n, d, K): one chunk with a short last block, wide rows (blocks cut by their
# non-zeros), ten classes.
@pytest.mark.parametrize(("n", "d", "n_classes"), [(301, 6, 3), (400, 3000, 3), (1001, 9, 10)])
@pytest.mark.parametrize("dtype", DTYPES)
def test_serial_gradient_equals_the_dense_kernel(dtype, n, d, n_classes):
    X, y, coef, intercept = make_problem(n, d, n_classes, density=0.3, dtype=dtype)
    assert csr_multinomial_n_chunks(n, d, n_classes) == 1
    sw = make_weights(n, dtype, True)
    actual = csr_sums(X, y, sw, coef, intercept)
    assert_sums_close(actual, dense_sums(X, y, sw, coef, intercept), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_rows_gradient_over_an_order_slice_equals_the_dense_rows(dtype):
    X, y, coef, intercept = make_problem(n=700, dtype=dtype)
    order = np.random.default_rng(3).permutation(700).astype(np.int64)
    sw = make_weights(700, dtype, True)
    actual = (np.zeros_like(coef), np.zeros_like(intercept))
    cost = csr_multinomial_rows_gradient(
        *csr_arrays(X)[:3], y, sw, order, 100, 600, coef, intercept, True, *actual
    )
    expected = (np.zeros_like(coef), np.zeros_like(intercept))
    dense_cost = multinomial_rows_gradient(
        X.toarray(), y, sw, order, 100, 600, coef, intercept, True, *expected
    )
    assert_sums_close((*actual, cost), (*expected, dense_cost), dtype)


def test_fused_gradient_equals_the_serial_one():
    X, y, coef, intercept = make_problem()
    sw = make_weights(X.shape[0], np.float64, True)
    arrays = csr_arrays(X)[:3]
    fused = (np.zeros_like(coef), np.zeros_like(intercept))
    cost = csr_multinomial_fused_gradient(*arrays, y, sw, coef, intercept, True, 5, *fused)
    serial = (np.zeros_like(coef), np.zeros_like(intercept))
    serial_cost = csr_multinomial_rows_gradient(
        *arrays, y, sw, NO_ORDER, 0, X.shape[0], coef, intercept, True, *serial
    )
    assert_sums_close((*fused, cost), (*serial, serial_cost), np.float64)


@pytest.mark.parametrize("dtype", DTYPES)
def test_parallel_gradient_is_bitwise_identical_across_threads(dtype):
    X, y, coef, intercept = make_problem(n=20_000, dtype=dtype)
    assert csr_multinomial_n_chunks(*X.shape, coef.shape[0]) > 2
    sw = make_weights(X.shape[0], dtype, True)
    results = []
    for n_jobs in (1, 2, 1, 2):
        with numba_threads(n_jobs):
            results.append(csr_sums(X, y, sw, coef, intercept))
    for grad, grad_b, cost in results[1:]:
        assert np.array_equal(grad, results[0][0])
        assert np.array_equal(grad_b, results[0][1])
        assert cost == results[0][2]


def test_chunk_partials_are_capped_by_classes_times_features():
    n_chunks = binary_csr.MAX_PARTIAL_ELEMENTS // (10 * 10**4)
    assert csr_multinomial_n_chunks(10**6, 10**4, 10) == n_chunks
    assert csr_multinomial_n_chunks(10**6, 10, 3) == reduction.n_chunks_for(10**6)
    assert csr_multinomial_n_chunks(10**6, 10**8, 3) == 1


def test_capped_chunking_still_equals_the_dense_kernel(monkeypatch):
    X, y, coef, intercept = make_problem()
    monkeypatch.setattr(binary_csr, "MAX_PARTIAL_ELEMENTS", 3 * coef.size)
    assert csr_multinomial_n_chunks(*X.shape, coef.shape[0]) == 3
    sw = np.empty(0)
    actual = csr_sums(X, y, sw, coef, intercept)
    assert_sums_close(actual, dense_sums(X, y, sw, coef, intercept), np.float64)


@pytest.mark.parametrize("n", [300, 6000])
def test_gradient_without_loss_skips_only_the_loss(n):
    X, y, coef, intercept = make_problem(n=n)
    sw = np.empty(0)
    grad, grad_b, cost = csr_sums(X, y, sw, coef, intercept, with_loss=False)
    full = csr_sums(X, y, sw, coef, intercept)
    assert cost == 0.0 and full[2] > 0.0
    assert np.array_equal(grad, full[0]) and np.array_equal(grad_b, full[1])


def test_sums_are_added_into_the_buffers_and_row_slices_add_up():
    X, y, coef, intercept = make_problem()
    sw = make_weights(X.shape[0], np.float64, True)
    full = csr_sums(X, y, sw, coef, intercept)
    grad, grad_b, cost = np.ones_like(coef), np.ones_like(intercept), 0.0
    for rows in np.array_split(np.arange(X.shape[0]), 3):
        cost += multinomial_csr.gradient_sums(
            csr_arrays(X[rows]), y[rows], sw[rows], coef, intercept, True, grad, grad_b
        )
    assert_close(grad - 1, full[0], 1e-12)
    assert_close(grad_b - 1, full[1], 1e-12)
    assert cost == pytest.approx(full[2], rel=1e-12)


def test_duplicate_and_unsorted_entries_count_as_scipy_counts_them():
    data = np.array([1.0, 2.0, -1.0, 0.5, 3.0])
    indices = np.array([2, 0, 2, 1, 0], dtype=np.int32)  # row 0: column 2 twice
    indptr = np.array([0, 3, 3, 5], dtype=np.int32)
    X = scipy.sparse.csr_matrix((data, indices, indptr), shape=(3, 3))
    y = np.array([2, 0, 1], dtype=np.int64)
    coef = np.arange(9.0).reshape(3, 3) / 4 - 1
    intercept = np.array([0.1, -0.2, 0.3])
    actual = csr_sums(X, y, np.empty(0), coef, intercept)
    assert_sums_close(actual, dense_sums(X, y, np.empty(0), coef, intercept), np.float64)


# --------------------------------------------------------------------------
# Stochastic epochs
# --------------------------------------------------------------------------


def epoch_problem(dtype, index_dtype, weighted, density=0.1, empty_rows=0.1):
    """``(X, y, sw, order, coef, intercept, rate)``: the data and starting point."""
    n = 1500
    X, y, coef, intercept = make_problem(
        n, 40, 3, density=density, empty_rows=empty_rows, dtype=dtype, index_dtype=index_dtype
    )
    order = np.random.default_rng(4).permutation(n).astype(np.int64)
    rate = np.array([0.05, 0.5, 10.0])
    return X, y, make_weights(n, dtype, weighted), order, coef * dtype(0.1), intercept, rate


def run_epochs(epoch, data_args, problem, batch, penalty, schedule, fit_intercept, n_epochs=2):
    """``n_epochs`` epochs from the problem's starting point, carrying t and the L1 state.

    Returns
    -------
    coef, intercept, l1_state, losses (one per epoch), t
    """
    _, y, sw, order, coef, intercept, rate = problem
    coef, intercept = coef.copy(), intercept.copy()
    l1_state = np.zeros(coef.size + 1)
    t, losses = 1.0, []
    # The sgd epochs take averaging arguments (off here; see test_average.py).
    no_average = () if batch else (0.0, np.empty((0, 0), coef.dtype), np.empty(0, coef.dtype))
    for _ in range(n_epochs):
        sum_loss, t = epoch(
            *data_args, y, sw, order, *batch, coef, intercept, fit_intercept, *penalty,
            l1_state, schedule, rate, t, *no_average,
        )  # fmt: skip
        losses.append(sum_loss)
    return coef, intercept, l1_state, losses, t


def assert_epochs_equal(epoch_pair, problem, dtype, batch=(), fit_intercept=True, **kwargs):
    """The CSR epoch and the dense epoch on ``X.toarray()`` reach the same state."""
    X, rtol = problem[0], RTOL[dtype]
    ours = run_epochs(epoch_pair[0], csr_arrays(X)[:3], problem, batch, **kwargs,
                      fit_intercept=fit_intercept)  # fmt: skip
    coef, intercept, l1_state, losses, t = ours
    dense = run_epochs(epoch_pair[1], (X.toarray(),), problem, batch, **kwargs,
                       fit_intercept=fit_intercept)  # fmt: skip
    assert coef.dtype == dtype and intercept.dtype == dtype and t == dense[4]
    assert_close(coef, dense[0], rtol)
    assert_close(intercept, dense[1], rtol)
    assert_close(l1_state, dense[2], rtol)
    assert losses == pytest.approx(dense[3], rel=rtol)
    return ours


SGD = (csr_multinomial_sgd_epoch, multinomial_sgd_epoch)
MINIBATCH = (csr_multinomial_minibatch_epoch, multinomial_minibatch_epoch)


@pytest.mark.parametrize(
    ("penalty", "schedule"),
    [
        ((0.0, 0.0), steps.INVSCALING),
        ((0.01, 0.0), steps.OPTIMAL),
        # W shrinks by 0.975 a step: the weight scale falls below 1e-9 every
        # ~800 steps and is folded back into coef mid-epoch.
        ((0.5, 0.0), steps.CONSTANT),
        # Pure L1: the lazy truncation catches up to the dense one exactly.
        ((0.0, 0.01), steps.CONSTANT),
        ((0.0, 0.002), steps.OPTIMAL),
    ],
)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize(("dtype", "index_dtype"), FORMATS)
def test_sgd_epochs_equal_the_dense_epochs(dtype, index_dtype, weighted, penalty, schedule):
    problem = epoch_problem(dtype, index_dtype, weighted)
    coef, *_, t = assert_epochs_equal(SGD, problem, dtype, penalty=penalty, schedule=schedule)
    assert t == 1.0 + 2 * problem[0].shape[0]
    if penalty[1] > 0:
        assert (coef == 0).any()  # the truncation clipped weights at 0


@pytest.mark.parametrize("dtype", DTYPES)
def test_sgd_elastic_net_equals_the_dense_epochs_when_every_row_is_full(dtype):
    """Every feature is in every row, so no weight lags on its L1 truncation."""
    problem = epoch_problem(dtype, np.int32, False, density=1.0, empty_rows=0.0)
    penalty, schedule = (0.01, 0.01), steps.CONSTANT
    coef, *_ = assert_epochs_equal(SGD, problem, dtype, penalty=penalty, schedule=schedule)
    assert (coef == 0).any()


@pytest.mark.parametrize("epoch_pair", [SGD, MINIBATCH], ids=["sgd", "minibatch"])
def test_epochs_without_intercept_leave_it_unchanged(epoch_pair):
    problem = epoch_problem(np.float64, np.int32, True)
    batch = (32,) if epoch_pair is MINIBATCH else ()
    _, intercept, *_ = assert_epochs_equal(
        epoch_pair, problem, np.float64, batch, fit_intercept=False, penalty=(0.01, 0.0),
        schedule=steps.CONSTANT,
    )  # fmt: skip
    assert np.array_equal(intercept, problem[5])


@pytest.mark.parametrize("penalty", [(0.01, 0.0), (0.0, 0.01), (0.005, 0.01)])
@pytest.mark.parametrize("batch_size", [1, 32, 4096])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize(("dtype", "index_dtype"), FORMATS)
def test_minibatch_epochs_equal_the_dense_epochs(dtype, index_dtype, weighted, batch_size, penalty):
    problem = epoch_problem(dtype, index_dtype, weighted)
    coef, *_ = assert_epochs_equal(
        MINIBATCH, problem, dtype, (batch_size,), penalty=penalty, schedule=steps.INVSCALING
    )
    if penalty[1] > 0:
        assert (coef == 0).any()  # the prox set weights to 0


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_minibatch_weight_scale_is_folded_when_it_underflows(dtype):
    """eta * alpha = 0.25 shrinks the kept scale by 0.75 a batch: below 1e-9 after
    72 batches, so 1500 one-row batches fold it into the weights 20 times."""
    X, y, sw, order, coef, intercept, _ = epoch_problem(dtype, np.int32, False)
    problem = (X, y, sw, order, coef, intercept, np.array([0.5, 0.5, 10.0]))
    assert_epochs_equal(
        MINIBATCH, problem, dtype, (1,), penalty=(0.5, 0.0), schedule=steps.CONSTANT
    )


# --------------------------------------------------------------------------
# The datafit and the estimator
# --------------------------------------------------------------------------


def sparse_dataset(loader, dtype=np.float64):
    """A standardized data set with about half its entries zeroed: ``(dense, csr, y)``."""
    X, y = loader(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    X[np.random.default_rng(0).random(X.shape) < 0.5] = 0.0
    X = np.ascontiguousarray(X, dtype=dtype)
    return X, scipy.sparse.csr_matrix(X), y


def test_make_datafit_keeps_multiclass_csr_sparse():
    X, y, _, _ = make_problem(n=50, d=8, dtype=np.float32)
    datafit = make_datafit(X, y, np.empty(0, np.float32), 50.0, 4)
    assert datafit.kernels is multinomial_csr
    assert datafit.coef_shape == (4, 8) and datafit.n_outputs == 4
    assert datafit.curvature == 0.5
    assert np.shares_memory(datafit.storage.kernel_x.data, X.data)


@pytest.mark.parametrize(
    ("solver", "penalty"),
    [("lbfgs", "l2"), ("gd", "l2"), ("sgd", "l2"), ("minibatch", "l2"), ("gd", "l1"),
     ("sgd", "l1"), ("minibatch", "l1")],
)  # fmt: skip
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("loader", [load_iris, load_wine])
def test_estimator_on_csr_equals_the_dense_fit(loader, dtype, solver, penalty):
    dense, csr, y = sparse_dataset(loader, dtype)
    sw = np.random.default_rng(5).integers(1, 4, size=y.shape[0])
    # L1 epochs do not settle within tol in max_iter: run a fixed number instead.
    stop = {"max_iter": 30, "tol": None} if penalty == "l1" else {}
    model = fastlr.LogisticRegression(solver=solver, penalty=penalty, random_state=0, **stop)
    models = [clone(model).fit(X, y, sample_weight=sw) for X in (dense, csr)]
    assert models[1].coef_.dtype == dtype and models[1].coef_.shape == (len(set(y)), dense.shape[1])
    assert models[1].n_iter_ == models[0].n_iter_
    assert_close(models[1].coef_, models[0].coef_, RTOL[dtype])
    assert_close(models[1].intercept_, models[0].intercept_, RTOL[dtype])


def test_estimator_on_csr_is_bitwise_identical_across_n_jobs():
    X, y, _, _ = make_problem(n=20_000)
    coefs = [fastlr.LogisticRegression(n_jobs=n_jobs).fit(X, y).coef_ for n_jobs in (1, 2)]
    assert np.array_equal(coefs[0], coefs[1])
