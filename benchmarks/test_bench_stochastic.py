"""sgd and minibatch with their defaults: at scale against SGDClassifier, and near the optimum.

Two figures:

1. **Defaults at scale**: the training log-loss after 1 and 3 epochs of
   ``LogisticRegression(solver=..., tol=None, max_iter=E, random_state=0)``
   (``C = 1``, so ``alpha = 1 / n``) on rows drawn from a logistic model
   (:func:`benchmarks._common.generate_data`, d = 100; 1e6 rows in the full
   tier), against ``SGDClassifier(loss="log_loss")`` with its defaults (target:
   at most SGDClassifier's loss), beside the schedules "auto" had before
   (sgd: scikit-learn's "optimal" for ``alpha = 1 / (C n)``, whose first steps
   grow with n; minibatch: the constant step ``1 / L(B)``) and the optimum's
   log-loss (lbfgs).
2. **Defaults near the optimum**: ``LogisticRegression(solver=..., C=C,
   random_state=0)`` with every other parameter at its default on breast
   cancer, digits, iris and wine (standardized, ``C = 1`` and ``0.1``): the
   relative objective gap to lbfgs's optimum, and the distance the
   ConvergenceWarning names when there is one (a lower bound, from L-BFGS run
   from the result, or the duality gap's upper bound). Target: a gap of at
   most 1%, or a warning.

Run with pytest (``pytest benchmarks/test_bench_stochastic.py --benchmark-enable
--tier=quick``), or print the tables::

    python -m benchmarks.test_bench_stochastic --tier full
"""

import argparse
import functools
import re
import time
import warnings

import numpy as np
from sklearn.datasets import load_breast_cancer, load_digits, load_iris, load_wine
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import SGDClassifier
from sklearn.preprocessing import StandardScaler

import fastlr

from ._common import TIERS, environment_lines, generate_data
from ._workloads import objective, quietly

SCALE_ROWS = {"smoke": 20_000, "quick": 200_000, "full": 1_000_000}
SCALE_FEATURES = 100
SCALE_EPOCHS = (1, 3)
NEAR_CASES = {
    "smoke": [("iris", 0.1), ("breast_cancer", 1.0)],
    "quick": [(name, C) for name in ("breast_cancer", "digits", "iris", "wine") for C in (1, 0.1)],
}
NEAR_CASES["full"] = NEAR_CASES["quick"]
NEAR_TARGET_GAP = 0.01
LOADERS = {
    "breast_cancer": load_breast_cancer,
    "digits": load_digits,
    "iris": load_iris,
    "wine": load_wine,
}


# --------------------------------------------------------------------------
# Defaults at scale
# --------------------------------------------------------------------------


def log_loss(X, y, model):
    """Mean training log-loss of a fitted binary model (no penalty)."""
    return objective(X, y, (model.coef_.ravel(), model.intercept_), alpha=0.0)


def scale_fits(X, y, epochs):
    """``{name: (estimator, note)}`` of the fits compared at ``epochs`` epochs."""
    common = dict(tol=None, max_iter=epochs, random_state=0)
    batch_lipschitz = _minibatch_lipschitz(X, y, batch_size=256)
    return {
        "SGDClassifier defaults": SGDClassifier(loss="log_loss", **common),
        "fastlr sgd defaults": fastlr.LogisticRegression(solver="sgd", **common),
        "fastlr minibatch defaults": fastlr.LogisticRegression(solver="minibatch", **common),
        "fastlr sgd, the old auto ('optimal')": fastlr.LogisticRegression(
            solver="sgd", learning_rate="optimal", **common
        ),
        "fastlr minibatch, the old auto (1/L(B))": fastlr.LogisticRegression(
            solver="minibatch", learning_rate="constant", eta0=1.0 / batch_lipschitz, **common
        ),
    }


def _minibatch_lipschitz(X, y, batch_size):
    """``L(B)`` of the default objective (``C = 1``), the old minibatch "auto" step's inverse."""
    model = fastlr.LogisticRegression()
    target = np.asarray(y, dtype=np.int64)
    objective_ = model._objective(X, target, np.empty(0, X.dtype), 2)
    return objective_.minibatch_lipschitz_constant(batch_size)


def scale_report(tier):
    """Lines of the at-scale figure."""
    n = SCALE_ROWS[tier.name]
    X, y = generate_data(n, SCALE_FEATURES)
    optimum = log_loss(X, y, quietly(fastlr.LogisticRegression(tol=1e-8, max_iter=1000).fit)(X, y))
    lines = [
        f"sgd and minibatch defaults at scale: training log-loss on {n:,} x {SCALE_FEATURES} "
        f"rows from a logistic model (C = 1; optimum {optimum:.4f}); target: at most "
        f"SGDClassifier's"
    ]
    for epochs in SCALE_EPOCHS:
        results = {}
        for name, model in scale_fits(X, y, epochs).items():
            start = time.perf_counter()
            quietly(model.fit)(X, y)
            results[name] = (log_loss(X, y, model), time.perf_counter() - start)
        reference = results["SGDClassifier defaults"][0]
        for name, (loss, seconds) in results.items():
            verdict = ""
            if "defaults" in name and name.startswith("fastlr"):
                verdict = " PASS" if loss <= reference else " MISS"
            lines.append(
                f"  {epochs} epoch{'s' if epochs > 1 else ' '} {name:<42} {loss:9.4f} "
                f"({seconds:6.2f} s){verdict}"
            )
    return lines


