"""Checkpoints of a fit on a :class:`fastlr.Dataset`: the whole solver state, written atomically.

A fit given ``checkpoint=fastlr.Checkpoint(folder)`` saves, every ``every``
epochs (every ``every`` iterations for lbfgs), the model and everything the
solver needs to continue exactly where it was: the L-BFGS pairs and step,
the FISTA momentum, the stochastic schedule, L1 state, averages and random
generator, the history, the iteration. The file is a fastlr archive (see
:mod:`fastlr._persist`: JSON and ``.npy``, no pickle), written on a
background thread (the fit does not wait for the disk) to a temporary file
that is fsynced and renamed over the previous checkpoint: a process killed at
any moment leaves the last complete checkpoint.

A fit resumed from a checkpoint (``resume=True``) continues the same
trajectory and ends with the same model, bit for bit, as a fit never
interrupted, provided the kernels are the same compiled code (see
``docs/design.md``, "Compile and cache"). The checkpoint records the data's
fingerprint and the parameters that shape the trajectory; a checkpoint of
other data or other parameters is refused. ``max_iter``, ``tol``,
``verbose`` and ``n_jobs`` may change between the runs: they decide when to
stop and how to report, not the iterates.

A ``KeyboardInterrupt`` (Ctrl-C) writes the state of the last completed
epoch before it propagates.
"""

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from ._persist import ModelFileError, read_archive, write_archive

CHECKPOINT_KIND = "checkpoint"
FILE_NAME = "checkpoint.fastlr"
#: Parameters that may differ between a run and its resumption.
FREE_PARAMS = frozenset({"max_iter", "tol", "verbose", "n_jobs", "warm_start"})


class Checkpoint:
    """Where a fit on a :class:`fastlr.Dataset` saves its state, how often, and whether it resumes.

    Parameters
    ----------
    directory : str or path-like
        The folder of the checkpoint file (``checkpoint.fastlr``), created if
        missing.
    every : int, default=1
        Save every ``every`` epochs (gd, sgd, minibatch) or iterations
        (lbfgs), and when the fit ends or is interrupted.
    resume : bool, default=False
        Continue from the checkpoint in ``directory`` (an error if there is
        none, or if it belongs to other data or other parameters). False
        starts afresh and replaces any checkpoint there.

    Examples
    --------
    >>> import fastlr  # doctest: +SKIP
    >>> data = fastlr.Dataset("train.parquet", label="y")  # doctest: +SKIP
    >>> model = fastlr.LogisticRegression(solver="sgd", max_iter=20)  # doctest: +SKIP
    >>> model.fit(data, checkpoint=fastlr.Checkpoint("ckpt"))  # doctest: +SKIP
    >>> # after a crash: the same call with resume=True loses at most one epoch
    >>> model.fit(data, checkpoint=fastlr.Checkpoint("ckpt", resume=True))  # doctest: +SKIP
    """

    def __init__(self, directory, *, every=1, resume=False):
        if isinstance(every, bool) or not isinstance(every, (int, np.integer)) or every < 1:
            raise ValueError(f"every must be a positive int, got {every!r}.")
        self.directory = Path(os.fspath(directory))
        self.every = int(every)
        self.resume = bool(resume)

    @property
    def path(self):
        """The checkpoint file."""
        return self.directory / FILE_NAME

    def __repr__(self):
        return f"Checkpoint({str(self.directory)!r}, every={self.every}, resume={self.resume})"


