"""Cold start: ``import fastlr`` and a first ``fit`` in a fresh interpreter."""

import itertools

from ._workloads import run_fresh_interpreter


def test_cold_start_warm_cache(benchmark, tmp_path, tier):
    cache_dir = str(tmp_path)
    run_fresh_interpreter(cache_dir)  # fills numba's cache
    benchmark.group = "cold-start|warm numba cache"
    timings = benchmark.pedantic(
        run_fresh_interpreter, args=(cache_dir,), rounds=tier.train_repeats
    )
    benchmark.extra_info.update(timings)


def test_cold_start_empty_cache(benchmark, tmp_path, tier):
    counter = itertools.count()

    def empty_cache_dir():
        return (str(tmp_path / f"empty-{next(counter)}"),), {}

    benchmark.group = "cold-start|empty numba cache"
    timings = benchmark.pedantic(run_fresh_interpreter, setup=empty_cache_dir, rounds=1)
    benchmark.extra_info.update(timings)
