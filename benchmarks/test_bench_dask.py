"""Training on a Dask cluster: against dask-ml, and against fastlr in memory (issue 14's figures).

One ``LocalCluster(n_workers=2, threads_per_worker=1)`` (processes) serves the
whole run; the data are made and persisted on the workers, so the client
never holds them (except for the in-memory comparisons, made after the
cluster's fits). Every figure comes from one run:

- time to the same optimum (objective within 1e-6 of the optimum, relative)
  of ``fastlr.dask.LogisticRegression`` and dask-ml's
  ``LogisticRegression(solver="lbfgs")`` on 2e6 x 20 and 2e7 x 20 float64.
  Both minimize the same objective: scikit-learn's with C = 1 and no
  intercept (dask-ml penalizes its intercept and standardizes the columns
  unless ``fit_intercept=False`` and ``normalize=False``). The time counts
  from the call to ``fit`` to the first iterate (fastlr) or evaluation
  (dask-ml, whose objective is recorded at every evaluation) within the gap;
  the optimum is fastlr's fit to ``tol=1e-10``;
- seconds per pass (loss and gradient) on the cluster against fastlr's
  in-memory pass over the same rows in this process (numba's threads);
- peak memory (VmHWM, reset before the fit) of each worker against the
  bytes of X and y it holds, and of the client against X;
- 10-class multinomial and CSR (1e6 x 1e5, 50 non-zeros a row) fits: the
  relative gap between the cluster's and the in-memory optimum, and the
  time per pass of both.

Run the full figures (about 30 minutes; dask-ml is a benchmark-only
dependency, ``pip install fastlr[bench]``)::

    python -m benchmarks.test_bench_dask --tier full

The default test run smoke-runs the same code at tiny sizes (a cluster start
and a few fits, 20-40 s), without dask-ml unless it is installed.
"""

import argparse
import contextlib
import logging
import math
import os
import time
from dataclasses import dataclass

import numpy as np
import pytest
import scipy.sparse

pytest.importorskip("distributed", reason="fastlr.dask needs dask and distributed")

import dask
import dask.array as da
from distributed import Client, LocalCluster, futures_of

import fastlr
import fastlr.dask
from fastlr import _distributed
from fastlr._datafits import BinaryLoss, MultinomialLoss, make_datafit

from ._common import TIERS, environment_lines

GAP = 1e-6  # relative objective gap that counts as "the same optimum"
# The bound on the cluster's pass against the in-memory one holds from this size on.
PASS_TARGET_ROWS = 20_000_000
# Busy cores of other processes above which a timing is flagged "unsure".
MAX_OTHER_CORES = 0.5
TIGHT_TOL = 1e-10


@dataclass(frozen=True)
class DaskSizes:
    """Problem sizes of one tier: (rows, chunks) of the dense binary comparisons, and the rest."""

    dense: tuple  # ((n, n_chunks), ...) at D features
    multinomial: tuple  # (n, n_chunks, n_classes)
    sparse: tuple  # (n, n_features, nnz per row, n_chunks)
    repeats: int  # quiet rounds of pass timings
    max_wait: float  # seconds of contended rounds before a timing is flagged instead


D = 20
SIZES = {
    "smoke": DaskSizes(((20_000, 4),), (20_000, 4, 10), (5_000, 1_000, 20, 4), 1, 0.0),
    "quick": DaskSizes(((200_000, 8),), (200_000, 8, 10), (100_000, 10_000, 50, 8), 3, 30.0),
    "full": DaskSizes(
        ((2_000_000, 8), (20_000_000, 16)),
        (2_000_000, 8, 10),
        (1_000_000, 100_000, 50, 8),
        5,
        120.0,
    ),
}


# --------------------------------------------------------------------------
# Data made on the workers
# --------------------------------------------------------------------------


def _dense_block(seed, index, rows, W):
    """Rows ``index`` of a (multinomial) logistic problem; labels from its model."""
    rng = np.random.default_rng([seed, index])
    X = rng.standard_normal((rows, W.shape[1]))
    if W.shape[0] == 1:
        y = (X @ W[0] + rng.logistic(size=rows) > 0).astype(np.float64)
    else:
        y = (X @ W.T + rng.gumbel(size=(rows, W.shape[0]))).argmax(axis=1).astype(np.float64)
    return X, y