class CheckpointSession:
    """The checkpoints of one fit: the state to resume from, and the writes.

    Parameters
    ----------
    checkpoint : Checkpoint
    identity : dict
        JSON data that a resumed run must match: ``"data"`` (the dataset's
        fingerprint), ``"params"`` (the estimator's parameters), ``"solver"``
        and whatever else shapes the trajectory (classes, dtype, features).
    """

    def __init__(self, checkpoint, identity):
        self.checkpoint = checkpoint
        self.identity = identity
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fastlr-checkpoint")
        self._pending = None
        self._latest = None  # (iteration, fields, arrays) of the last completed step
        self._written = None  # iteration of the last checkpoint handed to the writer

    def restore(self):
        """The saved ``(iteration, fields, arrays)`` to resume from, or None to start afresh."""
        if not self.checkpoint.resume:
            return None
        path = self.checkpoint.path
        if not path.exists():
            raise FileNotFoundError(
                f"{path}: there is no checkpoint to resume from. Run without resume to start "
                f"a new fit that writes one there."
            )
        header, arrays = read_archive(path, CHECKPOINT_KIND)
        self._check_identity(path, header.get("identity"))
        self._written = header["iteration"]
        fields = {**header["state"], "finished": bool(header.get("finished", False))}
        return header["iteration"], fields, arrays

    def _check_identity(self, path, saved):
        if not isinstance(saved, dict):
            raise ModelFileError(f"{path}: the checkpoint has no identity; it is damaged.")
        mine = self.identity
        if saved.get("data") != mine.get("data"):
            raise ValueError(
                f"{path} was written for other data (fingerprint {saved.get('data')}, "
                f"this data {mine.get('data')}). Resume with the data it was written for, or "
                f"start afresh (resume=False) or in another folder."
            )
        changed = []
        for key in sorted(set(saved) | set(mine)):
            if key in ("data", "params"):
                continue
            if saved.get(key) != mine.get(key):
                changed.append(f"{key}: {saved.get(key)!r} then, {mine.get(key)!r} now")
        old, new = saved.get("params", {}), mine.get("params", {})
        for name in sorted(set(old) | set(new)):
            if name not in FREE_PARAMS and old.get(name) != new.get(name):
                changed.append(f"{name}={old.get(name)!r} then, {new.get(name)!r} now")
        if changed:
            raise ValueError(
                f"{path} was written with other settings ({'; '.join(changed)}). Resume with "
                f"the same settings (only {', '.join(sorted(FREE_PARAMS))} may change), or "
                f"start afresh (resume=False) or in another folder."
            )

    def step(self, iteration, fields, arrays, finished=False, last=False):
        """Record the state after ``iteration``; write it when it is due, or the last one.

        ``finished``: the solver's stopping rule ended the fit (a resumed run
        returns this state at once). ``last``: no iteration follows in this
        run (``max_iter``). ``arrays`` are copied here: the solver may change
        its own afterwards.
        """
        arrays = {name: np.array(value, copy=True) for name, value in arrays.items()}
        self._latest = (iteration, dict(fields), arrays, finished)
        if finished or last or iteration % self.checkpoint.every == 0:
            self._write_latest()

    def _write_latest(self):
        iteration, fields, arrays, finished = self._latest
        self.wait()
        header = {
            "identity": self.identity,
            "iteration": iteration,
            "finished": finished,
            "state": fields,
        }
        self.checkpoint.directory.mkdir(parents=True, exist_ok=True)
        self._pending = self._pool.submit(
            write_archive, self.checkpoint.path, CHECKPOINT_KIND, header, arrays
        )
        self._written = iteration

    def wait(self):
        """Wait for the write in progress; raise its error, if any."""
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()

    def close(self, interrupted=False):
        """Finish: write the last completed step if it is newer (on an interrupt), then wait."""
        try:
            if interrupted and self._latest is not None and self._latest[0] != self._written:
                self._write_latest()
            self.wait()
        finally:
            self._pool.shutdown(wait=True)


def checkpoint_params(params):
    """The estimator's parameters as JSON, for a checkpoint's identity."""
    from ._persist import _encode_params

    if isinstance(params.get("random_state"), np.random.RandomState):
        raise ValueError(
            "A checkpointed fit needs random_state to be an int or None (a RandomState "
            "instance cannot be recorded to check a resumed run against)."
        )
    return _encode_params(params)


def solve_with_checkpoints(objective, solver, options, coef0, intercept0, checkpoint, identity):
    """:func:`fastlr._solvers.solve`, saving and resuming through ``checkpoint`` when given.

    A ``KeyboardInterrupt`` writes the last completed step before it propagates;
    the checkpoint's writes are finished before this returns or raises.
    """
    from ._solvers import solve

    if checkpoint is None:
        return solve(objective, solver, options, coef0, intercept0)
    if not isinstance(checkpoint, Checkpoint):
        raise TypeError(
            f"checkpoint must be a fastlr.Checkpoint, got {type(checkpoint).__name__}: "
            f"fastlr.Checkpoint(folder, every=1, resume=False)."
        )
    session = CheckpointSession(checkpoint, identity)
    try:
        options.resume = session.restore()
        options.checkpoint = session
        result = solve(objective, solver, options, coef0, intercept0)
    except BaseException as error:
        try:
            session.close(interrupted=isinstance(error, KeyboardInterrupt))
        finally:
            raise
    session.close()
    return result
