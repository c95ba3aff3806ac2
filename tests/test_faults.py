"""Faults: interruptions, forks, threads, and numerics at the edges of the float range.

- A KeyboardInterrupt raised inside a solver (its per-epoch callback, its
  verbose printing, its evaluations, its epochs) or delivered by SIGINT
  leaves the estimator exactly as it was, or exactly as a completed fit left it.
- A child forked after its parent fitted fits too (on one thread), with the
  parent's result bit for bit.
- On numba's workqueue layer, fits from several Python threads are
  serialised instead of aborting the process.
- Overlapping fits from several threads leave the BLAS thread count as it was.
- Numerics (the reliability issue's items 4, 5, 8, 9 and the kernel side
  of 6): a fit that cannot give a finite model raises a clear error; one that
  diverges with finite weights warns what to change; the "auto" step holds at
  any scale of X or names the scale it cannot hold; minibatch's step comes
  from the summed rows of a CSR matrix with duplicates; a constant objective
  returns the start; ``fastlr.gradient`` is exact for scores that overflow.
"""

import multiprocessing
import os
import signal
import subprocess
import sys
import textwrap
import threading
import warnings

import numba
import numpy as np
import pytest
import scipy.sparse
from sklearn.exceptions import ConvergenceWarning
from test_reliability import csr_variant, frozen, problem
from threadpoolctl import ThreadpoolController, threadpool_info

import fastlr
from fastlr import LogisticRegression as LR
from fastlr import _datafits, _solvers, _threads

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

SOLVERS = ("lbfgs", "gd", "sgd", "minibatch")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class Interrupt:
    """Wraps a function: calls it, and raises KeyboardInterrupt on call number ``at``."""

    def __init__(self, function, at, before=False):
        self.function, self.at, self.before, self.calls = function, at, before, 0

    def __call__(self, *args, **kwargs):
        self.calls += 1
        if self.before and self.calls == self.at:
            raise KeyboardInterrupt
        result = self.function(*args, **kwargs)
        if self.calls == self.at:
            raise KeyboardInterrupt
        return result


def situations(solver):
    """``(name, model, call)``: a fresh fit, a refit of another model, a partial_fit."""
    X, y = problem(200, 5, 2, seed=0)
    X3, y3 = problem(200, 4, 3, seed=1)
    params = dict(solver=solver, random_state=0, max_iter=20, tol=None)
    yield "fit", LR(**params), lambda model: model.fit(X, y)
    refit = LR(**params).fit(X3, y3)
    yield "refit", refit, lambda model: model.fit(X, np.array(["a", "b"])[y])
    if solver in ("sgd", "minibatch"):
        online = LR(**params).partial_fit(X, y, classes=[0, 1])
        yield "partial_fit", online, lambda model: model.partial_fit(X, y)


def assert_interrupt_leaves_model(model, call):
    before = frozen(model)
    with pytest.raises(KeyboardInterrupt):
        call(model)
    assert frozen(model) == before


def recorder(solver):
    """The class whose ``record`` a solver calls after each epoch (iteration)."""
    return _solvers._History if solver in ("sgd", "minibatch") else _solvers._Iterations


@pytest.mark.parametrize("solver", SOLVERS)
def test_interrupt_in_the_epoch_callback(monkeypatch, solver):
    for _, model, call in situations(solver):
        record = Interrupt(recorder(solver).record, at=1)
        monkeypatch.setattr(recorder(solver), "record", lambda *a, r=record: r(*a))
        assert_interrupt_leaves_model(model, call)
        monkeypatch.undo()


@pytest.mark.parametrize("solver", SOLVERS)
def test_interrupt_while_printing_verbose_output(monkeypatch, solver):
    """The first epoch's line raises, as Ctrl-C during a slow terminal write would."""

    class Terminal:
        lines = 0

        def write(self, text):
            self.lines += text.count("\n")
            if self.lines >= 1:
                raise KeyboardInterrupt
            return len(text)

        def flush(self):
            pass

    for _, model, call in situations(solver):
        model.set_params(verbose=1)
        monkeypatch.setattr(sys, "stdout", Terminal())
        assert_interrupt_leaves_model(model, call)
        monkeypatch.undo()