def _sparse_block(seed, index, rows, n_features, nnz, coef):
    rng = np.random.default_rng([seed, index])
    indices = np.sort(rng.integers(0, n_features, size=(rows, nnz), dtype=np.int32), axis=1)
    data = rng.standard_normal(rows * nnz)
    indptr = np.arange(0, rows * nnz + 1, nnz, dtype=np.int32)
    X = scipy.sparse.csr_matrix((data, indices.ravel(), indptr), shape=(rows, n_features))
    y = ((X @ coef) + rng.logistic(size=rows) > 0).astype(np.float64)
    return X, y


def _stack(parts, rows, width, meta=None):
    X = da.concatenate(
        [da.from_delayed(part[0], (rows, width), np.float64, meta=meta) for part in parts]
    )
    y = da.concatenate([da.from_delayed(part[1], (rows,), np.float64) for part in parts])
    return X, y


def dense_problem(client, n, n_chunks, n_classes=2, seed=0):
    """Persisted dask arrays X (n x D, ``n_chunks`` chunks) and y, made on the workers."""
    W = np.random.default_rng(seed).standard_normal((1 if n_classes == 2 else n_classes, D))
    rows = n // n_chunks
    block = dask.delayed(_dense_block, pure=True, nout=2)
    parts = [block(seed, i, rows, W / 2) for i in range(n_chunks)]
    X, y = client.persist(list(_stack(parts, rows, D)))
    _wait(X, y)
    return X, y


def sparse_problem(client, n, n_features, nnz, n_chunks, seed=0):
    coef = np.random.default_rng(seed).standard_normal(n_features) * (2 / math.sqrt(nnz))
    rows = n // n_chunks
    block = dask.delayed(_sparse_block, pure=True, nout=2)
    parts = [block(seed, i, rows, n_features, nnz, coef) for i in range(n_chunks)]
    meta = scipy.sparse.csr_matrix((0, 0))
    X, y = client.persist(list(_stack(parts, rows, n_features, meta)))
    _wait(X, y)
    return X, y


def _wait(*collections):
    from distributed import wait

    wait([future for collection in collections for future in futures_of(collection)])


# --------------------------------------------------------------------------
# Memory: peak resident set, reset before a fit (Linux)
# --------------------------------------------------------------------------


def reset_peak():
    """Reset this process's peak resident set (VmHWM) to its current one."""
    with contextlib.suppress(OSError), open("/proc/self/clear_refs", "w") as file:
        file.write("5")


def peak_bytes():
    """This process's peak resident set since the last :func:`reset_peak`, in bytes."""
    with open("/proc/self/status") as file:
        for line in file:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return math.nan


def held_bytes(client, *collections):
    """Bytes of the collections' chunks held by each worker."""
    futures = [future for collection in collections for future in futures_of(collection)]
    sizes = client.nbytes(summary=False)
    held = {}
    for key, workers in client.who_has(futures).items():
        for worker in workers:
            held[worker] = held.get(worker, 0) + sizes.get(key, 0)
    return held


def resident_bytes():
    """This process's resident set now, in bytes."""
    with open("/proc/self/status") as file:
        for line in file:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return math.nan


@dataclass
class Memory:
    worker_ratio: float  # the largest peak over held bytes, over the workers
    worker_peak: int
    worker_held: int
    worker_idle: int  # its resident set before it held any data
    client_growth: int


@contextlib.contextmanager
def measured_memory(client, X, y, idle, out):
    """Peak memory of the workers and the client during the block; appends a :class:`Memory`.

    ``idle`` is each worker's resident set before it held any data.
    """
    held = held_bytes(client, X, y)
    client.run(reset_peak)
    reset_peak()
    before = peak_bytes()
    yield
    client_growth = peak_bytes() - before
    peaks = client.run(peak_bytes)
    worst = max(peaks, key=lambda worker: peaks[worker] / max(held.get(worker, 1), 1))
    out.append(
        Memory(
            peaks[worst] / held.get(worst, 1), peaks[worst], held.get(worst, 0),
            idle.get(worst, 0), client_growth,
        )
    )  # fmt: skip


# --------------------------------------------------------------------------
# Fits and passes
# --------------------------------------------------------------------------


