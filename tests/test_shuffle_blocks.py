"""shuffle="blocks": blocks of contiguous rows in a shuffled order, mini-batches cut from them.

The orders are checked directly (every row once an epoch, blocks of whole
batches, drawn from the solver's generator alone), the kernels' runs of rows
read in place against the same rows gathered and against the naive rule, the
CSR kernels against the dense ones, and the fits against the streamed fit on
the same blocks, against row shuffling and against the optimum of lbfgs.
"""

import itertools

import naive
import numpy as np
import pytest
import scipy.sparse
from naive import assert_close, binary_problem, whole_run

import fastlr
from fastlr import _orders
from fastlr._threads import numba_threads
from fastlr.kernels import binary_csr, binary_dense, multinomial_csr, multinomial_dense, steps


def block_epochs(n, block_rows, seed, count=3):
    orders = _orders.block_orders(n, block_rows, np.random.RandomState(seed))
    return list(itertools.islice(orders, count))


# --------------------------------------------------------------------------
# The orders
# --------------------------------------------------------------------------


def test_every_row_is_visited_once_an_epoch_in_shuffled_blocks():
    n, block_rows = 1000, 96
    epochs = block_epochs(n, block_rows, seed=0)
    for order in epochs:
        assert order.rows.shape == (0,)  # rows read in place
        np.testing.assert_array_equal(np.sort(order.row_order()), np.arange(n))
        starts, stops = order.runs[:, 0], order.runs[:, 1]
        np.testing.assert_array_equal(np.sort(starts), np.arange(0, n, block_rows))
        np.testing.assert_array_equal(stops, np.minimum(starts + block_rows, n))
        assert not np.all(np.diff(starts) > 0)  # shuffled
    assert not np.array_equal(epochs[0].runs, epochs[1].runs)  # a new order each epoch


def test_block_orders_come_from_the_generator_alone():
    """The same seed gives the same epochs; each is one permutation of the blocks, the
    draw :func:`fastlr._orders.block_plans` makes for a streamed dataset's blocks."""
    first, again = block_epochs(500, 64, seed=5), block_epochs(500, 64, seed=5)
    rng = np.random.RandomState(5)
    for order, repeat in zip(first, again, strict=True):
        np.testing.assert_array_equal(order.runs, repeat.runs)
        np.testing.assert_array_equal(order.runs[:, 0], 64 * rng.permutation(8))
    in_order = next(_orders.block_orders(500, 64, None))
    np.testing.assert_array_equal(in_order.row_order(), np.arange(500))


def test_row_orders_are_one_run_over_the_shuffled_rows():
    orders = _orders.epoch_row_orders(50, np.random.RandomState(7), ahead=False)
    order = next(orders)
    orders.close()
    expected = np.arange(50)
    np.random.RandomState(7).shuffle(expected)
    np.testing.assert_array_equal(order.rows, expected)
    np.testing.assert_array_equal(order.runs, whole_run(50))
    assert order.row_order() is order.rows  # no copy for the per-example epochs


@pytest.mark.parametrize(
    ("n", "row_bytes", "batch_size", "expected"),
    [
        (10**6, 800, 256, 1280),  # five batches of 200 KiB: 1 MiB of rows
        (10**6, 800, 1, 1310),  # sgd: rows of 1 MiB
        (10**6, 800, 4096, 4096),  # a batch of more than 1 MiB: one batch
        (2000, 800, 32, 96),  # 1 MiB would make one block: 16 blocks or more
        (100, 800, 256, 256),  # fewer rows than a batch: one batch
    ],
)
def test_blocks_hold_whole_batches_of_about_one_mib(n, row_bytes, batch_size, expected):
    block_rows = _orders.shuffle_block_rows(n, row_bytes, batch_size)
    assert block_rows == expected and block_rows % batch_size == 0
    if expected >= 2 * batch_size and n >= 10**6:
        assert block_rows * row_bytes <= _orders.SHUFFLE_BLOCK_BYTES
        assert (block_rows + batch_size) * row_bytes > _orders.SHUFFLE_BLOCK_BYTES


def test_batches_are_cut_from_each_run_and_never_span_two():
    runs = np.array([[640, 700], [0, 256], [256, 640]], dtype=np.int64)
    bounds = steps.batch_bounds(runs, 100)
    expected = [
        [640, 700], [0, 100], [100, 200], [200, 256], [256, 356], [356, 456], [456, 556],
        [556, 640],
    ]  # fmt: skip
    assert bounds.tolist() == expected


