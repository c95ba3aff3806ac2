"""The ``fastlr`` command line."""

import re

import pytest

from fastlr import cli


def test_demo_prints_loss_per_epoch_and_accuracy(capsys):
    assert cli.main(["demo", "--n-samples", "3000", "--n-features", "8", "--epochs", "4"]) == 0
    out = capsys.readouterr().out
    losses = [float(v) for v in re.findall(r"epoch +\d+ +loss ([0-9.]+)", out)]
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


def test_info_reports_the_threading_layer(capsys):
    assert cli.main(["info"]) == 0
    assert re.search(r"threading layer: (omp|tbb|workqueue)", capsys.readouterr().out)


def test_bad_arguments_exit_with_a_message(capsys):
    with pytest.raises(SystemExit):
        cli.main(["demo", "--epochs", "0"])
    assert "must be a positive integer" in capsys.readouterr().err
