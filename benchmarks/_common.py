"""Shared infrastructure of the benchmarks: tiers, cases, data, timing, environment.

The pytest-benchmark suite (``benchmarks/test_bench_*.py``) and the report
(``python -m benchmarks.report``) measure the same cases on the same data;
both take them from here and from :mod:`benchmarks._workloads`.
"""

import functools
import math
import os
import platform
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import numba
import numpy as np
import sklearn

import fastlr
from fastlr import reference

DTYPES = ("float32", "float64")

# Kernels of the gradient grid, and of the comparison with the plain-Python loop.
GRID_KERNELS = (
    "numpy",
    "loop",
    "vectorized",
    "fused-1t",
    "fused-2t",
    "fused-2t-noloss",
    "public-2t",
    "read-1t",
    "read-2t",
)
LOOP_KERNELS = ("python_loop", "loop", "vectorized", "numpy", "fused-2t")
SCALING_KERNELS = ("numpy", "fused-1t", "fused-2t")
EPOCH_METHODS = (
    "gd",
    "sgd",
    "minibatch-32",
    "minibatch-256",
    "minibatch-4096",
    "minibatch-256-blocks",
    "numpy-gd",
    "sklearn-sgd",
)
LBFGS_LIBRARIES = ("fastlr", "sklearn")
FIT_SOLVERS = ("lbfgs", "gd", "sgd", "minibatch")

# The multinomial and sparse families: softmax over N_CLASSES classes on dense
# X, and the binary and softmax losses on CSR X.
N_CLASSES = 10
MULTINOMIAL_KERNELS = ("numpy", "fused-1t", "fused-2t", "fused-2t-noloss")
# scikit-learn also with one BLAS thread: with its default threads its OpenBLAS
# and OpenMP pools spin against each other on two cores.
MULTINOMIAL_LBFGS_LIBRARIES = ("fastlr", "sklearn", "sklearn-blas1")
DIGITS_SHAPE = (1797, 64)  # scikit-learn's digits, the small multinomial problem
SPARSE_KERNELS = ("scipy", "csr-1t", "csr-2t", "csr-2t-noloss")
SPARSE_FAMILIES = ("binary", "multinomial")
KERNEL_FAMILIES = ("binary-dense", "multinomial-dense", "binary-csr", "multinomial-csr")
# One epoch of each family's kernels: sgd (also averaged, and with L1), mini-batch.
KERNEL_EPOCHS = ("sgd", "sgd-average", "sgd-elasticnet", "minibatch-256", "minibatch-256-l1")

LOOP_D = 100  # features of the plain-Python loop comparison
SCALING_D = 10  # features of the time-against-n curve (bounds memory at n = 1e7)

# Variables that change what BLAS or numba do; the report prints those set.
ENV_VARS = (
    "OPENBLAS_CORETYPE",
    "OPENBLAS_L2_SIZE",
    "OPENBLAS_NUM_THREADS",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "NUMBA_NUM_THREADS",
    "NUMBA_THREADING_LAYER",
    "NUMBA_CACHE_DIR",
    "NUMBA_DISABLE_JIT",
)


@dataclass(frozen=True)
class Tier:
    """Problem sizes of one benchmark tier.

    Parameters
    ----------
    name : str
        ``"smoke"``, ``"quick"`` or ``"full"``.
    grad_elements : int
        ``n * d`` of each X of the gradient grid, so every point reads as many bytes.
    grad_dims : tuple of int
        Numbers of features of the gradient grid.
    loop_n : int
        Rows of the comparison with the plain-Python loop (``LOOP_D`` features).
    train_shape : tuple of int
        ``(n, d)`` of the training benchmarks.
    scaling_ns : tuple of int
        Numbers of rows of the time-against-n curve.
    repeats : int
        Timed repeats of each gradient measurement in the report (the best counts).
    train_repeats : int
        Timed repeats of each training measurement.
    sparse_shapes : dict of str to tuple of int
        ``(n, d, non-zeros per row)`` of the CSR gradient of each family.
    """

    name: str
    grad_elements: int
    grad_dims: tuple
    loop_n: int
    train_shape: tuple
    scaling_ns: tuple
    repeats: int
    train_repeats: int
    sparse_shapes: dict

    def grad_n(self, d):
        """Rows of the gradient grid's X with ``d`` features."""
        return self.grad_elements // d

    @property
    def main_point(self):
        """``(n, d)`` of the headline gradient comparison (n = 1e6, d = 100 in full)."""
        return self.grad_n(100), 100


