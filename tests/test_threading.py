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
