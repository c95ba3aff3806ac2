"""Multinomial kernels against NumPy, finite differences, the binary kernels and scikit-learn.

Tolerances are designed, not tuned:

- Against the NumPy reference (float64, ``scipy.special.logsumexp``): float64
  kernels sum in another order than NumPy, a few ulps per term, so 1e-10
  relative is far above their difference. float32 kernels accumulate in float32:
  over n ~ 1e4 terms the rounding error is about sqrt(n) * 6e-8 ~ 6e-6
  relative, so 1e-4 leaves a wide margin.
- Against finite differences: the fourth-order central difference
  ``(f(-2h) - 8 f(-h) + 8 f(h) - f(2h)) / 12h`` with ``h = 1e-3`` has a
  truncation error of ``h^4 f^(5) / 30 ~ 1e-13`` and a rounding error of
  ``eps |f| / h ~ 1e-13`` on an objective of order 1, so float64 gradients are
  checked at 1e-10 relative; float32 gradients at 1e-4, their rounding.
- Against scikit-learn's ``LogisticRegression(C=1, tol=1e-10)``: both optima
  are computed to ~1e-10 in gradient norm, so the objective values agree to
  ~1e-12; 1e-6 relative is the issue's definition of "reached the optimum".
"""

import naive
import numpy as np
import pytest
import scipy.optimize
from naive import (
    RTOL,
    assert_bitwise_equal_across_threads,
    assert_close,
    assert_sums_close,
    contract_sums,
    multinomial_problem,
    softmax_sums,
)
from sklearn.datasets import load_digits, load_iris, load_wine
from sklearn.linear_model import LogisticRegression as SkLogisticRegression
from threadpoolctl import threadpool_limits

import fastlr
from fastlr._datafits import Objective, make_datafit
from fastlr._threads import numba_threads
from fastlr.kernels import multinomial_dense, reduction, steps
from fastlr.kernels.multinomial_dense import (
    multinomial_fused_gradient,
    multinomial_minibatch_epoch,
    multinomial_n_chunks,
    multinomial_rows_gradient,
    multinomial_sgd_epoch,
)

NO_ORDER = np.empty(0, np.int64)


# --------------------------------------------------------------------------
# Gradient and loss sums
# --------------------------------------------------------------------------


