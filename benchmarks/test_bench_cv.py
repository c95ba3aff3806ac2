"""LogisticRegressionCV against scikit-learn's: 10 values of C, 5 stratified folds.

One figure: the time of ``fastlr.LogisticRegressionCV(Cs=10)`` against
``sklearn.linear_model.LogisticRegressionCV(Cs=10)`` with their defaults
(lbfgs, ``tol=1e-4``, ``max_iter=100``, accuracy, ``StratifiedKFold(5)``:
the same folds) on breast cancer (569 x 30, binary) and digits (1797 x 64, 10
classes), standardized; target: at least 3x faster, with the same ``C_``.

scikit-learn runs with its default threads and with one BLAS thread (on two
cores its OpenBLAS and OpenMP pools spin against each other); the ratio that
counts is against the faster of the two. fastlr runs with its default
(``n_jobs=None``: the folds on two Python threads with each fit's kernels on
one numba thread when a pass is long enough, ``FOLD_THREADS_MIN_WORK``; one
after the other with each fit's kernels on both threads otherwise), with one
thread (``fastlr-1t``), and with each of the two ways forced
(``fastlr-sequential``, ``fastlr-fold-threads``), the measurement behind
that rule (``docs/design.md``).
The timings are taken side by side, each turn after a pause and an untimed
fit (:func:`benchmarks._common.time_interleaved`).

Run with pytest (``pytest benchmarks/test_bench_cv.py --benchmark-enable
--tier=quick``), or print the table::

    python -m benchmarks.test_bench_cv --tier quick

The smoke tier (the default of ``pytest benchmarks``) runs breast cancer with
3 folds; quick and full run both data sets with 5 folds.
"""

import argparse
import contextlib
import functools

import numpy as np
from sklearn.datasets import load_breast_cancer, load_digits
from sklearn.linear_model import LogisticRegressionCV as SkLogisticRegressionCV
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

import fastlr
from fastlr import _cv

from ._common import TIERS, environment_lines, time_interleaved
from ._workloads import quietly

TARGET_RATIO = 3.0
N_CS = 10
LOADERS = {"breast_cancer": load_breast_cancer, "digits": load_digits}
# (data set, folds) per tier.
CASES = {
    "smoke": [("breast_cancer", 3)],
    "quick": [("breast_cancer", 5), ("digits", 5)],
    "full": [("breast_cancer", 5), ("digits", 5)],
}
FASTLR_RUNS = ("fastlr", "fastlr-1t", "fastlr-sequential", "fastlr-fold-threads")
SKLEARN_RUNS = ("sklearn", "sklearn-blas1")


@functools.cache
def load_problem(name):
    """Standardized ``(X, y)`` of breast cancer or digits, X float64 C-contiguous."""
    X, y = LOADERS[name](return_X_y=True)
    return np.ascontiguousarray(StandardScaler().fit_transform(X)), y


@contextlib.contextmanager
def fold_threads(run):
    """Force the folds of a fastlr fit on threads or in turn, as ``run`` says; else the rule."""
    saved = _cv._FOLDS_ON_THREADS, _cv.FOLD_THREADS_MIN_WORK
    if run == "fastlr-sequential":
        _cv._FOLDS_ON_THREADS = False
    elif run == "fastlr-fold-threads":
        _cv.FOLD_THREADS_MIN_WORK = 0
    try:
        yield
    finally:
        _cv._FOLDS_ON_THREADS, _cv.FOLD_THREADS_MIN_WORK = saved


def _fastlr_fit(run, X, y, n_folds):
    n_jobs = 1 if run == "fastlr-1t" else None
    model = fastlr.LogisticRegressionCV(Cs=N_CS, cv=n_folds, n_jobs=n_jobs)
    with fold_threads(run):
        return model.fit(X, y)


