"""pytest-benchmark configuration: the ``--tier`` option, tier-sized cases, JIT warm-up.

Run ``pytest benchmarks`` (smoke tier, each benchmark runs once: benchmarks are
disabled by the project's ``addopts``), or time them with e.g.
``pytest benchmarks --benchmark-enable --tier=quick``. The tier can also come
from the ``FASTLR_BENCH_TIER`` environment variable.
"""

import os

import pytest

from ._common import (
    TIERS,
    epoch_cases,
    gradient_cases,
    kernel_epoch_cases,
    memory_cases,
    multinomial_gradient_cases,
    multinomial_lbfgs_cases,
    optimum_cases,
    scaling_cases,
    sparse_cases,
)
from ._workloads import warm_up

# Fixture name -> function of the tier returning that fixture's cases.
CASE_FIXTURES = {
    "gradient_case": gradient_cases,
    "scaling_case": scaling_cases,
    "multinomial_gradient_case": multinomial_gradient_cases,
    "sparse_gradient_case": sparse_cases,
    "epoch_case": epoch_cases,
    "kernel_epoch_case": kernel_epoch_cases,
    "optimum_case": optimum_cases,
    "multinomial_lbfgs_case": multinomial_lbfgs_cases,
    "memory_case": memory_cases,
}


def pytest_addoption(parser):
    parser.addoption(
        "--tier",
        choices=sorted(TIERS),
        default=os.environ.get("FASTLR_BENCH_TIER", "smoke"),
        help="Benchmark sizes: smoke (tiny, < 1 min, the default), quick (a few minutes), "
        "full (the issue's sizes, n = 1e6 at d = 100). Default from FASTLR_BENCH_TIER.",
    )


@pytest.fixture(scope="session")
def tier(request):
    """The :class:`benchmarks._common.Tier` chosen with ``--tier``."""
    return TIERS[request.config.getoption("tier")]


def pytest_generate_tests(metafunc):
    tier = TIERS[metafunc.config.getoption("tier")]
    for fixture, make_cases in CASE_FIXTURES.items():
        if fixture in metafunc.fixturenames:
            cases = make_cases(tier)
            metafunc.parametrize(fixture, cases, ids=[case.id for case in cases])


@pytest.fixture(scope="session", autouse=True)
def _warm_jit():
    """Compile (or load from cache) every timed kernel before the first benchmark."""
    warm_up()
