"""The ``fastlr`` command line."""

import json
import re

import numpy as np
import pytest

import fastlr
from fastlr import cli


def test_demo_prints_loss_per_epoch_and_accuracy(capsys):
    assert cli.main(["demo", "--n-samples", "3000", "--n-features", "8", "--epochs", "4"]) == 0
    out = capsys.readouterr().out
    # The estimator's verbose lines, printed as each epoch ends.
    losses = [float(v) for v in re.findall(r"epoch \d+: loss ([0-9.]+)", out)]
    assert len(losses) == 4
    assert losses[-1] < losses[0]
    accuracy = float(re.search(r"test accuracy +([0-9.]+)", out).group(1))
    assert 0.6 < accuracy <= 1.0


@pytest.mark.parametrize("solver", ["lbfgs", "gd", "sgd"])
def test_demo_runs_every_solver(capsys, solver):
    args = [
        "demo",
        "--solver",
        solver,
        "--n-samples",
        "1000",
        "--epochs",
        "2",
        "--dtype",
        "float32",
    ]
    assert cli.main(args) == 0
    assert "test accuracy" in capsys.readouterr().out


def test_info_reports_the_threading_layer_and_the_cache(capsys):
    assert cli.main(["info"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"threading layer: (omp|tbb|workqueue)", out)
    # info's own gradient call has compiled (or loaded) at least one kernel.
    assert re.search(r"compiled kernels: \d+ signatures of \d+ kernels cached", out), out


def test_warmup_compiles_the_groups_then_checks_them(capsys, monkeypatch):
    from fastlr import _warmup

    monkeypatch.setattr(_warmup, "GROUPS", {"lbfgs and gd": [dict(solver="lbfgs")]})
    assert cli.main(["warmup", "--jobs", "1"]) == 0
    out = capsys.readouterr().out
    assert "fastlr warmup: compiled the kernels of lbfgs and gd in " in out
    cached = re.search(r"fastlr warmup: (\d+) signatures of (\d+) kernels cached", out)
    assert cached and int(cached[1]) > 0, out


_WARMUP_COVERAGE = """
import numpy as np
import fastlr
from fastlr import _jit, _warmup
_warmup.GROUPS = {"lbfgs and gd": [dict(solver="lbfgs")]}
_warmup.DTYPES = (np.float64,)
_warmup.SIZES = {"lbfgs and gd": WARMUP_SIZES}
_warmup.run_group("lbfgs and gd")
before = {id(k): set(k.signatures) for k in _jit.KERNELS}
X = np.random.default_rng(0).standard_normal((20_000, 7))
fastlr.LogisticRegression().fit(X, X[:, 0] > 0).predict_proba(X)
print(sorted(k.__name__ for k in _jit.KERNELS if set(k.signatures) != before[id(k)]))
"""


def _signatures_after_warmup(sizes):
    """Kernels a 20,000-row lbfgs fit calls with a signature the warmup's fits did not.

    A fresh interpreter, so that only what that process called counts.
    """
    import subprocess
    import sys

    script = _WARMUP_COVERAGE.replace("WARMUP_SIZES", repr(sizes))
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


def test_warmup_covers_the_parallel_passes_of_larger_fits():
    from fastlr import _warmup

    assert _signatures_after_warmup(_warmup.SIZES["lbfgs and gd"]) == "[]"
    # The check sees a gap: one chunk's worth of rows leaves the fused gradient out.
    assert "fused_gradient" in _signatures_after_warmup((64,))


def test_cached_signatures_counts_what_a_fit_compiled():
    from fastlr import _jit
    from fastlr.kernels import binary_dense

    X = np.random.default_rng(0).standard_normal((50, 3))
    fastlr.LogisticRegression().fit(X, X[:, 0] > 0)
    assert _jit.cached_signatures([binary_dense.fused_gradient]) >= (1, 1)
    assert _jit.cached_signatures([]) == (0, 0)


def test_bad_arguments_exit_with_a_message(capsys):
    with pytest.raises(SystemExit):
        cli.main(["demo", "--epochs", "0"])
    assert "must be a positive integer" in capsys.readouterr().err


# --------------------------------------------------------------------------
# train, predict, evaluate, convert
# --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A Parquet training file, a CSV test file and a LIBSVM file of one problem."""
    import numpy as np
    import pandas as pd
    from sklearn.datasets import dump_svmlight_file

    folder = tmp_path_factory.mktemp("cli")
    rng = np.random.default_rng(0)
    X = rng.standard_normal((3000, 5))
    y = (X @ np.array([1.0, -1.0, 0.5, 0.0, 2.0]) + rng.standard_normal(3000) > 0).astype(int)
    frame = pd.DataFrame(X, columns=[f"f{j}" for j in range(5)])
    frame["target"] = y
    frame[:2000].to_parquet(folder / "train.parquet", row_group_size=500)
    frame[2000:].to_csv(folder / "test.csv", index=False)
    dump_svmlight_file(X, y, str(folder / "train.svm"))
    return folder, X, y


def test_train_evaluate_predict_end_to_end(files, capsys):
    folder, X, y = files
    model_path = folder / "model.fastlr"
    args = ["train", str(folder / "train.parquet"), "--label", "target", "--out", str(model_path)]
    assert cli.main([*args, "--quiet"]) == 0
    assert "model written to" in capsys.readouterr().err
    import fastlr

    model = fastlr.load(model_path)
    reference = fastlr.LogisticRegression().fit(X[:2000], y[:2000])
    np.testing.assert_allclose(model.coef_, reference.coef_, rtol=1e-6, atol=1e-9)

    assert cli.main(["evaluate", str(model_path), str(folder / "test.csv"), "--label", "target",
                     "--json"]) == 0  # fmt: skip
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["n_rows"] == 1000
    assert metrics["accuracy"] == pytest.approx(reference.score(X[2000:], y[2000:]), rel=1e-9)
    assert 0.5 < metrics["roc_auc"] <= 1.0

    out = folder / "pred.csv"
    assert cli.main(["predict", str(model_path), str(folder / "test.csv"), "--label", "target",
                     "--out", str(out), "--proba", "--quiet"]) == 0  # fmt: skip
    import pandas as pd

    written = pd.read_csv(out)
    assert list(written.columns) == ["label", "proba_0", "proba_1"]
    np.testing.assert_array_equal(written["label"], reference.predict(X[2000:]))
    np.testing.assert_allclose(written["proba_1"], reference.predict_proba(X[2000:])[:, 1],
                               rtol=1e-12)  # fmt: skip


def test_train_shows_progress_lines_when_not_a_terminal(files, capsys):
    folder, _, _ = files
    out = folder / "sgd.fastlr"
    args = ["train", str(folder / "train.svm"), "--out", str(out), "--solver", "sgd",
            "--max-iter", "2", "--tol", "none", "--random-state", "0"]  # fmt: skip
    assert cli.main(args) == 0
    err = capsys.readouterr().err
    assert re.search(r"epoch pass \d+: [\d,]+ rows in [\d.]+ s, [\d.]+\w? rows/s", err)
    assert re.search(r"\[sgd\] epoch 2: loss [\d.]+", err)


def test_convert_then_train_on_the_cache(files, capsys):
    folder, _, _ = files
    cache = folder / "cache"
    assert cli.main(["convert", str(folder / "train.parquet"), str(cache), "--label", "target",
                     "--quiet"]) == 0  # fmt: skip
    assert (cache / "manifest.json").exists()
    out = folder / "from-cache.fastlr"
    assert cli.main(["train", str(cache), "--out", str(out), "--quiet"]) == 0
    capsys.readouterr()


def test_a_checkpointed_run_resumes_from_the_command_line(files, capsys):
    import fastlr

    folder, _, _ = files
    ckpt, out = folder / "ckpt", folder / "resumed.fastlr"

    def train(max_iter, *extra):
        args = ["train", str(folder / "train.parquet"), "--label", "target", "--out", str(out),
                "--solver", "sgd", "--max-iter", str(max_iter), "--tol", "none",
                "--random-state", "1", "--alpha", "0.001", "--quiet", *extra]  # fmt: skip
        assert cli.main(args) == 0
        return fastlr.load(out)

    whole = train(3)
    train(2, "--checkpoint", str(ckpt))  # stopped after two epochs
    resumed = train(3, "--checkpoint", str(ckpt), "--resume")  # then resumed for the third
    np.testing.assert_array_equal(resumed.coef_, whole.coef_)
    np.testing.assert_array_equal(resumed.history_["loss"], whole.history_["loss"])
    capsys.readouterr()


def test_ctrl_c_says_how_to_resume(files, capsys, monkeypatch):
    import fastlr

    folder, _, _ = files

    def interrupted(self, *args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(fastlr.LogisticRegression, "fit", interrupted)
    args = ["train", str(folder / "train.parquet"), "--label", "target", "--out",
            str(folder / "x.fastlr"), "--checkpoint", str(folder / "ck2")]  # fmt: skip
    assert cli.main(args) == 130
    err = capsys.readouterr().err
    assert "interrupted; the last completed epoch is saved in" in err and "--resume" in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["train", "missing.parquet", "--label", "y", "--out", "m"], "no such file"),
        (["train", "{folder}/train.parquet", "--label", "nope", "--out", "m"], "no column 'nope'"),
        (["evaluate", "{folder}/test.csv", "{folder}/test.csv"], "not a fastlr file"),
        (["train", "{folder}/train.parquet", "--label", "target", "--out", "m", "--resume"],
         "--resume continues from --checkpoint"),
        (["predict", "{folder}/model.fastlr", "{folder}/train.svm", "--out", "{folder}/p.txt"],
         "features|cannot tell the prediction file format"),
    ],
)  # fmt: skip
def test_bad_input_is_one_line_and_exit_status_1(files, capsys, argv, message):
    folder, X, y = files
    import fastlr

    fastlr.LogisticRegression().fit(X[:100], y[:100]).save(folder / "model.fastlr")
    argv = [part.format(folder=folder) for part in argv]
    assert cli.main(argv) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"fastlr {argv[0]}: error: ")
    assert re.search(message, err)
