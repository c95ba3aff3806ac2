"""Checkpoints of fits on a Dataset: written atomically, refused for other data or settings,
and a run killed with SIGKILL then resumed ends with the model of a run never interrupted."""

import os
import signal
import subprocess
import sys
import textwrap
import time
import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

import fastlr
from fastlr import _checkpoint, _solvers
from fastlr._persist import read_archive


def make_data(n=2000, d=8, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    y = (X @ rng.standard_normal(d) + rng.standard_normal(n) > 0).astype(int)
    return X, y


def sgd(**params):
    return fastlr.LogisticRegression(
        solver="sgd", max_iter=6, tol=None, random_state=0, alpha=1e-3, **params
    )


def saved_iteration(folder):
    header, _ = read_archive(folder / _checkpoint.FILE_NAME, _checkpoint.CHECKPOINT_KIND)
    return header["iteration"], header["finished"]


def test_the_last_epoch_is_saved_whatever_every_says(tmp_path):
    X, y = make_data()
    data = fastlr.Dataset(X, label=y, block_rows=500)
    model = sgd().fit(data, checkpoint=fastlr.Checkpoint(tmp_path / "ckpt", every=4))
    assert saved_iteration(tmp_path / "ckpt") == (6, False)  # max_iter, not the stopping rule
    resumed = sgd().fit(data, checkpoint=fastlr.Checkpoint(tmp_path / "ckpt", resume=True))
    np.testing.assert_array_equal(resumed.coef_, model.coef_)
    np.testing.assert_array_equal(resumed.history_["loss"], model.history_["loss"])


def test_a_fit_stopped_by_its_rule_resumes_to_its_result_at_once(tmp_path, monkeypatch):
    X, y = make_data()
    data = fastlr.Dataset(X, label=y, block_rows=500)
    stopping = sgd().set_params(tol=1e-1, n_iter_no_change=2, max_iter=50)
    model = stopping.fit(data, checkpoint=fastlr.Checkpoint(tmp_path))
    assert saved_iteration(tmp_path) == (model.n_iter_[0], True) and model.n_iter_[0] < 50
    monkeypatch.setattr(fastlr._streaming.StreamedDatafit, "sgd_epoch", None)  # no epoch runs
    resumed = stopping.fit(data, checkpoint=fastlr.Checkpoint(tmp_path, resume=True))
    np.testing.assert_array_equal(resumed.coef_, model.coef_)


def test_resuming_in_process_continues_the_same_trajectory(tmp_path, monkeypatch):
    """An epoch that raises stops the run; the resumed run ends where a full one does."""
    X, y = make_data()
    data = fastlr.Dataset(X, label=y, block_rows=500)
    full = sgd().fit(data)
    real_step = _checkpoint.CheckpointSession.step

    def step_then_fail(self, iteration, *args, **kwargs):
        real_step(self, iteration, *args, **kwargs)
        if iteration == 3:
            raise RuntimeError("the machine went away")

    monkeypatch.setattr(_checkpoint.CheckpointSession, "step", step_then_fail)
    with pytest.raises(RuntimeError, match="went away"):
        sgd().fit(data, checkpoint=fastlr.Checkpoint(tmp_path / "ckpt"))
    monkeypatch.undo()
    assert saved_iteration(tmp_path / "ckpt") == (3, False)
    resumed = sgd().fit(data, checkpoint=fastlr.Checkpoint(tmp_path / "ckpt", resume=True))
    np.testing.assert_array_equal(resumed.coef_, full.coef_)
    np.testing.assert_array_equal(resumed.intercept_, full.intercept_)
    np.testing.assert_array_equal(resumed.history_["loss"], full.history_["loss"])
    assert resumed.t_ == full.t_


#: The solvers that stop on their gradient, each state a different set of arrays.
DETERMINISTIC = {
    "lbfgs": dict(solver="lbfgs"),
    "lbfgs-l1": dict(solver="lbfgs", l1_ratio=1, C=0.05),
    "gd": dict(solver="gd"),
    "gd-elasticnet": dict(solver="gd", l1_ratio=0.5, C=0.05),
    "gd-constant": dict(solver="gd", learning_rate="constant", eta0=0.5),
}


def deterministic(name, **params):
    return fastlr.LogisticRegression(**{"tol": 1e-12, **DETERMINISTIC[name], **params})


def fail_at(monkeypatch, iteration):
    """Make the checkpoint session raise once the state after ``iteration`` is recorded."""
    real_step = _checkpoint.CheckpointSession.step

    def step_then_fail(self, at, *args, **kwargs):
        real_step(self, at, *args, **kwargs)
        if at == iteration:
            raise RuntimeError("the machine went away")

    monkeypatch.setattr(_checkpoint.CheckpointSession, "step", step_then_fail)


def assert_same_fit(resumed, full):
    np.testing.assert_array_equal(resumed.coef_, full.coef_)
    np.testing.assert_array_equal(resumed.intercept_, full.intercept_)
    np.testing.assert_array_equal(resumed.n_iter_, full.n_iter_)
    for key in ("loss", "optimality"):
        np.testing.assert_array_equal(resumed.history_[key], full.history_[key])


@pytest.mark.parametrize("name", DETERMINISTIC)
def test_lbfgs_and_gd_resume_their_whole_state(tmp_path, monkeypatch, name):
    """L-BFGS's pairs and line search, FISTA's momentum and step: resumed, the same run."""
    X, y = make_data()
    data = fastlr.Dataset(X, label=y, block_rows=500)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # 12 iterations reach no tol
        full = deterministic(name, max_iter=12).fit(data)
        assert full.n_iter_[0] == 12
        fail_at(monkeypatch, 5)
        with pytest.raises(RuntimeError, match="went away"):
            deterministic(name, max_iter=12).fit(data, checkpoint=fastlr.Checkpoint(tmp_path))
        monkeypatch.undo()
        assert saved_iteration(tmp_path) == (5, False)
        resumed = deterministic(name, max_iter=12)
        resumed.fit(data, checkpoint=fastlr.Checkpoint(tmp_path, resume=True))
    assert_same_fit(resumed, full)
    assert saved_iteration(tmp_path)[0] == 12


@pytest.mark.parametrize("name", ["lbfgs", "gd"])
def test_a_run_that_reached_max_iter_continues_with_a_larger_one(tmp_path, name):
    X, y = make_data()
    data = fastlr.Dataset(X, label=y, block_rows=500)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        full = deterministic(name, max_iter=9).fit(data)
        short = deterministic(name, max_iter=4).fit(data, checkpoint=fastlr.Checkpoint(tmp_path))
    assert short.n_iter_[0] == 4
    longer = deterministic(name, max_iter=9, tol=1e-12)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        longer.fit(data, checkpoint=fastlr.Checkpoint(tmp_path, resume=True))
    assert_same_fit(longer, full)


@pytest.mark.parametrize("name", ["lbfgs", "gd"])
def test_a_converged_deterministic_fit_resumes_at_once(tmp_path, monkeypatch, name):
    X, y = make_data()
    data = fastlr.Dataset(X, label=y, block_rows=500)
    model = deterministic(name, tol=1e-4, max_iter=500).fit(
        data, checkpoint=fastlr.Checkpoint(tmp_path)
    )
    assert saved_iteration(tmp_path) == (model.n_iter_[0], True)

    def no_pass(*args, **kwargs):
        raise AssertionError("a finished fit made a pass over the data")

    monkeypatch.setattr(fastlr._streaming.StreamedDatafit, "gradient_sums", no_pass)
    resumed = deterministic(name, tol=1e-4, max_iter=500)
    resumed.fit(data, checkpoint=fastlr.Checkpoint(tmp_path, resume=True))
    assert_same_fit(resumed, model)


def test_ctrl_c_writes_the_last_completed_epoch(tmp_path, monkeypatch):
    X, y = make_data()
    data = fastlr.Dataset(X, label=y, block_rows=500)
    real_epoch = fastlr._streaming.StreamedDatafit.sgd_epoch
    calls = []

    def epoch(self, *args):
        calls.append(1)
        if len(calls) == 4:
            raise KeyboardInterrupt
        return real_epoch(self, *args)

    monkeypatch.setattr(fastlr._streaming.StreamedDatafit, "sgd_epoch", epoch)
    model = sgd()
    with pytest.raises(KeyboardInterrupt):
        model.fit(data, checkpoint=fastlr.Checkpoint(tmp_path / "ckpt", every=10))
    assert not hasattr(model, "coef_")  # the fit left nothing half-done
    assert saved_iteration(tmp_path / "ckpt") == (3, False)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (dict(data_seed=1), "written for other data"),
        (dict(params={"alpha": 1e-2}), r"alpha=0.001 then, 0.01 now"),
        (dict(params={"solver": "minibatch"}), "solver"),
    ],
)
def test_a_checkpoint_of_other_data_or_settings_is_refused(tmp_path, change, message):
    X, y = make_data()
    sgd().fit(fastlr.Dataset(X, label=y), checkpoint=fastlr.Checkpoint(tmp_path))
    X2, y2 = make_data(seed=change.get("data_seed", 0))
    model = sgd().set_params(**change.get("params", {}))
    with pytest.raises(ValueError, match=message):
        model.fit(fastlr.Dataset(X2, label=y2), checkpoint=fastlr.Checkpoint(tmp_path, resume=True))


