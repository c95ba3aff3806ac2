"""Multinomial (softmax) loss: the fused gradient against NumPy, L-BFGS against scikit-learn.

Two measurements, each on digits (1797 x 64, 10 classes, standardized) and on
a synthetic problem of the tier's training shape with 10 classes (100 000 x 100
in quick, the issue's 1e6 x 100 in full, 2000 x 10 in smoke):

- one evaluation of the loss and gradient sums by
  :func:`fastlr.multinomial_dense.gradient_sums` with 1 and 2 numba
  threads, against the same sums in NumPy (two BLAS products and a stable
  softmax);
- L-BFGS time to scikit-learn's optimum (relative objective gap
  ``TARGET_GAP``): ``fastlr.LogisticRegression(C=1, tol=None)`` (lbfgs,
  multinomial) against scikit-learn's ``LogisticRegression(C=1, tol=0)``, with
  its default threads and with one BLAS thread. fastlr's L-BFGS runs with one
  BLAS thread (OpenBLAS threads spinning against numba's made evaluations up
  to 10x slower on a loaded 2-core machine; the same holds for scikit-learn,
  hence its second variant).

Run with pytest (``pytest benchmarks/test_bench_multinomial.py --benchmark-enable
--tier=quick``), or print the ratios measured side by side in one run::

    python -m benchmarks.test_bench_multinomial --tier quick
"""

import argparse
import contextlib
import functools

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression as SklearnLogisticRegression
from sklearn.preprocessing import StandardScaler
from threadpoolctl import ThreadpoolController

import fastlr
from fastlr._threads import numba_threads
from fastlr.kernels import multinomial_dense

from ._common import (
    TIERS,
    Case,
    cached_data,
    environment_lines,
    generate_data,
    time_interleaved,
)
from ._workloads import LBFGS_C, LBFGS_TIGHT_MAX_ITER, TARGET_GAP, quietly, smallest_true

N_CLASSES = 10
GRADIENT_KERNELS = ("numpy", "fused-1t", "fused-2t", "fused-2t-noloss")
LBFGS_LIBRARIES = ("fastlr", "sklearn", "sklearn-blas1")
# Each library's turn starts after this many seconds and one untimed fit, so
# that no library's timed fits run against another's spinning threads (right
# after a scikit-learn fit, a digits fit of fastlr ran 2-8x slower) or wait
# for its own pool to wake: see benchmarks._common.time_interleaved.
SETTLE = 0.25
LBFGS_TARGET = 4.0  # the figure: time to the optimum >= 4x faster than scikit-learn


# --------------------------------------------------------------------------
# Data and cases
# --------------------------------------------------------------------------


@functools.lru_cache(maxsize=2)
def multiclass_data(n, d):
    """``(X, y)``: digits when ``(n, d)`` is (1797, 64), else a learnable 10-class problem.

    The synthetic X is :func:`benchmarks._common.cached_data`'s (standard
    normal, shared with the other benchmarks); see :func:`softmax_labels`.
    """
    if (n, d) == (1797, 64):
        X, y = load_digits(return_X_y=True)
        return np.ascontiguousarray(StandardScaler().fit_transform(X)), y.astype(np.int64)
    X, _ = cached_data(n, d, "float64")
    return X, softmax_labels(X)


def softmax_labels(X, chunk_rows=65_536):
    """Labels drawn from a softmax model of X (the Gumbel-max trick): the optimum is finite."""
    rng = np.random.default_rng(7)
    coef = rng.standard_normal((N_CLASSES, X.shape[1])) * (3 / np.sqrt(X.shape[1]))
    y = np.empty(X.shape[0], np.int64)
    for start in range(0, X.shape[0], chunk_rows):
        rows = slice(start, start + chunk_rows)
        scores = X[rows] @ coef.T
        y[rows] = np.argmax(scores + rng.gumbel(size=scores.shape), axis=1)
    return y


def small_data(n, d):
    """An uncached small problem (warm-up, checks), so no large cached X is evicted."""
    X, _ = generate_data(n, d)
    return X, softmax_labels(X)


