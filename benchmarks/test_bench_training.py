"""Training: one epoch of each method, and lbfgs time to scikit-learn's optimum."""

import pytest

from ._common import cached_data
from ._workloads import TARGET_GAP, epoch_call, lbfgs_call, lbfgs_plan


def test_epoch(benchmark, epoch_case, tier):
    X, y = cached_data(epoch_case.n, epoch_case.d, epoch_case.dtype)
    benchmark.group = epoch_case.group
    benchmark.pedantic(epoch_call(epoch_case.name, X, y), rounds=tier.train_repeats)


def test_lbfgs_to_optimum(benchmark, optimum_case, tier):
    case = optimum_case
    max_iter, gap = lbfgs_plan(case.n, case.d, case.dtype)[case.name]
    benchmark.group = case.group
    benchmark.extra_info.update(max_iter=max_iter, relative_gap=gap, target_gap=TARGET_GAP)
    if max_iter is None:
        pytest.skip(f"{case.name} lbfgs never reached a relative gap of {TARGET_GAP} (got {gap})")
    X, y = cached_data(case.n, case.d, case.dtype)
    benchmark.pedantic(lbfgs_call(case.name, X, y, max_iter), rounds=tier.train_repeats)