class _TimedLogisticRegression(fastlr.dask.LogisticRegression):
    """Records when the solver starts, so iterate times count from the call to fit."""

    # Not fitted attributes (no trailing underscore): the fit's commit keeps them.
    def _solve(self, objective, *args):
        self.solver_started = time.perf_counter()
        result = super()._solve(objective, *args)
        self.passes = objective.datafit.n_passes
        return result


def fastlr_fit(client, X, y, **params):
    """A timed fit; returns (model, seconds, per-iterate seconds since the call, objective).

    ``model.passes_`` counts the solver's passes over the data, ``model.prepared_`` the
    seconds from the call to the solver's start.
    """
    model = _TimedLogisticRegression(client=client, **params)
    start = time.perf_counter()
    model.fit(X, y)
    seconds = time.perf_counter() - start
    model.prepared_ = model.solver_started - start
    model.passes_ = model.passes
    return model, seconds, model.prepared_ + model.history_["time"], model.history_["loss"]


def time_to_gap(times, values, optimum):
    """First time whose objective is within GAP of ``optimum`` (relative); NaN if none."""
    for seconds, value in zip(times, values, strict=True):
        if value - optimum <= GAP * abs(optimum):
            return float(seconds)
    return math.nan


class _GapReached(Exception):
    pass


def dask_ml_fit(X, y, n_samples, optimum, time_limit, max_evaluations=None, defaults=False):
    """dask-ml's lbfgs, its objective recorded per evaluation; stops once within GAP.

    Without ``defaults``, dask-ml minimizes fastlr's objective (no intercept,
    no standardization); with them, its own (a penalized intercept column
    and standardized columns), which only its time per pass is taken from.

    Returns (seconds to the gap or NaN, seconds per evaluation, evaluations, best gap,
    seconds of the whole fit).
    """
    import dask_glm.algorithms
    import dask_ml.linear_model

    original = dask_glm.algorithms.fmin_l_bfgs_b
    times, values = [], []
    start = time.perf_counter()

    def recorded(func, x0, *args, **kwargs):
        def evaluate(beta, *more):
            loss, grad = func(beta, *more)
            times.append(time.perf_counter() - start)
            values.append(float(loss) / n_samples)  # sum-scale to fastlr's mean objective
            reached = optimum is not None and values[-1] - optimum <= GAP * abs(optimum)
            enough = max_evaluations is not None and len(values) >= max_evaluations
            if reached or enough or times[-1] > time_limit:
                raise _GapReached
            return loss, grad

        return original(evaluate, x0, *args, **kwargs)

    model = dask_ml.linear_model.LogisticRegression(solver="lbfgs")
    if not defaults:
        model.set_params(fit_intercept=False, C=1.0, solver_kwargs={"normalize": False})
    dask_glm.algorithms.fmin_l_bfgs_b = recorded
    try:
        with contextlib.suppress(_GapReached):
            model.fit(X, y)
    finally:
        dask_glm.algorithms.fmin_l_bfgs_b = original
    per_pass = float(np.median(np.diff(times))) if len(times) > 1 else math.nan
    best = (min(values) - optimum) / abs(optimum) if optimum is not None and values else math.nan
    reached = time_to_gap(times, values, optimum) if optimum is not None else math.nan
    return reached, per_pass, len(values), best, time.perf_counter() - start


class ClusterCpu:
    """Cores kept busy by other processes than this one and the cluster's workers (Linux).

    :class:`benchmarks._common.CpuMonitor` counts this process and its
    waited-for children only; the workers are children still running.
    """

    def __init__(self, client):
        self.pids = [os.getpid(), *client.run(os.getpid).values()]

    def sample(self):
        try:
            with open("/proc/stat") as stat:
                ticks = [int(field) for field in stat.readline().split()[1:9]]
            own = 0
            for pid in self.pids:
                with open(f"/proc/{pid}/stat") as stat:
                    fields = stat.read().rsplit(")", 1)[1].split()
                own += int(fields[11]) + int(fields[12])  # utime, stime
        except (OSError, ValueError):
            return None
        busy = sum(ticks) - ticks[3] - ticks[4]
        return (busy - own) / os.sysconf("SC_CLK_TCK"), time.monotonic()

    def other_cores(self, start):
        """Average busy cores of other processes since ``start`` (a :meth:`sample`)."""
        end = self.sample()
        if start is None or end is None:
            return math.nan
        return max(0.0, (end[0] - start[0]) / max(end[1] - start[1], 1e-9))