@pytest.mark.parametrize("solver", SOLVERS)
def test_interrupt_inside_the_compiled_passes(monkeypatch, solver):
    """After an epoch or evaluation updated the solver's buffers (and, for
    partial_fit, the saved sgd state) in place."""
    targets = {
        "lbfgs": [(_datafits.Objective, "_evaluate_into")],
        "gd": [(_datafits.Objective, "_evaluate_into")],
        "sgd": [(_datafits.InMemoryDatafit, "sgd_epoch")],
        "minibatch": [(_datafits.InMemoryDatafit, "minibatch_epoch")],
    }[solver]
    for _, model, call in situations(solver):
        for owner, name in targets:
            wrapper = Interrupt(getattr(owner, name), at=1)
            monkeypatch.setattr(owner, name, lambda *a, w=wrapper: w(*a))
        assert_interrupt_leaves_model(model, call)
        monkeypatch.undo()


SIGINT_CHILD = textwrap.dedent(
    """
    import pickle, sys, warnings
    import numpy as np
    import fastlr

    warnings.simplefilter("ignore")
    rng = np.random.default_rng(0)
    X = rng.standard_normal((20000, 20))
    y = (X @ rng.standard_normal(20) + rng.standard_normal(20000) > 0).astype(int)
    for solver in ("lbfgs", "gd", "sgd", "minibatch"):
        model = fastlr.LogisticRegression(solver=solver, max_iter=3, random_state=0)
        model.fit(X[:, :10], y)
        model.set_params(max_iter=10**6, tol=None, verbose=1)
        states = {pickle.dumps(model): "the previous model"}
        try:
            while True:  # every fit of the loop gives the same model
                model.fit(X, y)
                states.setdefault(pickle.dumps(model), "a completed fit")
        except KeyboardInterrupt:
            state = states.get(pickle.dumps(model), "a mixed model")
            print("interrupted", solver, state, flush=True)
    """
)


@pytest.mark.slow
def test_sigint_leaves_the_previous_model_or_a_completed_fit():
    """SIGINT to a process fitting: after the KeyboardInterrupt its model is the
    one it had before the fit, or the one a whole fit gives, never a mix."""
    process = subprocess.Popen(
        [sys.executable, "-c", SIGINT_CHILD],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": ROOT},
    )
    watchdog = threading.Timer(300, process.kill)
    watchdog.start()
    outcomes, signalled = [], False
    try:
        for line in process.stdout:
            if line.startswith("[") and not signalled:  # an epoch's line: the fit runs
                process.send_signal(signal.SIGINT)
                signalled = True
            elif line.startswith("interrupted"):
                outcomes.append(line.split(maxsplit=2)[1:])
                signalled = False
        process.wait()
    finally:
        watchdog.cancel()
    assert process.returncode == 0, process.stderr.read()
    assert [solver for solver, _ in outcomes] == list(SOLVERS)
    for solver, state in outcomes:
        assert state.strip() in ("the previous model", "a completed fit"), solver


# --------------------------------------------------------------------------
# Item 2: a child forked after its parent fitted.
# --------------------------------------------------------------------------

FORK_ROWS = 10_000  # several row chunks: the kernels run parallel regions


def _fit_and_send(connection, X, y, solver):
    model = LR(solver=solver, random_state=0, max_iter=5).fit(X, y)
    connection.send((model.coef_, _threads.resolve_n_jobs(None)))
    connection.close()


def _fork_and_fit(connection, X, y, solver):
    """In a child that has not fitted: fork a grandchild that fits."""
    inner = multiprocessing.get_context("fork")
    receiver, sender = inner.Pipe(duplex=False)
    process = inner.Process(target=_fit_and_send, args=(sender, X, y, solver))
    process.start()
    sender.close()
    result = _receive(receiver, process, timeout=60)
    connection.send(result)
    connection.close()


def _receive(receiver, process, timeout):
    """The child's message, or None when it died or hung (a hung child is killed)."""
    try:
        result = receiver.recv() if receiver.poll(timeout) else None
    except EOFError:  # the child died before sending
        result = None
    process.join(10)
    if process.is_alive():
        process.kill()
        process.join()
    return result


