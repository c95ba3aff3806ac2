"""Large-data training: streamed passes against the in-memory pass and the disk, in bounded memory.

Figures (``python -m benchmarks.test_bench_streaming --tier full``; every
ratio from timings taken side by side in one run):

- a streamed lbfgs pass over the binary cache in page cache, against the
  in-memory pass on the same data (1e7 x 100 float32): >= 0.8x;
- the same pass from a file not in page cache (a process in a cgroup whose
  memory limit is a fifth of the file), against the file's sequential read
  rate in the same cgroup: >= 0.8x; the fit's peak resident memory and the
  cgroup's peak usage (page cache included) below 1 GB;
- a streamed sgd epoch against a loop of scikit-learn's
  ``SGDClassifier.partial_fit`` over the same blocks: >= 3x, with the loss
  after the same epochs within 1%;
- a fit writing a checkpoint every epoch against one writing none: <= 1.05x;
- ``fastlr predict`` (``write_predictions``) on the binary cache against the
  cache's read rate: >= 0.8x.

The pytest functions run the same measurements at smoke size, so that this
module cannot rot. The cgroup part needs root and cgroup v1's memory
controller; it says so and is skipped elsewhere.
"""

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import SGDClassifier

import fastlr
from fastlr import _streaming
from fastlr._datafits import Objective, make_datafit

from ._common import environment_lines, time_interleaved

CGROUP_ROOT = Path("/sys/fs/cgroup/memory")
# (n, d) of each tier: the page-cache pass, the cold pass (file size n * d * 4
# bytes, under a limit of a fifth of it), and the sgd comparison.
SIZES = {
    "smoke": {"cache": (20_000, 20), "cold": (100_000, 50), "sgd": (20_000, 20)},
    "quick": {"cache": (1_000_000, 100), "cold": (5_000_000, 100), "sgd": (200_000, 100)},
    "full": {"cache": (10_000_000, 100), "cold": (20_000_000, 100), "sgd": (1_000_000, 100)},
}
SHARD_BYTES = 64 << 20


