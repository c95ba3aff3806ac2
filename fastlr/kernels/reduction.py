"""The fixed-chunk parallel reduction, shared by every family's gradient.

A parallel pass splits the rows into chunks whose number is a function of the
problem's shape only (never of the thread count), gives each chunk a private
accumulator, and adds the partials in chunk order: the sums are bitwise
identical for any number of threads. A mini-batch is split the same way into
a fixed number of parts (:func:`batch_parts`).
"""

import numpy as np
from numba import prange

from .._jit import kernel

# Rows per chunk of the parallel reduction. The chunking depends on the number
# of rows only, never on the thread count, so results are reproducible.
MIN_CHUNK_ROWS = 2048
MAX_CHUNKS = 128
# A mini-batch's gradient is split in parts of at least this many rows, at
# most this many parts: more parts than threads balance the load (figures in
# docs/design.md).
MIN_PART_ROWS = 64
MAX_BATCH_PARTS = 8


def n_chunks_for(n_rows):
    """Number of row chunks of the parallel reduction for ``n_rows`` rows.

    Parameters
    ----------
    n_rows : int
        Number of rows reduced.

    Returns
    -------
    n_chunks : int
        At least 1, at most ``MAX_CHUNKS``; a function of ``n_rows`` only.
    """
    return max(1, min(MAX_CHUNKS, -(-n_rows // MIN_CHUNK_ROWS)))


@kernel
def add_partials(partial, partial_db, partial_cost, grad_coef):
    """Add per-chunk partial sums into ``grad_coef`` in chunk order (reproducible).

    Returns the summed intercept gradient and loss.
    """
    db = 0.0
    cost = 0.0
    for c in range(partial.shape[0]):
        for j in range(partial.shape[1]):
            grad_coef[j] += partial[c, j]
        db += partial_db[c]
        cost += partial_cost[c]
    return db, cost


@kernel
def batch_parts(batch_size):
    """Parts of a mini-batch whose gradients :func:`minibatch_epoch` sums in parallel.

    One per ``MIN_PART_ROWS`` rows, at most ``MAX_BATCH_PARTS``: a function of
    the batch size only, so the sums do not depend on the number of threads.
    """
    return max(1, min(MAX_BATCH_PARTS, batch_size // MIN_PART_ROWS))


@kernel
def zero(a):
    """``a[:] = 0`` for a 1-D array, as a serial loop."""
    for j in range(a.shape[0]):
        a[j] = 0


@kernel
def flat_sum(values):
    """Sum of a contiguous 1-D array (vectorized: a reduction with reassociation)."""
    total = values.dtype.type(0)
    for k in range(values.shape[0]):
        total += values[k]
    return total


@kernel
def array_sum(X):
    """Sum of X in one flat pass: the memory-bandwidth baseline of the benchmarks.

    X is read as one contiguous run, whatever its width, so the figure is the
    machine's streaming read rate and not the cost of short rows.
    """
    return flat_sum(X.reshape(-1))


@kernel(parallel=True)
def parallel_array_sum(X, n_chunks):
    """Parallel flat one-pass sum of X, split into the row chunks of :func:`fused_gradient`.

    Each chunk is summed by :func:`flat_sum`, compiled on its own: inlined in
    the prange body the reduction stayed scalar (a quarter of the bandwidth).
    """
    n, d = X.shape
    flat = X.reshape(-1)
    chunk = -(-n // n_chunks)
    partial = np.zeros(n_chunks)
    for c in prange(n_chunks):
        start = min(c * chunk, n) * d
        stop = min(c * chunk + chunk, n) * d
        partial[c] = flat_sum(flat[start:stop])
    return partial.sum()


@kernel(parallel=True)
def parallel_rows_sum(X, order, n_chunks):
    """Parallel sum of the rows ``X[order[k]]``, split into fixed chunks of positions.

    The read of an epoch's rows in the epoch's order, and nothing else: the
    floor of a mini-batch epoch over that order in the benchmarks. Each chunk
    adds its rows into a private vector (one vectorized add per row).
    """
    n, d = order.shape[0], X.shape[1]
    chunk = -(-n // n_chunks)
    partial = np.zeros((n_chunks, d), X.dtype)
    for c in prange(n_chunks):
        start = min(c * chunk, n)
        stop = min(start + chunk, n)
        acc = partial[c]
        for k in range(start, stop):
            row = X[order[k]]
            for j in range(d):
                acc[j] += row[j]
    total = 0.0
    for c in range(n_chunks):
        total += flat_sum(partial[c])
    return total
