"""Fits on a fastlr.Dataset: streamed block by block, and equal to the in-memory fit.

The reference is the in-memory fit on the same rows: lbfgs reaches the same
optimum (1e-10 relative objective), and the stochastic solvers, with the rows
in order and blocks that hold whole batches, take the same steps.
"""

import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.sparse
from sklearn.datasets import dump_svmlight_file
from sklearn.exceptions import ConvergenceWarning

import fastlr
from fastlr import _streaming
from fastlr._datafits import Objective, make_datafit


def make_problem(n=400, d=6, n_classes=2, seed=0, sparse=False):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    if sparse:
        X[rng.random(X.shape) < 0.6] = 0.0
    scores = X @ rng.standard_normal((d, n_classes)) + 0.5 * rng.standard_normal((n, n_classes))
    y = scores.argmax(axis=1) if n_classes > 2 else (scores[:, 0] > 0).astype(np.int64)
    weights = rng.uniform(0.5, 2.0, n)
    return (scipy.sparse.csr_matrix(X) if sparse else X), y, weights


def objective_value(model, X, y, sample_weight=None):
    """The fitted model's penalized objective on the in-memory data (C=1, L2)."""
    classes = model.classes_
    y_idx = np.searchsorted(classes, y)
    sw = np.empty(0) if sample_weight is None else np.asarray(sample_weight, float)
    total = float(sw.sum()) if sw.shape[0] else float(X.shape[0])
    datafit = make_datafit(X, y_idx, sw, total, len(classes))
    coef = model.coef_ if len(classes) > 2 else model.coef_[0]
    return Objective(datafit, 1.0 / total, True)(coef, model.intercept_)[0]


