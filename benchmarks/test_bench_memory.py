"""Peak extra memory of ``fit`` on C-contiguous X: it should make no copy of X."""

from ._common import cached_data
from ._workloads import fit_call, fit_peak_extra


def test_fit_memory(benchmark, memory_case):
    X, y = cached_data(memory_case.n, memory_case.d, memory_case.dtype)
    peak = fit_peak_extra(memory_case.name, X, y)
    benchmark.group = memory_case.group
    benchmark.extra_info.update(
        X_bytes=X.nbytes, peak_extra_bytes=peak, peak_extra_pct_of_X=100 * peak / X.nbytes
    )
    benchmark.pedantic(fit_call(memory_case.name, X, y), rounds=1)
