"""numba's threading layer: the install must provide one fit for parallel kernels."""

import numba
import numpy as np

import fastlr


def test_parallel_kernels_run_on_omp_or_tbb():
    """workqueue costs ~75 us per parallel region and aborts under concurrent calls.

    The install step (install.sh) provides OpenMP (the OS package libgomp1).
    """
    n = 10_000  # several chunks: the prange kernel runs
    fastlr.gradient(np.ones((n, 2)), np.zeros(n), np.zeros(2), 0.0)
    assert numba.threading_layer() in ("omp", "tbb")


def test_lbfgs_runs_blas_on_one_thread_and_restores_it(monkeypatch):
    """BLAS threads left spinning would take the cores the parallel gradient needs."""
    from threadpoolctl import threadpool_info

    from fastlr import _solvers

    def blas_threads():
        return [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]

    before = blas_threads()
    seen = []
    minimize = _solvers._minimize

    def recording_minimize(*args, **kwargs):
        seen.append(blas_threads())
        return minimize(*args, **kwargs)

    monkeypatch.setattr(_solvers, "_minimize", recording_minimize)
    X = np.random.default_rng(0).standard_normal((200, 3))
    fastlr.LogisticRegression(solver="lbfgs").fit(X, (X[:, 0] > 0).astype(int))
    assert before, "numpy's BLAS should be loaded"
    assert seen and seen[0] and all(n == 1 for n in seen[0])
    assert blas_threads() == before