def shapes(tier):
    """``(n, d)`` of the benchmarked problems: digits, then the tier's training shape."""
    return [(1797, 64), tier.train_shape]


def cases(tier, kind, names):
    """One :class:`benchmarks._common.Case` per name and shape (float64)."""
    return [
        Case(name, n, d, "float64", f"{kind}|n={n}|d={d}|K={N_CLASSES}|float64")
        for n, d in shapes(tier)
        for name in names
    ]


def pytest_generate_tests(metafunc):
    """Parametrize ``multinomial_gradient_case`` and ``multinomial_lbfgs_case`` by tier."""
    tier = TIERS[metafunc.config.getoption("tier")]
    for fixture, kind, names in (
        ("multinomial_gradient_case", "multinomial-gradient", GRADIENT_KERNELS),
        ("multinomial_lbfgs_case", "multinomial-lbfgs-to-optimum", LBFGS_LIBRARIES),
    ):
        if fixture in metafunc.fixturenames:
            found = cases(tier, kind, names)
            metafunc.parametrize(fixture, found, ids=[case.id for case in found])


# --------------------------------------------------------------------------
# One gradient evaluation
# --------------------------------------------------------------------------


def numpy_gradient(X, y, coef, intercept):
    """Loss and gradient sums of the softmax cross-entropy in NumPy.

    Returns ``(grad_coef, grad_intercept, loss_sum)``, as the fused kernel adds up.
    """
    rows = np.arange(X.shape[0])
    scores = X @ coef.T + intercept
    scores -= scores.max(axis=1, keepdims=True)
    label_scores = scores[rows, y]
    np.exp(scores, out=scores)
    total = scores.sum(axis=1, keepdims=True)
    loss = float(np.log(total).sum() - label_scores.sum())
    scores /= total
    scores[rows, y] -= 1.0
    return scores.T @ X, scores.sum(axis=0), loss


def fused_gradient(X, y, coef, intercept, with_loss=True):
    """``multinomial_dense.gradient_sums`` into fresh buffers."""
    grad, grad_b = np.zeros_like(coef), np.zeros_like(intercept)
    sw = np.empty(0, X.dtype)
    loss = multinomial_dense.gradient_sums(X, y, sw, coef, intercept, with_loss, grad, grad_b)
    return grad, grad_b, loss


def _with_threads(call, n_threads):
    def run():
        with numba_threads(n_threads):
            return call()

    return run


def gradient_inputs(d):
    """Random ``(coef, intercept)`` of the scale of a fitted model."""
    rng = np.random.default_rng(1)
    return rng.standard_normal((N_CLASSES, d)) / np.sqrt(d), rng.standard_normal(N_CLASSES) * 0.1


def gradient_call(kernel, X, y):
    """Zero-argument callable: one loss-and-gradient evaluation by ``kernel``.

    ``kernel`` is one of ``GRADIENT_KERNELS``: ``"numpy"`` (:func:`numpy_gradient`),
    ``"fused-1t"``, ``"fused-2t"`` (:func:`fused_gradient` with 1 or 2 numba
    threads) or ``"fused-2t-noloss"`` (the gradient only).
    """
    params = gradient_inputs(X.shape[1])
    if kernel == "numpy":
        return functools.partial(numpy_gradient, X, y, *params)
    call = functools.partial(fused_gradient, X, y, *params, "noloss" not in kernel)
    return _with_threads(call, 1 if kernel == "fused-1t" else 2)


# --------------------------------------------------------------------------
# L-BFGS to the optimum
# --------------------------------------------------------------------------


def alpha_of(n):
    """L2 strength on the mean loss of ``LogisticRegression(C=LBFGS_C)`` on ``n`` rows."""
    return 1.0 / (LBFGS_C * n)