@contextlib.contextmanager
def cluster_datafit(client, X, y, n_classes):
    """A :class:`fastlr._distributed.DaskDatafit` over the persisted X and y."""
    blocks = _distributed.row_blocks(X, y)
    loss = MultinomialLoss(n_classes) if n_classes > 2 else BinaryLoss()
    with _distributed.ClusterData(client, blocks) as data:
        summary = data.validate()
        total = data.encode(summary.labels, None)
        yield data.datafit(loss, sum(summary.n_rows), total, n_threads=1)


def local_datafit(X, y, n_classes):
    """fastlr's in-memory datafit over the same rows (numba's threads)."""
    return make_datafit(X, y.astype(np.int64), np.empty(0), float(X.shape[0]), n_classes)


def one_pass(datafit):
    """A zero-argument callable: one loss-and-gradient pass of ``datafit``."""
    coef = np.full(datafit.coef_shape, 0.01)
    intercept = np.zeros(datafit.n_outputs)

    def call():
        grad, grad_b = np.zeros_like(coef), np.zeros_like(intercept)
        datafit.gradient_sums(coef, intercept, True, grad, grad_b)

    return call


def interleaved_passes(cpu, calls, repeats=5, max_other_cores=MAX_OTHER_CORES, max_wait=120.0):
    """Best seconds per pass of each callable, taking turns in rounds.

    As :func:`benchmarks._common.time_interleaved`: a round during which
    other processes kept more than ``max_other_cores`` cores busy does not
    count, until such rounds have taken ``max_wait`` seconds; then the best
    of all rounds is returned, flagged contended.

    Returns
    -------
    best : dict of str to float
    contended : bool
    """
    for call in calls.values():
        call()
    quiet = dict.fromkeys(calls, math.inf)
    every = dict.fromkeys(calls, math.inf)
    quiet_rounds, wasted = 0, 0.0
    while quiet_rounds < repeats and wasted <= max_wait:
        start = cpu.sample()
        seconds = {}
        for name, call in calls.items():
            begin = time.perf_counter()
            call()
            seconds[name] = time.perf_counter() - begin
        calm = cpu.other_cores(start) <= max_other_cores
        for name, value in seconds.items():
            every[name] = min(every[name], value)
            if calm:
                quiet[name] = min(quiet[name], value)
        quiet_rounds += calm
        if not calm:
            wasted += sum(seconds.values()) + 0.5
            time.sleep(0.5)
    return (quiet if quiet_rounds else every), not quiet_rounds


def pass_times(client, X, y, n_classes, X_local, y_local, sizes):
    """``(cluster, in-memory, contended)`` seconds per pass over the same rows."""
    cpu = ClusterCpu(client)
    with cluster_datafit(client, X, y, n_classes) as datafit:
        calls = {
            "cluster": one_pass(datafit),
            "local": one_pass(local_datafit(X_local, y_local, n_classes)),
        }
        best, contended = interleaved_passes(cpu, calls, sizes.repeats, max_wait=sizes.max_wait)
    return best["cluster"], best["local"], contended


def start_cluster():
    cluster = LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
        silence_logs=logging.ERROR,
    )  # fmt: skip
    return cluster, Client(cluster)


def warm_up(client, with_dask_ml):
    """Kernels loaded on the workers (and dask-ml imported) before anything is timed."""
    X, y = dense_problem(client, 8192, 2)
    fastlr.dask.LogisticRegression(client=client, max_iter=2, tol=None).fit(X, y)
    Xm, ym = dense_problem(client, 8192, 2, n_classes=3)
    fastlr.dask.LogisticRegression(client=client, max_iter=2, tol=None).fit(Xm, ym)
    Xs, ys = sparse_problem(client, 8192, 100, 5, 2)
    fastlr.dask.LogisticRegression(client=client, max_iter=2, tol=None).fit(Xs, ys)
    for Xw, yw, n_classes in ((X, y, 2), (Xm, ym, 3)):
        one_pass(local_datafit(Xw.compute(), yw.compute(), n_classes))()
    if with_dask_ml:
        dask_ml_fit(X, y, 8192, None, time_limit=60)
        dask_ml_fit(X, y, 8192, None, time_limit=60, defaults=True)


