"""The one place that owns numba's compilation options.

Every compiled function in fastlr takes its decorator from here, so that the
fastmath flags, the error model and caching are the same everywhere.

Numba's disk cache stamps each compiled function with a hash of its own source
file, so a kernel compiled against a helper in another module (the exp of
``kernels.maths`` inside ``kernels.multinomial_dense``, say) would load stale
machine code after that helper changed. fastlr's functions are cached under
one stamp instead: the hash of every module of the package, subpackages
included, and the last-level cache size the kernels were compiled for. A
change anywhere recompiles them all.
"""

import functools
import hashlib
from pathlib import Path

import numba
from numba.core import caching

PACKAGE_DIR = Path(__file__).resolve().parent

# Reassociation lets LLVM vectorize dot products and sums; "contract" allows FMA.
# Never "nnan"/"ninf" (fastmath=True): they would make NaN checks silently false.
FASTMATH = frozenset({"reassoc", "contract", "arcp", "nsz"})


def package_stamp(directory=PACKAGE_DIR):
    """Hash of the relative paths and contents of every ``.py`` file under ``directory``.

    Subpackages count: a kernel in ``fastlr/kernels/`` is stamped by the same
    hash as one in ``fastlr/``.

    Parameters
    ----------
    directory : path-like, default=PACKAGE_DIR

    Returns
    -------
    stamp : str
    """
    directory = Path(directory)
    digest = hashlib.sha256()
    for path in sorted(directory.rglob("*.py")):
        digest.update(path.relative_to(directory).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


class _PackageStamp:
    """Mixin for numba cache locators: fastlr's files only, stamped by the package."""

    def get_source_stamp(self):
        return _package_stamp_once()

    @classmethod
    def from_function(cls, py_func, py_file):
        if not _in_package(py_file):
            return None
        return super().from_function(py_func, py_file)

    def ensure_cache_path(self):
        # numba checks the directory (a makedirs and a temporary file) for
        # every function; once per directory saves ~4 ms of `import fastlr`.
        path = self.get_cache_path()
        if path not in _WRITABLE_PATHS:
            super().ensure_cache_path()
            _WRITABLE_PATHS.add(path)


_WRITABLE_PATHS = set()


@functools.cache
def _in_package(py_file):
    return Path(py_file).resolve().is_relative_to(PACKAGE_DIR)


@functools.cache
def _package_stamp_once():
    # The cache size is compiled into the kernels as a constant (it sets their
    # block sizes), so machine code cached on a machine with another cache
    # must not be loaded here.
    from .kernels.hardware import CACHED_X_BYTES

    return f"{package_stamp()}:{CACHED_X_BYTES}"


def _install_package_locators():
    """Put package-stamped twins of numba's file locators first in its search order.

    The twins keep each locator's place (``NUMBA_CACHE_DIR``, then the source
    tree, then the user-wide directory). Returns False, leaving numba's
    per-file stamps, when this numba version names its locators differently.
    """
    impl = getattr(caching, "CacheImpl", None) or getattr(caching, "_CacheImpl", None)
    names = ("UserProvidedCacheLocator", "InTreeCacheLocator", "UserWideCacheLocator")
    bases = [getattr(caching, name, None) or getattr(caching, "_" + name, None) for name in names]
    if impl is None or None in bases:
        return False
    if any(issubclass(cls, _PackageStamp) for cls in impl._locator_classes):
        return True
    twins = [
        type(f"Package{base.__name__.lstrip('_')}", (_PackageStamp, base), {"__module__": __name__})
        for base in bases
    ]
    impl._locator_classes = twins + list(impl._locator_classes)
    return True


PACKAGE_LOCATORS = _install_package_locators()


def kernel(func=None, *, parallel=False, exact=False):
    """Compile ``func`` in nopython mode with fastlr's options.

    Parameters
    ----------
    func : callable, optional
        The Python function to compile. When omitted, a decorator is returned.
    parallel : bool, default=False
        Enable ``prange`` parallel loops.
    exact : bool, default=False
        Allow only FMA contraction, for code whose rounding is part of its
        correctness (reassociation would simplify ``(1 + e) - 1`` to ``e`` and
        undo the two-constant ``ln 2`` split of an ``exp`` range reduction).

    Returns
    -------
    dispatcher : numba dispatcher or callable
        The compiled function, or a decorator producing one.
    """
    options = dict(
        cache=True,
        nogil=True,
        fastmath={"contract"} if exact else set(FASTMATH),
        # The default "python" model inserts a zero check before every division.
        error_model="numpy",
        parallel=parallel,
    )
    if func is None:
        return functools.partial(kernel, parallel=parallel, exact=exact)
    dispatcher = numba.njit(**options)(func)
    KERNELS.append(dispatcher)
    return dispatcher


#: Every dispatcher :func:`kernel` made, in the order the modules defined them.
KERNELS = []


def cached_signatures(dispatchers=None):
    """How many compiled signatures numba's cache holds for this build and this CPU.

    An entry counts when the cache index carries the package stamp (the
    source and the cache size compiled in, see :func:`package_stamp`) and
    the machine code targets this CPU (numba's "magic tuple": the CPU name
    and its features). Nothing is compiled or loaded.

    Parameters
    ----------
    dispatchers : list of numba dispatchers, default=KERNELS

    Returns
    -------
    cached, total : int
        Signatures cached for this build and CPU; kernels looked at.
    """
    from numba.core.registry import cpu_target

    magic = cpu_target.target_context.codegen().magic_tuple()
    dispatchers = KERNELS if dispatchers is None else dispatchers
    cached = 0
    for dispatcher in dispatchers:
        cache = getattr(dispatcher, "_cache", None)
        index = getattr(getattr(cache, "_cache_file", None), "_load_index", None)
        if index is None:
            continue
        cached += sum(1 for key in index() if key[1] == magic)
    return cached, len(dispatchers)
