"""Thread counts of numba and BLAS, set per call and safe across threads and forks.

Three process-wide hazards are handled here, once for every caller:

- numba's ``workqueue`` threading layer (what numba falls back to without
  OpenMP or TBB) aborts the process when two threads run parallel regions at
  once: :func:`numba_threads` then lets one caller in at a time.
- GNU OpenMP is not fork-safe: a child forked after the parent ran a parallel
  region is killed by numba ("fork() called from a process already using GNU
  OpenMP") or would hang. In such a child fastlr runs its kernels on one
  thread (results are the same bit for bit: the kernels split the rows into a
  fixed number of chunks whatever the thread count).
- The BLAS thread count is process-wide: :func:`one_blas_thread` counts its
  users, so that overlapping fits from several threads restore it once, when
  the last one leaves.
"""

import contextlib
import ctypes
import functools
import numbers
import os
import sys
import threading

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
        1 in a child forked from a process that used GNU OpenMP.
    """
    available = numba.config.NUMBA_NUM_THREADS
    if n_jobs is not None and (
        isinstance(n_jobs, bool) or not isinstance(n_jobs, numbers.Integral) or n_jobs == 0
    ):
        raise ValueError(
            f"n_jobs must be None, a positive int, or a negative int like -1 (all threads); "
            f"got {n_jobs!r}."
        )
    if _FORK.after_openmp:
        return 1
    if n_jobs is None:
        return available
    if n_jobs > 0:
        return min(int(n_jobs), available)
    return max(1, available + 1 + int(n_jobs))


@contextlib.contextmanager
def numba_threads(n_jobs):
    """Run the block with ``n_jobs`` numba threads, restoring the old count after.

    ``numba.set_num_threads`` is thread-local, so this only affects the
    calling thread. On the ``workqueue`` layer the block holds a process-wide
    lock (one parallel caller at a time); in a child forked after GNU OpenMP
    was used, it runs on one thread. Every call into fastlr's parallel kernels
    goes through here.
    """
    n_threads = resolve_n_jobs(n_jobs)
    previous = numba.get_num_threads()  # also starts numba's threading layer
    with _layer_guard():
        numba.set_num_threads(n_threads)
        try:
            yield n_threads
        finally:
            numba.set_num_threads(min(previous, resolve_n_jobs(None)))


def current_threads():
    """``numba_threads`` with the calling thread's current count (for helpers)."""
    return numba_threads(numba.get_num_threads())


# --------------------------------------------------------------------------
# The threading layer: workqueue's lock and GNU OpenMP after fork.
# --------------------------------------------------------------------------


class _ForkState:
    """Whether this process was forked from one that had started GNU OpenMP."""

    def __init__(self):
        self.after_openmp = False
        self.reset_done = False
        self.lock = threading.Lock()


_FORK = _ForkState()
_WORKQUEUE_LOCK = threading.RLock()


@contextlib.contextmanager
def _layer_guard():
    """Hold the workqueue lock, or prepare a forked child's OpenMP; else nothing."""
    layer = numba.threading_layer()
    if _FORK.after_openmp:
        _allow_openmp_in_child()
    if layer != "workqueue":
        yield
        return
    lock = _WORKQUEUE_LOCK  # the object released is the one acquired, even across a fork
    with lock:
        yield


def _uses_gnu_openmp():
    """True when numba's threading layer has started, on GNU OpenMP."""
    try:
        layer = numba.threading_layer()
    except ValueError:  # not started: the child starts its own, safely
        return False
    omppool = sys.modules.get("numba.np.ufunc.omppool")
    return layer == "omp" and getattr(omppool, "openmp_vendor", None) == "GNU"


