"""Reading data with fastlr.data: CSV, LIBSVM and the binary cache against their baselines.

The issue's figures, each a ratio of rows (or bytes) per second measured side
by side in one run:

- CSV through pyarrow (a pass of ``Dataset`` over the file, into float64
  blocks) against ``pandas.read_csv`` in chunks of 100 000 rows converted with
  ``to_numpy``; target >= 5x. File of 1e6 rows x 20 floats (shortest
  round-trip text) and an int label in the full tier.
- LIBSVM parsed in compiled code (a pass after the scan; a first read, which
  is scan + pass; and one pass with ``n_features`` and ``zero_based`` given,
  which needs no scan) against scikit-learn's ``load_svmlight_file``; target
  >= 1x. 2e5 rows, 1e5 features, 50 non-zeros a row in the full tier.
- A pass over the binary cache (every block memory-mapped and read once, by
  the check of its values) against a plain sequential ``readinto`` of the
  same files into one buffer, both from the page cache; target >= 0.8x.
  2.5e6 x 100 float32 (1 GB) in the full tier. The ``-cold`` twins first
  drop the cache's files from the page cache (``posix_fadvise``), so they
  read from the disk.

Sizes per tier: smoke (tiny, the test suite's run), quick, full. Files are
written to a temporary folder and deleted afterwards.

Timed with pytest-benchmark::

    pytest benchmarks/test_bench_data.py --benchmark-enable --tier=full

or as ratios measured side by side in one run, by wall-clock and by CPU time::

    python -m benchmarks.test_bench_data --tier=full
"""

import argparse
import math
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pytest
from sklearn.datasets import load_svmlight_file

from fastlr.data import Dataset
from fastlr.data._checks import first_nonfinite

from ._common import TIERS, CpuMonitor, environment_lines

# Tier name -> rows x features of the CSV file.
CSV_SHAPES = {"smoke": (2_000, 20), "quick": (100_000, 20), "full": (1_000_000, 20)}
# Tier name -> rows x features x non-zeros per row of the LIBSVM file.
LIBSVM_SHAPES = {
    "smoke": (2_000, 1_000, 20),
    "quick": (20_000, 10_000, 50),
    "full": (200_000, 100_000, 50),
}
# Tier name -> rows x features of the float32 cache.
CACHE_SHAPES = {"smoke": (2_000, 20), "quick": (250_000, 100), "full": (2_500_000, 100)}
PANDAS_CHUNK_ROWS = 100_000
READ_BUFFER_BYTES = 64 << 20


# --------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------


def _shortest_text(values):
    """Floats as their shortest round-trip decimal text (pyarrow's cast, in C++)."""
    return pc.cast(pa.array(values), pa.string())


def write_csv_file(path, n, d, seed=0):
    """A CSV file of ``n`` rows: ``d`` standard normal floats ``f0..`` and a 0/1 label ``y``."""
    rng = np.random.default_rng(seed)
    columns = {f"f{j}": _shortest_text(rng.standard_normal(n)) for j in range(d)}
    columns["y"] = pa.array(rng.integers(0, 2, n))
    options = pcsv.WriteOptions(quoting_style="none")
    pcsv.write_csv(pa.table(columns), path, write_options=options)
    return path


def write_libsvm_file(path, n, d, nnz_per_row, seed=0):
    """A one-based LIBSVM file: ``nnz_per_row`` sorted distinct indices a row, normal values."""
    rng = np.random.default_rng(seed)
    k = nnz_per_row
    # Sorted distinct indices: one uniform draw in each of k disjoint ranges of the columns.
    width = d // k
    indices = (rng.integers(0, width, size=(n, k)) + np.arange(k) * width + 1).ravel()
    index_text = pc.cast(pa.array(indices), pa.string())
    tokens = pc.binary_join_element_wise(
        index_text, _shortest_text(rng.standard_normal(n * k)), ":"
    )
    rows = pa.ListArray.from_arrays(pa.array(np.arange(0, n * k + 1, k, dtype=np.int32)), tokens)
    labels = pc.cast(pa.array(rng.integers(0, 2, n)), pa.string())
    lines = pc.binary_join_element_wise(labels, pc.binary_join(rows, " "), " ")
    lines = pc.binary_join_element_wise(lines, "", "\n")  # each line ends with a newline
    ends = np.frombuffer(lines.buffers()[1], dtype=np.int32)[lines.offset :]
    with open(path, "wb") as file:
        file.write(memoryview(lines.buffers()[2])[ends[0] : ends[len(lines)]])
    return path


