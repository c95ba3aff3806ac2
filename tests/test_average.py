"""Averaged SGD (``average``): the four sgd epochs, ``partial_fit``, and scikit-learn.

The references are plain NumPy: the seed's per-example rule with an explicit
L2 shrink, and the running mean of its iterates after each update from update
``average_start`` on. The kernels keep W as a scalar times a vector and the
CSR kernels keep the average lazily, ``(U + a V) / b``; both are algebraically
the explicit rule, so float64 agrees to rounding (1e-10 relative; the lazy
form loses a few digits to the cancellation in ``U + a V``, ~n ulps over n
updates). float32 accumulates ~``sqrt(n) * 6e-8`` relative, held to 1e-4.
"""

import naive
import numpy as np
import pytest
import scipy.sparse
from naive import RTOL
from scipy.special import logsumexp
from sklearn.linear_model import LogisticRegression as SkLogisticRegression
from sklearn.linear_model import SGDClassifier

import fastlr
from fastlr._validation import csr_arrays
from fastlr.kernels import binary_csr, binary_dense, multinomial_csr, multinomial_dense, steps

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


# --------------------------------------------------------------------------
# Problems, and the kernels run as the references run
# --------------------------------------------------------------------------


def run_epochs(epoch, data_args, y, order, coef, intercept, alpha, l1, schedule, rate, start,
               n_epochs=1):  # fmt: skip
    """``n_epochs`` averaged epochs of ``epoch`` with unit weights, from update ``start`` on.

    Returns ``(coef, intercept, avg_coef, avg_intercept, t)``, in the order of
    :func:`naive.naive_sgd_epoch`'s result.
    """
    run = naive.run_epochs(
        epoch, data_args, y, np.empty(0, coef.dtype), order, coef, intercept, alpha=alpha, l1=l1,
        schedule=schedule, rate=rate, average_start=start, n_epochs=n_epochs,
    )  # fmt: skip
    return run.coef, run.intercept, run.avg_coef, run.avg_intercept, run.t


def binary_epochs(X, y, coef, order, alpha, eta, start, n_epochs=1):
    """:func:`run_epochs` of the dense binary kernel at a constant ``eta``, from intercept 0.2."""
    rate = np.array([eta, 0.5, 1.0])
    return run_epochs(
        binary_dense.binary_sgd_epoch, (X,), y, order, coef, 0.2, alpha, 0.0, steps.CONSTANT, rate,
        start, n_epochs,
    )  # fmt: skip


def binary_problem(n=200, d=6, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)).astype(dtype)
    y = (X @ rng.standard_normal(d) + 0.5 * rng.standard_normal(n) > 0).astype(dtype)
    coef = (0.1 * rng.standard_normal(d)).astype(dtype)
    order = rng.permutation(n).astype(np.int64)
    return X, y, coef, order


