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

import functools

import naive
import numpy as np
import pytest
import scipy.sparse
from naive import (
    CSR_SGD_CASES,
    RTOL,
    assert_bitwise_equal_across_threads,
    assert_close,
    assert_csr_epochs_equal,
    assert_sums_close,
    contract_sums,
    csr_epoch_problem,
    sample_weights,
)
from sklearn.base import clone
from sklearn.datasets import load_iris, load_wine

import fastlr
from fastlr._datafits import make_datafit
from fastlr._validation import csr_arrays
from fastlr.kernels import binary_csr, multinomial_csr, reduction, steps
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
NO_ORDER = np.empty(0, np.int64)
# This module's CSR problem: 40 features, four classes, 10% non-zeros.
make_problem = functools.partial(naive.csr_problem, d=40, n_classes=4, density=0.1)


def csr_sums(X, y, sw, coef, intercept, with_loss=True):
    """The CSR kernels' sums (the contract's) into fresh buffers."""
    return contract_sums(csr_arrays(X), y, sw, coef, intercept, with_loss)


def dense_sums(X, y, sw, coef, intercept):
    """The dense kernels' sums on ``X.toarray()``."""
    return contract_sums(X.toarray(), y, sw, coef, intercept)


# --------------------------------------------------------------------------
# Gradient
# --------------------------------------------------------------------------


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize(("dtype", "index_dtype"), FORMATS)
def test_gradient_sums_equal_the_dense_kernel(dtype, index_dtype, weighted):
    X, y, coef, intercept = make_problem(dtype=dtype, index_dtype=index_dtype)
    assert (np.diff(X.indptr) == 0).any()
    assert csr_multinomial_n_chunks(*X.shape, coef.shape[0]) > 1
    sw = sample_weights(X.shape[0], dtype, weighted)
    actual = csr_sums(X, y, sw, coef, intercept)
    assert_sums_close(actual, dense_sums(X, y, sw, coef, intercept), RTOL[dtype], dtype)


