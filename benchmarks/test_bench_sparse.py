"""CSR gradient against scipy's ``X @ w`` plus ``X.T @ r`` (issue 4's sparse figure).

Sizes per tier (rows x features x non-zeros per row): full 1e6 x 1e5 x 50 (the
issue's point), quick 1e5 x 1e4 x 50, smoke 2000 x 1000 x 20. The issue's
target is ``csr-2t`` at least 1.5x faster than ``scipy``.

``scipy`` times the two sparse products only, with a fixed ``r``: it is given
neither the sigmoid nor the loss, which every fastlr kernel here computes
(``csr-2t-noloss`` skips the loss). scipy's sparse products are single-threaded.

Timed with pytest-benchmark (one group per size and dtype)::

    pytest benchmarks/test_bench_sparse.py --benchmark-enable --tier=full

or as ratios measured side by side in one run (rounds taken while other
processes load the CPU are discarded, see ``benchmarks._common.time_interleaved``)::

    python -m benchmarks.test_bench_sparse --tier=full
"""

import functools

import numpy as np
import pytest
import scipy.sparse

from fastlr import _validation
from fastlr._threads import numba_threads
from fastlr.kernels import binary_csr

from ._common import (
    DTYPES,
    TIERS,
    environment_lines,
    print_speedups,
    tier_dtype_arguments,
    time_interleaved,
)

# Tier name -> (rows, features, non-zeros per row).
SPARSE_SHAPES = {
    "smoke": (2_000, 1_000, 20),
    "quick": (100_000, 10_000, 50),
    "full": (1_000_000, 100_000, 50),
}
# Kernel name -> numba threads (None: scipy, which has no threads to set).
SPARSE_KERNELS = {"scipy": None, "csr-1t": 1, "csr-2t": 2, "csr-2t-noloss": 2}


def generate_sparse(n, d, nnz_per_row, dtype="float64", seed=0):
    """A learnable binary CSR problem with exactly ``nnz_per_row`` entries per row.

    Column indices are uniform (int32, sorted within each row, a repeated
    column is kept as a duplicate entry), values standard normal, labels drawn
    from a logistic model.

    Returns
    -------
    X : csr_matrix of shape (n, d)
    y : ndarray of shape (n,)
        0/1 in X's dtype.
    """
    rng = np.random.default_rng(seed)
    indices = rng.integers(0, d, size=(n, nnz_per_row), dtype=np.int32)
    indices.sort(axis=1)
    data = rng.standard_normal(n * nnz_per_row, dtype=np.dtype(dtype))
    indptr = np.arange(0, n * nnz_per_row + 1, nnz_per_row, dtype=np.int32)
    X = scipy.sparse.csr_matrix((data, indices.ravel(), indptr), shape=(n, d))
    true_coef = rng.standard_normal(d).astype(data.dtype) * (2 / np.sqrt(nnz_per_row))
    prob = 1 / (1 + np.exp(-(X @ true_coef)))
    y = (rng.random(n) < prob).astype(data.dtype)
    return X, y


# One data set in memory at a time (600 MB in float64 in the full tier).
cached_sparse = functools.lru_cache(maxsize=1)(generate_sparse)


def sparse_calls(X, y, kernels=tuple(SPARSE_KERNELS)):
    """Zero-argument callables, one gradient evaluation each, by kernel name."""
    n, d = X.shape
    dtype = X.dtype
    rng = np.random.default_rng(1)
    coef = (rng.standard_normal(d) / np.sqrt(X.nnz / n)).astype(dtype)
    r = rng.standard_normal(n).astype(dtype)
    arrays, sw = _validation.csr_arrays(X), np.empty(0, dtype)

    def fastlr_call(n_threads, with_loss):
        def call():
            with numba_threads(n_threads):
                out, grad_b = np.zeros(d, dtype), np.zeros(1, dtype)
                loss = binary_csr.gradient_sums(
                    arrays, y, sw, coef, np.array([0.1], dtype), with_loss, out, grad_b
                )
                return out, grad_b, loss

        return call

    calls = {"scipy": lambda: (X @ coef, X.T @ r)}
    for name, n_threads in SPARSE_KERNELS.items():
        if n_threads is not None:
            calls[name] = fastlr_call(n_threads, not name.endswith("noloss"))
    return {name: calls[name] for name in kernels}


def warm_sparse_jit():
    """Compile (or load from cache) the timed CSR kernels for both dtypes."""
    for dtype in DTYPES:
        X, y = generate_sparse(64, 16, 4, dtype)
        arrays, sw = _validation.csr_arrays(X), np.empty(0, X.dtype)
        coef = np.zeros(16, X.dtype)
        for n_chunks in (1, 2):
            out = np.zeros(16, X.dtype)
            binary_csr.csr_fused_gradient(
                *arrays[:3], y, sw, coef, X.dtype.type(0), True, n_chunks, out
            )
        grad_b = np.zeros(1, X.dtype)
        binary_csr.gradient_sums(arrays, y, sw, coef, np.zeros(1, X.dtype), True, out, grad_b)


@pytest.fixture(scope="module", autouse=True)
def _warm_sparse_jit():
    warm_sparse_jit()


@pytest.mark.parametrize("kernel", list(SPARSE_KERNELS))
@pytest.mark.parametrize("dtype", DTYPES)
def test_sparse_gradient(benchmark, tier, dtype, kernel):
    n, d, nnz_per_row = SPARSE_SHAPES[tier.name]
    X, y = cached_sparse(n, d, nnz_per_row, dtype)
    benchmark.group = f"sparse-gradient|n={n}|d={d}|nnz/row={nnz_per_row}|{dtype}"
    benchmark.extra_info.update(nnz=X.nnz, n_chunks=binary_csr.csr_n_chunks(n, d))
    benchmark(sparse_calls(X, y, (kernel,))[kernel])


def main(argv=None):
    """Print each kernel's best time and its speedup over scipy, measured side by side."""
    args = tier_dtype_arguments("python -m benchmarks.test_bench_sparse", main.__doc__, argv)
    n, d, nnz_per_row = SPARSE_SHAPES[args.tier]
    warm_sparse_jit()
    X, y = generate_sparse(n, d, nnz_per_row, args.dtype)
    timings = time_interleaved(sparse_calls(X, y), TIERS[args.tier].repeats)
    print("\n".join(environment_lines()))
    print(f"CSR gradient, {n} x {d}, {nnz_per_row} non-zeros per row, {args.dtype}, ", end="")
    print(f"{binary_csr.csr_n_chunks(n, d)} chunks")
    print_speedups(timings, "scipy")


if __name__ == "__main__":
    main()
