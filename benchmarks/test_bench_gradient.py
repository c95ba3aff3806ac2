"""One gradient evaluation by each kernel, and one read of X (the bandwidth baseline)."""

from ._common import cached_data
from ._workloads import gradient_call


def test_gradient(benchmark, gradient_case):
    X, y = cached_data(gradient_case.n, gradient_case.d, gradient_case.dtype)
    benchmark.group = gradient_case.group
    benchmark.extra_info["X_bytes"] = X.nbytes
    benchmark(gradient_call(gradient_case.name, X, y))


def test_scaling(benchmark, scaling_case):
    X, y = cached_data(scaling_case.n, scaling_case.d, scaling_case.dtype)
    benchmark.group = scaling_case.group
    benchmark.extra_info.update(n=scaling_case.n, X_bytes=X.nbytes)
    benchmark(gradient_call(scaling_case.name, X, y))