# (n, d, K): one chunk with a short last block, wide rows (blocks cut by their
# non-zeros), ten classes.
@pytest.mark.parametrize(("n", "d", "n_classes"), [(301, 6, 3), (400, 3000, 3), (1001, 9, 10)])
@pytest.mark.parametrize("dtype", DTYPES)
def test_serial_gradient_equals_the_dense_kernel(dtype, n, d, n_classes):
    X, y, coef, intercept = make_problem(n=n, d=d, n_classes=n_classes, density=0.3, dtype=dtype)
    assert csr_multinomial_n_chunks(n, d, n_classes) == 1
    sw = sample_weights(n, dtype, True)
    actual = csr_sums(X, y, sw, coef, intercept)
    assert_sums_close(actual, dense_sums(X, y, sw, coef, intercept), RTOL[dtype], dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_rows_gradient_over_an_order_slice_equals_the_dense_rows(dtype):
    X, y, coef, intercept = make_problem(n=700, dtype=dtype)
    order = np.random.default_rng(3).permutation(700).astype(np.int64)
    sw = sample_weights(700, dtype, True)
    actual = (np.zeros_like(coef), np.zeros_like(intercept))
    cost = csr_multinomial_rows_gradient(
        *csr_arrays(X)[:3], y, sw, order, 100, 600, coef, intercept, True, *actual
    )
    expected = (np.zeros_like(coef), np.zeros_like(intercept))
    dense_cost = multinomial_rows_gradient(
        X.toarray(), y, sw, order, 100, 600, coef, intercept, True, *expected
    )
    assert_sums_close((*actual, cost), (*expected, dense_cost), RTOL[dtype], dtype)


def test_fused_gradient_equals_the_serial_one():
    X, y, coef, intercept = make_problem()
    sw = sample_weights(X.shape[0], np.float64, True)
    arrays = csr_arrays(X)[:3]
    fused = (np.zeros_like(coef), np.zeros_like(intercept))
    cost = csr_multinomial_fused_gradient(*arrays, y, sw, coef, intercept, True, 5, *fused)
    serial = (np.zeros_like(coef), np.zeros_like(intercept))
    serial_cost = csr_multinomial_rows_gradient(
        *arrays, y, sw, NO_ORDER, 0, X.shape[0], coef, intercept, True, *serial
    )
    assert_sums_close((*fused, cost), (*serial, serial_cost), RTOL[np.float64], np.float64)


@pytest.mark.parametrize("dtype", DTYPES)
def test_parallel_gradient_is_bitwise_identical_across_threads(dtype):
    X, y, coef, intercept = make_problem(n=20_000, dtype=dtype)
    assert csr_multinomial_n_chunks(*X.shape, coef.shape[0]) > 2
    sw = sample_weights(X.shape[0], dtype, True)
    assert_bitwise_equal_across_threads(lambda: csr_sums(X, y, sw, coef, intercept))


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
    assert_sums_close(actual, dense_sums(X, y, sw, coef, intercept), RTOL[np.float64], np.float64)


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
    sw = sample_weights(X.shape[0], np.float64, True)
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
    assert_sums_close(
        actual, dense_sums(X, y, np.empty(0), coef, intercept), RTOL[np.float64], np.float64
    )


# --------------------------------------------------------------------------
# Stochastic epochs
# --------------------------------------------------------------------------


SGD = (csr_multinomial_sgd_epoch, multinomial_sgd_epoch)
MINIBATCH = (csr_multinomial_minibatch_epoch, multinomial_minibatch_epoch)


@pytest.mark.parametrize(("penalty", "schedule"), CSR_SGD_CASES)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize(("dtype", "index_dtype"), FORMATS)
def test_sgd_epochs_equal_the_dense_epochs(dtype, index_dtype, weighted, penalty, schedule):
    problem = csr_epoch_problem(dtype, index_dtype, weighted, n_classes=3)
    run = assert_csr_epochs_equal(SGD, problem, dtype, penalty=penalty, schedule=schedule)
    assert run.t == 1.0 + 2 * problem[0].shape[0]
    if penalty[1] > 0:
        assert (run.coef == 0).any()  # the truncation clipped weights at 0


@pytest.mark.parametrize("dtype", DTYPES)
def test_sgd_elastic_net_equals_the_dense_epochs_when_every_row_is_full(dtype):
    """Every feature is in every row, so no weight lags on its L1 truncation."""
    problem = csr_epoch_problem(dtype, np.int32, False, n_classes=3, density=1.0, empty_rows=0.0)
    penalty, schedule = (0.01, 0.01), steps.CONSTANT
    run = assert_csr_epochs_equal(SGD, problem, dtype, penalty=penalty, schedule=schedule)
    assert (run.coef == 0).any()


@pytest.mark.parametrize("epoch_pair", [SGD, MINIBATCH], ids=["sgd", "minibatch"])
def test_epochs_without_intercept_leave_it_unchanged(epoch_pair):
    problem = csr_epoch_problem(np.float64, np.int32, True, n_classes=3)
    batch_size = 32 if epoch_pair is MINIBATCH else None
    run = assert_csr_epochs_equal(
        epoch_pair, problem, np.float64, batch_size=batch_size, fit_intercept=False,
        penalty=(0.01, 0.0), schedule=steps.CONSTANT,
    )  # fmt: skip
    assert np.array_equal(run.intercept, problem[5])


@pytest.mark.parametrize("penalty", [(0.01, 0.0), (0.0, 0.01), (0.005, 0.01)])
@pytest.mark.parametrize("batch_size", [1, 32, 4096])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize(("dtype", "index_dtype"), FORMATS)
def test_minibatch_epochs_equal_the_dense_epochs(dtype, index_dtype, weighted, batch_size, penalty):
    problem = csr_epoch_problem(dtype, index_dtype, weighted, n_classes=3)
    run = assert_csr_epochs_equal(
        MINIBATCH, problem, dtype, batch_size=batch_size, penalty=penalty,
        schedule=steps.INVSCALING,
    )  # fmt: skip
    if penalty[1] > 0:
        assert (run.coef == 0).any()  # the prox set weights to 0


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_minibatch_weight_scale_is_folded_when_it_underflows(dtype):
    """eta * alpha = 0.25 shrinks the kept scale by 0.75 a batch: below 1e-9 after
    72 batches, so 1500 one-row batches fold it into the weights 20 times."""
    problem = csr_epoch_problem(dtype, np.int32, False, n_classes=3, eta0=0.5)
    assert_csr_epochs_equal(
        MINIBATCH, problem, dtype, batch_size=1, penalty=(0.5, 0.0), schedule=steps.CONSTANT
    )


# --------------------------------------------------------------------------
# The datafit and the estimator
# --------------------------------------------------------------------------


def sparse_dataset(loader, dtype=np.float64):
    """A standardized data set with about half its entries zeroed: ``(dense, csr, y)``."""
    X, y = naive.standardized(loader)
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
    ("solver", "l1_ratio"),
    [("lbfgs", 0), ("gd", 0), ("sgd", 0), ("minibatch", 0), ("gd", 1), ("sgd", 1),
     ("minibatch", 1)],
)  # fmt: skip
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("loader", [load_iris, load_wine])
def test_estimator_on_csr_equals_the_dense_fit(loader, dtype, solver, l1_ratio):
    dense, csr, y = sparse_dataset(loader, dtype)
    sw = np.random.default_rng(5).integers(1, 4, size=y.shape[0])
    # L1 epochs do not settle within tol in max_iter: run a fixed number instead.
    stop = {"max_iter": 30, "tol": None} if l1_ratio == 1 else {}
    model = fastlr.LogisticRegression(solver=solver, l1_ratio=l1_ratio, random_state=0, **stop)
    models = [clone(model).fit(X, y, sample_weight=sw) for X in (dense, csr)]
    assert models[1].coef_.dtype == dtype and models[1].coef_.shape == (len(set(y)), dense.shape[1])
    assert models[1].n_iter_ == models[0].n_iter_
    assert_close(models[1].coef_, models[0].coef_, RTOL[dtype])
    assert_close(models[1].intercept_, models[0].intercept_, RTOL[dtype])


def test_estimator_on_csr_is_bitwise_identical_across_n_jobs():
    X, y, _, _ = make_problem(n=20_000)
    coefs = [fastlr.LogisticRegression(n_jobs=n_jobs).fit(X, y).coef_ for n_jobs in (1, 2)]
    assert np.array_equal(coefs[0], coefs[1])
