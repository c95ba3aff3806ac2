#!/usr/bin/env bash
# Install fastlr into ./.venv, with the OS library numba's OpenMP threading needs.
#   ./install.sh          the library and the `fastlr` command
#   ./install.sh test     ... plus the test extra (pytest, pytest-benchmark, hypothesis)
#   ./install.sh dev      ... plus plots (matplotlib) and ruff
set -euo pipefail
cd "$(dirname "$0")"
extra="${1:-}"

# numba's "omp" threading layer loads libgomp.so.1 (Debian/Ubuntu: libgomp1).
# Without it numba falls back to "workqueue": slower parallel calls, unsafe from threads.
if ! ldconfig -p 2>/dev/null | grep -q 'libgomp\.so\.1'; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        apt-get update -qq && apt-get install -y -qq libgomp1
    elif command -v sudo >/dev/null && command -v apt-get >/dev/null; then
        sudo apt-get update -qq && sudo apt-get install -y -qq libgomp1
    else
        echo "install.sh: libgomp.so.1 not found; install your OS's OpenMP runtime" \
             "(Debian/Ubuntu: libgomp1) or 'pip install tbb' for numba's parallel kernels." >&2
    fi
fi

python3 -m venv .venv
target="."
[ -n "$extra" ] && target=".[$extra]"
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e "$target"

# Compile the kernels of common fits into numba's cache now, on every core, so
# that the first fit loads them instead of compiling (FASTLR_NO_WARMUP=1 skips).
if [ -z "${FASTLR_NO_WARMUP:-}" ]; then
    .venv/bin/fastlr warmup
fi