def test_max_iter_tol_and_verbose_may_change_between_runs(tmp_path):
    X, y = make_data()
    data = fastlr.Dataset(X, label=y, block_rows=500)
    sgd().fit(data, checkpoint=fastlr.Checkpoint(tmp_path))
    longer = sgd().set_params(max_iter=8, verbose=0)
    longer.fit(data, checkpoint=fastlr.Checkpoint(tmp_path, resume=True))
    assert longer.n_iter_[0] == 8  # two more epochs after the saved six
    assert saved_iteration(tmp_path) == (8, False)


def test_resume_without_a_checkpoint_says_so(tmp_path):
    X, y = make_data(n=100)
    with pytest.raises(FileNotFoundError, match="no checkpoint to resume from"):
        sgd().fit(fastlr.Dataset(X, label=y), checkpoint=fastlr.Checkpoint(tmp_path, resume=True))


@pytest.mark.parametrize("every", [0, -1, 1.5, True])
def test_every_must_be_a_positive_int(every):
    with pytest.raises(ValueError, match="every must be a positive int"):
        fastlr.Checkpoint("folder", every=every)


def test_a_checkpoint_is_not_a_model_file(tmp_path):
    X, y = make_data(n=100)
    sgd().fit(fastlr.Dataset(X, label=y), checkpoint=fastlr.Checkpoint(tmp_path))
    with pytest.raises(fastlr.ModelFileError, match="checkpoint"):
        fastlr.load(tmp_path / _checkpoint.FILE_NAME)


