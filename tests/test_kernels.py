"""Compiled kernels against the seed references and finite differences.

Tolerances: float64 results are compared at 1e-10 relative (the sums run in a
different order than NumPy's, so a few ulps per term, far below that). float32
kernels accumulate in float32: with n ~ 1e3 terms the rounding error is about
sqrt(n) * 6e-8 ~ 2e-6 relative, so 1e-4 leaves a wide, principled margin.
"""

import naive
import numpy as np
import pytest
from naive import (
    RTOL,
    assert_bitwise_equal_across_threads,
    assert_close,
    binary_problem,
    whole_run,
)

import fastlr
from fastlr import reference
from fastlr._gradient import gradient_sums
from fastlr._threads import numba_threads
from fastlr.kernels import binary_dense, hardware, maths, reduction, steps

METHODS = ("loop", "vectorized", "parallel")
NO_L1 = np.empty(0)
NO_AVERAGE = (0.0, np.empty(0), np.empty(0))  # average_start, avg_coef, avg_intercept: off


def loss64(X, y, coef, intercept):
    """Mean cross-entropy in float64 (the reference's stable formula)."""
    return reference.numpy_gradient(X.astype(float), y, coef.astype(float), intercept)[2]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize(
    "shape",
    # narrow rows; rows wide enough for eight-row sweeps (binary_dense.EIGHT_ROW_BYTES)
    # in one chunk, with blocks that end in 8-, 4- and 1-row sweeps, and in several.
    [(5000, 7), (300, 800), (4100, 800)],
)
def test_gradient_matches_numpy_reference(method, dtype, shape):
    X, y, coef, b = binary_problem(*shape, dtype=dtype)
    g, g0, loss = fastlr.gradient(X, y, coef, b, method=method)
    rg, rg0, rloss = reference.numpy_gradient(X.astype(float), y, coef.astype(float), b)
    assert g.dtype == dtype and g0.dtype == dtype and loss.dtype == dtype
    assert_close(g, rg, RTOL[dtype])
    assert g0 == pytest.approx(rg0, rel=RTOL[dtype])
    assert loss == pytest.approx(rloss, rel=RTOL[dtype])


@pytest.mark.parametrize("method", METHODS)
def test_gradient_matches_central_finite_differences(method):
    X, y, coef, b = binary_problem(d=5)
    g, g0, _ = fastlr.gradient(X, y, coef, b, method=method)
    # Central differences: truncation error ~h^2 * f''' ~ 1e-10, rounding
    # ~eps / h ~ 1e-11, so 1e-8 relative is a safe bound on their sum.
    fd = naive.finite_difference(
        lambda p: loss64(X, y, p[:-1], p[-1]), np.append(coef, b), h=1e-5, order=2
    )
    assert_close(g, fd[:-1], 1e-8)
    assert g0 == pytest.approx(fd[-1], rel=1e-8, abs=1e-12)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("method", METHODS)