def _run_forked(target, X, y, solver):
    context = multiprocessing.get_context("fork")
    receiver, sender = context.Pipe(duplex=False)
    process = context.Process(target=target, args=(sender, X, y, solver))
    process.start()
    sender.close()
    result = _receive(receiver, process, timeout=120)
    return process.exitcode, result


@pytest.mark.skipif(sys.platform != "linux", reason="the fork start method is Linux's default")
@pytest.mark.parametrize("solver", ["lbfgs", "sgd"])
@pytest.mark.parametrize("target", [_fit_and_send, _fork_and_fit], ids=["child", "grandchild"])
def test_a_process_forked_after_fitting_fits_the_same_model(solver, target):
    """numba's GNU OpenMP layer killed the child ("fork() called from a process
    already using GNU OpenMP"); a grandchild, which numba does not detect,
    hung. Now both fit on one thread, to the parent's model bit for bit."""
    X, y = problem(FORK_ROWS, 5, 2, seed=0)
    parent = LR(solver=solver, random_state=0, max_iter=5).fit(X, y)
    exitcode, result = _run_forked(target, X, y, solver)
    assert exitcode == 0 and result is not None, f"child exit code {exitcode}"
    coef, child_threads = result
    np.testing.assert_array_equal(coef, parent.coef_)
    if numba.threading_layer() == "omp":
        assert child_threads == 1
    assert _threads.resolve_n_jobs(None) == numba.config.NUMBA_NUM_THREADS


# --------------------------------------------------------------------------
# Item 3: the workqueue layer, from several threads.
# --------------------------------------------------------------------------

WORKQUEUE_CHILD = textwrap.dedent(
    """
    import threading, warnings
    import numba, numpy as np, fastlr

    warnings.simplefilter("ignore")
    rng = np.random.default_rng(0)
    X = rng.standard_normal((20000, 5))
    y = (X[:, 0] + rng.standard_normal(20000) > 0).astype(int)
    solvers = ("lbfgs", "gd")
    expected = {
        s: fastlr.LogisticRegression(solver=s, max_iter=20).fit(X, y).coef_ for s in solvers
    }
    results = []

    def work(solver):
        for _ in range(3):
            coef = fastlr.LogisticRegression(solver=solver, max_iter=20).fit(X, y).coef_
            grad = fastlr.gradient(X, y, np.zeros(5), 0.0)[0]
            results.append(np.array_equal(coef, expected[solver]) and np.isfinite(grad).all())

    threads = [threading.Thread(target=work, args=(solvers[i % 2],)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    print(numba.threading_layer(), len(results), all(results))
    """
)


@pytest.mark.slow
def test_workqueue_layer_serialises_fits_from_several_threads():
    """workqueue aborted the process (SIGABRT, "Concurrent access has been detected")."""
    result = subprocess.run(
        [sys.executable, "-c", WORKQUEUE_CHILD],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "PYTHONPATH": ROOT, "NUMBA_THREADING_LAYER": "workqueue"},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["workqueue", "12", "True"]


# --------------------------------------------------------------------------
# Item 16: the BLAS thread count.
# --------------------------------------------------------------------------


def blas_threads():
    return [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]


@pytest.fixture
def two_blas_threads():
    """The BLAS thread count before the test: two or more (OpenBLAS's default on two cores).

    Not set with ``threadpool_limits``: a limit held by the main thread would
    make it threadpoolctl's "controlling thread" and hide what other threads do.
    """
    before = blas_threads()
    if not before or min(before) < 2:
        pytest.skip("no BLAS library that runs two threads")
    yield before
    # Put the count back even after a failure, from this thread, taking
    # threadpoolctl's control of OpenBLAS for the call.
    libraries = ThreadpoolController().select(user_api="blas").lib_controllers
    for library, n_threads in zip(libraries, before, strict=True):
        release = getattr(type(library), "clear_controlling_thread", lambda force=False: None)
        release(force=True)
        library.set_num_threads(n_threads)
        release()


