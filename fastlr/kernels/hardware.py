"""The one hardware probe: the size of the last-level cache.

It decides whether X stays in cache between passes (:mod:`.binary_dense`
picks bigger blocks then). The value is read once, at import, and compiled
into the kernels as a constant; :mod:`fastlr._jit` puts it in the cache stamp
so that a cache written on another machine is not reused here.
"""

from pathlib import Path


def last_level_cache_bytes(default=32 << 20):
    """Size of CPU 0's largest data cache, from Linux's sysfs, else ``default``.

    Returns
    -------
    size : int
        Bytes.
    """
    sizes = []
    for index in Path("/sys/devices/system/cpu/cpu0/cache").glob("index*"):
        try:
            if (index / "type").read_text().strip() == "Instruction":
                continue
            text = (index / "size").read_text().strip().upper()
        except OSError:
            continue
        unit = {"K": 1 << 10, "M": 1 << 20}.get(text[-1:], 1)
        digits = text.rstrip("KM")
        if digits.isdigit():
            sizes.append(int(digits) * unit)
    return max(sizes, default=default)


# Read once at import and compiled into the kernels as a constant.
CACHED_X_BYTES = last_level_cache_bytes() // 2