def test_extreme_scores_stay_finite_and_exact(method, dtype):
    """|z| up to 1e4: sigmoid saturates, the loss grows linearly, nothing overflows."""
    X, y, coef, _ = binary_problem(d=4, dtype=dtype)
    X[:, 0] = np.linspace(-1, 1, X.shape[0], dtype=dtype)
    coef = np.array([1e4, 0.0, 0.0, 0.0], dtype=dtype)
    g, g0, loss = fastlr.gradient(X, y, coef, 0.0, method=method)
    assert np.all(np.isfinite(g)) and np.isfinite(g0) and np.isfinite(loss)
    rg, rg0, rloss = reference.numpy_gradient(X.astype(float), y, coef.astype(float), 0.0)
    assert_close(g, rg, RTOL[dtype])
    assert g0 == pytest.approx(rg0, rel=RTOL[dtype])
    assert loss == pytest.approx(rloss, rel=RTOL[dtype])
    assert reduction.n_chunks_for(X.shape[0]) > 1
    assert loss > 1000  # misclassified points at |z| ~ 1e4 cost ~|z| each


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_scalar_sigmoid_and_softplus_at_extremes(dtype):
    z = np.array([-1e4, -800, -100, -30, -1, 0, 1, 30, 100, 800, 1e4], dtype=dtype)
    prob = maths.sigmoid_array(z, np.empty_like(z))
    softplus = maths.log1pexp_array(z, np.empty_like(z))
    assert prob.dtype == dtype and softplus.dtype == dtype
    z64 = z.astype(float)
    # Below the smallest normal number a dtype holds only subnormals, whose
    # relative precision is lost by representation alone.
    tiny = np.finfo(dtype).tiny
    np.testing.assert_allclose(prob, reference.numpy_sigmoid(z64), rtol=RTOL[dtype], atol=tiny)
    np.testing.assert_allclose(softplus, np.logaddexp(0, z64), rtol=RTOL[dtype], atol=tiny)


def test_vectorized_log1p_is_accurate_from_subnormal_to_huge_arguments():
    """``log1p_array`` against libm's ``log1p`` over 0 to 1e300.

    A handful of roundings (the split of ``1 + x``, the series, the final sum)
    each of half an ulp: 4 ulps of relative error bound them all. The
    correction term keeps tiny arguments exact, where ``log(1 + x)`` is 0.
    """
    rng = np.random.default_rng(0)
    x = np.concatenate(
        [
            [0.0, 5e-324, 1e-300, 1e-17, 2.2e-16, 1e-8, np.sqrt(2) - 1, 1.0, 9.0, 1e300],
            rng.random(10_000) * 20,
            10 ** rng.uniform(-20, 5, 10_000),
        ]
    )
    out = np.empty_like(x)
    maths.log1p_array(x, x.size, out, np.empty(x.size, np.int64))
    np.testing.assert_allclose(out, np.log1p(x), rtol=4 * np.finfo(float).eps, atol=0)


def test_parallel_gradient_is_bitwise_reproducible_across_calls_and_threads():
    X, y, coef, b = binary_problem(n=20_000, d=33)
    assert reduction.n_chunks_for(X.shape[0]) > 2
    assert_bitwise_equal_across_threads(lambda: fastlr.gradient(X, y, coef, b, method="parallel"))


def test_gradient_sums_on_row_slices_add_up_to_the_full_gradient():
    X, y, coef, b = binary_problem(n=3000, d=6)
    sw = np.empty(0)
    full, full_b, full_loss = gradient_sums(X, y, sw, coef, b)
    out = np.zeros(6)
    total_b = total_loss = 0.0
    for rows in np.array_split(np.arange(3000), 4):
        _, db, cost = gradient_sums(X[rows], y[rows], sw, coef, b, out=out)
        total_b += db
        total_loss += cost
    assert_close(out, full, 1e-12)
    assert total_b == pytest.approx(full_b, rel=1e-12)
    assert total_loss == pytest.approx(full_loss, rel=1e-12)


@pytest.mark.parametrize("method", METHODS)
def test_integer_sample_weights_equal_repeated_rows(method):
    X, y, coef, b = binary_problem(n=100, d=4)
    weights = np.random.default_rng(1).integers(0, 4, size=100)
    weights[0] = 1
    g, g0, loss = fastlr.gradient(X, y, coef, b, method=method, sample_weight=weights)
    rows = np.repeat(np.arange(100), weights)
    rg, rg0, rloss = reference.numpy_gradient(X[rows], y[rows], coef, b)
    assert_close(g, rg, 1e-10)
    assert g0 == pytest.approx(rg0, rel=1e-10)
    assert loss == pytest.approx(rloss, rel=1e-10)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("weighted", [False, True])
