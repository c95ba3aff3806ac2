"""The numba options module: one cache stamp for the whole package."""

import importlib.util

import numpy as np

from fastlr import _jit, _kernels, _multinomial, _sparse


def test_package_stamp_changes_when_any_module_changes(tmp_path):
    (tmp_path / "a.py").write_text("x = 1\n")
    (tmp_path / "b.py").write_text("y = 2\n")
    before = _jit.package_stamp(tmp_path)
    assert _jit.package_stamp(tmp_path) == before
    (tmp_path / "b.py").write_text("y = 3\n")
    changed = _jit.package_stamp(tmp_path)
    (tmp_path / "c.py").write_text("")
    assert len({before, changed, _jit.package_stamp(tmp_path)}) == 3


def test_kernels_of_every_module_are_cached_under_the_package_stamp():
    """A helper edited in _kernels must invalidate the kernels of _multinomial too."""
    assert _jit.PACKAGE_LOCATORS
    stamp = _jit.package_stamp()
    for dispatcher in (
        _kernels.fused_gradient,
        _multinomial.multinomial_fused_gradient,
        _sparse.csr_fused_gradient,
    ):
        locator = dispatcher._cache._impl.locator
        assert isinstance(locator, _jit._PackageStamp)
        assert locator.get_source_stamp() == stamp


def test_functions_outside_the_package_keep_numbas_own_stamp(tmp_path):
    source = tmp_path / "outside.py"
    source.write_text("import numba\n\n@numba.njit(cache=True)\ndef twice(x):\n    return 2 * x\n")
    spec = importlib.util.spec_from_file_location("outside", source)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.twice(np.float64(2.0)) == 4.0
    assert not isinstance(module.twice._cache._impl.locator, _jit._PackageStamp)


def test_package_stamp_covers_subpackages(tmp_path):
    (tmp_path / "a.py").write_text("x = 1\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.py").write_text("y = 2\n")
    before = _jit.package_stamp(tmp_path)
    (tmp_path / "sub" / "b.py").write_text("y = 3\n")
    assert _jit.package_stamp(tmp_path) != before


def test_subpackage_files_count_as_the_package():
    assert _jit._in_package(str(_jit.PACKAGE_DIR / "kernels" / "anything.py"))
    assert not _jit._in_package(str(_jit.PACKAGE_DIR.parent / "elsewhere.py"))
