"""Measure fastlr against its baselines and write a table of ratios with targets.

Run from the repository root::

    python -m benchmarks.report                 # quick tier, a few minutes
    python -m benchmarks.report --tier full     # the issue's sizes (n = 1e6, d = 100)
    python -m benchmarks.report --only sparse   # some parts only (see PARTS)
    python -m benchmarks.report --out DIR       # default DIR: bench-out/
    python -m benchmarks.report --max-wait 60   # wait longer for an idle CPU (shared machine)

It covers the four kernel families: the binary loss on dense X (gradient,
training epochs, lbfgs, start-up and memory), the multinomial loss on dense X
(gradient and lbfgs against NumPy and scikit-learn) and both losses on CSR X
(gradient against scipy's sparse products).

Unset ``OPENBLAS_CORETYPE`` and ``OPENBLAS_L2_SIZE`` for this command (the report
prints them when set), and keep the machine otherwise idle: timing rounds during
which other processes used the CPU are rerun (for up to ``--max-wait`` seconds
per measurement), and the report names the measurements that never got an idle
round and how many cores other processes used on average.

It writes ``DIR/report.md`` (also printed) and, when matplotlib is installed
(``pip install fastlr[plot]``), ``DIR/throughput.png`` (GB/s of X read against
the number of features, with the one-pass read bandwidth) and
``DIR/scaling.png`` (gradient time against the number of rows).

Every ratio compares times measured side by side in this run (the callables
take turns, the best of several repeats counts), so it holds on a shared,
noisy machine where absolute times do not. Each target row says PASS or MISS;
"info" rows have no target. A share of read bandwidth says "unsure" when the
2-thread read of X ran less than ``MIN_READ_SCALING`` times faster than the
1-thread one: other tenants of the host then held the memory bandwidth.
"""

import argparse
import datetime
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.datasets import load_breast_cancer
from sklearn.preprocessing import StandardScaler

from ._common import (
    DTYPES,
    EPOCH_METHODS,
    FIT_SOLVERS,
    GRID_KERNELS,
    LOOP_D,
    LOOP_KERNELS,
    MULTINOMIAL_KERNELS,
    N_CLASSES,
    SCALING_D,
    SCALING_KERNELS,
    SPARSE_FAMILIES,
    SPARSE_KERNELS,
    TIERS,
    CpuMonitor,
    cached_data,
    environment_lines,
    multinomial_shapes,
    time_interleaved,
)
from ._workloads import (
    SGD_ALPHA,
    TARGET_GAP,
    cold_start,
    default_fit_call,
    epoch_call,
    fit_peak_extra,
    gradient_call,
    lbfgs_call,
    lbfgs_plan,
    minibatch_pieces_calls,
    multiclass_data,
    multinomial_gradient_call,
    objective,
    shuffled_read_call,
    sparse_data,
    sparse_gradient_calls,
    sparse_n_chunks,
    warm_up,
)

EXTRA_EPOCHS = 4  # per-epoch time = (fit of 1 + EXTRA_EPOCHS epochs - fit of 1) / EXTRA_EPOCHS
# One epoch's loss depends on its shuffle (+-2% across seeds at 1e6 x 100), so
# sgd's is compared with SGDClassifier's as the mean over this many shuffles.
LOSS_SEEDS = 5
MEMORY_TARGET_PCT = 10.0  # "no copy of X": a copy would add 100 %
# Two threads read X about 1.8x faster than one on an unshared memory system.
# Below this, other tenants held the memory bandwidth while the baseline was
# measured, and a share of "bandwidth" against it says nothing.
MIN_READ_SCALING = 1.5
LBFGS_TARGET = 4.0  # the figure: time to the optimum >= 4x faster than scikit-learn
# A row-shuffled mini-batch epoch against the read of its rows in its order,
# and a shuffle="blocks" one against a gd epoch (the figures).
FLOOR_TARGET = 1.2
BLOCKS_TARGET = 1.5
SPARSE_TARGET = 1.5  # the figure: the binary CSR gradient >= 1.5x scipy on 2 threads
# Each library's turn in the multinomial timings starts after this many seconds
# and one untimed call, so that no library's timed calls run against another's
# spinning threads (right after a scikit-learn fit, a digits fit of fastlr ran
# 2-8x slower) or wait for its own pool to wake: see time_interleaved.
SETTLE = 0.25