TIERS = {
    "smoke": Tier(
        "smoke", 20_000, (10, 100, 1000), 500, (2_000, 10), (1_000, 10_000), 2, 1,
        {"binary": (2_000, 1_000, 20), "multinomial": (2_000, 1_000, 20)},
    ),
    "quick": Tier(
        "quick", 10_000_000, (10, 100, 1000), 10_000, (100_000, 100), (10**4, 10**5, 10**6), 7, 3,
        {"binary": (100_000, 10_000, 50), "multinomial": (100_000, 10_000, 50)},
    ),
    # The sizes. The multinomial CSR point has 1e4 features, not 1e5:
    # with 10 classes the chunks' dense (K, d) partials would reach the cap of
    # fastlr.kernels.multinomial_csr.csr_multinomial_n_chunks at one chunk,
    # leaving nothing to run in parallel.
    "full": Tier(
        "full", 100_000_000, (10, 100, 1000), 10_000, (1_000_000, 100),
        (10**4, 10**5, 10**6, 10**7), 7, 3,
        {"binary": (1_000_000, 100_000, 50), "multinomial": (1_000_000, 10_000, 50)},
    ),
}  # fmt: skip


@dataclass(frozen=True)
class Case:
    """One benchmarked point: what runs (``name``) on which data."""

    name: str
    n: int
    d: int
    dtype: str
    group: str

    @property
    def id(self):
        """Test id for pytest."""
        return f"{self.name}-{self.n}x{self.d}-{self.dtype}"


def _cases(kind, names, shapes, dtypes=("float64",), detail=""):
    """One :class:`Case` per dtype, ``(n, d)`` shape and name, grouped by all but the name.

    ``detail`` goes into the group after ``d`` (``"|K=10"``, for instance).
    """
    return [
        Case(name, n, d, dtype, f"{kind}|n={n}|d={d}{detail}|{dtype}")
        for dtype in dtypes
        for n, d in shapes
        for name in names
    ]


def gradient_cases(tier):
    """One gradient evaluation per kernel, dtype and d; plus the plain-Python loop point."""
    shapes = [(tier.grad_n(d), d) for d in tier.grad_dims]
    grid = _cases("gradient", GRID_KERNELS, shapes, DTYPES)
    loop = _cases("gradient", LOOP_KERNELS, [(tier.loop_n, LOOP_D)])
    return list(dict.fromkeys(grid + loop))


def scaling_cases(tier):
    """Gradient time against n, grouped by kernel."""
    return [
        Case(kernel, n, SCALING_D, "float64", f"scaling|{kernel}|d={SCALING_D}|float64")
        for n in tier.scaling_ns
        for kernel in SCALING_KERNELS
    ]


def epoch_cases(tier):
    """One training epoch of each method."""
    return _cases("epoch", EPOCH_METHODS, [tier.train_shape], DTYPES)


def optimum_cases(tier):
    """lbfgs time to scikit-learn's optimum, float64."""
    return _cases("lbfgs-to-optimum", LBFGS_LIBRARIES, [tier.train_shape])


def memory_cases(tier):
    """Peak extra memory of ``fit`` for each solver and dtype."""
    return _cases("fit-memory", FIT_SOLVERS, [tier.train_shape], DTYPES)


def multinomial_shapes(tier):
    """``(n, d)`` of the multinomial problems: digits, then the tier's training shape."""
    return [DIGITS_SHAPE, tier.train_shape]


def multinomial_gradient_cases(tier):
    """One multinomial gradient evaluation per kernel on each multinomial problem."""
    shapes = multinomial_shapes(tier)
    detail = f"|K={N_CLASSES}"
    return _cases("multinomial-gradient", MULTINOMIAL_KERNELS, shapes, detail=detail)


def multinomial_lbfgs_cases(tier):
    """Multinomial lbfgs time to scikit-learn's optimum on each multinomial problem."""
    shapes = multinomial_shapes(tier)
    detail = f"|K={N_CLASSES}"
    return _cases(
        "multinomial-lbfgs-to-optimum", MULTINOMIAL_LBFGS_LIBRARIES, shapes, detail=detail
    )