def write_problem(folder, n, d, dtype="float32", chunk_rows=1_000_000, seed=0):
    """A binary problem of ``n`` rows written to ``folder/X.npy``, ``y.npy``, chunk by chunk."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    coef = rng.standard_normal(d) / np.sqrt(d)
    X = np.lib.format.open_memmap(folder / "X.npy", mode="w+", dtype=dtype, shape=(n, d))
    y = np.lib.format.open_memmap(folder / "y.npy", mode="w+", dtype=np.int8, shape=(n,))
    for start in range(0, n, chunk_rows):
        stop = min(start + chunk_rows, n)
        block = rng.standard_normal((stop - start, d), dtype=np.float32)
        X[start:stop] = block
        scores = block @ coef + rng.logistic(size=stop - start)
        y[start:stop] = scores > 0
    X.flush()
    y.flush()
    del X, y
    return folder / "X.npy", folder / "y.npy"


def write_cache(folder, n, d):
    """The binary cache of a generated problem (the .npy files it came from are deleted)."""
    X_path, y_path = write_problem(Path(folder) / "npy", n, d)
    source = fastlr.Dataset(X_path, label=y_path)
    cache = source.to_cache(Path(folder) / "cache", shard_bytes=SHARD_BYTES)
    source.close()
    shutil.rmtree(Path(folder) / "npy")
    return cache


def _pass_callables(cache):
    """One lbfgs evaluation in memory and one streamed over ``cache``, at the same point."""
    datafit, info = _streaming.streamed_datafit(cache)
    X = np.concatenate([block.X for _, block in _streaming.dataset_blocks(cache)])
    y_idx = np.concatenate(
        [datafit.encoder.class_indices(block.y, k) for k, block in _streaming.dataset_blocks(cache)]
    )
    memory = Objective(
        make_datafit(X, y_idx, np.empty(0, X.dtype), float(len(y_idx)), 2), 1e-6, True
    )
    streamed = Objective(datafit, 1e-6, True)
    params = np.full(info.n_features + 1, 0.01)
    grad = np.empty_like(params)
    return {
        "in-memory": lambda: memory.value_and_grad_into(params, grad),
        "streamed": lambda: streamed.value_and_grad_into(params, grad),
    }, X.nbytes


def measure_page_cache_pass(folder, n, d, repeats=5):
    """Seconds per lbfgs pass in memory and streamed from the cache in page cache."""
    cache = write_cache(folder, n, d)
    calls, nbytes = _pass_callables(cache)
    timings = time_interleaved(calls, repeats)
    memory, streamed = timings["in-memory"].seconds, timings["streamed"].seconds
    return {
        "shape": (n, d),
        "in_memory_s": memory,
        "streamed_s": streamed,
        "ratio": memory / streamed,
        "GB/s": nbytes / streamed / 1e9,
    }


# --------------------------------------------------------------------------
# A pass from disk, in a cgroup whose memory limit is a fifth of the file
# --------------------------------------------------------------------------

COLD_CHILD = textwrap.dedent(
    """
    import json, resource, sys, time, warnings
    import numpy as np
    import fastlr
    from fastlr import _streaming
    from fastlr._datafits import Objective

    folder, passes = sys.argv[1], int(sys.argv[2])
    files = sorted(p for p in __import__("pathlib").Path(folder).iterdir() if p.suffix == ".npy")
    buffer = bytearray(16 << 20)
    start, nbytes = time.perf_counter(), 0
    for path in files:  # the plain sequential read of every shard, as the baseline
        with open(path, "rb", buffering=0) as file:
            while True:
                got = file.readinto(buffer)
                if not got:
                    break
                nbytes += got
    read_s = time.perf_counter() - start
    cache = fastlr.Dataset(folder)
    datafit, info = _streaming.streamed_datafit(cache)
    objective = Objective(datafit, 1e-6, True)
    params = np.full(info.n_features + 1, 0.01)
    grad = np.empty_like(params)
    objective.value_and_grad_into(params, grad)  # compiles; reads the data once
    times = []
    for _ in range(passes):
        start = time.perf_counter()
        objective.value_and_grad_into(params, grad)
        times.append(time.perf_counter() - start)
    warnings.simplefilter("ignore")
    fit_start = time.perf_counter()
    model = fastlr.LogisticRegression(max_iter=3).fit(cache)
    fit_s = time.perf_counter() - fit_start
    print(json.dumps({
        "bytes": nbytes, "read_s": read_s, "pass_s": min(times), "fit_s": fit_s,
        "rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "n_iter": int(model.n_iter_[0]),
    }))
    """
)


def cgroup_available():
    """Why a cgroup cannot be made here, or None when it can."""
    if not (CGROUP_ROOT / "memory.limit_in_bytes").exists():
        return "no cgroup v1 memory controller at /sys/fs/cgroup/memory"
    if os.geteuid() != 0:
        return "making a cgroup needs root"
    return None


def run_in_cgroup(command, limit_bytes, name="fastlr-bench"):
    """Run ``command`` in a new memory cgroup limited to ``limit_bytes``; return (stdout, peak)."""
    group = CGROUP_ROOT / f"{name}-{os.getpid()}"
    group.mkdir()
    try:
        (group / "memory.limit_in_bytes").write_text(str(limit_bytes))
        if (group / "memory.memsw.limit_in_bytes").exists():
            (group / "memory.memsw.limit_in_bytes").write_text(str(limit_bytes))

        def join():
            (group / "cgroup.procs").write_text(str(os.getpid()))

        done = subprocess.run(command, preexec_fn=join, capture_output=True, text=True, check=False)
        peak = int((group / "memory.max_usage_in_bytes").read_text())
        if done.returncode != 0:
            raise RuntimeError(f"the child failed ({done.returncode}): {done.stderr[-2000:]}")
        return done.stdout, peak
    finally:
        for _ in range(50):  # the kernel frees the group shortly after its last process
            try:
                group.rmdir()
                break
            except OSError:
                time.sleep(0.1)


def drop_from_page_cache(folder):
    """Ask the kernel to forget the pages of every file under ``folder``."""
    for path in Path(folder).rglob("*"):
        if path.is_file():
            with open(path, "rb") as file:
                os.posix_fadvise(file.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)


def measure_cold_pass(folder, n, d, passes=2):
    """A pass from disk in a cgroup limited to a fifth of the file, against the plain read."""
    import json

    cache = write_cache(folder, n, d)
    file_bytes = sum(p.stat().st_size for p in Path(cache.source).iterdir())
    limit = max(file_bytes // 5, 600 << 20)  # the process alone takes about 350 MB
    drop_from_page_cache(cache.source)
    script = Path(folder) / "cold_child.py"
    script.write_text(COLD_CHILD)
    out, peak = run_in_cgroup([sys.executable, str(script), str(cache.source), str(passes)], limit)
    result = json.loads(out.strip().splitlines()[-1])
    read_rate = result["bytes"] / result["read_s"]
    pass_rate = result["bytes"] / result["pass_s"]
    return {
        "shape": (n, d),
        "file_GB": file_bytes / 1e9,
        "limit_GB": limit / 1e9,
        "read_GB/s": read_rate / 1e9,
        "pass_GB/s": pass_rate / 1e9,
        "ratio": pass_rate / read_rate,
        "peak_rss_GB": result["rss_bytes"] / 1e9,
        "cgroup_peak_GB": peak / 1e9,
    }


# --------------------------------------------------------------------------
# sgd against SGDClassifier.partial_fit over the same blocks
# --------------------------------------------------------------------------


def measure_sgd(folder, n, d, epochs=3, block_rows=100_000):
    """Seconds per epoch and the loss after ``epochs``: fastlr streamed and sklearn's loop."""
    X_path, y_path = write_problem(folder, n, d, dtype="float64")
    data = fastlr.Dataset(X_path, label=y_path, block_rows=min(block_rows, n))
    blocks = [(block.X, block.y) for _, block in _streaming.dataset_blocks(data)]
    X, y = np.concatenate([b[0] for b in blocks]), np.concatenate([b[1] for b in blocks])
    alpha = 1e-4

    def fastlr_fit(n_epochs):
        model = fastlr.LogisticRegression(  # SGDClassifier's schedule: one algorithm
            solver="sgd",
            alpha=alpha,
            learning_rate="optimal",
            max_iter=n_epochs,
            tol=None,
            random_state=0,
        )
        return model.fit(data)

    def sklearn_fit(n_epochs):
        model = SGDClassifier(loss="log_loss", alpha=alpha, random_state=0)
        for _ in range(n_epochs):
            for Xb, yb in blocks:
                model.partial_fit(Xb, yb, classes=[0, 1])
        return model

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        timings = time_interleaved(
            {"fastlr": lambda: fastlr_fit(1), "sklearn": lambda: sklearn_fit(1)}, 3
        )
        ours, theirs = fastlr_fit(epochs), sklearn_fit(epochs)
    loss = {}
    for name, model in (("fastlr", ours), ("sklearn", theirs)):
        z = X @ model.coef_.ravel() + model.intercept_[0]
        loss[name] = float(np.mean(np.logaddexp(0, z) - y * z))
    return {
        "shape": (n, d),
        "fastlr_epoch_s": timings["fastlr"].seconds,
        "sklearn_epoch_s": timings["sklearn"].seconds,
        "speedup": timings["sklearn"].seconds / timings["fastlr"].seconds,
        "loss_fastlr": loss["fastlr"],
        "loss_sklearn": loss["sklearn"],
        "loss_gap": loss["fastlr"] / loss["sklearn"] - 1.0,
    }