def multinomial_problem(n=200, d=5, n_classes=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    scores = X @ rng.standard_normal((d, n_classes)) + rng.gumbel(size=(n, n_classes))
    y = scores.argmax(axis=1).astype(np.int64)
    coef = 0.1 * rng.standard_normal((n_classes, d))
    intercept = 0.1 * rng.standard_normal(n_classes)
    order = rng.permutation(n).astype(np.int64)
    return X, y, coef, intercept, order


# --------------------------------------------------------------------------
# Kernels against the naive running mean
# --------------------------------------------------------------------------


@pytest.mark.parametrize("start", [1, 57])
@pytest.mark.parametrize("alpha", [0.0, 0.05])
def test_dense_binary_average_is_the_running_mean_of_the_iterates(alpha, start):
    X, y, coef, order = binary_problem()
    eta = 0.1
    expected = naive.naive_sgd_epoch(X, y, order, coef, 0.2, alpha, eta, average_start=start)
    ours = binary_epochs(X, y, coef, order, alpha, eta, start)
    assert ours[4] == expected[4] == 201
    for got, want in zip(ours[:4], expected[:4], strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-11, atol=1e-13)
    if start > 1:  # the mean of the iterates after updates k, k+1, ..., n only
        every = naive.naive_sgd_epoch(X, y, order, coef, 0.2, alpha, eta, average_start=1)
        assert not np.allclose(ours[2], every[2])


def test_averaging_off_leaves_the_epoch_unchanged():
    X, y, coef, order = binary_problem()
    averaged = binary_epochs(X, y, coef, order, 0.05, 0.1, 1)
    plain = binary_epochs(X, y, coef, order, 0.05, 0.1, 0)
    np.testing.assert_array_equal(averaged[0], plain[0])
    assert np.all(plain[2] == 0)


def test_average_start_after_the_epoch_leaves_the_average_at_zero():
    X, y, coef, order = binary_problem()
    ours = binary_epochs(X, y, coef, order, 0.05, 0.1, 500)
    assert np.all(ours[2] == 0) and ours[3][0] == 0


def test_average_starting_in_the_second_epoch():
    X, y, coef, order = binary_problem()
    eta, alpha, start = 0.1, 0.05, 250
    first = naive.naive_sgd_epoch(X, y, order, coef, 0.2, alpha, eta, average_start=start)
    second = naive.naive_sgd_epoch(
        X, y, order, first[0], first[1], alpha, eta, average_start=start, t=first[4]
    )
    ours = binary_epochs(X, y, coef, order, alpha, eta, start, n_epochs=2)
    np.testing.assert_allclose(ours[2], second[2], rtol=1e-11, atol=1e-13)
    np.testing.assert_allclose(ours[3], second[3], rtol=1e-11, atol=1e-13)


@pytest.mark.parametrize("alpha", [0.0, 0.05])
def test_dense_multinomial_average_is_the_running_mean_of_the_iterates(alpha):
    X, y, coef, intercept, order = multinomial_problem()
    eta = 0.1
    expected = naive.naive_sgd_epoch(X, y, order, coef, intercept, alpha, eta, average_start=1)
    rate = np.array([eta, 0.5, 1.0])
    ours = run_epochs(
        multinomial_dense.multinomial_sgd_epoch, (X,), y, order, coef, intercept, alpha, 0.0,
        steps.CONSTANT, rate, 1,
    )  # fmt: skip
    for got, want in zip(ours[:4], expected[:4], strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-11, atol=1e-13)


# --------------------------------------------------------------------------
# The lazy CSR average equals the dense one on X.toarray()
# --------------------------------------------------------------------------


def sparse_problem(dtype, n=1500, d=40, density=0.1, n_classes=None, seed=0):
    rng = np.random.default_rng(seed)
    X = scipy.sparse.random(
        n, d, density=density, format="csr", dtype=dtype, random_state=rng,
        data_rvs=rng.standard_normal,
    )  # fmt: skip
    X.indices = X.indices.astype(np.int32)
    X.indptr = X.indptr.astype(np.int32)
    order = rng.permutation(n).astype(np.int64)
    if n_classes is None:
        y = (rng.random(n) < 0.4).astype(dtype)
        coef = (0.2 * rng.standard_normal(d)).astype(dtype)
        intercept = np.array([0.3], dtype)
    else:
        y = rng.integers(0, n_classes, n).astype(np.int64)
        coef = (0.2 * rng.standard_normal((n_classes, d))).astype(dtype)
        intercept = (0.1 * rng.standard_normal(n_classes)).astype(dtype)
    return X, y, coef, intercept, order


EPOCHS = {
    "binary": (binary_csr.csr_sgd_epoch, binary_dense.binary_sgd_epoch, None),
    "multinomial": (
        multinomial_csr.csr_multinomial_sgd_epoch,
        multinomial_dense.multinomial_sgd_epoch,
        3,
    ),
}


@pytest.mark.parametrize(
    ("penalty", "schedule", "start"),
    [
        ((0.0, 0.0), steps.INVSCALING, 1),
        ((0.01, 0.0), steps.OPTIMAL, 1),
        ((0.01, 0.0), steps.OPTIMAL, 1700),  # averaging starts in the second epoch
        # The weight scale falls below 1e-9 every ~800 steps: the lazy average
        # is folded with it mid-epoch.
        ((0.5, 0.0), steps.CONSTANT, 1),
    ],
)
@pytest.mark.parametrize("model", ["binary", "multinomial"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_csr_average_equals_the_dense_average(dtype, model, penalty, schedule, start):
    csr_epoch, dense_epoch, n_classes = EPOCHS[model]
    X, y, coef, intercept, order = sparse_problem(dtype, n_classes=n_classes)
    rate = np.array([0.05, 0.5, 10.0])
    args = (y, order, coef, intercept, *penalty, schedule, rate, start)
    ours = run_epochs(csr_epoch, csr_arrays(X)[:3], *args, n_epochs=2)
    dense = run_epochs(dense_epoch, (X.toarray(),), *args, n_epochs=2)
    assert ours[2].dtype == dtype and ours[4] == dense[4]
    assert np.any(ours[2] != 0)
    for got, want in zip(ours[:4], dense[:4], strict=True):
        np.testing.assert_allclose(got, want, rtol=RTOL[dtype], atol=RTOL[dtype] * 1e-2)


@pytest.mark.parametrize("model", ["binary", "multinomial"])
def test_csr_average_with_elastic_net_equals_the_dense_one_when_every_row_is_full(model):
    """Full rows: no weight lags on its L1 truncation, so the iterates are the dense ones."""
    csr_epoch, dense_epoch, n_classes = EPOCHS[model]
    X, y, coef, intercept, order = sparse_problem(
        np.float64, n=500, d=8, density=1.0, n_classes=n_classes
    )
    rate = np.array([0.05, 0.5, 10.0])
    args = (y, order, coef, intercept, 0.01, 0.01, steps.CONSTANT, rate, 1)
    ours = run_epochs(csr_epoch, csr_arrays(X)[:3], *args, n_epochs=2)
    dense = run_epochs(dense_epoch, (X.toarray(),), *args, n_epochs=2)
    assert np.any(ours[0] == 0)  # the truncation clipped weights at 0
    for got, want in zip(ours[:4], dense[:4], strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


# --------------------------------------------------------------------------
# The estimator
# --------------------------------------------------------------------------


SGD = dict(solver="sgd", alpha=1e-3, learning_rate="optimal", shuffle=False, tol=None)


@pytest.mark.parametrize("sparse", [False, True])
def test_partial_fit_over_chunks_equals_fit_with_average(breast_cancer, sparse):
    X, y = breast_cancer
    X = scipy.sparse.csr_matrix(X) if sparse else X
    for n_epochs in (1, 2):
        fitted = fastlr.LogisticRegression(**SGD, average=True, max_iter=n_epochs).fit(X, y)
        online = fastlr.LogisticRegression(**SGD, average=True)
        for _ in range(n_epochs):
            for chunk in np.array_split(np.arange(X.shape[0]), 5):
                online.partial_fit(X[chunk], y[chunk], classes=[0, 1])
        np.testing.assert_allclose(online.coef_, fitted.coef_, rtol=1e-10, atol=1e-13)
        np.testing.assert_allclose(online.intercept_, fitted.intercept_, rtol=1e-10)
        assert online.t_ == fitted.t_


def test_average_k_keeps_the_iterate_until_k_updates(breast_cancer):
    X, y = breast_cancer
    plain = fastlr.LogisticRegression(**SGD, max_iter=1).fit(X, y)
    late = fastlr.LogisticRegression(**SGD, average=10_000, max_iter=1).fit(X, y)
    np.testing.assert_array_equal(late.coef_, plain.coef_)
    started = fastlr.LogisticRegression(**SGD, average=300, max_iter=1).fit(X, y)
    every = fastlr.LogisticRegression(**SGD, average=True, max_iter=1).fit(X, y)
    assert not np.allclose(started.coef_, plain.coef_)
    assert not np.allclose(started.coef_, every.coef_)


def test_average_keeps_float32(breast_cancer):
    X, y = breast_cancer
    model = fastlr.LogisticRegression(**SGD, average=True, max_iter=2).fit(X.astype(np.float32), y)
    assert model.coef_.dtype == np.float32 and model.intercept_.dtype == np.float32


@pytest.mark.parametrize("average", [True, 569])
def test_averaged_sgd_ends_closer_to_the_optimum_than_plain_sgd(breast_cancer, average):
    """With a constant step the iterate stalls at a noise floor; its mean does not.

    (Measured on this problem: with the decaying "optimal" step over 5-10
    epochs the plain iterate is already close and the average, dragged by the
    early iterates, is 3-10x further off; that is why ``average=k`` exists.)
    """
    X, y = breast_cancer
    alpha = 1e-2
    reference = SkLogisticRegression(C=1 / (alpha * X.shape[0]), tol=1e-10, max_iter=10_000)
    reference.fit(X, y)
    best = naive.objective(reference.coef_, reference.intercept_, X, y, alpha=alpha)
    params = dict(
        solver="sgd", alpha=alpha, learning_rate="constant", eta0=0.05, tol=None, max_iter=10,
        random_state=0,
    )  # fmt: skip
    plain = fastlr.LogisticRegression(**params).fit(X, y)
    averaged = fastlr.LogisticRegression(**params, average=average).fit(X, y)
    gap_plain = naive.objective(plain.coef_, plain.intercept_, X, y, alpha=alpha) - best
    gap_averaged = naive.objective(averaged.coef_, averaged.intercept_, X, y, alpha=alpha) - best
    assert 0 <= gap_averaged < 0.5 * gap_plain


@pytest.mark.parametrize("average", [True, 200])
@pytest.mark.parametrize("max_iter", [1, 3])
def test_average_equals_scikit_learns_sgd_classifier(breast_cancer, average, max_iter):
    """Same update order, schedule, t0 and averaging (sklearn's ``_plain_sgd``)."""
    X, y = breast_cancer
    alpha = 1e-3
    sk = SGDClassifier(
        loss="log_loss", alpha=alpha, learning_rate="optimal", shuffle=False,
        average=average, max_iter=max_iter, tol=None,
    ).fit(X, y)  # fmt: skip
    ours = fastlr.LogisticRegression(
        **{**SGD, "alpha": alpha}, average=average, max_iter=max_iter
    ).fit(X, y)
    np.testing.assert_allclose(ours.coef_, sk.coef_, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(ours.intercept_, sk.intercept_, rtol=1e-8, atol=1e-10)


def test_average_needs_the_sgd_solver(breast_cancer):
    X, y = breast_cancer
    for solver in ("minibatch", "gd", "lbfgs"):
        with pytest.raises(ValueError, match=f"average=True .* needs solver='sgd'.*{solver}"):
            fastlr.LogisticRegression(solver=solver, average=True).fit(X, y)
    with pytest.raises(ValueError, match="needs solver='sgd'"):
        fastlr.LogisticRegression(solver="minibatch", average=5).partial_fit(X, y, classes=[0, 1])


def test_average_is_validated(breast_cancer):
    X, y = breast_cancer
    with pytest.raises(ValueError, match="average"):
        fastlr.LogisticRegression(solver="sgd", average=0).fit(X, y)
    with pytest.raises(ValueError, match="average"):
        fastlr.LogisticRegression(solver="sgd", average=1.5).fit(X, y)


def test_multinomial_average_through_the_estimator():
    X, y, *_ = multinomial_problem(n=300)
    model = fastlr.LogisticRegression(**SGD, average=True, max_iter=1).fit(X, y)
    order = np.arange(300, dtype=np.int64)
    sk_t0 = 1.0 / (np.sqrt(1.0 / np.sqrt(1e-3)) * 1e-3)
    rate = np.array([0.01, 0.5, sk_t0])
    coef, intercept = np.zeros((3, 5)), np.zeros(3)
    expected = run_epochs(
        multinomial_dense.multinomial_sgd_epoch, (X,), y, order, coef, intercept, 1e-3, 0.0,
        steps.OPTIMAL, rate, 1,
    )  # fmt: skip
    np.testing.assert_allclose(model.coef_, expected[2], rtol=1e-12)
    np.testing.assert_allclose(model.intercept_, expected[3], rtol=1e-12)
    assert not np.allclose(model.coef_, expected[0])
    assert logsumexp(model.decision_function(X), axis=1).shape == (300,)