def objective_value(X, y, coef, intercept, chunk_rows=65_536):
    """Mean softmax cross-entropy plus ``alpha / 2 ||coef||^2``, in float64 NumPy."""
    coef = np.asarray(coef, dtype=np.float64)
    total = 0.0
    for start in range(0, X.shape[0], chunk_rows):
        scores = X[start : start + chunk_rows] @ coef.T + intercept
        shift = scores.max(axis=1)
        log_total = shift + np.log(np.exp(scores - shift[:, None]).sum(axis=1))
        labels = y[start : start + chunk_rows]
        total += float(np.sum(log_total - scores[np.arange(labels.shape[0]), labels]))
    return total / X.shape[0] + 0.5 * alpha_of(X.shape[0]) * float(np.sum(coef**2))


def _fastlr_lbfgs(X, y, max_iter):
    model = fastlr.LogisticRegression(C=LBFGS_C, max_iter=max_iter, tol=None).fit(X, y)
    return (model.coef_, model.intercept_), int(model.n_iter_[0])


@functools.cache
def _blas_controller():
    return ThreadpoolController()


def _blas_limit(n_threads):
    """BLAS limited to ``n_threads`` (None: as it is), by a controller made once.

    ``threadpool_limits`` scans the loaded libraries on every call (1-3 ms, 5% of
    a digits fit), which would be charged to the library timed.
    """
    if n_threads is None:
        return contextlib.nullcontext()
    return _blas_controller().limit(limits=n_threads, user_api="blas")


def _sklearn_lbfgs(X, y, max_iter, blas_threads=None):
    model = SklearnLogisticRegression(C=LBFGS_C, max_iter=max_iter, tol=0.0)
    with _blas_limit(blas_threads):
        model.fit(X, y)
    return (model.coef_, model.intercept_), int(model.n_iter_[0])


_LBFGS_FITS = {
    "fastlr": _fastlr_lbfgs,
    "sklearn": _sklearn_lbfgs,
    "sklearn-blas1": functools.partial(_sklearn_lbfgs, blas_threads=1),
}


def lbfgs_call(library, X, y, max_iter):
    """Zero-argument callable: an L-BFGS fit of at most ``max_iter`` iterations from zero.

    Returns ``((coef, intercept), n_iter)``; ``library`` is one of ``LBFGS_LIBRARIES``.
    """
    return quietly(functools.partial(_LBFGS_FITS[library], X, y, max_iter))


@functools.lru_cache
def lbfgs_plan(n, d):
    """Iterations each library needs to reach the optimum within ``TARGET_GAP``.

    As :func:`benchmarks._workloads.lbfgs_plan` for the binary loss: ``f*`` is
    the lower objective of both libraries' tight fits; the fewest iterations
    reaching ``(f - f*) / f* <= TARGET_GAP`` are found by bisection. The plan is
    searched with one BLAS thread (the iterates do not depend on it).

    Returns
    -------
    plan : dict of str to tuple
        ``library -> (max_iter, gap)``; ``(None, gap of the tight fit)`` when
        even the tight fit misses the optimum.
    """
    X, y = multiclass_data(n, d)
    searched = ("fastlr", "sklearn-blas1")
    tight = {lib: lbfgs_call(lib, X, y, LBFGS_TIGHT_MAX_ITER)() for lib in searched}
    f_star = min(objective_value(X, y, *params) for params, _ in tight.values())
    plan = {}
    for library, (_, n_iter) in tight.items():
        gaps = {}

        def reaches(k, library=library, gaps=gaps):
            params, _ = lbfgs_call(library, X, y, k)()
            gaps[k] = (objective_value(X, y, *params) - f_star) / abs(f_star)
            return gaps[k] <= TARGET_GAP

        k = smallest_true(reaches, n_iter)
        plan[library] = (k, gaps[n_iter if k is None else k])
    plan["sklearn"] = plan["sklearn-blas1"]
    return plan


# --------------------------------------------------------------------------
# pytest-benchmark
# --------------------------------------------------------------------------


@pytest.fixture(scope="module", autouse=True)
def _warm_multinomial_kernels():
    """Compile, or load from numba's cache, the kernels timed here (serial and fused)."""
    warm_up()


def warm_up():
    """Run the gradient kernels (one chunk and several) and the objective once, float64."""
    X, y = small_data(5000, 8)
    for kernel in GRADIENT_KERNELS:
        gradient_call(kernel, X[:500], y[:500])()
        gradient_call(kernel, X, y)()
    lbfgs_call("fastlr", X, y, 2)()


