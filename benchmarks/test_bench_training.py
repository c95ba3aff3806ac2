"""Training: one epoch of each method and kernel, and lbfgs time to scikit-learn's optimum.

``epoch``: a fit of one epoch by each solver and by scikit-learn (binary, dense
X). ``kernel-epoch``: one epoch of the sgd and mini-batch kernels of each of
the four families, called through the contract (no fit around it).

The binary lbfgs runs on the tier's training shape; the multinomial one (10
classes) on digits and on the training shape, against scikit-learn with its
default threads and with one BLAS thread.
"""

import pytest

from ._common import cached_data, family_shape
from ._workloads import (
    TARGET_GAP,
    epoch_call,
    family_data,
    kernel_epoch_call,
    lbfgs_call,
    lbfgs_plan,
    multiclass_data,
)


def test_epoch(benchmark, epoch_case, tier):
    X, y = cached_data(epoch_case.n, epoch_case.d, epoch_case.dtype)
    benchmark.group = epoch_case.group
    benchmark.pedantic(epoch_call(epoch_case.name, X, y), rounds=tier.train_repeats)


def test_kernel_epoch(benchmark, kernel_epoch_case, tier):
    case = kernel_epoch_case
    X, y = family_data(case.family, *family_shape(tier, case.family))
    benchmark.group = case.group
    benchmark.pedantic(kernel_epoch_call(case.name, X, y), rounds=tier.train_repeats)


def test_lbfgs_to_optimum(benchmark, optimum_case, tier):
    time_to_optimum(benchmark, optimum_case, tier, multinomial=False)


def test_multinomial_lbfgs_to_optimum(benchmark, multinomial_lbfgs_case, tier):
    time_to_optimum(benchmark, multinomial_lbfgs_case, tier, multinomial=True)


def time_to_optimum(benchmark, case, tier, multinomial):
    """Time ``case.name``'s lbfgs fit of as many iterations as its plan needs."""
    max_iter, gap = lbfgs_plan(case.n, case.d, case.dtype, multinomial)[case.name]
    benchmark.group = case.group
    benchmark.extra_info.update(max_iter=max_iter, relative_gap=gap, target_gap=TARGET_GAP)
    if max_iter is None:
        pytest.skip(f"{case.name} lbfgs never reached a relative gap of {TARGET_GAP} (got {gap})")
    X, y = (
        multiclass_data(case.n, case.d) if multinomial else cached_data(case.n, case.d, case.dtype)
    )
    benchmark.pedantic(lbfgs_call(case.name, X, y, max_iter), rounds=tier.train_repeats)