@dataclass(frozen=True)
class FamilyCase:
    """One point on the problem of a kernel family: ``name`` runs on ``family``'s data.

    ``family`` is ``"binary-dense"``, ``"multinomial-dense"``, ``"binary-csr"`` or
    ``"multinomial-csr"``; ``nnz_per_row`` is None for dense X.
    """

    kind: str
    name: str
    family: str
    n: int
    d: int
    nnz_per_row: int | None
    dtype: str

    @property
    def group(self):
        """The pytest-benchmark group: every ``name`` on the same data."""
        nnz = "" if self.nnz_per_row is None else f"|nnz/row={self.nnz_per_row}"
        classes = f"|K={N_CLASSES}" if self.family.startswith("multinomial") else ""
        return f"{self.kind}|n={self.n}|d={self.d}{nnz}{classes}|{self.dtype}"

    @property
    def id(self):
        """Test id for pytest."""
        return f"{self.family}-{self.name}-{self.dtype}"


def family_shape(tier, family):
    """``(n, d, nnz_per_row)`` of ``family``'s problem: the training shape, or the CSR shape."""
    loss, storage = family.split("-")
    if storage == "dense":
        return (*tier.train_shape, None)
    return tier.sparse_shapes[loss]


def sparse_cases(tier):
    """One CSR gradient evaluation per loss, dtype and kernel."""
    return [
        FamilyCase(
            "sparse-gradient" if loss == "binary" else "sparse-multinomial-gradient",
            kernel,
            f"{loss}-csr",
            *tier.sparse_shapes[loss],
            dtype,
        )
        for loss in SPARSE_FAMILIES
        for dtype in DTYPES
        for kernel in SPARSE_KERNELS
    ]


def kernel_epoch_cases(tier):
    """One epoch of each family's sgd and mini-batch kernels (through the contract), float64."""
    return [
        FamilyCase("kernel-epoch", name, family, *family_shape(tier, family), "float64")
        for family in KERNEL_FAMILIES
        for name in KERNEL_EPOCHS
    ]


# --------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------


def generate_data(n, d, dtype="float64", seed=0):
    """A learnable binary problem: standard normal X, labels from a logistic model.

    Parameters
    ----------
    n, d : int
        Rows and features.
    dtype : {"float32", "float64"}
        dtype of X and y; X is generated in it directly (no float64 copy).
    seed : int
        Seed of the generator.

    Returns
    -------
    X : ndarray of shape (n, d)
        C-contiguous.
    y : ndarray of shape (n,)
        0/1 in X's dtype.
    """
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d), dtype=np.dtype(dtype))
    true_coef = (rng.standard_normal(d) * (3 / np.sqrt(d))).astype(X.dtype)
    prob = reference.numpy_sigmoid(X @ true_coef + X.dtype.type(0.5))
    y = (rng.random(n) < prob).astype(X.dtype)
    return X, y


# The two most recent data sets stay in memory (1.8 GB at most in the full tier);
# callers must not modify them.
cached_data = functools.lru_cache(maxsize=2)(generate_data)


# --------------------------------------------------------------------------
# Timing
# --------------------------------------------------------------------------


@dataclass
class Timing:
    """Best time per call of one callable, and what its last call returned.

    ``contended`` is True when every timed round ran while other processes kept
    the CPU busy, so the time is likely too slow.
    """

    seconds: float
    result: object
    contended: bool = False


class CpuMonitor:
    """How busy other processes kept the CPU since the monitor started (Linux only).

    The benchmarks' ratios assume the cores are free: a parallel region waits
    for its slowest thread, so another process on one of the two cores can make a
    2-thread call slower than a 1-thread one.
    """

    def __init__(self):
        self._start = self._sample()

    @staticmethod
    def _sample():
        try:
            with open("/proc/stat") as stat:
                ticks = [int(field) for field in stat.readline().split()[1:9]]
        except (OSError, ValueError):
            return None
        busy = sum(ticks) - ticks[3] - ticks[4]  # all but idle and iowait; steal counts
        own = os.times()
        own_cpu = own.user + own.system + own.children_user + own.children_system
        return busy / os.sysconf("SC_CLK_TCK"), own_cpu, time.monotonic()

    def other_cores(self):
        """Average number of cores used by other processes (None where unknown)."""
        end = self._sample()
        if self._start is None or end is None:
            return None
        busy, own, wall = (b - a for a, b in zip(self._start, end, strict=True))
        return max(0.0, (busy - own) / max(wall, 1e-9))


def _calibrate(calls, min_time):
    """Run each callable once (a warm-up); return its result and calls per round."""
    results, number = {}, {}
    for name, call in calls.items():
        start = time.perf_counter()
        results[name] = call()
        elapsed = time.perf_counter() - start
        number[name] = min(10_000, max(1, math.ceil(min_time / max(elapsed, 1e-7))))
    return results, number


