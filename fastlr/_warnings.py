"""Warnings that point at the user's line, whatever path inside fastlr raised them.

A fixed ``stacklevel`` is right for one call path only: the same
ConvergenceWarning is raised five frames below ``fit`` in memory, more below a
checkpointed or streamed fit, and fewer below ``LogisticRegressionCV``. So
the level is counted at the time of the warning instead: the first frame
outside fastlr (and outside scikit-learn's ``fit`` wrapper) is the caller.
"""

import os
import sys
import warnings
from pathlib import Path

_PACKAGE = str(Path(__file__).resolve().parent) + os.sep
# scikit-learn's _fit_context wraps every fit; its frame is not the user's either.
_WRAPPERS = ("sklearn/base.py", "sklearn\\base.py")


def warn(message, category):
    """``warnings.warn(message, category)`` attributed to the first frame outside fastlr.

    Parameters
    ----------
    message : str
    category : type of Warning

    Notes
    -----
    On a thread that fastlr started (cross-validation folds), no frame is
    outside fastlr; the warning then points at the outermost frame.
    """
    warnings.warn(message, category, stacklevel=_caller_level())


def _caller_level():
    """The ``stacklevel`` of ``warn``'s first caller outside fastlr, for ``warnings.warn``."""
    frame = sys._getframe(2)  # the function that called warn
    level = 2
    while frame.f_back is not None and _internal(frame.f_code.co_filename):
        frame = frame.f_back
        level += 1
    return level


def _internal(filename):
    return filename.startswith(_PACKAGE) or filename.endswith(_WRAPPERS)