# --------------------------------------------------------------------------
# The comparisons
# --------------------------------------------------------------------------


def dense_rows(client, n, n_chunks, with_dask_ml, time_limit, sizes, idle):
    """The rows of the report for the dense binary problem of n x D."""
    setting = f"n={n:.0e} x {D}, float64, {n_chunks} chunks"
    cpu = ClusterCpu(client)
    X, y = dense_problem(client, n, n_chunks)
    memory = []
    start = cpu.sample()
    with measured_memory(client, X, y, idle, memory):
        model, seconds, times, losses = fastlr_fit(
            client, X, y, fit_intercept=False, tol=TIGHT_TOL, max_iter=1000
        )
    busy = cpu.other_cores(start)
    optimum = float(np.min(losses))
    ours = time_to_gap(times, losses, optimum)
    iterations = int(np.argmax(losses - optimum <= GAP * abs(optimum))) + 1
    rows = [
        ("fastlr.dask time to the optimum (gap 1e-6)",
         f"{setting}; {iterations} iterations, data ready in {model.prepared_:.2f} s; "
         f"{_busy(busy)}", f"{ours:.2f} s", "-", "info"),
        ("fastlr.dask fit to tol=1e-10",
         f"{setting}; {model.n_iter_[0]} iterations, {model.passes_} passes", f"{seconds:.2f} s",
         "-", "info"),
    ]  # fmt: skip
    if with_dask_ml:
        start = cpu.sample()
        theirs, per_pass, evaluations, best, _ = dask_ml_fit(X, y, n, optimum, time_limit)
        busy = max(busy, cpu.other_cores(start))
        detail = (
            f"{setting}; dask-ml {theirs:.1f} s, {evaluations} evaluations, {per_pass:.2f} s "
            f"each; {_busy(busy)}"
        )
        if math.isnan(theirs):
            detail += f"; best gap {best:.1e} after {time_limit} s"
        rows.append((
            "dask-ml lbfgs time / fastlr.dask time", detail, _ratio(theirs, ours), ">= 10x",
            "unsure" if busy > MAX_OTHER_CORES else None,
        ))  # fmt: skip
        # Its defaults minimize another objective; only their time is comparable.
        _, default_pass, evaluations, _, total = dask_ml_fit(
            X, y, n, None, time_limit, defaults=True
        )
        rows.append((
            "dask-ml with its defaults, to its own optimum / fastlr.dask time",
            f"{setting}; dask-ml {total:.1f} s, {evaluations} evaluations, {default_pass:.2f} s "
            f"each (a penalized intercept, standardized columns: another objective)",
            _ratio(total, ours), "-", "info",
        ))  # fmt: skip
    X_local, y_local = X.compute(), y.compute()
    cluster, local, contended = pass_times(client, X, y, 2, X_local, y_local, sizes)
    del X_local, y_local
    rows.append((
        "cluster pass / in-memory pass", f"{setting}; {cluster:.3f} s vs {local:.3f} s",
        _ratio(cluster, local), "<= 1.5x" if n >= PASS_TARGET_ROWS else "-",
        "unsure" if contended else None,
    ))  # fmt: skip
    mem = memory[0]
    rows.append((
        "worker peak memory / its share of X and y",
        f"{setting}; {mem.worker_peak / 2**20:.0f} MiB over {mem.worker_held / 2**20:.0f} MiB",
        f"{mem.worker_ratio:.2f}x", "<= 1.5x", None,
    ))  # fmt: skip
    rows.append((
        "worker peak memory above its idle process / its share of X and y",
        f"{setting}; idle worker {mem.worker_idle / 2**20:.0f} MiB",
        f"{(mem.worker_peak - mem.worker_idle) / max(mem.worker_held, 1):.2f}x", "-", "info",
    ))  # fmt: skip
    x_bytes = n * D * 8
    rows.append((
        "client peak memory growth / X", f"{setting}; {mem.client_growth / 2**20:.0f} MiB",
        f"{100 * mem.client_growth / x_bytes:.1f} %", "< 25 %", None,
    ))  # fmt: skip
    client.cancel([X, y])
    return rows


