"""fastlr: logistic regression trained on the CPU as fast as the hardware allows.

Public API
----------
LogisticRegression
    scikit-learn-style estimator with the lbfgs, gd, sgd and minibatch solvers.
LogisticRegressionCV
    The same, with C (and the L1 share) chosen by cross-validation over
    warm-started regularization paths.
Dataset, DataError
    Training data in memory or on disk, read in blocks (see :mod:`fastlr.data`).
Checkpoint
    Where a fit on a Dataset saves its state every epoch, to resume after a crash.
load
    Read a model file written by ``LogisticRegression.save`` (no pickle).
ModelFileError
    The error ``load`` raises for a file it refuses.
gradient
    Gradient and loss of the mean cross-entropy by the loop, vectorized or
    fused parallel kernel.
reference
    The seed algorithms in plain Python and NumPy: baselines and test oracles.
"""

from . import reference
from ._checkpoint import Checkpoint
from ._cv import LogisticRegressionCV
from ._gradient import gradient
from ._logistic import LogisticRegression
from ._persist import ModelFileError, load
from .data import DataError, Dataset

__all__ = [
    "Checkpoint",
    "DataError",
    "Dataset",
    "LogisticRegression",
    "LogisticRegressionCV",
    "ModelFileError",
    "__version__",
    "gradient",
    "load",
    "reference",
]
__version__ = "0.1.0"