def test_overlapping_blas_limits_restore_the_count_once(two_blas_threads):
    """Thread A enters, B enters, A leaves (B still needs one thread), B leaves."""
    a_in, b_in, a_out = threading.Event(), threading.Event(), threading.Event()
    seen = {}

    def first():
        with _threads.one_blas_thread():
            a_in.set()
            b_in.wait(10)
        a_out.set()

    def second():
        a_in.wait(10)
        with _threads.one_blas_thread():
            b_in.set()
            a_out.wait(10)
            seen["inside, after A left"] = blas_threads()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    assert seen["inside, after A left"] == [1] * len(two_blas_threads)
    assert blas_threads() == two_blas_threads


def test_concurrent_lbfgs_fits_restore_the_blas_count(two_blas_threads):
    X, y = problem(2000, 10, 2, seed=0)
    barrier = threading.Barrier(4)

    def work():
        barrier.wait(10)
        for _ in range(5):
            LR(max_iter=30).fit(X, y)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert blas_threads() == two_blas_threads


def test_blas_limit_released_by_an_interrupted_fit(monkeypatch, two_blas_threads):
    X, y = problem()
    record = Interrupt(recorder("lbfgs").record, at=2)
    monkeypatch.setattr(recorder("lbfgs"), "record", lambda *a: record(*a))
    with pytest.raises(KeyboardInterrupt):
        LR(solver="lbfgs").fit(X, y)
    assert blas_threads() == two_blas_threads


# --------------------------------------------------------------------------
# Numerics: divergence, the step at any scale, a constant objective and
# overflowing scores (issue items 4, 5, 8, 9 and the kernel side of 6).
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "params, scale, dtype, error, match",
    [
        (
            dict(learning_rate="constant", eta0=1e200), 1.0, np.float64, FloatingPointError,
            r"gd solver diverged at iteration \d+ .*Use a smaller eta0",
        ),
        (dict(C=1e-320), 1.0, np.float64, ValueError, r"C=1e-320 is too small.*Use a larger C"),
        # The float32 gradient sums overflow, whatever the step.
        ({}, 1e37, np.float32, FloatingPointError, r"not finite.*StandardScaler"),
    ],
    ids=["eta0=1e200", "C=1e-320", "float32 1e37"],
)  # fmt: skip
def test_item_4_gd_that_cannot_give_a_finite_model_raises(params, scale, dtype, error, match):
    X, y = problem()
    model = LR(solver="gd", **params)
    with pytest.raises(error, match=match):
        model.fit((X * scale).astype(dtype), y)
    assert not hasattr(model, "coef_") and not hasattr(model, "classes_")


@pytest.mark.parametrize("solver", SOLVERS)
def test_item_4_a_penalty_strength_beyond_float64_names_C(solver):
    """1 / (C n) overflows: every solver says so, none blames X."""
    X, y = problem()
    with pytest.raises(ValueError, match=r"C=1e-320 is too small: the penalty strength"):
        LR(solver=solver, C=1e-320).fit(X, y)


@pytest.mark.parametrize("tol", [1e-4, None])
def test_item_4_scheduled_gd_whose_objective_rises_warns(tol):
    """Steps of 30 (2 / L is near 5 here): finite iterates whose objective rises."""
    X, y = problem()
    pattern = r"gd solver diverged: its objective rose from 0.693147 to .* smaller eta0"
    with pytest.warns(ConvergenceWarning, match=pattern):
        model = LR(solver="gd", learning_rate="constant", eta0=30.0, max_iter=20, tol=tol)
        model.fit(X, y)
    assert np.isfinite(model.coef_).all()
    assert model.history_["loss"][-1] > model.history_["loss"][0]


def test_item_4_a_stable_constant_step_does_not_warn():
    X, y = problem()
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        LR(solver="gd", learning_rate="constant", eta0=1.0, max_iter=50, tol=None).fit(X, y)
        for solver in ("sgd", "minibatch"):
            LR(solver=solver, max_iter=20, tol=None, random_state=0).fit(X, y)


