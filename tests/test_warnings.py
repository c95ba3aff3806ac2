"""Warnings point at the user's line, whichever path inside fastlr raised them."""

import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

import fastlr


@pytest.fixture(scope="module")
def problem():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 5))
    y = (X[:, 0] + 0.5 * rng.standard_normal(200) > 0).astype(np.float64)
    return X, y


def _raised_here(call, category):
    """The warnings of ``category`` that ``call`` raised, each checked to name this file."""
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        call()
    caught = [w for w in record if issubclass(w.category, category)]
    assert caught, f"no {category.__name__} was raised"
    assert {w.filename for w in caught} == {__file__}, [(w.filename, w.lineno) for w in caught]
    return caught


def test_convergence_warning_of_an_in_memory_fit(problem):
    model = fastlr.LogisticRegression(max_iter=1)
    _raised_here(lambda: model.fit(*problem), ConvergenceWarning)


def test_convergence_warning_of_a_checkpointed_streamed_fit(problem, tmp_path):
    dataset = fastlr.Dataset(problem[0], label=problem[1])
    checkpoint = fastlr.Checkpoint(tmp_path / "ckpt")
    model = fastlr.LogisticRegression(max_iter=1)
    _raised_here(lambda: model.fit(dataset, checkpoint=checkpoint), ConvergenceWarning)


def test_convergence_warning_of_a_gd_fit(problem):
    model = fastlr.LogisticRegression(solver="gd", max_iter=2)
    _raised_here(lambda: model.fit(*problem), ConvergenceWarning)


def test_deprecated_penalty_warning(problem):
    model = fastlr.LogisticRegression(penalty="l2")
    _raised_here(lambda: model.fit(*problem), FutureWarning)


def test_warning_of_cross_validation(problem):
    model = fastlr.LogisticRegressionCV(Cs=2, cv=2, penalty="l2")
    _raised_here(lambda: model.fit(*problem), FutureWarning)
