"""Mapping of scikit-learn's ``n_jobs`` onto numba's thread count, and BLAS's."""

import contextlib
import functools
import numbers

import numba
from threadpoolctl import ThreadpoolController


def resolve_n_jobs(n_jobs):
    """Number of numba threads for ``n_jobs`` (joblib's convention).

    Parameters
    ----------
    n_jobs : int or None
        ``None`` or ``-1``: every thread numba started with; ``k > 0``: ``k``
        threads, at most that many; ``-k``: all but ``k - 1`` threads.

    Returns
    -------
    n_threads : int
    """
    available = numba.config.NUMBA_NUM_THREADS
    if n_jobs is None:
        return available
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, numbers.Integral) or n_jobs == 0:
        raise ValueError(
            f"n_jobs must be None, a positive int, or a negative int like -1 (all threads); "
            f"got {n_jobs!r}."
        )
    if n_jobs > 0:
        return min(int(n_jobs), available)
    return max(1, available + 1 + int(n_jobs))


@contextlib.contextmanager
def numba_threads(n_jobs):
    """Run the block with ``n_jobs`` numba threads, restoring the old count after.

    ``numba.set_num_threads`` is thread-local, so this only affects the
    calling thread.
    """
    n_threads = resolve_n_jobs(n_jobs)
    previous = numba.get_num_threads()
    numba.set_num_threads(n_threads)
    try:
        yield n_threads
    finally:
        numba.set_num_threads(previous)


@functools.cache
def _blas_controller():
    return ThreadpoolController()


def one_blas_thread():
    """Context manager: BLAS libraries run on one thread inside the block.

    ``threadpool_limits`` scans the process's loaded libraries on every call
    (1-3 ms, more than a whole L-BFGS fit on 569 x 30); the controller here
    scans them once, at the first call, so a BLAS library loaded after that
    is left as it is.
    """
    return _blas_controller().limit(limits=1, user_api="blas")
