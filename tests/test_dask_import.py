"""fastlr without dask: the package imports, and fastlr.dask says how to get dask."""

import subprocess
import sys

WITHOUT_DASK = """
import sys
sys.modules["dask"] = None  # makes `import dask` raise ImportError
sys.modules["distributed"] = None
import fastlr
fastlr.LogisticRegression()
try:
    import fastlr.dask
except ImportError as exc:
    print(exc)
"""


def test_fastlr_imports_without_dask_and_fastlr_dask_names_the_extra():
    result = subprocess.run(
        [sys.executable, "-c", WITHOUT_DASK], capture_output=True, text=True, check=True
    )
    assert "pip install fastlr[dask]" in result.stdout