def lipschitz_constants(X, sparse):
    """The full-batch and the 8-row mini-batch constants: the data's alone (no
    intercept, no penalty), so that they scale with the square of X's."""
    X = scipy.sparse.csr_matrix(X) if sparse else X
    y = np.arange(X.shape[0]) % 2
    datafit = _datafits.make_datafit(X, y, np.empty(0, X.dtype), float(X.shape[0]), 2)
    objective = _datafits.Objective(datafit, 0.0, fit_intercept=False)
    return np.array([objective.lipschitz_constant(), objective.minibatch_lipschitz_constant(8)])


@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "csr"])
@pytest.mark.parametrize(
    "dtype, scale",
    [(np.float64, 1e154), (np.float64, 1e-150), (np.float32, 1e19), (np.float32, 1e-17)],
)
def test_item_5_step_estimates_scale_with_X(dtype, scale, sparse):
    """Scales at which the Gram products and the squared row norms leave the
    dtype's range (beyond its largest float, or where underflow loses digits)
    while the constants themselves do not: ``L(s X) = s^2 L(X)``. The two runs
    differ by X's rounding in ``dtype``, and the power iteration's stopping
    test is the same for both."""
    X, _ = problem(60, 4)
    expected = lipschitz_constants(X.astype(dtype), sparse) * scale**2
    actual = lipschitz_constants((X * scale).astype(dtype), sparse)
    np.testing.assert_allclose(actual, expected, rtol=1e-5 if dtype == np.float32 else 1e-12)


@pytest.mark.parametrize("solver", ["gd", "minibatch"])
@pytest.mark.parametrize("dtype, scale", [(np.float64, 1e150), (np.float32, 1e17)])
def test_item_5_auto_step_trains_at_a_large_scale(solver, dtype, scale):
    """Features whose squares overflow: as good a model as on X itself."""
    X, y = problem()
    best = LR(C=np.inf).fit(X, y).score(X, y)
    X = (X * scale).astype(dtype)
    model = LR(solver=solver, random_state=0).fit(X, y)
    assert model.score(X, y) >= best - 0.05


@pytest.mark.parametrize(
    "solver, dtype, scale, fit_intercept, size",
    [
        ("gd", np.float64, 1e300, True, "large"),
        ("minibatch", np.float64, 1e300, True, "large"),
        ("minibatch", np.float32, 1e37, True, "large"),
        ("gd", np.float64, 1e-200, False, "small"),
        ("minibatch", np.float64, 1e-200, False, "small"),
    ],
)
def test_item_5_a_step_beyond_the_float_range_names_the_scale(
    solver, dtype, scale, fit_intercept, size
):
    """No representable step: an error, not a model of zeros."""
    X, y = problem()
    model = LR(solver=solver, C=np.inf, fit_intercept=fit_intercept)
    pattern = rf"X's features are too {size} in magnitude for solver='{solver}'.*StandardScaler"
    with pytest.raises(ValueError, match=pattern):
        model.fit((X * scale).astype(dtype), y)
    assert not hasattr(model, "coef_")


def test_item_5_sgd_whose_loss_blows_up_warns():
    """Steps of 1e200: finite weights, a loss near 1e200; not a silent model."""
    X, y = problem()
    pattern = r"sgd solver diverged: the loss of its last epoch, .*, is more than twice .*eta0"
    with pytest.warns(ConvergenceWarning, match=pattern):
        model = LR(solver="sgd", learning_rate="constant", eta0=1e200, random_state=0)
        model.fit(X, y)
    assert np.isfinite(model.coef_).all()


@pytest.mark.parametrize("n_classes", [2, 3])
@pytest.mark.parametrize("l1_ratio", [0, 1])
def test_item_8_minibatch_on_duplicate_entries_equals_canonical(l1_ratio, n_classes):
    """The step comes from the summed rows: the canonical matrix's model, to rounding."""
    rng = np.random.default_rng(0)
    X, y = problem(200, 5, n_classes, seed=0)
    X[rng.random(X.shape) < 0.3] = 0.0
    params = dict(solver="minibatch", batch_size=16, l1_ratio=l1_ratio, random_state=0)
    expected = LR(**params).fit(csr_variant(X, "canonical", rng), y)
    model = LR(**params).fit(csr_variant(X, "duplicates", rng), y)
    np.testing.assert_allclose(model.coef_, expected.coef_, rtol=0, atol=1e-10)
    np.testing.assert_allclose(model.intercept_, expected.intercept_, rtol=0, atol=1e-10)