def test_multinomial_gradient(benchmark, multinomial_gradient_case):
    case = multinomial_gradient_case
    X, y = multiclass_data(case.n, case.d)
    benchmark.group = case.group
    benchmark.extra_info["X_bytes"] = X.nbytes
    benchmark(gradient_call(case.name, X, y))


def test_multinomial_lbfgs_to_optimum(benchmark, multinomial_lbfgs_case, tier):
    case = multinomial_lbfgs_case
    max_iter, gap = lbfgs_plan(case.n, case.d)[case.name]
    benchmark.group = case.group
    benchmark.extra_info.update(max_iter=max_iter, relative_gap=gap, target_gap=TARGET_GAP)
    if max_iter is None:
        pytest.skip(f"{case.name} lbfgs never reached a relative gap of {TARGET_GAP} (got {gap})")
    X, y = multiclass_data(case.n, case.d)
    benchmark.pedantic(lbfgs_call(case.name, X, y, max_iter), rounds=tier.train_repeats)


def test_fused_gradient_matches_the_numpy_baseline():
    """Both timed computations give the same sums: a benchmark of wrong code is void."""
    X, y = small_data(3000, 12)
    params = gradient_inputs(12)
    expected = numpy_gradient(X, y, *params)
    actual = fused_gradient(X, y, *params)
    for got, want in zip(actual, expected, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-10)


# --------------------------------------------------------------------------
# Ratios measured side by side: python -m benchmarks.test_bench_multinomial
# --------------------------------------------------------------------------


def _timing_lines(timings):
    return [
        f"  {name:<16} {timing.seconds * 1e3:10.2f} ms" + (" (contended)" * timing.contended)
        for name, timing in timings.items()
    ]


def _ratio_line(timings, slow, fast, target=None):
    ratio = timings[slow].seconds / timings[fast].seconds
    verdict = "" if target is None else (" PASS" if ratio >= target else " MISS")
    return f"  {slow} / {fast}: {ratio:.2f}x{verdict}"


def gradient_report(tier, n, d):
    """Lines: one gradient evaluation by each kernel, and NumPy's time over each."""
    X, y = multiclass_data(n, d)
    calls = {kernel: gradient_call(kernel, X, y) for kernel in GRADIENT_KERNELS}
    timings = time_interleaved(calls, tier.repeats, settle=SETTLE)
    lines = [f"gradient (loss and gradient sums), n={n} d={d} K={N_CLASSES} float64"]
    lines += _timing_lines(timings)
    return lines + [_ratio_line(timings, "numpy", kernel) for kernel in GRADIENT_KERNELS[1:]]


def lbfgs_report(tier, n, d):
    """Lines: each library's L-BFGS time to the optimum, and its time over fastlr's."""
    X, y = multiclass_data(n, d)
    plan = lbfgs_plan(n, d)
    lines = [f"lbfgs to the optimum (relative gap {TARGET_GAP}), n={n} d={d} K={N_CLASSES}"]
    lines += [f"  {lib}: {k} iterations, gap {gap:.1e}" for lib, (k, gap) in plan.items()]
    calls = {lib: lbfgs_call(lib, X, y, k) for lib, (k, _) in plan.items() if k is not None}
    if "fastlr" not in calls:
        return lines
    timings = time_interleaved(calls, tier.train_repeats, min_time=0.0, settle=SETTLE)
    lines += _timing_lines(timings)
    others = [lib for lib in calls if lib != "fastlr"]
    return lines + [_ratio_line(timings, lib, "fastlr", LBFGS_TARGET) for lib in others]


def main(argv=None):
    """Print the environment and both reports for each shape of the tier."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tier", choices=sorted(TIERS), default="quick")
    tier = TIERS[parser.parse_args(argv).tier]
    warm_up()
    lines = []
    for n, d in shapes(tier):
        lines += ["", *gradient_report(tier, n, d), "", *lbfgs_report(tier, n, d)]
    print("\n".join([*environment_lines(), *lines]))


if __name__ == "__main__":
    main()