def fit_quietly(model, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return model.fit(*args, **kwargs)


def write_source(kind, tmp_path, X, y, w):
    """The data written as ``kind``, and the Dataset that reads it back."""
    if kind == "array":
        return fastlr.Dataset(X, label=y, weight=w, block_rows=70)
    if kind == "dataframe":
        frame = pd.DataFrame(X, columns=[f"f{j}" for j in range(X.shape[1])])
        frame["label"], frame["w"] = y, w
        return fastlr.Dataset(frame, label="label", weight="w", block_rows=70)
    if kind == "npy":
        np.save(tmp_path / "X.npy", X)
        np.save(tmp_path / "y.npy", y)
        np.save(tmp_path / "w.npy", w)
        return fastlr.Dataset(
            tmp_path / "X.npy", label=tmp_path / "y.npy", weight=tmp_path / "w.npy", block_rows=70
        )
    if kind == "parquet":
        frame = pd.DataFrame(X, columns=[f"f{j}" for j in range(X.shape[1])])
        frame["label"], frame["w"] = y, w
        frame.to_parquet(tmp_path / "data.parquet", row_group_size=70)
        return fastlr.Dataset(tmp_path / "data.parquet", label="label", weight="w")
    if kind == "csv":
        frame = pd.DataFrame(X, columns=[f"f{j}" for j in range(X.shape[1])])
        frame["label"], frame["w"] = y, w
        frame.to_csv(tmp_path / "data.csv", index=False, float_format="%.17g")
        return fastlr.Dataset(tmp_path / "data.csv", label="label", weight="w", block_rows=70)
    if kind == "libsvm":
        dump_svmlight_file(X, y, str(tmp_path / "data.svm"), zero_based=True)
        return fastlr.Dataset(tmp_path / "data.svm", block_rows=70, n_features=X.shape[1])
    if kind == "iterable":
        chunks = [(X[i : i + 70], y[i : i + 70], w[i : i + 70]) for i in range(0, len(y), 70)]
        return fastlr.Dataset(chunks)
    if kind == "cache":
        return fastlr.Dataset(X, label=y, weight=w, block_rows=70).to_cache(tmp_path / "cache")
    raise AssertionError(kind)


FORMATS = ["array", "dataframe", "npy", "parquet", "csv", "libsvm", "iterable", "cache"]


@pytest.mark.parametrize("kind", FORMATS)
def test_each_format_fits_the_in_memory_optimum(tmp_path, kind):
    X, y, w = make_problem()
    if kind == "libsvm":  # the format has no weights
        w = None
    data = write_source(kind, tmp_path, X, y, np.ones(len(y)) if w is None else w)
    streamed = fit_quietly(fastlr.LogisticRegression(tol=1e-9, max_iter=500), data)
    in_memory = fit_quietly(fastlr.LogisticRegression(tol=1e-9, max_iter=500), X, y, w)
    got = objective_value(streamed, X, y, w)
    want = objective_value(in_memory, X, y, w)
    assert abs(got - want) <= 1e-10 * abs(want)
    assert streamed.n_features_in_ == X.shape[1]
    np.testing.assert_array_equal(streamed.classes_, in_memory.classes_)
    np.testing.assert_array_equal(streamed.predict(data), in_memory.predict(X))


@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "csr"])
@pytest.mark.parametrize("class_weight", [None, "balanced", {0: 2.0, 2: 0.5}])
def test_multinomial_with_class_weights_fits_the_in_memory_optimum(sparse, class_weight):
    X, y, w = make_problem(n_classes=3, sparse=sparse, seed=1)
    data = fastlr.Dataset(X, label=y, weight=w, block_rows=90)
    params = dict(tol=1e-9, max_iter=500, class_weight=class_weight)
    streamed = fit_quietly(fastlr.LogisticRegression(**params), data)
    in_memory = fit_quietly(fastlr.LogisticRegression(**params), X, y, w)
    np.testing.assert_allclose(streamed.coef_, in_memory.coef_, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(
        streamed.predict_proba(data), in_memory.predict_proba(X), rtol=1e-6, atol=1e-9
    )


def test_a_streamed_fit_is_bitwise_reproducible():
    X, y, _ = make_problem(n=700, n_classes=3)
    models = [
        fit_quietly(fastlr.LogisticRegression(), fastlr.Dataset(X, label=y, block_rows=64))
        for _ in range(2)
    ]
    np.testing.assert_array_equal(models[0].coef_, models[1].coef_)
    np.testing.assert_array_equal(models[0].history_["loss"], models[1].history_["loss"])


@pytest.mark.parametrize("solver", ["sgd", "minibatch"])
@pytest.mark.parametrize("n_classes", [2, 3])
@pytest.mark.parametrize("schedule", [dict(learning_rate="invscaling", eta0=0.05), {}])
def test_stochastic_epochs_in_order_take_the_in_memory_steps(solver, n_classes, schedule):
    """Rows in order, blocks of whole batches: the same updates, the state carried across.

    The default ("auto") schedule's step comes from the row norms, summed block by
    block when streamed: equal to the in-memory step up to rounding.
    """
    X, y, w = make_problem(n=480, n_classes=n_classes, seed=2)
    params = dict(
        solver=solver, shuffle=False, max_iter=3, tol=None, batch_size=40, alpha=1e-3, **schedule
    )
    streamed = fastlr.LogisticRegression(**params).fit(
        fastlr.Dataset(X, label=y, weight=w, block_rows=120)
    )
    in_memory = fastlr.LogisticRegression(**params).fit(X, y, w)
    np.testing.assert_allclose(streamed.coef_, in_memory.coef_, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(streamed.history_["loss"], in_memory.history_["loss"], rtol=1e-12)
    assert streamed.t_ == in_memory.t_


def test_shuffled_epochs_depend_on_random_state_only():
    X, y, _ = make_problem(n=600)
    data = fastlr.Dataset(X, label=y, block_rows=50)

    def fit(seed):
        return fastlr.LogisticRegression(solver="sgd", max_iter=2, tol=None, random_state=seed).fit(
            data
        )

    first, again, other = fit(0), fit(0), fit(1)
    np.testing.assert_array_equal(first.coef_, again.coef_)
    assert not np.array_equal(first.coef_, other.coef_)


def test_block_plans_shuffle_blocks_then_rows_inside_each():
    from fastlr._orders import block_plans

    rng = np.random.RandomState(0)
    plans = block_plans(np.arange(5), rng, rng)
    first = next(plans)
    assert sorted(first.blocks) == list(range(5)) and list(first.blocks) != list(range(5))
    assert sorted(first.rows(7)) == list(range(7))
    in_order = next(block_plans(np.arange(5), None, None))
    assert list(in_order.blocks) == list(range(5)) and list(in_order.rows(3)) == [0, 1, 2]


def test_sequential_sources_keep_their_block_order_and_shuffle_rows(tmp_path):
    X, y, _ = make_problem(n=300)
    dump_svmlight_file(X, y, str(tmp_path / "data.svm"))
    data = fastlr.Dataset(tmp_path / "data.svm", block_rows=60, n_features=X.shape[1])
    assert not data.random_access
    model = fastlr.LogisticRegression(solver="sgd", max_iter=2, tol=None, random_state=0)
    assert np.all(np.isfinite(model.fit(data).coef_))


def test_predictions_on_a_dataset_equal_those_on_arrays():
    X, y, _ = make_problem(n=500, n_classes=3)
    model = fastlr.LogisticRegression().fit(X, y)
    data = fastlr.Dataset(X, label=y, block_rows=77)
    np.testing.assert_array_equal(model.predict(data), model.predict(X))
    np.testing.assert_array_equal(model.predict_proba(data), model.predict_proba(X))
    np.testing.assert_array_equal(model.decision_function(data), model.decision_function(X))
    assert model.score(data) == pytest.approx(model.score(X, y), rel=1e-12)


def test_prediction_on_other_columns_is_refused():
    X, y, _ = make_problem()
    columns = [f"f{j}" for j in range(X.shape[1])]
    frame = pd.DataFrame(X, columns=columns)
    model = fastlr.LogisticRegression().fit(fastlr.Dataset(frame, label=y))
    assert list(model.feature_names_in_) == columns
    renamed = frame.rename(columns={"f0": "age"})
    with pytest.raises(ValueError, match=r"other feature columns.*missing \['f0'\].*'age'"):
        model.predict(fastlr.Dataset(renamed))


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda m, d, X, y: m.fit(d, y), "holds its labels and weights"),
        (lambda m, d, X, y: m.fit(d, sample_weight=np.ones(len(y))), "holds its labels"),
        (lambda m, d, X, y: m.fit(X, y, validation=d), "needs the training data as a"),
        (
            lambda m, d, X, y: m.fit(X, y, checkpoint=fastlr.Checkpoint("ckpt")),
            "needs the training data as a",
        ),
        (lambda m, d, X, y: m.fit(d, validation=d), "validation= decides early stopping"),
        (lambda m, d, X, y: m.fit(fastlr.Dataset(X)), "has no labels"),
        (lambda m, d, X, y: m.fit(fastlr.Dataset(X, label=np.zeros(len(y)))), "only one class"),
    ],
)
def test_bad_combinations_are_refused(call, message):
    X, y, _ = make_problem(n=100)
    with pytest.raises(ValueError, match=message):
        call(fastlr.LogisticRegression(), fastlr.Dataset(X, label=y), X, y)