# --------------------------------------------------------------------------
# Defaults near the optimum
# --------------------------------------------------------------------------


@functools.cache
def load_problem(name):
    """``(X, y)``: a scikit-learn data set, standardized."""
    X, y = LOADERS[name](return_X_y=True)
    return np.ascontiguousarray(StandardScaler().fit_transform(X)), y


def objective_value(model, X, y):
    """The objective fastlr minimizes, at the model's coefficients."""
    classes, y_idx = np.unique(y, return_inverse=True)
    objective_ = model._objective(X, y_idx, np.empty(0, X.dtype), len(classes))
    coef = np.ascontiguousarray(model.coef_.reshape(objective_.datafit.coef_shape))
    value, _, _ = objective_(coef, np.ascontiguousarray(model.intercept_))
    return value


@functools.cache
def optimum(name, C):
    X, y = load_problem(name)
    model = fastlr.LogisticRegression(C=C, tol=1e-10, max_iter=10_000).fit(X, y)
    return objective_value(model, X, y)


def default_fit(name, C, solver):
    """``(model, relative gap, the distance the ConvergenceWarning names or None, warned)``."""
    X, y = load_problem(name)
    model = fastlr.LogisticRegression(solver=solver, C=C, random_state=0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        model.fit(X, y)
    messages = [str(w.message) for w in caught if issubclass(w.category, ConvergenceWarning)]
    named = [re.search(r"(at least|within|is|by) (\d+(\.\d+)?)%", text) for text in messages]
    bound = next((f"{found.group(1)} {found.group(2)}%" for found in named if found), None)
    best = optimum(name, C)
    return model, (objective_value(model, X, y) - best) / best, bound, bool(messages)


def near_report(tier):
    """Lines of the near-the-optimum figure."""
    lines = [
        f"sgd and minibatch defaults near the optimum: relative objective gap to lbfgs's "
        f"optimum; target: at most {NEAR_TARGET_GAP:.0%}, or a ConvergenceWarning (with the "
        f"distance it names)"
    ]
    for name, C in NEAR_CASES[tier.name]:
        parts = []
        for solver in ("sgd", "minibatch"):
            model, gap, bound, warned = default_fit(name, C, solver)
            verdict = "PASS" if gap <= NEAR_TARGET_GAP or warned else "MISS"
            said = f"warned ({bound})" if bound is not None else "warned"
            said = said if warned else "no warning"
            parts.append(
                f"{solver} gap {gap:8.2e} in {model.n_iter_[0]:3d} epochs, {said} {verdict}"
            )
        lines.append(f"  {name:<14} C={C:<4}: " + "; ".join(parts))
    return lines


# --------------------------------------------------------------------------
# pytest-benchmark
# --------------------------------------------------------------------------


def pytest_generate_tests(metafunc):
    """Parametrize ``near_case`` by tier."""
    tier = TIERS[metafunc.config.getoption("tier")]
    if "near_case" in metafunc.fixturenames:
        cases = [(n, C, s) for n, C in NEAR_CASES[tier.name] for s in ("sgd", "minibatch")]
        metafunc.parametrize("near_case", cases, ids=[f"{n}-C{C}-{s}" for n, C, s in cases])


def test_defaults_at_scale(benchmark, tier):
    n = SCALE_ROWS[tier.name]
    X, y = generate_data(n, SCALE_FEATURES)
    ours = fastlr.LogisticRegression(solver="sgd", tol=None, max_iter=1, random_state=0)
    theirs = SGDClassifier(loss="log_loss", tol=None, max_iter=1, random_state=0)
    benchmark.group = f"stochastic-defaults|{n}x{SCALE_FEATURES}"
    benchmark.extra_info.update(sgdclassifier_loss=log_loss(X, y, theirs.fit(X, y)))
    benchmark.pedantic(ours.fit, (X, y), rounds=1)
    benchmark.extra_info.update(fastlr_loss=log_loss(X, y, ours))


def test_defaults_near_the_optimum(benchmark, near_case):
    name, C, solver = near_case
    model, gap, bound, warned = default_fit(name, C, solver)
    benchmark.group = f"stochastic-near-optimum|{name}|C={C}"
    benchmark.extra_info.update(
        relative_gap=gap, warned=warned, bound=bound, epochs=int(model.n_iter_[0])
    )
    X, y = load_problem(name)
    estimator = fastlr.LogisticRegression(solver=solver, C=C, random_state=0)
    benchmark.pedantic(quietly(estimator.fit), (X, y), rounds=1)


# --------------------------------------------------------------------------
# Tables: python -m benchmarks.test_bench_stochastic
# --------------------------------------------------------------------------


def main(argv=None):
    """Print both figures for the tier, then the environment."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tier", choices=sorted(TIERS), default="quick")
    parser.add_argument(
        "--skip", choices=("scale", "near"), action="append", default=[], help="leave one out"
    )
    args = parser.parse_args(argv)
    tier = TIERS[args.tier]
    if "scale" not in args.skip:
        print("\n".join(["", *scale_report(tier)]), flush=True)
    if "near" not in args.skip:
        print("\n".join(["", *near_report(tier)]), flush=True)
    print("\n".join(["", *environment_lines()]))


if __name__ == "__main__":
    main()