CHILD = textwrap.dedent(
    """
    import sys, time, numpy as np, fastlr
    folder, out, resume, max_iter = sys.argv[1], sys.argv[2], sys.argv[3] == "1", int(sys.argv[4])
    if sys.argv[6:] == ["slow"]:  # a slow pass: time to kill the run between two checkpoints
        step = fastlr._checkpoint.CheckpointSession.step
        def slow_step(self, *args, **kwargs):
            step(self, *args, **kwargs)
            time.sleep(0.1)
        fastlr._checkpoint.CheckpointSession.step = slow_step
    rng = np.random.default_rng(0)
    X = rng.standard_normal((60000, 20))
    y = (X @ rng.standard_normal(20) + rng.standard_normal(60000) > 0).astype(int)
    data = fastlr.Dataset(X, label=y, block_rows=7000)
    model = fastlr.LogisticRegression(
        solver=sys.argv[5], max_iter=max_iter, tol=None, random_state=0, alpha=1e-4
    )
    checkpoint = fastlr.Checkpoint(folder, resume=resume) if folder != "-" else None
    model.fit(data, checkpoint=checkpoint)
    np.save(out, np.concatenate([model.coef_.ravel(), model.intercept_, model.history_["loss"]]))
    """
)


def run_child(tmp_path, folder, out, resume, max_iter, solver, wait=True):
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    args = [sys.executable, str(script), str(folder), str(out), str(int(resume)), str(max_iter)]
    slow = [] if wait else ["slow"]
    process = subprocess.Popen([*args, solver, *slow], stderr=subprocess.PIPE)
    if wait:
        _, err = process.communicate(timeout=600)
        assert process.returncode == 0, err.decode()
    return process


@pytest.mark.slow
@pytest.mark.parametrize("solver", ["sgd", "lbfgs"])
def test_a_run_killed_with_sigkill_resumes_to_the_same_model(tmp_path, solver):
    # One short run first, so that every process below loads the same compiled
    # kernels from numba's cache (see docs/design.md, "Compile and cache").
    run_child(tmp_path, "-", tmp_path / "warm.npy", False, 1, solver)
    folder = tmp_path / "ckpt"
    child = run_child(tmp_path, folder, tmp_path / "killed.npy", False, 40, solver, wait=False)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and child.poll() is None:
        if (folder / _checkpoint.FILE_NAME).exists() and saved_iteration(folder)[0] >= 3:
            break
        time.sleep(0.02)
    assert child.poll() is None, "the run ended before it could be killed"
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    killed_at, finished = saved_iteration(folder)
    assert 3 <= killed_at < 40 and not finished
    run_child(tmp_path, folder, tmp_path / "resumed.npy", True, 40, solver)
    run_child(tmp_path, "-", tmp_path / "whole.npy", False, 40, solver)
    np.testing.assert_array_equal(
        np.load(tmp_path / "resumed.npy"), np.load(tmp_path / "whole.npy")
    )


def test_the_snapshot_holds_the_whole_stochastic_state():
    X, y = make_data(n=300)
    model = sgd(average=True).fit(X, y)
    state = model._partial_state.state
    history = _solvers._History("sgd", _solvers.SolverOptions(), 300)
    plateau = _solvers._Plateau(5)
    fields, arrays = _solvers._stochastic_snapshot(
        state.coef, state.intercept, state, history, plateau
    )
    assert {"coef", "intercept", "l1_state", "rng_key", "avg_coef", "avg_intercept"} <= set(arrays)
    assert {"t", "eta0", "rng", "best", "no_improvement"} <= set(fields)