def family_rows(client, label, X, y, n_classes, setting, sizes):
    """Same optimum as in memory, and the time per pass of both, for one family."""
    params = dict(tol=1e-8, max_iter=1000)
    model = fastlr.dask.LogisticRegression(client=client, **params).fit(X, y)
    X_local, y_local = X.compute(), y.compute()
    reference = fastlr.LogisticRegression(**params).fit(X_local, y_local)
    cluster, local, contended = pass_times(client, X, y, n_classes, X_local, y_local, sizes)
    ours, theirs = model.history_["loss"][-1], reference.history_["loss"][-1]
    gap = abs(ours - theirs) / abs(theirs)
    return [
        (f"{label}: cluster optimum vs in-memory optimum", setting, f"{gap:.1e}", "<= 1e-08",
         "PASS" if gap <= 1e-8 else "MISS"),
        (f"{label}: cluster pass / in-memory pass", f"{setting}; {cluster:.3f} s vs {local:.3f} s",
         _ratio(cluster, local), "-", "unsure" if contended else "info"),
    ]  # fmt: skip


def _busy(cores):
    return f"other processes kept {cores:.1f} cores busy"


def _ratio(a, b):
    return "n/a" if math.isnan(a) or math.isnan(b) or b <= 0 else f"{a / b:.2f}x"


def _verdict(row):
    metric, setting, measured, target, result = row
    if result is not None or target == "-" or measured == "n/a":
        return metric, setting, measured, target, result or "info"
    value = float(measured.rstrip("x% "))
    bound = float(target.lstrip("<>= ").rstrip("x% "))
    ok = value >= bound if target.startswith(">=") else value <= bound
    if target.startswith("<") and not target.startswith("<="):
        ok = value < bound
    return metric, setting, measured, target, "PASS" if ok else "MISS"


def run(tier, with_dask_ml, time_limit=1800):
    """All the report's rows for ``tier``."""
    sizes = SIZES[tier]
    cluster, client = start_cluster()
    try:
        idle = client.run(resident_bytes)
        warm_up(client, with_dask_ml)
        rows = []
        for n, n_chunks in sizes.dense:
            rows += dense_rows(client, n, n_chunks, with_dask_ml, time_limit, sizes, idle)
        n, n_chunks, n_classes = sizes.multinomial
        X, y = dense_problem(client, n, n_chunks, n_classes=n_classes)
        setting = f"n={n:.0e} x {D}, {n_classes} classes, {n_chunks} chunks"
        rows += family_rows(client, "multinomial", X, y, n_classes, setting, sizes)
        client.cancel([X, y])
        n, n_features, nnz, n_chunks = sizes.sparse
        X, y = sparse_problem(client, n, n_features, nnz, n_chunks)
        setting = f"CSR n={n:.0e} x {n_features:.0e}, {nnz} non-zeros a row, {n_chunks} chunks"
        rows += family_rows(client, "CSR binary", X, y, 2, setting, sizes)
        client.cancel([X, y])
        return [_verdict(row) for row in rows]
    finally:
        client.close()
        cluster.close()


def _has_dask_ml():
    try:
        import dask_ml.linear_model  # noqa: F401
    except ImportError:
        return False
    return True


def test_dask_figures_smoke(tier):
    """The whole comparison at the tier's sizes (smoke by default), dask-ml if installed."""
    rows = run(tier.name, _has_dask_ml(), time_limit=60)
    optima = [row for row in rows if "optimum vs in-memory optimum" in row[0]]
    assert len(optima) == 2
    assert all(row[4] == "PASS" for row in optima), optima


def main(argv=None):
    """Print the figures of issue 14, measured side by side in one run."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.test_bench_dask", description=main.__doc__
    )
    parser.add_argument("--tier", choices=sorted(TIERS), default="quick", help="default: quick")
    parser.add_argument(
        "--time-limit", type=float, default=1800, help="seconds allowed to dask-ml per fit"
    )
    args = parser.parse_args(argv)
    with_dask_ml = _has_dask_ml()
    start = time.perf_counter()
    rows = run(args.tier, with_dask_ml, args.time_limit)
    print("\n".join(environment_lines()))
    if not with_dask_ml:
        print("dask-ml is not installed (pip install fastlr[bench]): its rows are left out")
    print("| metric | setting | measured | target | result |")
    print("|---|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    print(f"({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