def test_gradient_without_input_checks_is_the_same_gradient(dtype, weighted):
    X, y, coef, b = binary_problem(n=3000, d=7, dtype=dtype)
    sw = naive.sample_weights(3000, dtype, True) if weighted else None
    checked = fastlr.gradient(X, y, coef, b, sample_weight=sw)
    trusted = fastlr.gradient(
        X, y.astype(dtype), coef.astype(dtype), b, sample_weight=sw, check_input=False
    )
    for ours, theirs in zip(trusted, checked, strict=True):
        np.testing.assert_array_equal(ours, theirs)
        assert np.asarray(ours).dtype == dtype


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda X, y, c: (X.tolist(), y, c), "X as a 2-D float32 or float64 NumPy array"),
        (lambda X, y, c: (np.asfortranarray(X), y, c), "C-contiguous X"),
        (lambda X, y, c: (X, y.astype(np.float32), c), "y as a NumPy array of X's dtype"),
        (lambda X, y, c: (X, y[:-1], c), r"y of shape \(3000,\)"),
        (lambda X, y, c: (X, y, c[:-1]), r"coef of shape \(7,\)"),
    ],
)
def test_gradient_without_input_checks_still_checks_the_layout(change, message):
    X, y, coef, b = binary_problem(n=3000, d=7)
    X, y, coef = change(X, y.astype(np.float64), coef.astype(np.float64))
    with pytest.raises(ValueError, match=message):
        fastlr.gradient(X, y, coef, b, check_input=False)


def test_float32_input_is_computed_in_float32():
    X, y, coef, b = binary_problem(dtype=np.float32)
    g, g0, loss = fastlr.gradient(X, y.astype(np.float32), coef, b)
    assert (g.dtype, g0.dtype, loss.dtype) == (np.float32,) * 3
    for method in METHODS:
        signatures = {
            "loop": binary_dense.loop_gradient,
            "vectorized": binary_dense.batch_gradient,
            "parallel": binary_dense.fused_gradient,
        }[method].signatures
        fastlr.gradient(X, y, coef, b, method=method)
        assert any(sig[0].dtype.name == "float32" for sig in signatures)