def test_a_failed_dataset_fit_leaves_the_model_as_it_was():
    X, y, _ = make_problem(n=100)
    model = fastlr.LogisticRegression().fit(X, y)
    coef = model.coef_.copy()
    with pytest.raises(ValueError, match="only one class"):
        model.fit(fastlr.Dataset(X, label=np.zeros(len(y))))
    np.testing.assert_array_equal(model.coef_, coef)


@pytest.mark.parametrize("how", ["blocks", "dataset"])
def test_early_stopping_on_held_out_blocks_or_a_validation_dataset(how):
    X, y, _ = make_problem(n=1000, seed=4)
    data = fastlr.Dataset(X[:800], label=y[:800], block_rows=80)
    model = fastlr.LogisticRegression(
        solver="sgd", max_iter=50, early_stopping=True, n_iter_no_change=3, random_state=0,
        alpha=1e-3,
    )  # fmt: skip
    if how == "blocks":
        model.fit(data)
    else:
        model.fit(data, validation=fastlr.Dataset(X[800:], label=y[800:]))
    scores = model.history_["validation_score"]
    assert len(scores) == model.n_iter_[0] < 50
    assert 0.5 < scores.max() <= 1.0


def test_held_out_blocks_need_two_blocks():
    X, y, _ = make_problem(n=100)
    model = fastlr.LogisticRegression(solver="sgd", early_stopping=True)
    with pytest.raises(ValueError, match="leaves no"):
        model.fit(fastlr.Dataset(X, label=y))


def test_a_pass_reports_its_progress():
    import io

    X, y, _ = make_problem(n=300)
    datafit, _ = _streaming.streamed_datafit(fastlr.Dataset(X, label=y, block_rows=100))
    out = io.StringIO()
    datafit.progress = fastlr._progress.Progress(file=out, interactive=False)
    grad, grad_b = np.zeros(X.shape[1]), np.zeros(1)
    datafit.gradient_sums(np.zeros(X.shape[1]), np.zeros(1), True, grad, grad_b)
    assert "pass 1: 300 rows in" in out.getvalue() and "rows/s" in out.getvalue()


