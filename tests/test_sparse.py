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

from fastlr._gradient import gradient_sums
from fastlr._threads import numba_threads
from fastlr._validation import csr_arrays
from fastlr.kernels import binary_csr, binary_dense, reduction, steps

DTYPES = (np.float64, np.float32)
INDEX_DTYPES = (np.int32, np.int64)
RTOL = {np.float64: 1e-10, np.float32: 1e-4}


def make_csr(
    n=6000, d=60, density=0.03, empty_rows=0.1, dtype=np.float64, index_dtype=np.int32, seed=0
):
    """Random CSR problem: ~``density`` non-zeros, a fraction ``empty_rows`` of rows empty.

    The default n spans several chunks of the parallel gradient.

    Returns
    -------
    X : csr_matrix of shape (n, d)
    y, coef : ndarray in ``dtype``
    intercept : scalar of ``dtype``
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
    y = (rng.random(n) < 0.4).astype(dtype)
    coef = (rng.standard_normal(d) * 2.0).astype(dtype)
    return X, y, coef, dtype(0.3)


def make_weights(n, dtype, weighted, seed=1):
    """Integer weights in {0, 1, 2, 3}, or the empty array meaning unit weights."""
    if not weighted:
        return np.empty(0, dtype)
    return np.random.default_rng(seed).integers(0, 4, size=n).astype(dtype)


def assert_close(actual, expected, rtol):
    """Relative closeness of a vector measured against its norm."""
    actual, expected = np.asarray(actual, float), np.asarray(expected, float)
    scale = max(np.linalg.norm(expected), 1e-300)
    assert np.linalg.norm(actual - expected) <= rtol * scale


def assert_sums_close(actual, expected, dtype):
    """``(grad, db, cost)`` of a CSR kernel against a dense one."""
    grad, db, cost = actual
    assert grad.dtype == dtype
    assert_close(grad, expected[0], RTOL[dtype])
    assert db == pytest.approx(expected[1], rel=RTOL[dtype])
    assert cost == pytest.approx(expected[2], rel=RTOL[dtype])


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
    X, y, coef, b = make_csr(dtype=dtype, index_dtype=index_dtype)
    assert (np.diff(X.indptr) == 0).any()
    assert binary_csr.csr_n_chunks(*X.shape) > 1
    sw = make_weights(X.shape[0], dtype, weighted)
    arrays = csr_arrays(X)
    assert arrays.indices.dtype == arrays.indptr.dtype == index_dtype
    actual = csr_gradient_sums(arrays, y, sw, coef, b, method=method)
    expected = gradient_sums(X.toarray(), y, sw, coef, b, method=method)
    assert_sums_close(actual, expected, dtype)


def test_gradient_without_loss_skips_only_the_loss():
    X, y, coef, b = make_csr()
    sw = np.empty(0)
    grad, db, cost = csr_gradient_sums(csr_arrays(X), y, sw, coef, b, with_loss=False)
    full = csr_gradient_sums(csr_arrays(X), y, sw, coef, b)
    assert cost == 0.0
    assert np.array_equal(grad, full[0]) and db == full[1]


@pytest.mark.parametrize("dtype", DTYPES)
def test_parallel_gradient_is_bitwise_identical_across_threads(dtype):
    X, y, coef, b = make_csr(n=20_000, dtype=dtype)
    assert binary_csr.csr_n_chunks(*X.shape) > 2
    arrays, sw = csr_arrays(X), np.empty(0, dtype)
    results = []
    for n_jobs in (1, 2, 1, 2):
        with numba_threads(n_jobs):
            results.append(csr_gradient_sums(arrays, y, sw, coef, b, method="parallel"))
    for grad, db, cost in results[1:]:
        assert np.array_equal(grad, results[0][0])
        assert db == results[0][1] and cost == results[0][2]


def test_wide_data_gets_fewer_chunks_from_its_shape_only():
    assert binary_csr.csr_n_chunks(10**6, 10) == reduction.n_chunks_for(10**6)
    assert binary_csr.csr_n_chunks(10**6, 10**5) == binary_csr.MAX_PARTIAL_ELEMENTS // 10**5
    assert binary_csr.csr_n_chunks(10**6, 10**9) == 1
    assert binary_csr.csr_n_chunks(0, 0) == 1


def test_capped_chunking_still_equals_the_dense_kernel(monkeypatch):
    X, y, coef, b = make_csr()
    monkeypatch.setattr(binary_csr, "MAX_PARTIAL_ELEMENTS", 3 * X.shape[1])
    assert binary_csr.csr_n_chunks(*X.shape) == 3
    sw = np.empty(0)
    actual = csr_gradient_sums(csr_arrays(X), y, sw, coef, b, method="parallel")
    assert_sums_close(actual, gradient_sums(X.toarray(), y, sw, coef, b), np.float64)


def test_gradient_sums_on_row_slices_add_up_to_the_full_gradient():
    X, y, coef, b = make_csr()
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
    X, y, coef, b = make_csr(n=700, dtype=dtype)
    order = np.random.default_rng(3).permutation(700).astype(np.int64)
    sw = make_weights(700, dtype, True)
    grad = np.zeros(X.shape[1], dtype)
    db, cost = binary_csr.csr_rows_gradient(
        *csr_arrays(X)[:3], y, sw, order, 100, 600, coef, dtype(1), b, True, grad
    )
    rows = order[100:600]
    expected = gradient_sums(X[rows].toarray(), y[rows], sw[rows], coef, b, method="loop")
    assert_sums_close((grad, db, cost), expected, dtype)


def test_duplicate_and_unsorted_entries_count_as_scipy_counts_them():
    data = np.array([1.0, 2.0, -1.0, 0.5, 3.0])
    indices = np.array([2, 0, 2, 1, 0], dtype=np.int32)  # row 0: column 2 twice
    indptr = np.array([0, 3, 3, 5], dtype=np.int32)
    X = scipy.sparse.csr_matrix((data, indices, indptr), shape=(3, 3))
    y, coef = np.array([1.0, 0.0, 1.0]), np.array([0.5, -1.0, 2.0])
    arrays = csr_arrays(X)
    assert np.array_equal(arrays.indices, indices)  # nothing sorted or summed
    actual = csr_gradient_sums(arrays, y, np.empty(0), coef, 0.1)
    assert_sums_close(actual, gradient_sums(X.toarray(), y, np.empty(0), coef, 0.1), np.float64)


# --------------------------------------------------------------------------
# Stochastic epochs
# --------------------------------------------------------------------------


def epoch_problem(dtype, index_dtype, weighted, density=0.1, empty_rows=0.1):
    """``(X, y, sw, order, coef, intercept, rate)``: the data and starting point."""
    n = 1500
    X, y, coef, b = make_csr(
        n=n, d=40, density=density, empty_rows=empty_rows, dtype=dtype, index_dtype=index_dtype
    )
    order = np.random.default_rng(4).permutation(n).astype(np.int64)
    rate = np.array([0.05, 0.5, 10.0])
    return X, y, make_weights(n, dtype, weighted), order, coef * dtype(0.1), b, rate


def run_epochs(epoch, data_args, problem, batch, penalty, schedule, n_epochs=2):
    """``n_epochs`` epochs from the problem's starting point, carrying t and the L1 state.

    Returns
    -------
    coef, intercept, l1_state, losses (one per epoch), t
    """
    _, y, sw, order, coef, b, rate = problem
    coef, intercept = coef.copy(), np.array([b])
    l1_state = np.zeros(coef.shape[0] + 1)
    t, losses = 1.0, []
    # The sgd epochs take averaging arguments (off here; see test_average.py).
    no_average = () if batch else (0.0, np.empty(0, coef.dtype), np.empty(0, coef.dtype))
    for _ in range(n_epochs):
        sum_loss, t = epoch(
            *data_args, y, sw, order, *batch, coef, intercept, True, *penalty, l1_state,
            schedule, rate, t, *no_average,
        )  # fmt: skip
        losses.append(sum_loss)
    return coef, intercept[0], l1_state, losses, t


def assert_epochs_equal(epoch_pair, problem, dtype, batch=(), **kwargs):
    """The CSR epoch and the dense epoch on ``X.toarray()`` reach the same state."""
    X, rtol = problem[0], RTOL[dtype]
    ours = run_epochs(epoch_pair[0], csr_arrays(X)[:3], problem, batch, **kwargs)
    coef, b, l1_state, losses, t = ours
    dense = run_epochs(epoch_pair[1], (X.toarray(),), problem, batch, **kwargs)
    assert coef.dtype == dtype and t == dense[4]
    assert_close(coef, dense[0], rtol)
    assert b == pytest.approx(dense[1], rel=rtol)
    assert_close(l1_state, dense[2], rtol)
    assert losses == pytest.approx(dense[3], rel=rtol)
    return ours


SGD = (binary_csr.csr_sgd_epoch, binary_dense.binary_sgd_epoch)
MINIBATCH = (binary_csr.csr_minibatch_epoch, binary_dense.binary_minibatch_epoch)


@pytest.mark.parametrize(
    ("penalty", "schedule"),
    [
        ((0.0, 0.0), steps.INVSCALING),
        ((0.01, 0.0), steps.OPTIMAL),
        # w shrinks by 0.975 a step: the weight scale falls below 1e-9 every
        # ~800 steps and is folded back into coef mid-epoch.
        ((0.5, 0.0), steps.CONSTANT),
        # Pure L1: the lazy truncation catches up to the dense one exactly.
        ((0.0, 0.01), steps.CONSTANT),
        ((0.0, 0.002), steps.OPTIMAL),
    ],
)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("index_dtype", INDEX_DTYPES)
@pytest.mark.parametrize("dtype", DTYPES)
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


@pytest.mark.parametrize("penalty", [(0.01, 0.0), (0.005, 0.01)])
@pytest.mark.parametrize("batch_size", [1, 32, 4096])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("index_dtype", INDEX_DTYPES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_minibatch_epochs_equal_the_dense_epochs(dtype, index_dtype, weighted, batch_size, penalty):
    problem = epoch_problem(dtype, index_dtype, weighted)
    assert_epochs_equal(
        MINIBATCH, problem, dtype, (batch_size,), penalty=penalty, schedule=steps.INVSCALING
    )


@pytest.mark.parametrize("dtype", DTYPES)
def test_minibatch_weight_scale_is_folded_when_it_underflows(dtype):
    """eta * alpha = 0.25 shrinks the kept scale by 0.75 a batch: below 1e-9 after
    72 batches, so 1500 one-row batches fold it into the weights 20 times."""
    X, y, sw, order, coef, b, _ = epoch_problem(dtype, np.int32, False)
    problem = (X, y, sw, order, coef, b, np.array([0.5, 0.5, 10.0]))
    assert_epochs_equal(
        MINIBATCH, problem, dtype, (1,), penalty=(0.5, 0.0), schedule=steps.CONSTANT
    )


# --------------------------------------------------------------------------
# Conversion and checks
# --------------------------------------------------------------------------


def test_float32_and_int32_input_is_used_without_a_copy():
    X, *_ = make_csr(dtype=np.float32)
    arrays = csr_arrays(X)
    assert arrays.data.dtype == np.float32 and arrays.n_features == X.shape[1]
    for ours, theirs in zip(arrays[:3], (X.data, X.indices, X.indptr), strict=True):
        assert np.shares_memory(ours, theirs)


@pytest.mark.parametrize("fmt", ["csc", "coo", "lil"])
def test_other_sparse_formats_are_converted_to_csr(fmt):
    X, *_ = make_csr(n=50, d=8, density=0.3)
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
    X, *_ = make_csr(n=50, d=8, density=0.3)
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
    X, *_ = make_csr(n=50, d=8, density=0.3)
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