@pytest.mark.parametrize("alpha", [0.0, 0.05])
def test_sgd_epoch_matches_the_seed_update_rule(alpha):
    """The weight-scaling trick gives the same iterates as shrinking w explicitly."""
    X, y, coef, b = binary_problem(n=60, d=5)
    order = np.random.default_rng(2).permutation(60).astype(np.int64)
    eta = 0.1
    expected_coef, expected_b, *_ = naive.naive_sgd_epoch(X, y, order, coef, b, alpha, eta)
    coef_k, b_k = coef.copy(), np.array([b])
    rate = np.array([eta, 0.5, 1.0])
    _, t = binary_dense.binary_sgd_epoch(
        X, y, np.empty(0), order, coef_k, b_k, True, alpha, 0.0, NO_L1, steps.CONSTANT, rate,
        1.0, *NO_AVERAGE,
    )  # fmt: skip
    assert t == 61.0
    np.testing.assert_allclose(coef_k, expected_coef, rtol=1e-12, atol=1e-14)
    assert b_k[0] == pytest.approx(expected_b, rel=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sgd_epoch_loss_is_the_sum_of_each_examples_loss_before_its_update(dtype):
    """The losses queued and summed in batches of LOSS_BATCH add up to the plain sum.

    150 examples: two full batches and a part one summed at the end. Each
    example's weighted loss is taken at the weights before its own update.
    """
    n = 2 * maths.LOSS_BATCH + 22
    X, y, coef, b = binary_problem(n=n, d=5, scale=3.0)
    sw = np.random.default_rng(5).uniform(0.5, 2.0, n)
    order = np.random.default_rng(2).permutation(n).astype(np.int64)
    alpha, eta = 0.05, 0.1
    expected = naive.naive_sgd_epoch(X, y, order, coef, b, alpha, eta, sw=sw).loss_sum
    cast = [a.astype(dtype) for a in (X, y, sw, coef)]
    sum_loss, _ = binary_dense.binary_sgd_epoch(
        cast[0], cast[1], cast[2], order, cast[3], np.array([b], dtype), True, alpha, 0.0,
        NO_L1, steps.CONSTANT, np.array([eta, 0.5, 1.0]), 1.0, 0.0, np.empty(0, dtype),
        np.empty(0, dtype),
    )  # fmt: skip
    # float64 agrees to rounding. float32 iterates carry float32 rounding, at
    # most ~6e-8 relative a step: 150 steps bound the loss's drift by ~1e-5.
    assert sum_loss == pytest.approx(expected, rel=1e-12 if dtype == np.float64 else 1e-5)


@pytest.mark.parametrize(("n", "d"), [(80, 5), (200, 600)])
def test_minibatch_epoch_with_one_batch_is_one_gradient_step(n, d):
    """(200, 600): three parts of shuffled rows, each summed over several blocks."""
    X, y, coef, b = binary_problem(n=n, d=d)
    alpha, eta = 0.01, 0.3
    rg, rg0, _ = reference.numpy_gradient(X, y, coef, b)
    coef_k, b_k = coef.copy(), np.array([b])
    order = np.random.default_rng(1).permutation(n).astype(np.int64)
    rate = np.array([eta, 0.5, 1.0])
    if d == 600:  # the case's point: each part spans several blocks
        assert n // reduction.batch_parts(n) > binary_dense.block_rows(n, d, 8, True)
    binary_dense.binary_minibatch_epoch(
        X,
        y,
        np.empty(0),
        order,
        whole_run(n),
        n,
        coef_k,
        b_k,
        True,
        alpha,
        0.0,
        NO_L1,
        steps.CONSTANT,
        rate,
        1.0,
    )
    np.testing.assert_allclose(coef_k, coef - eta * (rg + alpha * coef), rtol=1e-12)
    assert b_k[0] == pytest.approx(b - eta * rg0, rel=1e-12)


def test_minibatch_epoch_sums_a_batch_in_parts_reproducibly_across_threads():
    """Batches of 1000 and 400 shuffled rows are summed in 8 and 6 parallel
    parts: one batch is one step of the mean gradient, and the iterates are
    bitwise the same on 1 and 2 threads."""
    X, y, coef, b = binary_problem(n=1000, d=5)
    alpha, eta = 0.01, 0.3
    assert (reduction.batch_parts(1000), reduction.batch_parts(400)) == (8, 6)
    order = np.random.default_rng(3).permutation(1000).astype(np.int64)
    rate = np.array([eta, 0.5, 1.0])

    def epoch(batch_size, n_threads):
        coef_k, b_k = coef.copy(), np.array([b])
        with numba_threads(n_threads):
            binary_dense.binary_minibatch_epoch(
                X, y, np.empty(0), order, whole_run(1000), batch_size, coef_k, b_k, True, alpha,
                0.0, NO_L1, steps.CONSTANT, rate, 1.0,
            )  # fmt: skip
        return coef_k, b_k[0]

    rg, rg0, _ = reference.numpy_gradient(X, y, coef, b)
    coef_1, b_1 = epoch(1000, 2)
    np.testing.assert_allclose(coef_1, coef - eta * (rg + alpha * coef), rtol=1e-12)
    assert b_1 == pytest.approx(b - eta * rg0, rel=1e-12)
    for batch_size in (400, 1000):
        serial, parallel = epoch(batch_size, 1), epoch(batch_size, 2)
        np.testing.assert_array_equal(serial[0], parallel[0])
        assert serial[1] == parallel[1]


def test_minibatch_epoch_applies_the_l1_prox_after_each_step():
    X, y, coef, b = binary_problem(n=80, d=5)
    alpha, l1, eta = 0.01, 0.05, 0.3
    rg, _, _ = reference.numpy_gradient(X, y, coef, b)
    coef_k, b_k = coef.copy(), np.array([b])
    order = np.arange(80, dtype=np.int64)
    rate = np.array([eta, 0.5, 1.0])
    binary_dense.binary_minibatch_epoch(
        X, y, np.empty(0), order, whole_run(80), 80, coef_k, b_k, True, alpha, l1, NO_L1,
        steps.CONSTANT, rate, 1.0,
    )  # fmt: skip
    step = coef - eta * (rg + alpha * coef)
    expected = np.sign(step) * np.maximum(np.abs(step) - eta * l1, 0)
    np.testing.assert_allclose(coef_k, expected, rtol=1e-12, atol=1e-15)


def test_sgd_epoch_l1_matches_the_cumulative_penalty_rule():
    X, y, coef, b = binary_problem(n=60, d=5)
    order = np.random.default_rng(3).permutation(60).astype(np.int64)
    alpha, l1, eta = 0.02, 0.01, 0.1
    expected_coef, expected_b, *_ = naive.naive_sgd_epoch(X, y, order, coef, b, alpha, eta, l1=l1)
    coef_k, b_k, state = coef.copy(), np.array([b]), np.zeros(6)
    rate = np.array([eta, 0.5, 1.0])
    binary_dense.binary_sgd_epoch(
        X, y, np.empty(0), order, coef_k, b_k, True, alpha, l1, state, steps.CONSTANT, rate,
        1.0, *NO_AVERAGE,
    )  # fmt: skip
    np.testing.assert_allclose(coef_k, expected_coef, rtol=1e-10, atol=1e-13)
    assert b_k[0] == pytest.approx(expected_b, rel=1e-10)
    assert state[-1] == pytest.approx(60 * eta * l1)
    assert np.any(coef_k == 0.0)  # the penalty is strong enough to zero some weights


def test_schedules_follow_scikit_learn_definitions():
    eta0, power_t, alpha, t0 = 0.5, 0.25, 0.01, 40.0
    assert steps.learning_rate(steps.CONSTANT, 7.0, eta0, power_t, alpha, t0) == eta0
    assert steps.learning_rate(steps.INVSCALING, 16.0, eta0, power_t, alpha, t0) == (
        pytest.approx(eta0 / 2)
    )
    assert steps.learning_rate(steps.OPTIMAL, 11.0, eta0, power_t, alpha, t0) == (
        pytest.approx(1 / (alpha * 50.0))
    )


def test_read_sum_kernels_sum_x():
    X, *_ = binary_problem(n=5000, d=9)
    expected = X.sum()
    assert reduction.array_sum(X) == pytest.approx(expected, rel=1e-12, abs=1e-9)
    n_chunks = reduction.n_chunks_for(5000)
    assert reduction.parallel_array_sum(X, n_chunks) == pytest.approx(expected, rel=1e-12, abs=1e-9)


def test_last_level_cache_size_is_read_from_sysfs_or_defaults(tmp_path, monkeypatch):
    """The cached-X block rule follows the machine's largest data cache."""
    assert hardware.CACHED_X_BYTES == hardware.last_level_cache_bytes() // 2
    real_path = hardware.Path

    def fake_sysfs(levels):
        for i, (kind, size) in enumerate(levels):
            index = tmp_path / f"index{i}"
            index.mkdir(exist_ok=True)
            (index / "type").write_text(kind + "\n")
            (index / "size").write_text(size + "\n")

    fake_sysfs([("Data", "48K"), ("Instruction", "64M"), ("Unified", "2048K"), ("Unified", "8M")])
    monkeypatch.setattr(hardware, "Path", lambda _: real_path(tmp_path))
    assert hardware.last_level_cache_bytes() == 8 << 20
    monkeypatch.setattr(hardware, "Path", lambda _: real_path(tmp_path / "missing"))
    assert hardware.last_level_cache_bytes(default=123) == 123