@pytest.mark.parametrize("weighted", [False, True])
def test_the_auto_step_reads_the_row_norms_once(weighted):
    """minibatch's step asks the mean (scale 1) and then the largest (scale n / W) row
    norm: one pass gives both, each bitwise what a pass of its own gives."""
    X, y, w = make_problem(n=300)
    data = fastlr.Dataset(X, label=y, weight=w if weighted else None, block_rows=70)

    def fresh():
        return _streaming.streamed_datafit(data)[0]

    datafit = fresh()
    step_scale = datafit.n_samples / datafit.total_weight
    passes = datafit.passes
    mean = datafit.mean_weighted_row_norm(1.0, 1.0)
    largest = datafit.max_weighted_row_norm(step_scale, 1.0)
    assert datafit.passes == passes + 1
    assert mean == fresh().mean_weighted_row_norm(1.0, 1.0)
    assert largest == fresh().max_weighted_row_norm(step_scale, 1.0)
    weights = w * step_scale if weighted else 1.0
    norms = (X * X).sum(axis=1) + 1.0
    np.testing.assert_allclose(largest, np.max(weights * norms), rtol=1e-15)
    np.testing.assert_allclose(mean, np.mean((w if weighted else 1.0) * norms), rtol=1e-14)
    # Another scale or intercept term is another pass, not a stale answer (without
    # weights the scale is 1 whatever is asked).
    doubled = datafit.max_weighted_row_norm(2 * step_scale, 1.0)
    assert doubled == (2 * largest if weighted else largest)
    assert datafit.mean_weighted_row_norm(1.0, 0.0) < mean
    assert datafit.passes == passes + 3


def test_labels_unseen_by_the_scan_are_refused():
    X, _, _ = make_problem(n=100)
    encoder = _streaming.BlockEncoder(np.array([0, 1]), np.float64, source="data")
    block = fastlr.data.Block(X[:10], np.full(10, 7), None, 0)
    with pytest.raises(ValueError, match=r"Block 3 of data holds labels .* \[7\]"):
        encoder(block, 3)


# --------------------------------------------------------------------------
# Bounded memory: a fit on a file larger than the process may hold
# --------------------------------------------------------------------------

BOUNDED_CHILD = """
import json, sys, warnings
import fastlr
warnings.simplefilter("ignore")
data = fastlr.Dataset(sys.argv[1], label=sys.argv[2], block_rows=100_000)
model = fastlr.LogisticRegression(max_iter=2).fit(data)
# Anonymous memory only: mapped file pages count in the RSS but are page cache.
status = dict(line.split(":", 1) for line in open("/proc/self/status"))
anon = int(status["RssAnon"].split()[0]) * 1024
print(json.dumps({"n_iter": int(model.n_iter_[0]), "anon": anon, "n": int(model.n_features_in_)}))
"""


@pytest.mark.slow
def test_a_streamed_fit_runs_under_a_memory_limit_smaller_than_its_file(tmp_path):
    """A 1 GB file, a cgroup of 700 MB (page cache included): the fit holds a few blocks."""
    import json
    import subprocess
    import sys

    from benchmarks.test_bench_streaming import (
        cgroup_available,
        drop_from_page_cache,
        run_in_cgroup,
        write_problem,
    )

    reason = cgroup_available()
    if reason is not None:
        pytest.skip(reason)
    limit = 700 << 20
    script = tmp_path / "child.py"
    script.write_text(BOUNDED_CHILD)
    # The same fit on a small file first, outside the cgroup: the kernels are
    # compiled (or loaded) into numba's cache there, not under the limit.
    small = write_problem(tmp_path / "small", 1000, 100)
    subprocess.run([sys.executable, str(script), *map(str, small)], check=True)
    X_path, y_path = write_problem(tmp_path / "large", 2_500_000, 100, chunk_rows=250_000)
    assert X_path.stat().st_size > 1.3 * limit
    drop_from_page_cache(tmp_path / "large")
    out, peak = run_in_cgroup(
        [sys.executable, str(script), str(X_path), str(y_path)], limit, name="fastlr-test"
    )
    result = json.loads(out.strip().splitlines()[-1])
    assert result["n"] == 100 and result["n_iter"] >= 1
    # The kernel kept the whole group, page cache included, under the limit; the
    # process's own memory (interpreter, libraries, a few blocks) far below the file.
    assert peak <= limit
    assert result["anon"] < X_path.stat().st_size / 2