# (n, d, K): the serial kernel with a row left after the groups of four, the
# parallel one, wide rows (blocks of four rows), and ten classes (update tiles
# of four classes plus a remainder, score pairs).
SHAPES = [(301, 6, 4), (5000, 6, 4), (301, 700, 3), (1001, 9, 10)]


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize(("n", "d", "n_classes"), SHAPES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_gradient_sums_match_numpy_reference(dtype, n, d, n_classes, weighted):
    X, y, sw, coef, intercept = multinomial_problem(n=n, d=d, n_classes=n_classes, dtype=dtype)
    sw = sw if weighted else np.empty(0, dtype)
    actual = contract_sums(X, y, sw, coef, intercept)
    assert actual[0].dtype == dtype and actual[1].dtype == dtype
    assert_sums_close(actual, softmax_sums(X, y, sw, coef, intercept), RTOL[dtype])


def test_fused_kernel_runs_on_several_chunks_and_matches_the_serial_one():
    X, y, sw, coef, intercept = multinomial_problem(n=7000)
    n_chunks = multinomial_n_chunks(X.shape[0], coef.shape[0])
    assert n_chunks > 2
    grad, grad_b = np.zeros_like(coef), np.zeros_like(intercept)
    cost = multinomial_fused_gradient(X, y, sw, coef, intercept, True, n_chunks, grad, grad_b)
    serial = (np.zeros_like(coef), np.zeros_like(intercept))
    serial_cost = multinomial_rows_gradient(
        X, y, sw, NO_ORDER, 0, X.shape[0], coef, intercept, True, *serial
    )
    assert_sums_close((grad, grad_b, cost), (*serial, serial_cost), 1e-12)


def test_rows_gradient_sums_the_rows_of_order_between_start_and_stop():
    X, y, sw, coef, intercept = multinomial_problem(n=200)
    order = np.random.default_rng(3).permutation(200).astype(np.int64)
    grad, grad_b = np.zeros_like(coef), np.zeros_like(intercept)
    cost = multinomial_rows_gradient(X, y, sw, order, 50, 157, coef, intercept, True, grad, grad_b)
    rows = order[50:157]
    expected = softmax_sums(X[rows], y[rows], sw[rows], coef, intercept)
    assert_sums_close((grad, grad_b, cost), expected, 1e-10)


def test_sums_are_added_into_the_buffers_and_row_slices_add_up():
    X, y, sw, coef, intercept = multinomial_problem(n=6000)
    full = contract_sums(X, y, sw, coef, intercept)
    grad, grad_b = np.ones_like(coef), np.ones_like(intercept)
    cost = 0.0
    for rows in np.array_split(np.arange(6000), 3):
        cost += multinomial_dense.gradient_sums(
            X[rows], y[rows], sw[rows], coef, intercept, True, grad, grad_b
        )
    assert_sums_close((grad - 1, grad_b - 1, cost), full, 1e-12)


@pytest.mark.parametrize("n", [300, 5000])
def test_loss_is_only_computed_when_asked(n):
    X, y, sw, coef, intercept = multinomial_problem(n=n)
    with_loss = contract_sums(X, y, sw, coef, intercept, with_loss=True)
    without = contract_sums(X, y, sw, coef, intercept, with_loss=False)
    assert without[2] == 0.0 and with_loss[2] > 0.0
    assert np.array_equal(without[0], with_loss[0])
    assert np.array_equal(without[1], with_loss[1])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_extreme_scores_stay_finite_and_exact(dtype):
    """|z| up to 1e4: softmax saturates, the loss grows linearly, nothing overflows."""
    X, y, sw, coef, intercept = multinomial_problem(n=5000, d=3, n_classes=3, dtype=dtype)
    X[:, 0] = np.linspace(-1, 1, X.shape[0], dtype=dtype)
    coef[:] = 0
    coef[:, 0] = np.array([1e4, -1e4, 0.0], dtype=dtype)
    grad, grad_b, cost = contract_sums(X, y, sw, coef, intercept)
    assert np.all(np.isfinite(grad)) and np.all(np.isfinite(grad_b)) and np.isfinite(cost)
    expected = softmax_sums(X, y, sw, coef, intercept)
    assert_sums_close((grad, grad_b, cost), expected, RTOL[dtype])
    assert cost / np.sum(sw, dtype=float) > 1000  # misclassified at |z| ~ 1e4: loss ~ |z|


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_loss_of_a_confident_correct_prediction_keeps_its_relative_precision(dtype):
    """Where ``log(1 + r)`` would round to 0, ``log1p(r)`` gives the tiny loss exactly."""
    X = np.ones((1, 1), dtype=dtype)
    coef = np.array([[30.0], [0.0], [-5.0]], dtype=dtype)
    intercept = np.zeros(3, dtype=dtype)
    y = np.zeros(1, np.int64)
    grad, grad_b, cost = contract_sums(X, y, np.empty(0, dtype), coef, intercept)
    expected = softmax_sums(X, y, [1.0], coef, intercept)
    assert 0.0 < expected[2] < 1e-12
    assert_sums_close((grad, grad_b, cost), expected, RTOL[dtype])


def test_two_classes_equal_binary_logistic_regression():
    """softmax([z0, z1]) is the sigmoid of z1 - z0: K=2 is the binary model with w1 - w0."""
    X, y, sw, coef, intercept = multinomial_problem(n=5000, n_classes=2)
    grad, grad_b, cost = contract_sums(X, y, sw, coef, intercept)
    total = sw.sum()
    binary_grad, binary_grad_b, binary_loss = fastlr.gradient(
        X, y, coef[1] - coef[0], intercept[1] - intercept[0], sample_weight=sw
    )
    assert cost / total == pytest.approx(binary_loss, rel=1e-12)
    assert_close(grad[1] / total, binary_grad, 1e-12)
    assert_close(grad[0] / total, -binary_grad, 1e-12)
    assert grad_b / total == pytest.approx([-binary_grad_b, binary_grad_b], rel=1e-12)


def test_fused_gradient_is_bitwise_identical_across_calls_and_threads():
    X, y, sw, coef, intercept = multinomial_problem(n=20_000, d=17, n_classes=5)
    assert multinomial_n_chunks(X.shape[0], 5) > 2
    assert_bitwise_equal_across_threads(lambda: contract_sums(X, y, sw, coef, intercept))


def test_float32_input_is_computed_in_float32():
    X, y, sw, coef, intercept = multinomial_problem(n=5000, dtype=np.float32)
    grad, grad_b, _ = contract_sums(X, y, sw, coef, intercept)
    assert grad.dtype == np.float32 and grad_b.dtype == np.float32
    for dispatcher in (multinomial_rows_gradient, multinomial_fused_gradient):
        assert any(sig[0].dtype.name == "float32" for sig in dispatcher.signatures)


# --------------------------------------------------------------------------
# The objective
# --------------------------------------------------------------------------


def make_objective(X, y, sw, n_classes, C=1.0, fit_intercept=True):
    """The multinomial Objective with scikit-learn's scaling ``alpha = 1 / (C S)``."""
    total = X.shape[0] if len(sw) == 0 else float(np.sum(sw, dtype=np.float64))
    datafit = make_datafit(X, y, sw, total, n_classes)
    return Objective(datafit, 1.0 / (C * total), fit_intercept)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_objective_gradient_matches_finite_differences(dtype):
    X, y, sw, coef, intercept = multinomial_problem(n=400, d=4, n_classes=3, dtype=dtype)
    objective = make_objective(X, y, sw, 3, C=0.1)
    params = np.concatenate([coef.ravel(), intercept]).astype(np.float64)

    def f64(p):
        return naive.objective(p[:12].reshape(3, 4), p[12:], X, y, sw, alpha=objective.alpha)

    value, grad = objective.value_and_grad(params)
    assert grad.dtype == np.float64 and grad.shape == (objective.n_params,)
    assert value == pytest.approx(f64(params), rel=RTOL[dtype])
    assert_close(grad, naive.finite_difference(f64, params, h=1e-3, order=4), RTOL[dtype])


def test_objective_without_intercept_reports_a_zero_intercept_gradient():
    X, y, _, coef, intercept = multinomial_problem(n=100, n_classes=3)
    objective = make_objective(X, y, np.empty(0), 3, fit_intercept=False)
    value, grad, grad_b = objective(coef, intercept)
    assert np.all(grad_b == 0.0)
    expected = softmax_sums(X, y, [], coef, intercept)
    assert_close(grad, expected[0] / 100 + objective.alpha * coef, 1e-12)
    assert value == pytest.approx(naive.objective(coef, intercept, X, y, alpha=objective.alpha))


@pytest.mark.parametrize("fit_intercept", [True, False])
def test_flat_evaluation_equals_the_objective_with_both_penalties(fit_intercept):
    """``value_and_grad_into`` (float64: sums into the flat buffer) against ``__call__``."""
    X, y, sw, coef, intercept = multinomial_problem(n=300, d=5, n_classes=4)
    datafit = make_objective(X, y, sw, 4).datafit
    objective = Objective(datafit, alpha=0.03, fit_intercept=fit_intercept, l1=0.02)
    params = np.concatenate([coef.ravel(), intercept])
    out = np.full(objective.n_params, np.nan)
    value = objective.value_and_grad_into(params, out)
    expected_value, grad, grad_b = objective(coef, intercept)
    assert value == pytest.approx(expected_value, rel=1e-14)
    assert_close(out, np.concatenate([grad.ravel(), grad_b]), 1e-14)


def test_unpack_splits_flat_parameters_into_coef_and_intercept():
    X, y, sw, *_ = multinomial_problem(n=10, d=3, n_classes=4, dtype=np.float32)
    objective = make_objective(X, y, sw, 4)
    coef, intercept = objective.unpack(np.arange(16.0))
    assert coef.dtype == np.float32 and coef.flags.c_contiguous and coef.shape == (4, 3)
    assert np.array_equal(coef.ravel(), np.arange(12.0))
    assert np.array_equal(intercept, [12.0, 13.0, 14.0, 15.0])


def minimize_lbfgs(objective):
    """scipy's L-BFGS-B on ``objective`` from zero, to a tight tolerance."""
    return scipy.optimize.minimize(
        objective.value_and_grad,
        np.zeros(objective.n_params),
        jac=True,
        method="L-BFGS-B",
        options={"maxiter": 10_000, "gtol": 1e-10, "ftol": 64 * np.finfo(float).eps, "maxls": 50},
    )


@pytest.mark.parametrize("loader", [load_iris, load_wine, load_digits])
def test_lbfgs_on_the_objective_reaches_scikit_learns_optimum(loader):
    X, y = naive.standardized(loader)
    objective = make_objective(X, y, np.empty(0), int(y.max()) + 1, C=1.0)
    # One BLAS thread: on a loaded 2-core machine, OpenBLAS threads spinning
    # against numba's made both fits up to 50x slower.
    with threadpool_limits(limits=1, user_api="blas"):
        result = minimize_lbfgs(objective)
        model = SkLogisticRegression(C=1.0, tol=1e-10, max_iter=10_000).fit(X, y)
    sklearn_value = naive.objective(model.coef_, model.intercept_, X, y, alpha=objective.alpha)
    ours = naive.objective(*objective.unpack(result.x), X, y, alpha=objective.alpha)
    assert ours == pytest.approx(result.fun, rel=1e-12)
    assert ours == pytest.approx(sklearn_value, rel=1e-6)


# --------------------------------------------------------------------------
# Stochastic epochs
# --------------------------------------------------------------------------


RATE = np.array([0.2, 0.5, 1.0])  # eta0, power_t, t0 of the invscaling schedule
NO_L1 = np.empty(0)  # l1_state when the L1 strength is 0
# average_start, avg_coef, avg_intercept of an sgd epoch without averaging
NO_AVERAGE = (0.0, np.empty((0, 0)), np.empty(0))


@pytest.mark.parametrize("alpha", [0.0, 0.05])
def test_sgd_epoch_matches_the_naive_update_rule(alpha):
    """The weight-scaling trick gives the iterates of shrinking W explicitly."""
    X, y, sw, coef, intercept = multinomial_problem(n=60, d=5, n_classes=3)
    order = np.random.default_rng(2).permutation(60).astype(np.int64)
    eta = naive.invscaling(0.2, 0.5)
    expected = naive.naive_sgd_epoch(X, y, order, coef, intercept, alpha, eta, sw=sw)
    coef_k, intercept_k = coef.copy(), intercept.copy()
    sum_loss, t = multinomial_sgd_epoch(
        X, y, sw, order, coef_k, intercept_k, True, alpha, 0.0, NO_L1, steps.INVSCALING,
        RATE, 1.0, *NO_AVERAGE,
    )  # fmt: skip
    assert t == 61.0 and sum_loss > 0
    np.testing.assert_allclose(coef_k, expected[0], rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(intercept_k, expected[1], rtol=1e-12, atol=1e-14)


def test_sgd_epoch_without_intercept_leaves_it_unchanged():
    X, y, sw, coef, intercept = multinomial_problem(n=30, d=3, n_classes=3)
    order = np.arange(30, dtype=np.int64)
    intercept_k = intercept.copy()
    multinomial_sgd_epoch(
        X, y, sw, order, coef.copy(), intercept_k, False, 0.01, 0.0, NO_L1, steps.CONSTANT,
        RATE, 1.0, *NO_AVERAGE,
    )  # fmt: skip
    assert np.array_equal(intercept_k, intercept)


@pytest.mark.parametrize(
    "n, batch_size",
    [(60, 7), (60, 60), (400, 300)],  # 300-row batches are summed in 4 parallel parts
)
def test_minibatch_epoch_matches_the_naive_update_rule(n, batch_size):
    X, y, sw, coef, intercept = multinomial_problem(n=n, d=5, n_classes=3)
    order = np.random.default_rng(4).permutation(n).astype(np.int64)
    alpha = 0.05
    expected = naive.naive_minibatch_epoch(
        X, y, sw, order, batch_size, coef, intercept, alpha, naive.invscaling(0.2, 0.5)
    )
    coef_k, intercept_k = coef.copy(), intercept.copy()
    _, t = multinomial_minibatch_epoch(
        X,
        y,
        sw,
        order,
        naive.whole_run(n),
        batch_size,
        coef_k,
        intercept_k,
        True,
        alpha,
        0.0,
        NO_L1,
        steps.INVSCALING,
        RATE,
        1.0,
    )
    assert t == 1.0 + -(-n // batch_size)
    np.testing.assert_allclose(coef_k, expected[0], rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(intercept_k, expected[1], rtol=1e-12, atol=1e-14)


def test_minibatch_epoch_is_bitwise_identical_across_threads():
    X, y, sw, coef, intercept = multinomial_problem(n=1000, d=5, n_classes=3)
    order = np.random.default_rng(5).permutation(1000).astype(np.int64)
    assert reduction.batch_parts(300) == 4
    results = []
    for n_threads in (1, 2):
        coef_k, intercept_k = coef.copy(), intercept.copy()
        with numba_threads(n_threads):
            multinomial_minibatch_epoch(
                X, y, sw, order, naive.whole_run(1000), 300, coef_k, intercept_k, True, 0.05,
                0.0, NO_L1, steps.INVSCALING, RATE, 1.0,
            )  # fmt: skip
        results.append((coef_k, intercept_k))
    np.testing.assert_array_equal(results[0][0], results[1][0])
    np.testing.assert_array_equal(results[0][1], results[1][1])


@pytest.mark.parametrize("solver", ["sgd", "minibatch"])
def test_epochs_lower_the_objective_in_float32(solver):
    X, y, sw, coef, intercept = multinomial_problem(
        n=2000, d=5, n_classes=3, scale=3.0, dtype=np.float32
    )
    objective = make_objective(X, y, sw, 3, C=1.0)
    coef_k = np.zeros_like(coef)
    intercept_k = np.zeros_like(intercept)
    order = np.random.default_rng(5).permutation(2000).astype(np.int64)
    start = objective(coef_k, intercept_k)[0]
    args = (True, objective.alpha, 0.0, NO_L1, steps.CONSTANT, np.array([0.05, 0.5, 1.0]), 1.0)
    if solver == "sgd":
        no_average = (0.0, np.empty((0, 0), np.float32), np.empty(0, np.float32))
        multinomial_sgd_epoch(X, y, sw, order, coef_k, intercept_k, *args, *no_average)
    else:
        runs = naive.whole_run(2000)
        multinomial_minibatch_epoch(X, y, sw, order, runs, 32, coef_k, intercept_k, *args)
    assert coef_k.dtype == np.float32 and intercept_k.dtype == np.float32
    assert objective(coef_k, intercept_k)[0] < start - 0.01