def test_the_batches_of_a_blocks_epoch_are_contiguous_rows():
    """Blocks of three batches of 32 over 1000 rows: every batch is 32 contiguous rows
    but the last block's second (1000 - 960 = 40 rows: 32, then 8)."""
    (order,) = block_epochs(1000, 96, seed=1, count=1)
    bounds = steps.batch_bounds(order.runs, 32)
    lengths = sorted(stop - start for start, stop in bounds)
    assert lengths == [8] + [32] * 31
    covered = np.concatenate([np.arange(start, stop) for start, stop in bounds])
    np.testing.assert_array_equal(np.sort(covered), np.arange(1000))
    block_of = bounds[:, 0] // 96
    assert np.all((bounds[:, 1] - 1) // 96 == block_of)  # inside one block


# --------------------------------------------------------------------------
# The kernels: runs of rows read in place
# --------------------------------------------------------------------------


def position_runs(runs):
    """The runs of the same batches over the materialized order (positions 0, 1, ...)."""
    lengths = runs[:, 1] - runs[:, 0]
    stops = np.cumsum(lengths)
    return np.stack([stops - lengths, stops], axis=1)


def binary_blocks_epoch(X, y, order, runs, n_threads=1):
    coef, b = np.zeros(X.shape[1]), np.array([0.1])
    no_l1 = np.zeros(X.shape[1] + 1)
    with numba_threads(n_threads):
        loss, t = binary_dense.binary_minibatch_epoch(
            X, y, np.empty(0), order, runs, 256, coef, b, True, 0.01, 0.0, no_l1,
            steps.INVSCALING, np.array([0.2, 0.5, 1.0]), 1.0,
        )  # fmt: skip
    return coef, b[0], loss, t


def test_rows_read_in_place_take_the_steps_of_the_same_rows_gathered():
    """Blocks of 512 rows of 600 features: batches of 256 in four parallel parts,
    each several kernel blocks long; the runs read in place agree with the same
    batches read through the materialized order to rounding, and are bitwise the
    same on one and two threads."""
    X, y, _, _ = binary_problem(n=2000, d=600)
    (order,) = block_epochs(2000, 512, seed=2, count=1)
    in_place = binary_blocks_epoch(X, y, order.rows, order.runs)
    gathered = binary_blocks_epoch(X, y, order.row_order(), position_runs(order.runs))
    assert in_place[3] == gathered[3] == 1.0 + 8  # 2000 = 3 * 512 + 464: 2 batches a block
    assert_close(in_place[0], gathered[0], 1e-12)
    assert in_place[1] == pytest.approx(gathered[1], rel=1e-12)
    assert in_place[2] == pytest.approx(gathered[2], rel=1e-12)
    two_threads = binary_blocks_epoch(X, y, order.rows, order.runs, n_threads=2)
    np.testing.assert_array_equal(in_place[0], two_threads[0])
    assert in_place[1:] == two_threads[1:]


def test_multinomial_runs_follow_the_naive_update_rule():
    X, y, sw, coef, intercept = naive.multinomial_problem(n=400, d=5, n_classes=3)
    (order,) = block_epochs(400, 90, seed=3, count=1)
    expected = naive.naive_minibatch_epoch(
        X, y, sw, order.rows, 30, coef, intercept, 0.05, naive.invscaling(0.2, 0.5), order.runs
    )
    coef_k, intercept_k = coef.copy(), intercept.copy()
    _, t = multinomial_dense.multinomial_minibatch_epoch(
        X, y, sw, order.rows, order.runs, 30, coef_k, intercept_k, True, 0.05, 0.0,
        np.zeros(coef.size + 1), steps.INVSCALING, np.array([0.2, 0.5, 1.0]), 1.0,
    )  # fmt: skip
    assert t == 1.0 + 14  # 4 blocks of 3 batches, the last block's 40 rows in 2
    np.testing.assert_allclose(coef_k, expected[0], rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(intercept_k, expected[1], rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("n_classes", [None, 3])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_csr_runs_equal_the_dense_runs(dtype, n_classes):
    """The CSR epochs read runs of rows through ``indptr`` (no order) as the dense ones."""
    pair = (
        (binary_csr.csr_minibatch_epoch, binary_dense.binary_minibatch_epoch)
        if n_classes is None
        else (
            multinomial_csr.csr_multinomial_minibatch_epoch,
            multinomial_dense.multinomial_minibatch_epoch,
        )
    )
    problem = naive.csr_epoch_problem(dtype, np.int32, True, n_classes=n_classes)
    (order,) = block_epochs(problem[0].shape[0], 64, seed=4, count=1)
    run = naive.assert_csr_epochs_equal(
        pair, problem, dtype, batch_size=32, penalty=(0.01, 0.0), schedule=steps.INVSCALING,
        runs=order.runs,
    )  # fmt: skip
    assert run.t == 1.0 + 2 * 47  # two epochs: 23 blocks of 2 batches, the last 28 rows in 1


# --------------------------------------------------------------------------
# The estimator
# --------------------------------------------------------------------------


def logistic_data(n, d, seed=0):
    """Gaussian rows in no particular order, labels drawn from a logistic model."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    scores = X @ (rng.standard_normal(d) * 3 / np.sqrt(d)) + 0.5
    return X, (rng.random(n) < 1 / (1 + np.exp(-scores))).astype(np.int64)


@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize("solver", ["sgd", "minibatch"])
def test_a_blocks_fit_depends_on_random_state_only(solver, sparse):
    X, y = logistic_data(3000, 6)
    X = scipy.sparse.csr_matrix(X) if sparse else X
    params = dict(solver=solver, shuffle="blocks", max_iter=3, tol=None, batch_size=32)

    def fit(seed):
        return fastlr.LogisticRegression(random_state=seed, **params).fit(X, y)

    first, again, other = fit(0), fit(0), fit(1)
    np.testing.assert_array_equal(first.coef_, again.coef_)
    np.testing.assert_array_equal(first.history_["loss"], again.history_["loss"])
    assert not np.array_equal(first.coef_, other.coef_)


@pytest.mark.parametrize(("solver", "block_rows"), [("sgd", 30), ("minibatch", 40)])
def test_in_memory_blocks_take_the_steps_of_the_streamed_blocks(solver, block_rows):
    """480 rows make 16 in-memory blocks (batch 40: of one batch; sgd: of 30 rows).
    A Dataset of blocks that size visits them in the same order, drawn from the
    same generator, and reads their rows in order: the same fit, to rounding."""
    X, y = logistic_data(480, 5, seed=1)
    row_bytes = X.shape[1] * X.itemsize
    batch = 1 if solver == "sgd" else 40
    assert _orders.shuffle_block_rows(480, row_bytes, batch) == block_rows
    params = dict(
        solver=solver, shuffle="blocks", max_iter=3, tol=None, learning_rate="invscaling",
        eta0=0.05, batch_size=40, alpha=1e-3, random_state=3,
    )  # fmt: skip
    in_memory = fastlr.LogisticRegression(**params).fit(X, y)
    streamed = fastlr.LogisticRegression(**params).fit(
        fastlr.Dataset(X, label=y, block_rows=block_rows)
    )
    np.testing.assert_allclose(streamed.coef_, in_memory.coef_, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(streamed.history_["loss"], in_memory.history_["loss"], rtol=1e-12)
    rows_shuffled = fastlr.LogisticRegression(**{**params, "shuffle": True}).fit(X, y)
    assert not np.allclose(rows_shuffled.coef_, in_memory.coef_, rtol=1e-6)


@pytest.mark.parametrize("solver", ["sgd", "minibatch"])
def test_a_blocks_fit_reaches_the_optimum_as_row_shuffling_does(solver):
    """5000 rows in no particular order, C = 0.01 (an L2 strength of 0.02, whose
    "auto" steps decay within the fit), 20 epochs: blocks of 312 rows (sgd) or of
    one batch (minibatch). Over seeds 0 to 4 both orders ended 0.0003-0.008% above
    the lbfgs optimum; the bound, 0.1%, is ten times that and ten times below the
    1% at which the solver's final check warns."""
    X, y = logistic_data(5000, 10)
    C, classes = 0.01, np.unique(y)
    best = fastlr.LogisticRegression(C=C, tol=1e-10, max_iter=10_000).fit(X, y)

    def value(model):
        return naive.objective(model.coef_, model.intercept_, X, y, C=C, classes=classes)

    for shuffle in (True, "blocks"):
        model = fastlr.LogisticRegression(
            solver=solver, C=C, shuffle=shuffle, tol=None, max_iter=20, random_state=0
        ).fit(X, y)
        assert 0 <= (value(model) - value(best)) / value(best) <= 1e-3, shuffle


def test_a_sequential_dataset_cannot_shuffle_its_blocks(tmp_path):
    from sklearn.datasets import dump_svmlight_file

    X, y = logistic_data(200, 4)
    dump_svmlight_file(X, y, str(tmp_path / "data.svm"))
    data = fastlr.Dataset(tmp_path / "data.svm", block_rows=50, n_features=4)
    model = fastlr.LogisticRegression(solver="sgd", shuffle="blocks", max_iter=2)
    with pytest.raises(ValueError, match=r"shuffle='blocks'.*read sequentially.*to_cache"):
        model.fit(data)
    assert not hasattr(model, "coef_")


@pytest.mark.parametrize("value", ["rows", "block", 2, None])
@pytest.mark.parametrize("estimator", [fastlr.LogisticRegression, fastlr.LogisticRegressionCV])
def test_a_bad_shuffle_names_the_accepted_values(estimator, value):
    X, y = logistic_data(50, 3)
    with pytest.raises(ValueError, match=r"'shuffle' parameter .* 'bool' .* \{'blocks'\}"):
        estimator(solver="minibatch", shuffle=value).fit(X, y)
