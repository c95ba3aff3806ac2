"""``LogisticRegression``: a thin scikit-learn estimator over the solvers."""

from numbers import Integral, Real
from typing import ClassVar

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, _fit_context
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted

from . import _kernels
from ._datafits import BinaryLogistic, Objective
from ._solvers import SCHEDULES, SOLVERS, SolverOptions, solve
from ._threads import numba_threads
from ._validation import as_sample_weight, validate_features


class LogisticRegression(ClassifierMixin, BaseEstimator):
    """Binary logistic regression trained by compiled, parallel kernels.

    Minimizes ``C sum_i sw_i loss_i + ||w||^2 / 2``, scikit-learn's
    ``LogisticRegression`` objective, so both reach the same optimum.

    Parameters
    ----------
    solver : {"lbfgs", "gd", "sgd", "minibatch"}, default="lbfgs"
        ``"lbfgs"``: quasi-Newton (scipy's L-BFGS-B) on the fused gradient, for
        the exact optimum. ``"gd"``: full-batch gradient descent. ``"sgd"``:
        per-example updates. ``"minibatch"``: mini-batch SGD of ``batch_size``.
    penalty : {"l2", None}, default="l2"
        L2 penalty on the coefficients (never on the intercept), or none.
    C : float, default=1.0
        Inverse of the regularization strength, as in scikit-learn.
    fit_intercept : bool, default=True
        Learn an intercept; otherwise it stays 0.
    max_iter : int, default=100
        Epochs for gd/sgd/minibatch (one pass over the data each),
        iterations for lbfgs.
    tol : float or None, default=1e-4
        lbfgs: stop when the largest gradient entry is below ``tol``.
        Others: stop when the epoch loss has not fallen below the best loss
        minus ``tol`` for ``n_iter_no_change`` epochs. None: run ``max_iter``.
    n_iter_no_change : int, default=5
        Epochs without improvement before gd/sgd/minibatch stop.
    learning_rate : {"auto", "constant", "invscaling", "optimal"}, default="auto"
        Step-size schedule of gd/sgd/minibatch, as scikit-learn's SGD defines
        them (``t`` counts updates: samples for sgd, batches for minibatch,
        epochs for gd). ``"auto"``: gd takes the constant step ``1 / L`` with ``L``
        the gradient's Lipschitz constant (estimated by a few power-iteration
        passes over X); minibatch starts at ``1 / L`` and halves the step after
        ``n_iter_no_change`` epochs without a new best loss; sgd takes
        ``"optimal"`` with a penalty and ``"invscaling"`` without.
    eta0 : float, default=0.01
        Initial step of the ``"constant"`` and ``"invscaling"`` schedules.
    power_t : float, default=0.5
        Exponent of the ``"invscaling"`` schedule.
    batch_size : int, default=256
        Rows per step of the minibatch solver.
    shuffle : bool, default=True
        Shuffle the rows every epoch (sgd, minibatch).
    random_state : int, RandomState instance or None, default=None
        Seed of the shuffling.
    n_jobs : int, default=None
        numba threads used while fitting; ``None`` or -1: all of them.
    verbose : int, default=0
        Print the loss, samples/s and elapsed time of every epoch.

    Attributes
    ----------
    classes_ : ndarray of shape (2,)
        The two class labels; ``classes_[1]`` is the positive class.
    coef_ : ndarray of shape (1, n_features)
        Coefficients, in X's float dtype.
    intercept_ : ndarray of shape (1,)
        Intercept.
    n_iter_ : ndarray of shape (1,)
        Epochs (or lbfgs iterations) run.
    history_ : dict
        ``"loss"``: the objective per epoch; ``"time"``: seconds since the start
        of training at the end of each epoch.
    n_features_in_ : int
        Number of features seen in ``fit``.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Column names, when X was a DataFrame with string column names.

    Examples
    --------
    >>> from sklearn.datasets import load_breast_cancer
    >>> from sklearn.preprocessing import StandardScaler
    >>> import fastlr
    >>> X, y = load_breast_cancer(return_X_y=True)
    >>> X = StandardScaler().fit_transform(X)
    >>> clf = fastlr.LogisticRegression().fit(X, y)
    >>> round(clf.score(X, y), 3)
    0.989
    """

    _parameter_constraints: ClassVar[dict] = {
        "solver": [StrOptions(set(SOLVERS))],
        "penalty": [StrOptions({"l2"}), None],
        "C": [Interval(Real, 0, None, closed="neither")],
        "fit_intercept": ["boolean"],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left"), None],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "learning_rate": [StrOptions({"auto", *SCHEDULES})],
        "eta0": [Interval(Real, 0, None, closed="neither")],
        "power_t": [Interval(Real, None, None, closed="neither")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "shuffle": ["boolean"],
        "random_state": ["random_state"],
        "n_jobs": [Integral, None],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        *,
        solver="lbfgs",
        penalty="l2",
        C=1.0,
        fit_intercept=True,
        max_iter=100,
        tol=1e-4,
        n_iter_no_change=5,
        learning_rate="auto",
        eta0=0.01,
        power_t=0.5,
        batch_size=256,
        shuffle=True,
        random_state=None,
        n_jobs=None,
        verbose=0,
    ):
        self.solver = solver
        self.penalty = penalty
        self.C = C
        self.fit_intercept = fit_intercept
        self.max_iter = max_iter
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.learning_rate = learning_rate
        self.eta0 = eta0
        self.power_t = power_t
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.verbose = verbose

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Fit the model to X and binary labels y.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            float32 input trains in float32. C-contiguous float input is not
            copied; other input is converted once.
        y : array-like of shape (n_samples,)
            Two distinct labels of any type (ints, strings, bools).
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weight of each sample.

        Returns
        -------
        self : LogisticRegression
        """
        X, y = validate_features(self, X, y, reset=True)
        y01 = self._encode_labels(y).astype(X.dtype)
        sw, total = as_sample_weight(sample_weight, X.shape[0], X.dtype)
        alpha = 0.0 if self.penalty is None else 1.0 / (self.C * total)
        objective = Objective(BinaryLogistic(X, y01, sw, total), alpha, self.fit_intercept)
        options = SolverOptions(
            max_iter=self.max_iter,
            tol=self.tol,
            n_iter_no_change=self.n_iter_no_change,
            learning_rate=self.learning_rate,
            eta0=self.eta0,
            power_t=self.power_t,
            batch_size=self.batch_size,
            shuffle=self.shuffle,
            random_state=self.random_state,
            verbose=self.verbose,
        )
        with numba_threads(self.n_jobs):
            result = solve(objective, self.solver, options)
        self.coef_ = result.coef.reshape(1, -1)
        self.intercept_ = result.intercept
        self.n_iter_ = np.array([result.n_iter], dtype=np.int32)
        self.history_ = {"loss": np.asarray(result.loss), "time": np.asarray(result.elapsed)}
        return self

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = False
        return tags

    def _encode_labels(self, y):
        """Set ``classes_`` and return y as 0/1 (1 for ``classes_[1]``)."""
        check_classification_targets(y)
        self.classes_, y01 = np.unique(y, return_inverse=True)
        n_classes = self.classes_.shape[0]
        if n_classes < 2:
            raise ValueError(
                f"y has only one class ({self.classes_.tolist()[0]!r}); logistic regression needs "
                f"samples of two classes. Check how y was built or sampled."
            )
        if n_classes > 2:
            raise ValueError(
                f"Only binary classification is supported: y has {n_classes} classes. "
                f"Train one model per class, e.g. with sklearn.multiclass.OneVsRestClassifier."
            )
        return y01

    def decision_function(self, X):
        """Signed score of each sample: positive predicts ``classes_[1]``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        scores : ndarray of shape (n_samples,)
        """
        check_is_fitted(self)
        X = validate_features(self, X, reset=False)
        return X @ self.coef_[0] + self.intercept_[0]

    def predict_proba(self, X):
        """Probability of each class, computed without overflow.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        proba : ndarray of shape (n_samples, 2)
            Columns follow ``classes_``.
        """
        scores = np.ascontiguousarray(self.decision_function(X))
        positive = _kernels.sigmoid_array(scores, np.empty_like(scores))
        negative = _kernels.sigmoid_array(-scores, np.empty_like(scores))
        return np.column_stack([negative, positive])

    def predict_log_proba(self, X):
        """Logarithm of :meth:`predict_proba`, computed without underflow to -inf."""
        scores = np.ascontiguousarray(self.decision_function(X))
        log_neg = -_kernels.log1pexp_array(scores, np.empty_like(scores))
        log_pos = -_kernels.log1pexp_array(-scores, np.empty_like(scores))
        return np.column_stack([log_neg, log_pos])

    def predict(self, X):
        """Predicted class label of each sample.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        labels : ndarray of shape (n_samples,)
        """
        scores = self.decision_function(X)  # checks that the model is fitted first
        return self.classes_[(scores > 0).astype(np.intp)]
