"""CSR kernels against the dense kernels on the same data, densified with ``toarray``.

Tolerances, as in :mod:`fastlr.kernels.binary_csr`: the CSR and dense kernels add the same
products in a different order (the dense loop also adds the zeros, vectorized
under reassociation). float64 differs by a few ulps per term, far below 1e-10
relative; float32 accumulates about ``sqrt(n) * 6e-8`` relative over n ~ 1e3 to
1e4 terms, so 1e-4 leaves a wide margin. The parallel CSR gradient is compared
with itself bitwise across thread counts.
"""

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
    csr_epoch_problem,
    csr_problem,
    sample_weights,
)

from fastlr._gradient import gradient_sums
from fastlr._validation import csr_arrays
from fastlr.kernels import binary_csr, binary_dense, reduction, steps

DTYPES = (np.float64, np.float32)
INDEX_DTYPES = (np.int32, np.int64)


# --------------------------------------------------------------------------
# Gradient
# --------------------------------------------------------------------------


def csr_gradient_sums(arrays, y, sw, coef, b, *, method="parallel", with_loss=True, out=None):
    """``(grad_sum, intercept_sum, loss_sum)`` of the CSR kernels, ``out`` added into.

    ``"parallel"``: the contract's :func:`fastlr.kernels.binary_csr.gradient_sums`
    (chunked when the rows form several chunks); ``"loop"``: one serial pass.
    """
    out = np.zeros(arrays.n_features, arrays.data.dtype) if out is None else out
    b = arrays.data.dtype.type(b)
    if method == "loop":
        no_order = np.empty(0, np.int64)
        n = arrays.indptr.shape[0] - 1
        one = arrays.data.dtype.type(1)
        db, cost = binary_csr.csr_rows_gradient(
            *arrays[:3], y, sw, no_order, 0, n, coef, one, b, with_loss, out
        )
        return out, db, cost
    grad_b = np.zeros(1)
    cost = binary_csr.gradient_sums(arrays, y, sw, coef, np.array([b]), with_loss, out, grad_b)
    return out, grad_b[0], cost


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("method", ["loop", "parallel"])
@pytest.mark.parametrize("index_dtype", INDEX_DTYPES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_gradient_sums_equal_the_dense_kernel(dtype, index_dtype, method, weighted):
    X, y, coef, b = csr_problem(dtype=dtype, index_dtype=index_dtype)
    assert (np.diff(X.indptr) == 0).any()
    assert binary_csr.csr_n_chunks(*X.shape) > 1
    sw = sample_weights(X.shape[0], dtype, weighted)
    arrays = csr_arrays(X)
    assert arrays.indices.dtype == arrays.indptr.dtype == index_dtype
    actual = csr_gradient_sums(arrays, y, sw, coef, b, method=method)
    expected = gradient_sums(X.toarray(), y, sw, coef, b, method=method)
    assert_sums_close(actual, expected, RTOL[dtype], dtype)


def test_gradient_without_loss_skips_only_the_loss():
    X, y, coef, b = csr_problem()
    sw = np.empty(0)
    grad, db, cost = csr_gradient_sums(csr_arrays(X), y, sw, coef, b, with_loss=False)
    full = csr_gradient_sums(csr_arrays(X), y, sw, coef, b)
    assert cost == 0.0
    assert np.array_equal(grad, full[0]) and db == full[1]


@pytest.mark.parametrize("dtype", DTYPES)
def test_parallel_gradient_is_bitwise_identical_across_threads(dtype):
    X, y, coef, b = csr_problem(n=20_000, dtype=dtype)
    assert binary_csr.csr_n_chunks(*X.shape) > 2
    arrays, sw = csr_arrays(X), np.empty(0, dtype)
    assert_bitwise_equal_across_threads(
        lambda: csr_gradient_sums(arrays, y, sw, coef, b, method="parallel")
    )


def test_wide_data_gets_fewer_chunks_from_its_shape_only():
    assert binary_csr.csr_n_chunks(10**6, 10) == reduction.n_chunks_for(10**6)
    assert binary_csr.csr_n_chunks(10**6, 10**5) == binary_csr.MAX_PARTIAL_ELEMENTS // 10**5
    assert binary_csr.csr_n_chunks(10**6, 10**9) == 1
    assert binary_csr.csr_n_chunks(0, 0) == 1


def test_capped_chunking_still_equals_the_dense_kernel(monkeypatch):
    X, y, coef, b = csr_problem()
    monkeypatch.setattr(binary_csr, "MAX_PARTIAL_ELEMENTS", 3 * X.shape[1])
    assert binary_csr.csr_n_chunks(*X.shape) == 3
    sw = np.empty(0)
    actual = csr_gradient_sums(csr_arrays(X), y, sw, coef, b, method="parallel")
    assert_sums_close(
        actual, gradient_sums(X.toarray(), y, sw, coef, b), RTOL[np.float64], np.float64
    )


def test_gradient_sums_on_row_slices_add_up_to_the_full_gradient():
    X, y, coef, b = csr_problem()
    sw = np.empty(0)
    full = csr_gradient_sums(csr_arrays(X), y, sw, coef, b)
    out = np.zeros(X.shape[1])
    total_b = total_loss = 0.0
    for rows in np.array_split(np.arange(X.shape[0]), 4):
        _, db, cost = csr_gradient_sums(csr_arrays(X[rows]), y[rows], sw, coef, b, out=out)
        total_b += db
        total_loss += cost
    assert_close(out, full[0], 1e-12)
    assert total_b == pytest.approx(full[1], rel=1e-12)
    assert total_loss == pytest.approx(full[2], rel=1e-12)


@pytest.mark.parametrize("dtype", DTYPES)
def test_rows_gradient_over_an_order_slice_equals_the_dense_rows(dtype):
    X, y, coef, b = csr_problem(n=700, dtype=dtype)
    order = np.random.default_rng(3).permutation(700).astype(np.int64)
    sw = sample_weights(700, dtype, True)
    grad = np.zeros(X.shape[1], dtype)
    db, cost = binary_csr.csr_rows_gradient(
        *csr_arrays(X)[:3], y, sw, order, 100, 600, coef, dtype(1), b, True, grad
    )
    rows = order[100:600]
    expected = gradient_sums(X[rows].toarray(), y[rows], sw[rows], coef, b, method="loop")
    assert_sums_close((grad, db, cost), expected, RTOL[dtype], dtype)


def test_duplicate_and_unsorted_entries_count_as_scipy_counts_them():
    data = np.array([1.0, 2.0, -1.0, 0.5, 3.0])
    indices = np.array([2, 0, 2, 1, 0], dtype=np.int32)  # row 0: column 2 twice
    indptr = np.array([0, 3, 3, 5], dtype=np.int32)
    X = scipy.sparse.csr_matrix((data, indices, indptr), shape=(3, 3))
    y, coef = np.array([1.0, 0.0, 1.0]), np.array([0.5, -1.0, 2.0])
    arrays = csr_arrays(X)
    assert np.array_equal(arrays.indices, indices)  # nothing sorted or summed
    actual = csr_gradient_sums(arrays, y, np.empty(0), coef, 0.1)
    assert_sums_close(
        actual, gradient_sums(X.toarray(), y, np.empty(0), coef, 0.1), RTOL[np.float64], np.float64
    )


# --------------------------------------------------------------------------
# Stochastic epochs
# --------------------------------------------------------------------------


SGD = (binary_csr.csr_sgd_epoch, binary_dense.binary_sgd_epoch)
MINIBATCH = (binary_csr.csr_minibatch_epoch, binary_dense.binary_minibatch_epoch)


@pytest.mark.parametrize(("penalty", "schedule"), CSR_SGD_CASES)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("index_dtype", INDEX_DTYPES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_sgd_epochs_equal_the_dense_epochs(dtype, index_dtype, weighted, penalty, schedule):
    problem = csr_epoch_problem(dtype, index_dtype, weighted)
    run = assert_csr_epochs_equal(SGD, problem, dtype, penalty=penalty, schedule=schedule)
    assert run.t == 1.0 + 2 * problem[0].shape[0]
    if penalty[1] > 0:
        assert (run.coef == 0).any()  # the truncation clipped weights at 0


@pytest.mark.parametrize("dtype", DTYPES)
def test_sgd_elastic_net_equals_the_dense_epochs_when_every_row_is_full(dtype):
    """Every feature is in every row, so no weight lags on its L1 truncation."""
    problem = csr_epoch_problem(dtype, np.int32, False, density=1.0, empty_rows=0.0)
    penalty, schedule = (0.01, 0.01), steps.CONSTANT
    run = assert_csr_epochs_equal(SGD, problem, dtype, penalty=penalty, schedule=schedule)
    assert (run.coef == 0).any()


@pytest.mark.parametrize("penalty", [(0.01, 0.0), (0.005, 0.01)])
@pytest.mark.parametrize("batch_size", [1, 32, 4096])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("index_dtype", INDEX_DTYPES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_minibatch_epochs_equal_the_dense_epochs(dtype, index_dtype, weighted, batch_size, penalty):
    problem = csr_epoch_problem(dtype, index_dtype, weighted)
    assert_csr_epochs_equal(
        MINIBATCH, problem, dtype, batch_size=batch_size, penalty=penalty,
        schedule=steps.INVSCALING,
    )  # fmt: skip


@pytest.mark.parametrize("dtype", DTYPES)
def test_minibatch_weight_scale_is_folded_when_it_underflows(dtype):
    """eta * alpha = 0.25 shrinks the kept scale by 0.75 a batch: below 1e-9 after
    72 batches, so 1500 one-row batches fold it into the weights 20 times."""
    problem = csr_epoch_problem(dtype, np.int32, False, eta0=0.5)
    assert_csr_epochs_equal(
        MINIBATCH, problem, dtype, batch_size=1, penalty=(0.5, 0.0), schedule=steps.CONSTANT
    )


# --------------------------------------------------------------------------
# Conversion and checks
# --------------------------------------------------------------------------


def test_float32_and_int32_input_is_used_without_a_copy():
    X, *_ = csr_problem(dtype=np.float32)
    arrays = csr_arrays(X)
    assert arrays.data.dtype == np.float32 and arrays.n_features == X.shape[1]
    for ours, theirs in zip(arrays[:3], (X.data, X.indices, X.indptr), strict=True):
        assert np.shares_memory(ours, theirs)


@pytest.mark.parametrize("fmt", ["csc", "coo", "lil"])
def test_other_sparse_formats_are_converted_to_csr(fmt):
    X, *_ = csr_problem(n=50, d=8, density=0.3)
    data, indices, indptr, n_features = csr_arrays(X.asformat(fmt))
    rebuilt = scipy.sparse.csr_matrix((data, indices, indptr), shape=(50, n_features))
    assert (rebuilt != X).nnz == 0


def test_mixed_index_dtypes_become_int64_and_integer_values_float64():
    X = scipy.sparse.csr_matrix(np.array([[0, 2], [3, 0]], dtype=np.int8))
    X.indptr = X.indptr.astype(np.int64)
    arrays = csr_arrays(X)
    assert arrays.indices.dtype == arrays.indptr.dtype == np.int64
    assert arrays.data.dtype == np.float64


def test_sparse_arrays_are_accepted_like_matrices():
    X, *_ = csr_problem(n=50, d=8, density=0.3)
    arrays = csr_arrays(scipy.sparse.csr_array(X))
    assert np.array_equal(arrays.data, X.data)


def test_dense_input_is_rejected():
    with pytest.raises(TypeError, match=r"X must be a scipy.sparse matrix, got ndarray"):
        csr_arrays(np.eye(3))


@pytest.mark.parametrize(
    ("value", "message"),
    [(np.nan, r"X contains NaN .*impute"), (np.inf, r"X contains infinity .*clip")],
)
def test_non_finite_values_are_rejected_with_the_fix(value, message):
    X, *_ = csr_problem(n=50, d=8, density=0.3)
    X.data[3] = value
    with pytest.raises(ValueError, match=message):
        csr_arrays(X)


def test_complex_values_are_rejected():
    X = scipy.sparse.csr_matrix(np.array([[1j, 0], [0, 1]]))
    with pytest.raises(ValueError, match="Complex data not supported"):
        csr_arrays(X)


def test_column_indices_out_of_range_are_rejected():
    X = scipy.sparse.csr_matrix(np.eye(3))
    X.indices[1] = 7
    with pytest.raises(ValueError, match=r"column indices outside \[0, 3\)"):
        csr_arrays(X)
