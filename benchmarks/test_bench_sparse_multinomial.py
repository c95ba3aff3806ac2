"""CSR multinomial gradient against scipy's ``X @ W.T`` plus ``X.T @ R``, 10 classes.

Sizes per tier (rows x features x non-zeros per row): full 1e6 x 1e4 x 50,
quick 1e5 x 1e4 x 50, smoke 2000 x 1000 x 20. Full has 1e4 features, not the
binary benchmark's 1e5: with 10 classes the chunks' dense (K, d) partials
would reach the cap of :func:`fastlr.multinomial_csr.csr_multinomial_n_chunks`
at one chunk, leaving nothing to run in parallel.

``scipy`` times the two sparse products only, with a fixed residual matrix
``R``: it is given neither the softmax nor the loss, which every fastlr kernel
here computes (``csr-2t-noloss`` skips the loss). scipy's sparse products are
single-threaded.

Timed with pytest-benchmark (one group per size and dtype)::

    pytest benchmarks/test_bench_sparse_multinomial.py --benchmark-enable --tier=quick

or as ratios measured side by side in one run::

    python -m benchmarks.test_bench_sparse_multinomial --tier=quick
"""

import functools

import numpy as np
import pytest

from fastlr._threads import numba_threads
from fastlr._validation import csr_arrays
from fastlr.kernels import multinomial_csr
from fastlr.kernels.multinomial_csr import (
    csr_multinomial_fused_gradient,
    csr_multinomial_n_chunks,
)

from ._common import (
    DTYPES,
    TIERS,
    environment_lines,
    print_speedups,
    tier_dtype_arguments,
    time_interleaved,
)
from .test_bench_sparse import generate_sparse

N_CLASSES = 10
# Tier name -> (rows, features, non-zeros per row).
SHAPES = {
    "smoke": (2_000, 1_000, 20),
    "quick": (100_000, 10_000, 50),
    "full": (1_000_000, 10_000, 50),
}
# Kernel name -> numba threads (None: scipy, which has no threads to set).
KERNELS = {"scipy": None, "csr-1t": 1, "csr-2t": 2, "csr-2t-noloss": 2}


def generate_multiclass(n, d, nnz_per_row, dtype="float64", seed=0):
    """The CSR X of :func:`benchmarks.test_bench_sparse.generate_sparse`, 10 classes.

    Labels are drawn from a softmax model over X (the Gumbel-max trick).

    Returns
    -------
    X : csr_matrix of shape (n, d)
    y : ndarray of shape (n,)
        int64 classes.
    """
    X, _ = generate_sparse(n, d, nnz_per_row, dtype, seed)
    rng = np.random.default_rng(seed + 1)
    true_coef = rng.standard_normal((d, N_CLASSES)) * (2 / np.sqrt(nnz_per_row))
    scores = np.asarray(X @ true_coef) + rng.gumbel(size=(n, N_CLASSES))
    return X, scores.argmax(axis=1).astype(np.int64)


# One data set in memory at a time.
cached_multiclass = functools.lru_cache(maxsize=1)(generate_multiclass)


def gradient_calls(X, y, kernels=tuple(KERNELS)):
    """Zero-argument callables, one gradient evaluation each, by kernel name."""
    n, d = X.shape
    dtype = X.dtype
    rng = np.random.default_rng(1)
    coef = (rng.standard_normal((N_CLASSES, d)) / np.sqrt(X.nnz / n)).astype(dtype)
    intercept = np.zeros(N_CLASSES, dtype)
    residual = rng.standard_normal((n, N_CLASSES)).astype(dtype)
    arrays, sw = csr_arrays(X), np.empty(0, dtype)

    def fastlr_call(n_threads, with_loss):
        def call():
            grad, grad_b = np.zeros_like(coef), np.zeros_like(intercept)
            with numba_threads(n_threads):
                return multinomial_csr.gradient_sums(
                    arrays, y, sw, coef, intercept, with_loss, grad, grad_b
                )

        return call

    calls = {"scipy": lambda: (X @ coef.T, X.T @ residual)}
    for name, n_threads in KERNELS.items():
        if n_threads is not None:
            calls[name] = fastlr_call(n_threads, not name.endswith("noloss"))
    return {name: calls[name] for name in kernels}


def warm_jit():
    """Compile (or load from cache) the timed kernels for both dtypes."""
    for dtype in DTYPES:
        X, y = generate_multiclass(64, 16, 4, dtype)
        arrays, sw = csr_arrays(X), np.empty(0, X.dtype)
        coef, intercept = np.zeros((N_CLASSES, 16), X.dtype), np.zeros(N_CLASSES, X.dtype)
        buffers = (np.zeros_like(coef), np.zeros_like(intercept))
        csr_multinomial_fused_gradient(*arrays[:3], y, sw, coef, intercept, True, 2, *buffers)
        multinomial_csr.gradient_sums(arrays, y, sw, coef, intercept, True, *buffers)


@pytest.fixture(scope="module", autouse=True)
def _warm_jit():
    warm_jit()


@pytest.mark.parametrize("kernel", list(KERNELS))
@pytest.mark.parametrize("dtype", DTYPES)
def test_sparse_multinomial_gradient(benchmark, tier, dtype, kernel):
    n, d, nnz_per_row = SHAPES[tier.name]
    X, y = cached_multiclass(n, d, nnz_per_row, dtype)
    benchmark.group = (
        f"sparse-multinomial-gradient|n={n}|d={d}|nnz/row={nnz_per_row}|K={N_CLASSES}|{dtype}"
    )
    benchmark.extra_info.update(nnz=X.nnz, n_chunks=csr_multinomial_n_chunks(n, d, N_CLASSES))
    benchmark(gradient_calls(X, y, (kernel,))[kernel])


def main(argv=None):
    """Print each kernel's best time and its speedup over scipy, measured side by side."""
    args = tier_dtype_arguments(
        "python -m benchmarks.test_bench_sparse_multinomial", main.__doc__, argv
    )
    n, d, nnz_per_row = SHAPES[args.tier]
    warm_jit()
    X, y = generate_multiclass(n, d, nnz_per_row, args.dtype)
    timings = time_interleaved(gradient_calls(X, y), TIERS[args.tier].repeats)
    print("\n".join(environment_lines()))
    print(f"CSR multinomial gradient, {n} x {d}, {nnz_per_row} non-zeros per row, ", end="")
    print(f"{N_CLASSES} classes, {args.dtype}, {csr_multinomial_n_chunks(n, d, N_CLASSES)} chunks")
    print_speedups(timings, "scipy")


if __name__ == "__main__":
    main()