def write_cache_folder(path, n, d, seed=0):
    """A float32 dense cache of ``n x d`` standard normal features and 0/1 labels."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d), dtype=np.float32)
    Dataset(X, label=rng.integers(0, 2, n)).to_cache(path)
    return path


# --------------------------------------------------------------------------
# What is timed
# --------------------------------------------------------------------------


def _rows_of(dataset):
    rows = 0
    for block in dataset:
        rows += block.n_rows
    return rows


def csv_calls(path):
    """One full read of a CSV file into float64 arrays, by name."""

    def pandas_chunks():
        rows = 0
        for chunk in pd.read_csv(path, chunksize=PANDAS_CHUNK_ROWS):
            rows += chunk.drop(columns="y").to_numpy(np.float64).shape[0]
        return rows

    return {"pandas": pandas_chunks, "fastlr": lambda: _rows_of(Dataset(path, label="y"))}


def libsvm_calls(path, n_features):
    """One full read of a LIBSVM file, by name; fastlr's first read includes its scan."""
    scanned = Dataset(path)
    scanned.scan()
    return {
        "sklearn": lambda: load_svmlight_file(str(path))[0].shape[0],
        "fastlr-pass": lambda: _rows_of(scanned),
        "fastlr-no-scan": lambda: _rows_of(Dataset(path, n_features=n_features, zero_based=False)),
        "fastlr-scan+pass": lambda: _rows_of(Dataset(path)),
    }


def evict(paths):
    """Drop the pages of these files from the page cache (theirs only), where the OS allows it."""
    for path in paths:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def cache_calls(folder):
    """A pass over the cache's blocks, reading every value, and a plain read of its files.

    The ``-cold`` twins first drop the files from the page cache: they read from the disk.
    """
    dataset = Dataset(folder)
    files = sorted(Path(folder).glob("*.npy"))
    buffer = bytearray(READ_BUFFER_BYTES)

    def plain_read():
        total = 0
        for path in files:
            with open(path, "rb", buffering=0) as file:
                while count := file.readinto(buffer):
                    total += count
        return total

    def fastlr_pass():
        total = 0
        for block in dataset:
            first_nonfinite(block.X.reshape(-1))
            total += block.X.nbytes + block.y.nbytes
        return total

    def cold(call):
        def run():
            evict(files)
            return call()

        return run

    calls = {"read": plain_read, "fastlr": fastlr_pass}
    if hasattr(os, "posix_fadvise"):
        calls.update({"read-cold": cold(plain_read), "fastlr-cold": cold(fastlr_pass)})
    return calls


def cache_bytes(folder):
    """Bytes of the cache's shard files."""
    return sum(p.stat().st_size for p in Path(folder).glob("*.npy"))


# --------------------------------------------------------------------------
# pytest-benchmark
# --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def data_files(tier, tmp_path_factory):
    folder = tmp_path_factory.mktemp("data")
    n, d = CSV_SHAPES[tier.name]
    files = {"csv": write_csv_file(folder / "d.csv", n, d)}
    n, d, k = LIBSVM_SHAPES[tier.name]
    files["libsvm"] = write_libsvm_file(folder / "d.svm", n, d, k)
    files["cache"] = write_cache_folder(folder / "cache", *CACHE_SHAPES[tier.name])
    yield files
    shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.parametrize("reader", ["pandas", "fastlr"])
def test_csv_read(benchmark, tier, data_files, reader):
    n, d = CSV_SHAPES[tier.name]
    benchmark.group = f"csv-read|n={n}|d={d}"
    benchmark.extra_info["file_bytes"] = os.path.getsize(data_files["csv"])
    assert benchmark(csv_calls(data_files["csv"])[reader]) == n


