"""The solvers' epoch orders: shuffled ahead on a second thread, the same as in place."""

import itertools

import numpy as np
import pytest

import fastlr
from fastlr import _orders, _solvers


def in_place_orders(n, seed, count):
    """``count`` orders from shuffling one array in place, as a plain loop would."""
    rng, order, orders = np.random.RandomState(seed), np.arange(n), []
    for _ in range(count):
        rng.shuffle(order)
        orders.append(order.copy())
    return orders, rng


@pytest.mark.parametrize("ahead", [False, True])
def test_epoch_orders_are_successive_in_place_shuffles(ahead):
    expected, _ = in_place_orders(50, 7, 4)
    orders = _orders.row_orders(50, np.random.RandomState(7), ahead)
    got = [order.copy() for order in itertools.islice(orders, 4)]
    orders.close()
    for actual, wanted in zip(got, expected, strict=True):
        np.testing.assert_array_equal(actual, wanted)


@pytest.mark.parametrize("taken", [1, 3])
def test_closing_undoes_the_shuffle_made_ahead(taken):
    """The generator's state after ``taken`` orders is that of ``taken`` shuffles."""
    _, after = in_place_orders(50, 7, taken)
    rng = np.random.RandomState(7)
    orders = _orders.row_orders(50, rng, ahead=True)
    for _ in itertools.islice(orders, taken):
        pass
    orders.close()
    assert rng.randint(2**31) == after.randint(2**31)


def test_epoch_orders_without_shuffle_are_the_rows_in_order():
    orders = _orders.row_orders(5, None, ahead=True)
    assert [list(order) for order in itertools.islice(orders, 2)] == [list(range(5))] * 2


@pytest.mark.parametrize("then_partial_fit", [0, 2])
def test_sgd_shuffled_ahead_gives_the_model_of_shuffling_in_place(monkeypatch, then_partial_fit):
    """Two numba threads shuffle ahead (threshold lowered to 1 row), one does not.

    The fit's last epoch discards a shuffle made ahead: the ``partial_fit``
    calls after it must still draw the orders an in-place loop would.
    """
    monkeypatch.setattr(_solvers, "BACKGROUND_SHUFFLE_ROWS", 1)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((300, 4))
    y = (X[:, 0] + 0.5 * rng.standard_normal(300) > 0).astype(int)

    def train(n_jobs):
        model = fastlr.LogisticRegression(
            solver="sgd", max_iter=3, tol=None, random_state=0, n_jobs=n_jobs
        )
        model.fit(X, y)
        for _ in range(then_partial_fit):
            model.partial_fit(X, y)
        return model

    ahead, in_place = train(2), train(1)
    np.testing.assert_array_equal(ahead.coef_, in_place.coef_)
    np.testing.assert_array_equal(ahead.intercept_, in_place.intercept_)


def test_random_state_none_draws_one_seed_from_numpys_global_generator(monkeypatch):
    """Shuffled ahead, a fit with random_state=None neither rewinds numpy's global
    generator nor draws from it past one seed: seeding it reproduces the model."""
    monkeypatch.setattr(_solvers, "BACKGROUND_SHUFFLE_ROWS", 1)
    rng = np.random.default_rng(1)
    X = rng.standard_normal((200, 3))
    y = (X[:, 0] > 0).astype(int)
    # The legacy global generator is what random_state=None means.
    global_rng = np.random.mtrand._rand

    def fit_after_seeding():
        global_rng.seed(5)
        model = fastlr.LogisticRegression(solver="sgd", max_iter=4, tol=None, n_jobs=2)
        return model.fit(X, y).coef_, global_rng.random_sample()

    (coef_a, after_a), (coef_b, after_b) = fit_after_seeding(), fit_after_seeding()
    np.testing.assert_array_equal(coef_a, coef_b)
    global_rng.seed(5)
    global_rng.randint(np.iinfo(np.int32).max)
    assert after_a == after_b == global_rng.random_sample()