def _allow_openmp_in_child():
    """Let a forked child run numba's parallel regions on one thread.

    numba's omp layer records the pid of the process that started it and
    kills a child of that process at its first parallel region, because GNU
    OpenMP's thread pool does not survive ``fork``. A team of one thread never
    uses that pool: this restarts the layer's bookkeeping in the child
    (``launch_threads(1)`` records the child's pid and makes one thread the
    default of new threads), and :func:`resolve_n_jobs` asks for one thread
    from then on. Done at the first fastlr call in the child, so a child that
    never calls fastlr keeps numba's own check; after it, other numba code of
    the child that asks for more threads (``numba.set_num_threads(2)``) would
    hang instead of being stopped. ``launch_threads`` is numba's (measured on
    numba 0.68): should it stop resetting that pid, the child is stopped by
    numba as before, no worse.
    """
    with _FORK.lock:
        if _FORK.reset_done:
            return
        omppool = sys.modules["numba.np.ufunc.omppool"]
        launch_threads = ctypes.CFUNCTYPE(None, ctypes.c_int)(omppool.launch_threads)
        launch_threads(1)
        _FORK.reset_done = True
    numba.set_num_threads(1)


def _after_fork_in_child():
    global _WORKQUEUE_LOCK
    # A lock held by a thread of the parent would never be released here.
    _WORKQUEUE_LOCK = threading.RLock()
    _FORK.lock = threading.Lock()
    if _uses_gnu_openmp():
        _FORK.after_openmp = True
        _FORK.reset_done = False
    _BLAS.after_fork_in_child()


# --------------------------------------------------------------------------
# BLAS: one thread while any fit needs it, the count restored by the last.
# --------------------------------------------------------------------------


@functools.cache
def _blas_controller():
    return ThreadpoolController()


class _BlasLimit:
    """Reference-counted "BLAS on one thread" for the whole process.

    The first user saves every BLAS library's thread count and sets it to 1;
    the last one to leave restores the saved counts. Each block is a token
    mapped to its thread, so a fork can forget the blocks of the parent's
    other threads.
    """

    def __init__(self):
        self.lock = threading.Lock()
        self.users = {}  # token -> ident of the thread in the block
        self.saved = None  # [(library controller, its thread count)] while limited

    def enter(self, token):
        with self.lock:
            self.users[token] = threading.get_ident()
            if self.saved is None:
                libraries = _blas_controller().select(user_api="blas").lib_controllers
                self.saved = [(lib, lib.get_num_threads()) for lib in libraries]
                for lib, _ in self.saved:
                    _set_blas_threads(lib, 1)

    def leave(self, token):
        with self.lock:
            self.users.pop(token, None)
            if not self.users:
                self._restore()

    def _restore(self):
        saved, self.saved = self.saved, None
        for lib, n_threads in saved or ():
            _set_blas_threads(lib, n_threads)

    def after_fork_in_child(self):
        self.lock = threading.Lock()
        me = threading.get_ident()
        self.users = {token: ident for token, ident in self.users.items() if ident == me}
        if not self.users:
            self._restore()


def _set_blas_threads(library, n_threads):
    """Set a BLAS library's thread count from whichever thread calls.

    threadpoolctl (3.6 and later) lets only one "controlling" thread change
    OpenBLAS's process-wide count and silently ignores the others: the last
    fit to finish, on any thread, could then not restore the count. The
    changes made here are already serialised by :class:`_BlasLimit`, so the
    caller takes control for the call and gives it back.
    """
    release = getattr(type(library), "clear_controlling_thread", None)
    if release is not None:
        release(force=True)
    library.set_num_threads(n_threads)
    if release is not None:
        release()


_BLAS = _BlasLimit()


@contextlib.contextmanager
def one_blas_thread():
    """Context manager: BLAS libraries run on one thread inside the block.

    The count is process-wide, so the limit is shared: while any thread is in
    such a block BLAS stays on one thread, and the count from before the first
    block is restored when the last one leaves (overlapping fits on several
    threads would otherwise restore each other's limit). The libraries are
    scanned once, at the first call (``threadpool_limits`` scans them on every
    call, 1-3 ms, more than a whole L-BFGS fit on 569 x 30), so a BLAS library
    loaded after that is left as it is.
    """
    token = object()
    try:
        _BLAS.enter(token)
        yield
    finally:
        _BLAS.leave(token)


os.register_at_fork(after_in_child=_after_fork_in_child)