def _timed_round(calls, number, results, settle=0.0):
    """One round: each callable in turn; seconds per call of each.

    With ``settle``, each turn first sleeps ``settle`` seconds and makes one
    untimed call (see :func:`time_interleaved`).
    """
    seconds = {}
    for name, call in calls.items():
        if settle:
            time.sleep(settle)
            call()
        start = time.perf_counter()
        for _ in range(number[name]):
            results[name] = call()
        seconds[name] = (time.perf_counter() - start) / number[name]
    return seconds


def time_interleaved(calls, repeats, min_time=0.05, max_other_cores=0.5, max_wait=10.0, settle=0.0):
    """Time callables side by side: every round runs each of them in turn.

    Taking turns spreads the machine's slow phases over all callables, so their
    ratios are fairer than from timing one after the other. A round during which
    other processes kept more than ``max_other_cores`` cores busy is not counted
    (a 2-thread kernel then waits for a descheduled thread) and is run again,
    until contended rounds have taken ``max_wait`` seconds.

    Parameters
    ----------
    calls : dict of str to callable
        Zero-argument callables. The first call of each is an untimed warm-up
        that also sets how many calls one round makes (enough for ``min_time``).
    repeats : int
        Rounds to count; the best time of each callable wins.
    min_time : float
        Seconds one round of a callable should last at least.
    max_other_cores : float
        Busy cores of other processes above which a round is not counted.
    max_wait : float
        Seconds spent on contended rounds after which their times are used
        (flagged ``contended``) rather than waiting longer for quiet rounds.
    settle : float
        When positive, each turn starts with a sleep of ``settle`` seconds and
        one untimed call: the timed calls then run with the callable's own
        thread pools awake and no other's spinning. Without it, OpenBLAS
        workers left spinning by one callable (about 0.1 s after a call) take
        the cores of the next one's threads, and a pool asleep since the last
        turn takes 5-15 ms to wake on these VMs: a digits fit (10-40 ms)
        measures either.

    Returns
    -------
    timings : dict of str to Timing
    """
    results, number = _calibrate(calls, min_time)
    best_quiet = dict.fromkeys(calls, math.inf)
    best_any = dict.fromkeys(calls, math.inf)
    quiet_rounds, wasted = 0, 0.0
    while quiet_rounds < repeats and wasted <= max_wait:
        monitor, start = CpuMonitor(), time.monotonic()
        seconds = _timed_round(calls, number, results, settle)
        quiet = (monitor.other_cores() or 0.0) <= max_other_cores
        for name, value in seconds.items():
            best_any[name] = min(best_any[name], value)
            if quiet:
                best_quiet[name] = min(best_quiet[name], value)
        quiet_rounds += quiet
        if not quiet:
            time.sleep(0.5)
            wasted += time.monotonic() - start
    best = best_quiet if quiet_rounds else best_any
    return {name: Timing(best[name], results[name], not quiet_rounds) for name in calls}


# --------------------------------------------------------------------------
# Environment
# --------------------------------------------------------------------------


def _cpu_name():
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _threading_layer():
    try:
        return numba.threading_layer()
    except ValueError:  # no parallel kernel has run yet
        return "not initialized"


def _revision():
    """Commit of the checkout under test, with ``-dirty`` when it has local changes."""
    root = Path(__file__).resolve().parent.parent
    try:
        completed = subprocess.run(
            ["git", "-C", str(root), "describe", "--always", "--dirty"],
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return completed.stdout.strip()


def environment_lines():
    """Describe the machine, the libraries, the BLAS in use and the relevant env vars.

    Call it after a parallel kernel and a BLAS call ran, so that numba's threading
    layer and the BLAS libraries are loaded.

    Returns
    -------
    lines : list of str
    """
    from threadpoolctl import threadpool_info

    lines = [
        f"fastlr {fastlr.__version__} at git revision {_revision()}",
        f"CPU: {_cpu_name()}, {os.cpu_count()} logical cores",
        f"python {platform.python_version()}, numpy {np.__version__}, "
        f"scikit-learn {sklearn.__version__}, numba {numba.__version__} "
        f"(threading layer {_threading_layer()}, {numba.config.NUMBA_NUM_THREADS} threads)",
    ]
    for pool in threadpool_info():
        lines.append(
            f"{pool['user_api']}: {pool['internal_api']} {pool.get('version') or ''} "
            f"({pool.get('architecture') or 'n/a'}), {pool['num_threads']} threads, "
            f"{pool['filepath']}"
        )
    set_vars = [f"{var}={os.environ[var]}" for var in ENV_VARS if var in os.environ]
    lines.append("environment: " + (", ".join(set_vars) or f"none of {', '.join(ENV_VARS)} set"))
    return lines
