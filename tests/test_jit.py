"""The numba options module: one cache stamp for the whole package."""

import importlib.util

import numpy as np

from fastlr import _jit
from fastlr.kernels import binary_csr, binary_dense, multinomial_dense


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
    """A helper edited in kernels.maths must invalidate the multinomial kernels too."""
    assert _jit.PACKAGE_LOCATORS
    stamp = _jit._package_stamp_once()
    for dispatcher in (
        binary_dense.fused_gradient,
        multinomial_dense.multinomial_fused_gradient,
        binary_csr.csr_fused_gradient,
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


def compiled_functions():
    """Every numba dispatcher defined in a module of the fastlr package."""
    import importlib
    import pkgutil

    from numba.core.registry import CPUDispatcher

    import fastlr

    found = {}
    for info in pkgutil.walk_packages(fastlr.__path__, "fastlr."):
        if info.name.endswith("__main__"):
            continue  # runs the command line
        module = importlib.import_module(info.name)
        for name, value in vars(module).items():
            if isinstance(value, CPUDispatcher) and value.py_func.__module__ == info.name:
                found[f"{info.name}.{name}"] = value
    return found


def test_every_compiled_function_takes_its_options_and_stamp_from_jit():
    found = compiled_functions()
    assert len(found) > 50, sorted(found)
    stamp = _jit._package_stamp_once()
    for name, dispatcher in found.items():
        options = dispatcher.targetoptions
        assert options["fastmath"] in (set(_jit.FASTMATH), {"contract"}), name
        assert options["error_model"] == "numpy" and options["nogil"], name
        locator = dispatcher._cache._impl.locator
        assert isinstance(locator, _jit._PackageStamp), name
        assert locator.get_source_stamp() == stamp, name


def test_the_stamp_covers_the_cache_size_compiled_into_the_kernels():
    from fastlr.kernels import hardware

    assert _jit._package_stamp_once() == f"{_jit.package_stamp()}:{hardware.CACHED_X_BYTES}"