# --------------------------------------------------------------------------
# Checkpoint overhead and predictions
# --------------------------------------------------------------------------


def measure_checkpoints(folder, cache, epochs=3):
    """A fit writing a checkpoint every epoch against one writing none (sgd and lbfgs)."""
    results = {}
    for solver, params in (
        ("sgd", dict(solver="sgd", alpha=1e-4, max_iter=epochs, tol=None, random_state=0)),
        ("lbfgs", dict(solver="lbfgs", max_iter=epochs, tol=None)),
    ):

        def plain(params=params):
            return fastlr.LogisticRegression(**params).fit(cache)

        def saving(params=params, solver=solver):
            path = Path(folder) / f"ckpt-{solver}"
            return fastlr.LogisticRegression(**params).fit(
                cache, checkpoint=fastlr.Checkpoint(path)
            )

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            timings = time_interleaved({"plain": plain, "checkpoint": saving}, 3)
        results[solver] = timings["checkpoint"].seconds / timings["plain"].seconds
    return results


def measure_predict(folder, cache):
    """``write_predictions`` on the cache against a plain read of its shards (page cache)."""
    model = fastlr.LogisticRegression(max_iter=2).fit(cache)
    shards = sorted(p for p in Path(cache.source).iterdir() if p.suffix == ".npy")
    out = Path(folder) / "pred.npy"

    def read():
        buffer = bytearray(16 << 20)
        for path in shards:
            with open(path, "rb", buffering=0) as file:
                while file.readinto(buffer):
                    pass

    timings = time_interleaved(
        {"read": read, "predict": lambda: _streaming.write_predictions(model, cache, out)}, 3
    )
    return {"ratio": timings["read"].seconds / timings["predict"].seconds}


# --------------------------------------------------------------------------
# pytest: the same measurements at smoke size
# --------------------------------------------------------------------------


def test_page_cache_pass(tmp_path):
    result = measure_page_cache_pass(tmp_path, *SIZES["smoke"]["cache"], repeats=1)
    assert result["streamed_s"] > 0 and result["in_memory_s"] > 0