@pytest.mark.parametrize("kind", ["duplicates", "explicit zeros", "unsorted"])
def test_squared_row_norms_of_csr_are_those_of_the_summed_rows(kind):
    rng = np.random.default_rng(1)
    X, _ = problem(30, 4)
    X[rng.random(X.shape) < 0.3] = 0.0
    matrix = csr_variant(X, kind, rng)
    data = matrix.data.copy()
    np.testing.assert_allclose(_datafits.squared_row_norms(matrix), (X**2).sum(axis=1))
    np.testing.assert_array_equal(matrix.data, data)  # the caller's matrix is left as it was
    scaled = _datafits.squared_row_norms(matrix, 2.0**-600)
    np.testing.assert_allclose(scaled, (X**2).sum(axis=1) * 2.0**-1200)


@pytest.mark.parametrize("solver, n_iter", [("lbfgs", 0), ("gd", 0), ("sgd", 6), ("minibatch", 6)])
def test_item_9_a_constant_objective_returns_the_start(solver, n_iter):
    """All-zero features, no penalty, no intercept: every model has the loss log 2.

    Each solver returns its start, without a warning: lbfgs and gd at
    iteration 0 (the gradient is 0), sgd and minibatch after the
    ``n_iter_no_change + 1`` epochs of an unchanging loss that their stopping
    rule takes, as scikit-learn's ``LogisticRegression`` and ``SGDClassifier``
    do. A warm start stays where it was.
    """
    X, y = np.zeros((10, 3)), np.array([0, 1] * 5)
    model = LR(solver=solver, C=np.inf, fit_intercept=False, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.fit(X, y)
        np.testing.assert_array_equal(model.coef_, 0.0)
        assert model.n_iter_[0] == n_iter
        np.testing.assert_allclose(model.history_["loss"], np.log(2), rtol=1e-15)
        start = np.array([[1.0, -2.0, 3.0]])
        model.coef_ = start.copy()
        model.set_params(warm_start=True).fit(X, y)
    np.testing.assert_array_equal(model.coef_, start)


@pytest.mark.parametrize("method", ["loop", "vectorized", "parallel"])
def test_item_6_gradient_of_overflowing_scores_is_exact(method):
    """``1e300 * 1e10 - 1e300 * 1e10`` is ``inf - inf`` in a plain pass, exactly 0 here.

    Row 0: score 0, probability 1/2, label 1. Row 1: score 3e10, label 0, loss 3e10.
    """
    X = np.array([[1e300, -1e300], [1.0, 2.0]])
    grad, grad0, loss = fastlr.gradient(X, [1, 0], [1e10, 1e10], 0.0, method=method)
    np.testing.assert_allclose(loss, (np.log(2) + 3e10) / 2, rtol=1e-15)
    np.testing.assert_allclose(grad, [-2.5e299, 2.5e299], rtol=1e-15)
    np.testing.assert_allclose(grad0, 0.25, rtol=1e-15)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_item_6_a_loss_beyond_the_float_range_is_inf_not_nan(dtype):
    """Score 2e310 for label 0: the loss is 2e310, which rounds to inf; the gradient is finite."""
    big = float(np.finfo(dtype).max) / 2
    X = np.array([[big, big]], dtype=dtype)
    grad, grad0, loss = fastlr.gradient(X, [0], [1e10, 1e10], 0.0)
    assert loss == np.inf
    np.testing.assert_allclose(grad, [big, big], rtol=1e-6)
    assert grad0 == 1.0


def test_sparse_csr_variant_helper_keeps_the_values():
    """The storage variants used above hold the canonical matrix's values."""
    rng = np.random.default_rng(0)
    X, _ = problem(20, 4)
    X[rng.random(X.shape) < 0.3] = 0.0
    for kind in ("duplicates", "explicit zeros", "unsorted"):
        variant = csr_variant(X, kind, rng)
        np.testing.assert_array_equal(variant.toarray(), X)
        assert isinstance(variant, scipy.sparse.csr_matrix)
    assert not csr_variant(X, "duplicates", rng).has_canonical_format