def _sklearn_fit(run, X, y, n_folds):
    # l1_ratios, scoring and use_legacy_attributes set to their current
    # meaning (L2, accuracy, attributes keyed by class): no FutureWarning.
    model = SkLogisticRegressionCV(
        Cs=N_CS, cv=n_folds, l1_ratios=(0.0,), scoring=None, use_legacy_attributes=True
    )
    limits = threadpool_limits(1) if run == "sklearn-blas1" else contextlib.nullcontext()
    with limits:
        return model.fit(X, y)


def cv_call(run, X, y, n_folds):
    """Zero-argument callable: one cross-validated fit of ``run``; returns the model."""
    fit = _fastlr_fit if run.startswith("fastlr") else _sklearn_fit
    return quietly(functools.partial(fit, run, X, y, n_folds))


def cv_report(tier, name, n_folds):
    """Lines: each run's time, the chosen C, and scikit-learn's time over fastlr's."""
    X, y = load_problem(name)
    calls = {run: cv_call(run, X, y, n_folds) for run in (*FASTLR_RUNS, *SKLEARN_RUNS)}
    timings = time_interleaved(calls, tier.train_repeats, min_time=0.0, settle=0.25)
    lines = [
        f"LogisticRegressionCV, {N_CS} values of C, {n_folds} folds: {name} "
        f"{X.shape[0]}x{X.shape[1]}, {len(np.unique(y))} classes"
    ]
    for run, timing in timings.items():
        model = timing.result
        contended = " (contended)" * timing.contended
        lines.append(
            f"  {run:<19} {timing.seconds * 1e3:10.1f} ms  C_={model.C_[0]:.6g}  "
            f"iterations {int(model.n_iter_.sum())}{contended}"
        )
    best_sklearn = min(SKLEARN_RUNS, key=lambda run: timings[run].seconds)
    same_C = timings["fastlr"].result.C_[0] == timings[best_sklearn].result.C_[0]
    for run in FASTLR_RUNS:
        ratio = timings[best_sklearn].seconds / timings[run].seconds
        verdict = "PASS" if ratio >= TARGET_RATIO and same_C else "MISS"
        verdict = verdict if run == "fastlr" else "info"
        lines.append(
            f"  {best_sklearn} / {run}: {ratio:.2f}x (target {TARGET_RATIO:g}x, same C_: "
            f"{same_C}) {verdict}"
        )
    return lines


# --------------------------------------------------------------------------
# pytest-benchmark
# --------------------------------------------------------------------------


def pytest_generate_tests(metafunc):
    """Parametrize ``cv_case`` by tier: (data set, folds, run)."""
    if "cv_case" in metafunc.fixturenames:
        tier = TIERS[metafunc.config.getoption("tier")]
        cases = [
            (name, n_folds, run)
            for name, n_folds in CASES[tier.name]
            for run in ("fastlr", "sklearn-blas1")
        ]
        ids = [f"{name}-{n_folds}folds-{run}" for name, n_folds, run in cases]
        metafunc.parametrize("cv_case", cases, ids=ids)


def test_cv_fit(benchmark, cv_case, tier):
    name, n_folds, run = cv_case
    X, y = load_problem(name)
    benchmark.group = f"logistic-regression-cv|{name}|Cs={N_CS}|folds={n_folds}"
    model = benchmark.pedantic(cv_call(run, X, y, n_folds), rounds=tier.train_repeats)
    benchmark.extra_info.update(C=float(model.C_[0]), iterations=int(model.n_iter_.sum()))
    assert model.Cs_.shape == (N_CS,)


# --------------------------------------------------------------------------
# Table: python -m benchmarks.test_bench_cv
# --------------------------------------------------------------------------


def main(argv=None):
    """Print the figure for each case of the tier, then the environment."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tier", choices=sorted(TIERS), default="quick")
    args = parser.parse_args(argv)
    tier = TIERS[args.tier]
    for name, n_folds in CASES[tier.name]:
        print("\n".join(["", *cv_report(tier, name, n_folds)]), flush=True)
    print("\n".join(["", *environment_lines()]))


if __name__ == "__main__":
    main()