def log(message):
    """Progress on stderr, so stdout holds the report only."""
    print(message, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------
# Measurements: each returns plain dicts of seconds (or bytes)
# --------------------------------------------------------------------------


class Timer:
    """:func:`time_interleaved` with the report's patience, remembering contended groups.

    Parameters
    ----------
    max_wait : float
        Seconds each measurement group may spend rerunning rounds that other
        processes disturbed.
    """

    def __init__(self, max_wait):
        self.max_wait = max_wait
        self.contended = []  # labels of groups that never had a quiet round

    def __call__(self, label, calls, repeats, min_time=0.05, settle=0.0):
        """Time ``calls`` side by side; return ``{name: Timing}``."""
        timings = time_interleaved(
            calls, repeats, min_time=min_time, max_wait=self.max_wait, settle=settle
        )
        if any(timing.contended for timing in timings.values()):
            self.contended.append(label)
            log(f"  {label}: other processes kept the CPU busy in every round")
        return timings


def measure_gradient(tier, timer):
    """Best time of each grid kernel, per (dtype, d): ``{(dtype, d): {"n", "bytes", "times"}}``."""
    grid = {}
    for dtype in DTYPES:
        for d in tier.grad_dims:
            n = tier.grad_n(d)
            log(f"gradient: {dtype}, n={n}, d={d}")
            X, y = cached_data(n, d, dtype)
            calls = {kernel: gradient_call(kernel, X, y) for kernel in GRID_KERNELS}
            timings = timer(f"gradient {dtype} d={d}", calls, tier.repeats)
            times = {kernel: timing.seconds for kernel, timing in timings.items()}
            grid[dtype, d] = {"n": n, "bytes": X.nbytes, "times": times}
    return grid


def measure_python_loop(tier, timer):
    """Best time of each ``LOOP_KERNELS`` kernel at ``(loop_n, LOOP_D)``, float64."""
    log(f"python loop: n={tier.loop_n}, d={LOOP_D}")
    X, y = cached_data(tier.loop_n, LOOP_D, "float64")
    calls = {kernel: gradient_call(kernel, X, y) for kernel in LOOP_KERNELS}
    timings = timer("python loop", calls, min(tier.repeats, 3))
    return {kernel: timing.seconds for kernel, timing in timings.items()}


def measure_scaling(tier, timer):
    """Best time of each scaling kernel against n: ``{n: {kernel: seconds}}``."""
    scaling = {}
    for n in tier.scaling_ns:
        log(f"scaling: n={n}, d={SCALING_D}")
        X, y = cached_data(n, SCALING_D, "float64")
        calls = {kernel: gradient_call(kernel, X, y) for kernel in SCALING_KERNELS}
        timings = timer(f"scaling n={n}", calls, tier.repeats)
        scaling[n] = {kernel: timing.seconds for kernel, timing in timings.items()}
    return scaling


def measure_epochs(tier, timer):
    """Fits of 1 and ``1 + EXTRA_EPOCHS`` epochs of each method, float64, and the
    shuffled-read floor, side by side.

    Returns ``(epochs, floor)``: ``{method: {"one": s, "per_epoch": s, "loss_one":
    f, "loss_more": f}}`` (losses are the penalized objective with ``alpha =
    SGD_ALPHA``), and ``{"read": s, "kernel": s, "shuffle": s, "pass": s}``: one
    read of the rows in the order of the row-shuffled fits' first epoch
    (:func:`shuffled_read_call`), the minibatch-256 kernel alone over that order,
    the shuffle of the next order (:func:`minibatch_pieces_calls`), and one
    gradient pass (``"fused-2t"``: the gradient and its loss, as gd evaluates).
    """
    n, d = tier.train_shape
    log(f"epochs: n={n}, d={d}")
    X, y = cached_data(n, d, "float64")
    pieces = minibatch_pieces_calls(X, y)
    calls = {
        "read": shuffled_read_call(X),
        "kernel": pieces["kernel"],
        "shuffle": pieces["shuffle"],
        "pass": gradient_call("fused-2t", X, y),
    }
    for method in EPOCH_METHODS:
        calls[method, 1] = epoch_call(method, X, y, 1)
        calls[method, 1 + EXTRA_EPOCHS] = epoch_call(method, X, y, 1 + EXTRA_EPOCHS)
    timings = timer("epochs", calls, tier.train_repeats, min_time=0)
    epochs = {}
    for method in EPOCH_METHODS:
        one, more = timings[method, 1], timings[method, 1 + EXTRA_EPOCHS]
        epochs[method] = {
            "one": one.seconds,
            "per_epoch": _per_extra_epoch(one.seconds, more.seconds),
            "loss_one": objective(X, y, one.result, SGD_ALPHA),
            "loss_more": objective(X, y, more.result, SGD_ALPHA),
        }
    return epochs, {name: timings[name].seconds for name in ("read", "kernel", "shuffle", "pass")}


def measure_sgd_losses(tier):
    """Loss after one epoch of sgd and of SGDClassifier for seeds ``0..LOSS_SEEDS - 1``.

    Returns ``{"sgd": [f, ...], "sklearn-sgd": [f, ...]}``, the penalized
    objective with ``alpha = SGD_ALPHA`` of each fit.
    """
    n, d = tier.train_shape
    log(f"sgd losses after one epoch: {LOSS_SEEDS} shuffles each")
    X, y = cached_data(n, d, "float64")
    return {
        method: [
            objective(X, y, epoch_call(method, X, y, 1, seed=seed)(), SGD_ALPHA)
            for seed in range(LOSS_SEEDS)
        ]
        for method in ("sgd", "sklearn-sgd")
    }


def _per_extra_epoch(one, more):
    """Seconds per epoch beyond the first; None when noise hides it (tiny problems)."""
    extra = (more - one) / EXTRA_EPOCHS
    return extra if extra > 0 else None


def measure_lbfgs(tier, timer):
    """lbfgs time to the optimum: ``{library: {"max_iter", "gap", "seconds"}}``."""
    n, d = tier.train_shape
    log(f"lbfgs to optimum: n={n}, d={d} (finding the iterations each library needs)")
    X, y = cached_data(n, d, "float64")
    return _lbfgs_to_optimum("lbfgs", X, y, lbfgs_plan(n, d, "float64"), timer, tier.repeats)


def _lbfgs_to_optimum(label, X, y, plan, timer, repeats, settle=0.0):
    """Time each library's fit of the iterations its ``plan`` needs, side by side.

    Returns ``{library: {"max_iter", "gap", "seconds"}}``; seconds is None for
    a library that never reached the optimum.
    """
    calls = {lib: lbfgs_call(lib, X, y, k) for lib, (k, _) in plan.items() if k is not None}
    timings = timer(label, calls, repeats, min_time=0, settle=settle)
    return {
        lib: {
            "max_iter": k,
            "gap": gap,
            "seconds": timings[lib].seconds if lib in timings else None,
        }
        for lib, (k, gap) in plan.items()
    }


def measure_small_fit(tier, timer):
    """Default fits on breast cancer (569 x 30, standardized): ``{library: (s, iterations)}``.

    On data this small a fit is per-iteration overhead, not passes over X.
    """
    log("small data: default fits on breast cancer")
    X, y = load_breast_cancer(return_X_y=True)
    X = np.ascontiguousarray(StandardScaler().fit_transform(X))
    calls = {lib: default_fit_call(lib, X, y) for lib in ("fastlr", "sklearn")}
    timings = timer("small fit", calls, tier.repeats)
    return {lib: (timing.seconds, timing.result) for lib, timing in timings.items()}


def measure_cold_start(tier):
    """Fresh-interpreter import and first fit, with a warm and an empty numba cache."""
    log("cold start: fresh interpreters")
    return {
        "warm cache": cold_start(warm_cache=True, repeats=tier.train_repeats),
        "empty cache": cold_start(warm_cache=False, repeats=1),
    }


def measure_multinomial(tier, timer):
    """On digits and the training shape, 10 classes: gradient times and lbfgs to the optimum.

    Returns ``{(n, d): {"gradient": {kernel: s}, "lbfgs": {library: {...}}}}``.
    """
    results = {}
    for n, d in multinomial_shapes(tier):
        log(f"multinomial: n={n}, d={d}, K={N_CLASSES} (gradient, then lbfgs to the optimum)")
        X, y = multiclass_data(n, d)
        calls = {kernel: multinomial_gradient_call(kernel, X, y) for kernel in MULTINOMIAL_KERNELS}
        timings = timer(f"multinomial gradient n={n}", calls, tier.repeats, settle=SETTLE)
        plan = lbfgs_plan(n, d, "float64", True)
        results[n, d] = {
            "gradient": {kernel: timing.seconds for kernel, timing in timings.items()},
            "lbfgs": _lbfgs_to_optimum(
                f"multinomial lbfgs n={n}", X, y, plan, timer, tier.train_repeats, SETTLE
            ),
        }
    return results


def measure_sparse(tier, timer):
    """The CSR gradient of each family and dtype against scipy's products.

    Returns ``{(family, dtype): {"shape": (n, d, nnz_per_row), "chunks", "times"}}``.
    """
    results = {}
    for family in SPARSE_FAMILIES:
        n, d, nnz_per_row = tier.sparse_shapes[family]
        for dtype in DTYPES:
            log(f"sparse {family}: {dtype}, n={n}, d={d}, {nnz_per_row} non-zeros per row")
            X, y = sparse_data(family, n, d, nnz_per_row, dtype)
            timings = timer(f"sparse {family} {dtype}", sparse_gradient_calls(X, y), tier.repeats)
            results[family, dtype] = {
                "shape": (n, d, nnz_per_row),
                "chunks": sparse_n_chunks(family, n, d),
                "times": {kernel: timing.seconds for kernel, timing in timings.items()},
            }
    return results


def measure_memory(tier):
    """Peak extra bytes of ``fit``: ``{(dtype, solver): bytes}``, plus X's bytes per dtype."""
    n, d = tier.train_shape
    log(f"memory: n={n}, d={d}")
    peaks, x_bytes = {}, {}
    for dtype in DTYPES:
        X, y = cached_data(n, d, dtype)
        x_bytes[dtype] = X.nbytes
        for solver in FIT_SOLVERS:
            peaks[dtype, solver] = fit_peak_extra(solver, X, y)
    return {"peaks": peaks, "x_bytes": x_bytes}


# --------------------------------------------------------------------------
# Target rows
# --------------------------------------------------------------------------


@dataclass
class Row:
    """One line of the targets table."""

    metric: str
    setting: str
    value: str
    target: str
    status: str


def target_row(metric, setting, value, *, at_least=None, at_most=None, unit="x"):
    """A row whose status compares ``value`` with ``at_least``/``at_most`` (neither: info).

    ``value`` None means it could not be measured: the row says "n/a" and MISS.
    """
    fmt = {"x": "{:.2f}x", "%": "{:.0f} %", "s": "{:.3f} s", "rel": "{:+.2%}"}[unit]
    if value is None:
        return Row(metric, setting, "n/a", _target_text(at_least, at_most, fmt), "MISS")
    status = "info"
    if at_least is not None or at_most is not None:
        ok = (at_least is None or value >= at_least) and (at_most is None or value <= at_most)
        status = "PASS" if ok else "MISS"
    return Row(metric, setting, fmt.format(value), _target_text(at_least, at_most, fmt), status)


def _mean(values):
    return sum(values) / len(values)


def _target_text(at_least, at_most, fmt):
    if at_least is not None:
        return ">= " + fmt.format(at_least)
    if at_most is not None:
        return "<= " + fmt.format(at_most)
    return "-"


def _ratio(numerator, denominator):
    """``numerator / denominator``, or None when either is unknown."""
    if numerator is None or denominator is None:
        return None
    return numerator / denominator


def gradient_rows(tier, grid):
    """Ratios of the gradient grid: vs NumPy, bandwidth, threads, dtypes."""
    n, d = tier.main_point
    rows = []
    for dtype, minimum in (("float64", 4.0), ("float32", 3.0)):
        t = grid[dtype, d]["times"]
        rows.append(
            target_row(
                "fused (2 threads) vs numpy_gradient",
                f"n={n}, d={d}, {dtype}",
                t["numpy"] / t["fused-2t"],
                at_least=minimum,
            )
        )
    for (dtype, dim), point in grid.items():
        t = point["times"]
        setting = f"n={point['n']}, d={dim}, {dtype}"
        for kernel, metric, minimum in _bandwidth_targets(dim):
            rows.append(_bandwidth_row(setting, t, minimum, kernel, metric))
        rows.append(
            target_row(
                "fused % of read bandwidth, 1 thread",
                setting,
                100 * t["read-1t"] / t["fused-1t"],
                unit="%",
            )
        )
    for dtype in DTYPES:
        t = grid[dtype, d]["times"]
        rows.append(
            target_row(
                "fused 2-thread / 1-thread speedup",
                f"n={n}, d={d}, {dtype}",
                t["fused-1t"] / t["fused-2t"],
                at_least=1.7,
            )
        )
    for dim in (dim for dim in tier.grad_dims if dim >= 64):
        t32, t64 = grid["float32", dim]["times"], grid["float64", dim]["times"]
        rows.append(
            target_row(
                "fused float32 / float64 speedup, 2 threads",
                f"n={tier.grad_n(dim)}, d={dim}",
                t64["fused-2t"] / t32["fused-2t"],
                at_least=1.6,
            )
        )
    for dtype in DTYPES:
        t = grid[dtype, d]["times"]
        rows.append(
            target_row(
                "compiled loop time / compiled batch time (1 thread)",
                f"n={n}, d={d}, {dtype}",
                t["loop"] / t["vectorized"],
                at_most=1.5,
            )
        )
    return rows


def _bandwidth_targets(dim):
    """``(kernel, metric, minimum %)`` of the bandwidth rows at ``dim`` features (None: info).

    The fused kernel without the loss aims at the read itself (90 % from
    d = 1000, 75 % from d = 64, 50 % below); with the loss, 70 % from d = 64.
    The public ``fastlr.gradient(..., check_input=False)`` is reported beside
    them: what a caller that validated already gets.
    """
    no_loss = 90.0 if dim >= 1000 else 75.0 if dim >= 64 else 50.0
    return (
        ("fused-2t-noloss", "fused % of read bandwidth, 2 threads, no loss", no_loss),
        ("fused-2t", "fused % of read bandwidth, 2 threads, with the loss",
         70.0 if dim >= 64 else None),
        ("public-2t", "fastlr.gradient(check_input=False) % of read bandwidth, 2 threads", None),
    )  # fmt: skip


def _bandwidth_row(setting, times, minimum, kernel="fused-2t", metric=None):
    """``kernel``'s 2-thread share of read bandwidth; "unsure" when the 2-thread read did not scale.

    ``minimum`` None makes it an info row.
    """
    read_scaling = times["read-1t"] / times["read-2t"]
    row = target_row(
        metric or "fused % of read bandwidth, 2 threads",
        setting,
        100 * times["read-2t"] / times[kernel],
        at_least=minimum,
        unit="%",
    )
    if read_scaling < MIN_READ_SCALING:
        row.setting += (
            f"; the 2-thread read ran only {read_scaling:.2f}x the 1-thread one "
            "(memory bandwidth shared with other tenants)"
        )
        row.status = "unsure"
    return row


def loop_rows(tier, loop):
    """Compiled loop against the plain-Python loop."""
    setting = f"n={tier.loop_n}, d={LOOP_D}, float64"
    return [
        target_row(
            "compiled loop vs python loop",
            setting,
            loop["python_loop"] / loop["loop"],
            at_least=100.0,
        ),
        target_row(
            "compiled loop time / compiled batch time (1 thread)",
            setting,
            loop["loop"] / loop["vectorized"],
            at_most=1.5,
        ),
    ]


def training_rows(tier, epochs, floor, sgd_losses, lbfgs):
    """Epoch speed and quality against scikit-learn, gd and the shuffled-read floor;
    lbfgs time to optimum."""
    n, d = tier.train_shape
    setting = f"n={n}, d={d}, float64"
    sgd, sk = epochs["sgd"], epochs["sklearn-sgd"]
    timings = (("one", "1-epoch fit"), ("per_epoch", "per extra epoch"))
    rows = [
        target_row(
            f"sgd epoch vs SGDClassifier epoch ({label})",
            setting,
            _ratio(sk[key], sgd[key]),
            at_least=3.0,
        )
        for key, label in timings
    ]
    ours, theirs = sgd_losses["sgd"], sgd_losses["sklearn-sgd"]
    rows += [
        target_row(
            f"sgd loss vs SGDClassifier loss after 1 epoch, mean of {len(ours)} shuffles",
            f"{setting}; {_mean(ours):.6f} vs {_mean(theirs):.6f}; per shuffle "
            f"{min(ours):.4f}-{max(ours):.4f} vs {min(theirs):.4f}-{max(theirs):.4f}",
            _mean(ours) / _mean(theirs) - 1,
            at_most=0.01,
            unit="rel",
        ),
        target_row(
            f"sgd loss vs SGDClassifier loss after {1 + EXTRA_EPOCHS} epochs",
            f"{setting}; {sgd['loss_more']:.6f} vs {sk['loss_more']:.6f}",
            sgd["loss_more"] / sk["loss_more"] - 1,
            at_most=0.01,
            unit="rel",
        ),
    ]
    rows += minibatch_rows(setting, epochs, floor)
    fast, slow = lbfgs["fastlr"], lbfgs["sklearn"]
    speedup = _ratio(slow["seconds"], fast["seconds"])
    rows.append(
        target_row(
            f"lbfgs time to optimum (rel. gap {TARGET_GAP:g}) vs sklearn lbfgs",
            f"{setting}; {fast['max_iter']} vs {slow['max_iter']} iterations",
            speedup,
            at_least=LBFGS_TARGET,
        )
    )
    return rows


def minibatch_rows(setting, epochs, floor):
    """Mini-batch epochs against the read of their shuffled rows, and against gd.

    A row-shuffled epoch cannot beat one read of its rows in its order (the
    floor, ``floor["read"]`` seconds); its two pieces, the kernel and the
    shuffle of the next order (``floor["kernel"]``, ``floor["shuffle"]``), are
    compared with it too. A ``shuffle="blocks"`` epoch reads contiguous rows,
    as a gd epoch does (an iteration of gd makes one gradient pass or more, as
    its backtracking tries steps: ``floor["pass"]`` is one); its loss after the
    fits' last epoch is compared with row shuffling's.
    """
    mb, blocks, gd = epochs["minibatch-256"], epochs["minibatch-256-blocks"], epochs["gd"]
    timings = (("one", "1-epoch fit"), ("per_epoch", "per extra epoch"))
    read = floor["read"]
    rows = [
        target_row(
            "minibatch-256 epoch time / shuffled-read floor (per extra epoch)",
            f"{setting}; floor: one parallel read of the epoch's rows in its order, "
            f"{read * 1e3:.1f} ms",
            _ratio(mb["per_epoch"], read),
            at_most=FLOOR_TARGET,
        ),
        target_row(
            "of which the epoch kernel / shuffled-read floor",
            f"{setting}; the same order",
            _ratio(floor["kernel"], read),
        ),
        target_row(
            "of which shuffling the next epoch's order / shuffled-read floor",
            f"{setting}; numpy's RandomState.shuffle of the order, between epochs",
            _ratio(floor["shuffle"], read),
        ),
        target_row(
            "shuffled-read floor / gd epoch time (per extra epoch)",
            setting,
            _ratio(read, gd["per_epoch"]),
        ),
    ]
    rows += [
        target_row(
            f"minibatch-256 epoch time / gd epoch time ({label})", setting, _ratio(mb[key], gd[key])
        )
        for key, label in timings
    ]
    rows += [
        target_row(
            f'minibatch-256 shuffle="blocks" epoch time / gd epoch time ({label})',
            setting,
            _ratio(blocks[key], gd[key]),
            at_most=BLOCKS_TARGET,
        )
        for key, label in timings
    ]
    rows.append(
        target_row(
            'minibatch-256 shuffle="blocks" epoch time / one gradient pass (per extra epoch)',
            f"{setting}; a pass: the fused gradient and its loss, {floor['pass'] * 1e3:.1f} ms",
            _ratio(blocks["per_epoch"], floor["pass"]),
        )
    )
    rows.append(
        target_row(
            f'minibatch-256 shuffle="blocks" loss vs row-shuffled loss after {1 + EXTRA_EPOCHS} '
            "epochs",
            f"{setting}; {blocks['loss_more']:.6f} vs {mb['loss_more']:.6f}",
            blocks["loss_more"] / mb["loss_more"] - 1,
            at_most=0.01,
            unit="rel",
        )
    )
    return rows


def multinomial_rows(multinomial):
    """NumPy's softmax sums over the fused gradient; scikit-learn's lbfgs over fastlr's."""
    rows = []
    for (n, d), result in multinomial.items():
        setting = f"n={n}, d={d}, K={N_CLASSES}, float64"
        times = result["gradient"]
        rows += [
            target_row(
                f"multinomial {kernel} gradient vs NumPy softmax sums",
                setting,
                times["numpy"] / times[kernel],
            )
            for kernel in MULTINOMIAL_KERNELS[1:]
        ]
        lbfgs = result["lbfgs"]
        for library in ("sklearn", "sklearn-blas1"):
            ours, theirs = lbfgs["fastlr"], lbfgs[library]
            rows.append(
                target_row(
                    f"multinomial lbfgs time to optimum (rel. gap {TARGET_GAP:g}) vs {library}",
                    f"{setting}; {ours['max_iter']} vs {theirs['max_iter']} iterations",
                    _ratio(theirs["seconds"], ours["seconds"]),
                    at_least=LBFGS_TARGET,
                )
            )
    return rows


def sparse_rows(sparse):
    """Each CSR kernel's speedup over scipy's two sparse products."""
    rows = []
    for (family, dtype), result in sparse.items():
        n, d, nnz_per_row = result["shape"]
        setting = f"n={n}, d={d}, {nnz_per_row} non-zeros/row, {dtype}, {result['chunks']} chunks"
        times = result["times"]
        for kernel in SPARSE_KERNELS[1:]:
            target = SPARSE_TARGET if (family, kernel) == ("binary", "csr-2t") else None
            rows.append(
                target_row(
                    f"CSR {family} gradient, {kernel}, vs scipy X @ W.T + X.T @ R",
                    setting,
                    times["scipy"] / times[kernel],
                    at_least=target,
                )
            )
    return rows


def small_fit_rows(small):
    """The default fit on breast cancer against scikit-learn's (no target: information)."""
    (ours, n_ours), (theirs, n_theirs) = small["fastlr"], small["sklearn"]
    return [
        target_row(
            "default fit vs sklearn default fit (lbfgs, tol 1e-4)",
            f"breast cancer 569 x 30, standardized; {n_ours} vs {n_theirs} iterations; "
            f"{ours * 1e3:.2f} vs {theirs * 1e3:.2f} ms",
            _ratio(theirs, ours),
        )
    ]


def startup_rows(cold, memory, tier):
    """Cold import, first fit, and the peak extra memory of fit."""
    warm, empty = cold["warm cache"], cold["empty cache"]
    rows = [
        target_row(
            "cold import fastlr", "fresh interpreter", warm["import_s"], at_most=1.0, unit="s"
        ),
        target_row(
            "first fit (200 x 5), warm numba cache",
            "fresh interpreter",
            warm["first_fit_s"],
            at_most=1.0,
            unit="s",
        ),
        target_row(
            "first fit (200 x 5), empty numba cache",
            "fresh interpreter",
            empty["first_fit_s"],
            unit="s",
        ),
    ]
    n, d = tier.train_shape
    for dtype in DTYPES:
        worst = max(FIT_SOLVERS, key=lambda solver: memory["peaks"][dtype, solver])
        pct = 100 * memory["peaks"][dtype, worst] / memory["x_bytes"][dtype]
        rows.append(
            target_row(
                "fit peak extra memory, % of X (worst solver)",
                f"n={n}, d={d}, {dtype}, C-contiguous; {worst}",
                pct,
                at_most=MEMORY_TARGET_PCT,
                unit="%",
            )
        )
    return rows


# --------------------------------------------------------------------------
# Markdown, plots and the command line
# --------------------------------------------------------------------------


def markdown_table(header, rows):
    """A GitHub-flavoured markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def _ms(seconds):
    return f"{1e3 * seconds:.3g} ms"


def gradient_table(grid):
    """Time and GB/s of X read per kernel, for every point of the grid."""
    rows = []
    for (dtype, d), point in grid.items():
        cells = [
            f"{_ms(t)} ({point['bytes'] / t / 1e9:.1f})"
            for t in (point["times"][kernel] for kernel in GRID_KERNELS)
        ]
        rows.append([dtype, d, point["n"], *cells])
    return markdown_table(["dtype", "d", "n", *GRID_KERNELS], rows)


def _seconds(value):
    return "n/a" if value is None else f"{value:.3f}"


def _gradient_section(results):
    return (
        "## Gradient: one evaluation, time (GB/s of X read)\n\n"
        "X holds the same number of elements at every d. `read-*` sums X once: the "
        'memory-bandwidth baseline. `fused-*`: `gradient_sums(method="parallel")` with 1 or '
        "2 numba threads (`-noloss`: the gradient only); `public-2t`: "
        "`fastlr.gradient(..., check_input=False)`, 2 threads; "
        "`loop`/`vectorized`: the compiled seed algorithms (1 thread); "
        "`numpy`: `reference.numpy_gradient` (BLAS threads).\n\n" + gradient_table(results["grid"])
    )


def _loop_section(results):
    rows = [[kernel, _ms(t)] for kernel, t in results["loop"].items()]
    return "## Compiled loop against the plain-Python loop (float64)\n\n" + markdown_table(
        ["kernel", "time"], rows
    )


def _scaling_section(results):
    rows = [
        [n, *(_ms(times[kernel]) for kernel in SCALING_KERNELS)]
        for n, times in results["scaling"].items()
    ]
    return f"## Scaling: gradient time against n (d={SCALING_D}, float64)\n\n" + markdown_table(
        ["n", *SCALING_KERNELS], rows
    )


def _epoch_section(results):
    floor = results["shuffled_read"]["read"]
    rows = [
        [
            method,
            _seconds(e["one"]),
            _seconds(e["per_epoch"]),
            f"{e['loss_one']:.6f}",
            f"{e['loss_more']:.6f}",
        ]
        for method, e in results["epochs"].items()
    ]
    header = ["method", "1-epoch fit (s)", "per extra epoch (s)", "loss after 1"]
    return (
        f"## Training epochs (float64, alpha={SGD_ALPHA:g})\n\n"
        f"Per extra epoch = (fit of {1 + EXTRA_EPOCHS} epochs - fit of 1) / {EXTRA_EPOCHS}: "
        "the epoch without the once-per-fit work (validation, label encoding, gd's step-size "
        "power iteration). Losses: mean log-loss + alpha/2 ||w||^2. The shuffled-read "
        "floor (one parallel read of the rows in the order of a row-shuffled fit's first "
        f"epoch, on the same threads): {_seconds(floor)} s.\n\n"
        + markdown_table([*header, f"loss after {1 + EXTRA_EPOCHS}"], rows)
    )


def _lbfgs_section(results):
    rows = [
        [library, r["max_iter"], f"{r['gap']:.2e}", _seconds(r["seconds"])]
        for library, r in results["lbfgs"].items()
    ]
    return (
        "## lbfgs to the optimum (float64, C=1)\n\n"
        "Fewest `max_iter` whose fit is within the relative gap of the best objective either "
        "library reaches; then the time of that fit (validation included).\n\n"
        + markdown_table(["library", "max_iter", "relative gap", "time (s)"], rows)
    )


def _cold_section(results):
    rows = [
        [cache, _seconds(t["import_s"]), _seconds(t["first_fit_s"]), _seconds(t["process_s"])]
        for cache, t in results["cold"].items()
    ]
    header = ["numba cache", "import (s)", "first fit (s)", "whole process (s)"]
    return "## Cold start (fresh interpreter, lbfgs fit of 200 x 5)\n\n" + markdown_table(
        header, rows
    )


def _memory_section(results):
    memory = results["memory"]
    rows = [
        [dtype, solver, f"{peak / 1e6:.1f}", f"{100 * peak / memory['x_bytes'][dtype]:.1f}"]
        for (dtype, solver), peak in memory["peaks"].items()
    ]
    return (
        "## Peak extra memory of fit, 2 epochs (tracemalloc: Python and NumPy allocations; "
        "numba's scratch arrays are not seen)\n\n"
        + markdown_table(["dtype", "solver", "MB", "% of X"], rows)
    )


def _multinomial_section(results):
    rows, plans = [], []
    for (n, d), result in results["multinomial"].items():
        problem = f"n={n}, d={d}"
        rows += [[problem, kernel, _ms(t)] for kernel, t in result["gradient"].items()]
        rows += [
            [problem, f"lbfgs {library}", _seconds(r["seconds"]) + " s"]
            for library, r in result["lbfgs"].items()
        ]
        plans += [
            f"- {problem}: {library} {r['max_iter']} iterations, gap {r['gap']:.1e}"
            for library, r in result["lbfgs"].items()
        ]
    return (
        f"## Multinomial ({N_CLASSES} classes, float64): gradient and lbfgs to the optimum\n\n"
        "`numpy`: the softmax sums with two BLAS products; `fused-*`: the contract's "
        "`gradient_sums` on 1 or 2 numba threads. lbfgs: the fewest `max_iter` within the "
        f"relative gap {TARGET_GAP:g} of the best objective either library reaches (scikit-learn "
        "also with one BLAS thread, `sklearn-blas1`); each turn starts after a pause and one "
        "untimed call.\n\n"
        + markdown_table(["problem", "kernel", "time"], rows)
        + "\n\n"
        + "\n".join(plans)
    )


def _sparse_section(results):
    rows = [
        [family, dtype, *result["shape"], result["chunks"]]
        + [_ms(result["times"][kernel]) for kernel in SPARSE_KERNELS]
        for (family, dtype), result in results["sparse"].items()
    ]
    header = ["loss", "dtype", "n", "d", "non-zeros/row", "chunks", *SPARSE_KERNELS]
    return (
        "## CSR gradient against scipy\n\n"
        "`scipy`: the two sparse products `X @ W.T` and `X.T @ R` only, single-threaded, "
        "given neither the sigmoid or softmax nor the loss; `csr-*`: the contract's "
        f"`gradient_sums` on 1 or 2 numba threads (the multinomial one over {N_CLASSES} "
        "classes).\n\n" + markdown_table(header, rows)
    )


def write_plots(out, grid, scaling):
    """Write the PNG plots when matplotlib is importable; return their file names."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    return [_throughput_plot(plt, out, grid), _scaling_plot(plt, out, scaling)]


def _throughput_plot(plt, out, grid):
    fig, axes = plt.subplots(1, len(DTYPES), figsize=(11, 4.5), sharey=True)
    for ax, dtype in zip(axes, DTYPES, strict=True):
        points = sorted((d, p) for (dt, d), p in grid.items() if dt == dtype)
        dims = [d for d, _ in points]
        for kernel in GRID_KERNELS:
            style = {"read-2t": "k--", "read-1t": "k:", "fused-2t-noloss": "x--"}.get(kernel, "o-")
            rates = [p["bytes"] / p["times"][kernel] / 1e9 for _, p in points]
            ax.plot(dims, rates, style, label=kernel)
        ax.set(xscale="log", xlabel="features d", title=dtype)
        ax.grid(True, alpha=0.3)
    axes[0].set_ylabel("GB/s of X read")
    axes[-1].legend(fontsize=8)
    fig.suptitle("Gradient throughput (same bytes of X at every d)")
    fig.tight_layout()
    fig.savefig(out / "throughput.png", dpi=120)
    plt.close(fig)
    return "throughput.png"


def _scaling_plot(plt, out, scaling):
    fig, ax = plt.subplots(figsize=(6, 4.5))
    ns = sorted(scaling)
    for kernel in SCALING_KERNELS:
        ax.plot(ns, [scaling[n][kernel] for n in ns], "o-", label=kernel)
    ax.set(xscale="log", yscale="log", xlabel="rows n", ylabel="seconds")
    ax.set_title(f"Gradient time against n (d={SCALING_D}, float64)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "scaling.png", dpi=120)
    plt.close(fig)
    return "scaling.png"


def _measure_binary_gradient(tier, timer):
    return {
        "grid": measure_gradient(tier, timer),
        "loop": measure_python_loop(tier, timer),
        "scaling": measure_scaling(tier, timer),
    }


def _measure_training(tier, timer):
    epochs, floor = measure_epochs(tier, timer)
    return {
        "epochs": epochs,
        "shuffled_read": floor,
        "sgd_losses": measure_sgd_losses(tier),
        "lbfgs": measure_lbfgs(tier, timer),
        "small_fit": measure_small_fit(tier, timer),
    }


def _measure_startup(tier, timer):
    return {"memory": measure_memory(tier), "cold": measure_cold_start(tier)}


@dataclass(frozen=True)
class Part:
    """One part of the report: what it measures, its target rows and its detail sections.

    ``measure(tier, timer)`` returns a dict of results; ``rows(tier, results)``
    and each section take the results of every part that ran.
    """

    measure: object
    rows: object
    sections: tuple


# The parts in the order they run, which reuses cached data: the multinomial
# problem shares the training X, the memory part both training X.
PARTS = {
    "gradient": Part(
        _measure_binary_gradient,
        lambda tier, r: gradient_rows(tier, r["grid"]) + loop_rows(tier, r["loop"]),
        (_gradient_section, _loop_section, _scaling_section),
    ),
    "training": Part(
        _measure_training,
        lambda tier, r: (
            training_rows(tier, r["epochs"], r["shuffled_read"], r["sgd_losses"], r["lbfgs"])
            + small_fit_rows(r["small_fit"])
        ),
        (_epoch_section, _lbfgs_section),
    ),
    "multinomial": Part(
        lambda tier, timer: {"multinomial": measure_multinomial(tier, timer)},
        lambda tier, r: multinomial_rows(r["multinomial"]),
        (_multinomial_section,),
    ),
    "startup": Part(
        _measure_startup,
        lambda tier, r: startup_rows(r["cold"], r["memory"], tier),
        (_cold_section, _memory_section),
    ),
    "sparse": Part(
        lambda tier, timer: {"sparse": measure_sparse(tier, timer)},
        lambda tier, r: sparse_rows(r["sparse"]),
        (_sparse_section,),
    ),
}


def run_measurements(tier, max_wait, parts=tuple(PARTS)):
    """The measurements of the named parts; ``"contended"`` lists the disturbed groups."""
    timer = Timer(max_wait)
    results = {}
    for name in parts:
        results.update(PARTS[name].measure(tier, timer))
    results["contended"] = timer.contended
    return results


def _contention_note(contended):
    if not contended:
        return "; every timing below comes from rounds with the CPU otherwise idle"
    return (
        "; **timed while other processes kept the CPU busy (2-thread times and their "
        f"ratios are unreliable): {', '.join(contended)}**"
    )


def render(tier, command, environment, results, other_cores, plots, parts=tuple(PARTS)):
    """The report of the named parts as markdown; ``command`` is the command line that made it."""
    rows = [row for name in parts for row in PARTS[name].rows(tier, results)]
    table = markdown_table(
        ["metric", "setting", "measured", "target", "result"],
        [[r.metric, r.setting, r.value, r.target, r.status] for r in rows],
    )
    load = "unknown" if other_cores is None else f"{other_cores:.2f} cores on average"
    parts = [
        f"# fastlr benchmark report ({tier.name} tier)\n\n"
        f"{datetime.datetime.now().isoformat(timespec='seconds')}; "
        f"`{command}`. Ratios come from times "
        "measured side by side in this run.\n\n"
        + "\n".join(f"- {line}" for line in environment)
        + f"\n- other processes used {load} while the report ran"
        + _contention_note(results["contended"]),
        "## Targets (2 threads unless stated)\n\n" + table,
        *(section(results) for name in parts for section in PARTS[name].sections),
    ]
    if plots:
        parts.append("## Plots\n\n" + "\n".join(f"![{p}]({p})" for p in plots))
    return "\n\n".join(parts) + "\n", table


def parse_args(argv=None):
    """Command-line options."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.report", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--tier", choices=sorted(TIERS), default="quick", help="default: quick")
    parser.add_argument("--out", default="bench-out", help="output folder (default: bench-out)")
    parser.add_argument(
        "--only",
        nargs="+",
        choices=list(PARTS),
        default=list(PARTS),
        metavar="PART",
        help=f"measure these parts only, of: {', '.join(PARTS)} (default: all)",
    )
    parser.add_argument(
        "--max-wait",
        type=float,
        default=10.0,
        help="seconds each measurement may wait for rounds undisturbed by other processes "
        "(default: 10); raise it on a shared machine",
    )
    return parser.parse_args(argv)


def main(argv=None):
    """Measure, print the targets table and write the report."""
    args = parse_args(argv)
    tier = TIERS[args.tier]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    monitor = CpuMonitor()
    log("warming up numba (compiles on the first run)")
    warm_up()
    environment = environment_lines()
    print("\n".join(environment), flush=True)
    parts = [name for name in PARTS if name in args.only]
    results = run_measurements(tier, args.max_wait, parts)
    plots = write_plots(out, results["grid"], results["scaling"]) if "grid" in results else []
    command = " ".join(["python -m benchmarks.report", *(sys.argv[1:] if argv is None else argv)])
    other_cores = monitor.other_cores()
    report, table = render(tier, command, environment, results, other_cores, plots, parts)
    (out / "report.md").write_text(report)
    print(table)
    log(f"wrote {out / 'report.md'}" + "".join(f", {out / p}" for p in plots))


if __name__ == "__main__":
    main()