@pytest.mark.parametrize("reader", ["sklearn", "fastlr-pass", "fastlr-no-scan", "fastlr-scan+pass"])
def test_libsvm_read(benchmark, tier, data_files, reader):
    n, d, k = LIBSVM_SHAPES[tier.name]
    benchmark.group = f"libsvm-read|n={n}|d={d}|nnz/row={k}"
    benchmark.extra_info["file_bytes"] = os.path.getsize(data_files["libsvm"])
    assert benchmark(libsvm_calls(data_files["libsvm"], d)[reader]) == n


@pytest.mark.parametrize("reader", ["read", "fastlr", "read-cold", "fastlr-cold"])
def test_cache_pass(benchmark, tier, data_files, reader):
    if reader not in cache_calls(data_files["cache"]):
        pytest.skip("os.posix_fadvise is not available: the page cache cannot be dropped")
    n, d = CACHE_SHAPES[tier.name]
    benchmark.group = f"cache-pass|n={n}|d={d}|float32"
    benchmark.extra_info["bytes"] = cache_bytes(data_files["cache"])
    assert benchmark(cache_calls(data_files["cache"])[reader]) > n * d * 4


# --------------------------------------------------------------------------
# Ratios side by side
# --------------------------------------------------------------------------


def time_both(calls, repeats):
    """Best wall-clock and CPU seconds of each call, the calls taking turns in each round.

    CPU seconds (of the whole process, every thread) show the work a read
    costs when other processes share the cores: on a loaded machine they are
    steadier than wall-clock time, which the contention flag then qualifies.

    Returns
    -------
    best : dict of str to (float, float, bool)
        ``(wall, cpu, contended)``; contended when every round ran while other
        processes kept more than half a core busy.
    """
    best = {name: [math.inf, math.inf, True] for name in calls}
    for _ in range(repeats):
        for name, call in calls.items():
            monitor = CpuMonitor()
            wall, cpu = time.perf_counter(), time.process_time()
            call()
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            entry = best[name]
            entry[0], entry[1] = min(entry[0], wall), min(entry[1], cpu)
            entry[2] = entry[2] and (monitor.other_cores() or 0.0) > 0.5
    return {name: tuple(entry) for name, entry in best.items()}


def report(title, timings, units, unit, baseline):
    """Print rates and ratios to ``baseline``, by wall-clock and by CPU time."""
    print(title)
    base_wall, base_cpu, _ = timings[baseline]
    for name, (wall, cpu, contended) in timings.items():
        flag = "  (contended)" if contended else ""
        print(
            f"  {name:17s} wall {wall:7.2f} s {units / wall:13,.0f} {unit} {base_wall / wall:5.2f}x"
            f" | cpu {cpu:7.2f} s {units / cpu:13,.0f} {unit} {base_cpu / cpu:5.2f}x{flag}"
        )


def main(argv=None):
    """Print each figure's rates and ratios, measured side by side."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.test_bench_data", description=main.__doc__
    )
    parser.add_argument("--tier", choices=sorted(TIERS), default="quick", help="default: quick")
    parser.add_argument("--repeats", type=int, default=3, help="timed rounds (the best counts)")
    args = parser.parse_args(argv)
    folder = Path(tempfile.mkdtemp(prefix="fastlr-bench-data-"))
    try:
        print("\n".join(environment_lines()))
        n, d = CSV_SHAPES[args.tier]
        path = write_csv_file(folder / "d.csv", n, d)
        timings = time_both(csv_calls(path), args.repeats)
        size = os.path.getsize(path) / 1e6
        report(f"CSV {n} x {d} ({size:.0f} MB), ratios to pandas", timings, n, "rows/s", "pandas")
        path.unlink()
        n, d, k = LIBSVM_SHAPES[args.tier]
        path = write_libsvm_file(folder / "d.svm", n, d, k)
        timings = time_both(libsvm_calls(path, d), args.repeats)
        size = os.path.getsize(path) / 1e6
        title = f"LIBSVM {n} x {d}, {k} non-zeros a row ({size:.0f} MB), ratios to sklearn"
        report(title, timings, n, "rows/s", "sklearn")
        path.unlink()
        n, d = CACHE_SHAPES[args.tier]
        path = write_cache_folder(folder / "cache", n, d)
        size = cache_bytes(path)
        timings = time_both(cache_calls(path), args.repeats)
        title = f"cache pass, {n} x {d} float32 ({size / 1e6:.0f} MB, page cache), ratios to read"
        report(title, timings, size, "B/s", "read")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