def test_sgd_against_sklearn(tmp_path):
    result = measure_sgd(tmp_path, *SIZES["smoke"]["sgd"], epochs=2, block_rows=5000)
    assert np.isfinite(result["loss_fastlr"]) and np.isfinite(result["loss_sklearn"])


def test_checkpoints_and_predictions(tmp_path):
    cache = write_cache(tmp_path, *SIZES["smoke"]["cache"])
    assert set(measure_checkpoints(tmp_path, cache, epochs=2)) == {"sgd", "lbfgs"}
    assert measure_predict(tmp_path, cache)["ratio"] > 0


@pytest.mark.skipif(cgroup_available() is not None, reason=str(cgroup_available()))
def test_cold_pass_in_a_cgroup(tmp_path):
    result = measure_cold_pass(tmp_path, *SIZES["smoke"]["cold"], passes=1)
    assert result["cgroup_peak_GB"] <= result["limit_GB"] + 1e-9


# --------------------------------------------------------------------------
# The report
# --------------------------------------------------------------------------


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.test_bench_streaming")
    parser.add_argument("--tier", choices=sorted(SIZES), default="quick")
    parser.add_argument("--folder", help="where to write the generated files (default: a temp)")
    parser.add_argument("--only", nargs="*", choices=("cache", "cold", "sgd", "checkpoint"))
    args = parser.parse_args(argv)
    sizes = SIZES[args.tier]
    root = Path(args.folder or tempfile.mkdtemp(prefix="fastlr-bench-"))
    parts = args.only or ["cache", "cold", "sgd", "checkpoint"]
    print("\n".join(environment_lines()))
    try:
        if "cache" in parts:
            r = measure_page_cache_pass(root / "cache", *sizes["cache"])
            print(f"\npage-cache pass, {r['shape'][0]:,} x {r['shape'][1]} float32: in memory "
                  f"{r['in_memory_s']:.3f} s, streamed {r['streamed_s']:.3f} s "
                  f"({r['GB/s']:.1f} GB/s): {r['ratio']:.2f}x (target >= 0.80x)")  # fmt: skip
            shutil.rmtree(root / "cache", ignore_errors=True)
        if "cold" in parts:
            reason = cgroup_available()
            if reason:
                print(f"\ncold pass: skipped ({reason})")
            else:
                r = measure_cold_pass(root / "cold", *sizes["cold"])
                print(f"\ncold pass, {r['file_GB']:.1f} GB file under a {r['limit_GB']:.2f} GB "
                      f"cgroup limit: read {r['read_GB/s']:.2f} GB/s, pass {r['pass_GB/s']:.2f} "
                      f"GB/s: {r['ratio']:.2f}x (target >= 0.80x); peak RSS "
                      f"{r['peak_rss_GB']:.2f} GB, cgroup peak {r['cgroup_peak_GB']:.2f} GB "
                      f"(target < 1 GB)")  # fmt: skip
            shutil.rmtree(root / "cold", ignore_errors=True)
        if "sgd" in parts:
            r = measure_sgd(root / "sgd", *sizes["sgd"])
            print(f"\nsgd epoch, {r['shape'][0]:,} x {r['shape'][1]} float64 in blocks: fastlr "
                  f"{r['fastlr_epoch_s']:.3f} s, SGDClassifier.partial_fit loop "
                  f"{r['sklearn_epoch_s']:.3f} s: {r['speedup']:.2f}x (target >= 3x); loss "
                  f"after 3 epochs {r['loss_fastlr']:.6f} vs {r['loss_sklearn']:.6f} "
                  f"({100 * r['loss_gap']:+.2f}%, target within 1%)")  # fmt: skip
            shutil.rmtree(root / "sgd", ignore_errors=True)
        if "checkpoint" in parts:
            cache = write_cache(root / "ckpt", *sizes["cache"])
            r = measure_checkpoints(root / "ckpt", cache)
            print(f"\ncheckpoint every epoch / none: sgd {r['sgd']:.3f}x, lbfgs {r['lbfgs']:.3f}x "
                  f"(target <= 1.05x)")  # fmt: skip
            p = measure_predict(root / "ckpt", cache)
            print(f"predict to .npy / plain read of the cache: {p['ratio']:.2f}x (target >= 0.80x)")
            shutil.rmtree(root / "ckpt", ignore_errors=True)
    finally:
        if not args.folder:
            shutil.rmtree(root, ignore_errors=True)
    print(f"\npeak RSS of this process: "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6:.2f} GB")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
