"""``LogisticRegression``: a thin scikit-learn estimator over the solvers."""

import copy
import functools
import types
from dataclasses import dataclass
from numbers import Integral, Real
from typing import ClassVar

import numpy as np
import scipy.sparse
import scipy.special
from sklearn.base import BaseEstimator, ClassifierMixin, _fit_context
from sklearn.utils._param_validation import Hidden, Interval, StrOptions
from sklearn.utils.extmath import safe_sparse_dot
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted

from ._checkpoint import checkpoint_params, solve_with_checkpoints
from ._datafits import Objective, make_datafit
from ._persist import save_model
from ._progress import Progress
from ._solvers import SCHEDULES, SOLVERS, STOCHASTIC, SolverOptions, StochasticState, solve
from ._streaming import accuracy, check_dataset_features, dataset_blocks, streamed_datafit
from ._threads import numba_threads
from ._validation import (
    as_sample_weight,
    check_two_weighted_classes,
    class_weights,
    label_errors,
    scale_weights,
    show_labels,
    validate_features,
)
from ._warnings import warn
from .data import Dataset
from .kernels import maths

#: The L1 share of each ``penalty`` name (deprecated, as in scikit-learn 1.8).
_PENALTY_L1_RATIO = {"l2": 0.0, "l1": 1.0}


class _stochastic_only:
    """Method descriptor: the method exists only while ``solver`` is "sgd" or "minibatch".

    As scikit-learn's ``available_if`` (``hasattr(model, "partial_fit")`` is
    False for lbfgs and gd), with an AttributeError that names the solvers
    that have it.
    """

    def __init__(self, method):
        self.method = method
        functools.update_wrapper(self, method)

    def __get__(self, instance, owner=None):
        if instance is None:
            return self.method
        if instance.solver not in STOCHASTIC:
            raise AttributeError(
                f"{self.method.__name__} trains epoch by epoch, which needs solver='sgd' or "
                f"'minibatch'; solver={instance.solver!r} trains on all the data at once: "
                f"use fit, or set_params(solver='sgd')."
            )
        return types.MethodType(self.method, instance)


class LogisticRegression(ClassifierMixin, BaseEstimator):
    """Logistic regression trained by compiled, parallel kernels.

    Two classes train the binary logistic model of the seeds; more train the
    multinomial (softmax) model. The objective is scikit-learn's
    ``LogisticRegression`` one, ``C sum_i sw_i loss_i + penalty(W)``, so both
    reach the same optimum.

    Parameters
    ----------
    solver : {"lbfgs", "gd", "sgd", "minibatch"}, default="lbfgs"
        ``"lbfgs"``: quasi-Newton (compiled L-BFGS) on the fused gradient, for
        the exact optimum; with an L1 term, the orthant-wise OWL-QN (Andrew
        and Gao, 2007), exact as well. ``"gd"``: full-batch accelerated
        proximal gradient (FISTA with backtracking and adaptive restart; see
        ``learning_rate``). ``"sgd"``: per-example updates. ``"minibatch"``:
        mini-batch SGD of ``batch_size``.
    penalty : {"l2", "l1", "elasticnet", None}
        Deprecated, as in scikit-learn 1.8: leave it unset and choose the
        penalty with ``l1_ratio`` and ``C`` (``"l2"`` is ``l1_ratio=0``, ``"l1"``
        is ``l1_ratio=1``, ``"elasticnet"`` an ``l1_ratio`` in between and
        ``None`` is ``C=np.inf``). Set, it gives a FutureWarning and decides the
        penalty; a parameter it leaves unused (``C`` and ``l1_ratio`` with
        None, ``l1_ratio`` with "l2" or "l1") gives a UserWarning.
    C : float, default=1.0
        Inverse of the regularization strength, as in scikit-learn: the loss
        sum is multiplied by ``C``. ``np.inf``: no penalty.
    alpha : float, default=None
        Strength on the *mean* loss instead of ``C`` (scikit-learn's SGD
        convention): ``alpha = 1 / (C * sum of sample weights)``. When set, it
        overrides ``C`` (a ``C`` other than 1.0 is then warned about);
        ``partial_fit`` needs it for a strength that does not depend on the
        chunk.
    l1_ratio : float in [0, 1], default=0.0
        The penalty's L1 share ``r``, as in scikit-learn >= 1.8: the
        coefficients (never the intercept) are penalized by
        ``(1 - r) / 2 ||W||^2 + r ||W||_1``, so 0 is L2, 1 is L1 (sparse
        weights) and values between are the elastic net. Every solver takes
        every penalty. None is deprecated and means 0 (with a FutureWarning).
    fit_intercept : bool, default=True
        Learn an intercept; otherwise it stays 0.
    max_iter : int, default=100
        Epochs for sgd/minibatch (one pass over the data each), iterations
        for lbfgs and gd (an accelerated gd iteration makes one or two passes,
        more when the step backtracks). 0 returns the starting point (zeros,
        or the previous solution with ``warm_start``) untrained, with a
        ConvergenceWarning, as scikit-learn does.
    tol : float or None, default=1e-4
        lbfgs and gd: stop when the largest entry of the optimality measure is
        at most ``tol``: the gradient of the objective without L1; with L1 the
        pseudo-gradient for lbfgs (the smallest subgradient) and the proximal
        gradient mapping ``(w - prox(w - s g)) / s`` for gd, with ``s = 1 / L``
        (``eta0``, or the current step, for the fixed schedules): the same
        vector once the signs of the weights have settled. The intercepts count,
        unpenalized. ``history_["optimality"]`` holds the measure per
        iteration. sgd and minibatch: stop when the epoch loss (the validation
        score with ``early_stopping``) has not improved by ``tol`` for
        ``n_iter_no_change`` epochs, as scikit-learn's SGD does; one more pass
        then computes the result's duality gap, an upper bound on how far its
        objective is above the optimum's, and a ConvergenceWarning names it
        when it exceeds 1% of the objective (and whenever ``max_iter`` ends
        the run). The check needs a penalty and the data in memory, and is
        skipped with ``early_stopping``. None: run ``max_iter``, no check, no
        warning.
    n_iter_no_change : int, default=5
        Epochs without improvement before sgd/minibatch stop.
    learning_rate : {"auto", "constant", "invscaling", "optimal"}, default="auto"
        Step-size schedule. sgd and minibatch: ``"constant"``,
        ``"invscaling"`` and ``"optimal"`` as scikit-learn's SGD defines them
        (with its ``eta0``, ``power_t`` and ``alpha``; ``t`` counts updates:
        samples for sgd, batches for minibatch). ``"auto"`` is
        ``eta0' / (1 + (t - 1) / t0)``: a first step ``eta0'`` bounded by the
        data's smoothness, so that it cannot explode whatever ``C`` and the
        number of rows (``1 / L(batch_size)`` for minibatch, ``L(B)`` the
        mini-batch gradient's expected Lipschitz constant, from a few
        power-iteration passes over X; ``1 / L_mean`` for sgd, the mean of
        the samples' own constants), then scikit-learn's "optimal" decay
        ``1 / (alpha t)`` for the L2 strength ``alpha`` (``t0 = L / alpha``
        updates), but halving sooner on many rows, whose gradients' noise
        calls for it: sgd after 30,000 updates at the latest, minibatch after
        the batches that leave its step as much noise; full batches keep
        ``1 / L``. minibatch also halves the step when the mean loss of the
        last ``2 n_iter_no_change`` epochs stops falling. gd: ``"auto"`` is
        accelerated proximal gradient whose step starts at ``1 / L`` and then
        shrinks on a failed sufficient-decrease test and grows while it
        passes; ``"optimal"`` (scikit-learn's per-example schedule, of no use
        on full batches) means ``"auto"``;
        ``"constant"`` takes plain proximal gradient steps of ``eta0``, and
        ``"invscaling"`` of ``eta0 / t ** power_t`` (``t`` counting
        iterations), without momentum or backtracking: a step above ``2 / L``
        can oscillate or diverge (a non-finite objective raises an error).
    eta0 : float, default=0.01
        Initial step of the ``"constant"`` and ``"invscaling"`` schedules.
    power_t : float, default=0.5
        Exponent of the ``"invscaling"`` schedule.
    batch_size : int, default=256
        Rows per step of the minibatch solver.
    shuffle : bool or "blocks", default=True
        The order in which sgd and minibatch visit the rows, drawn anew each
        epoch from ``random_state``. True: all the rows shuffled (each
        mini-batch gathers rows from all over X). False: the rows in order.
        ``"blocks"``: blocks of contiguous rows in a shuffled order, the rows
        of each block in order, so that mini-batches read contiguous memory
        instead of gathering rows (on 1e6 x 100 float64 a minibatch epoch of
        256-row batches took a third of a row-shuffled one's time). A block
        holds whole batches of ``batch_size`` rows (sgd: single rows), about
        1 MiB of them (at least one batch, and fewer rows when X would make
        fewer than 16 blocks); no batch spans two blocks, so a block's last
        batch may be short. The batches are the same sets of rows every
        epoch; their order changes. On a :class:`fastlr.Dataset` the blocks
        are the dataset's own (a source read sequentially, such as CSV,
        cannot shuffle them and raises a ValueError). As Vowpal Wabbit's
        users do by hand, it assumes that the stored order of the rows is
        unrelated to their labels: rows sorted by label (or by time, with
        drift) make batches of alike rows, which slows convergence; shuffle
        them once beforehand, or use ``shuffle=True``.
    average : bool or int, default=False
        Averaged SGD (sgd only), as scikit-learn's SGD defines it: ``True``
        makes ``coef_`` and ``intercept_`` the mean of the iterates after
        every update; an int ``k`` averages from the ``k``-th update on (the
        iterate until ``k`` updates have been made). Training continues from
        the plain iterate, which the stopping rule and ``history_`` also use;
        ``partial_fit`` continues the average.
    early_stopping : bool, default=False
        sgd and minibatch: hold out ``validation_fraction`` of the training
        rows (stratified) and stop when their accuracy has not improved by
        ``tol`` for ``n_iter_no_change`` epochs.
    validation_fraction : float in (0, 1), default=0.1
        Share of the rows held out by ``early_stopping``.
    class_weight : dict, "balanced" or None, default=None
        Weight of each class, multiplying the sample weights; "balanced" uses
        ``n_samples / (n_classes * count(class))`` with samples counted by their
        weight, as scikit-learn does.
    warm_start : bool, default=False
        Start ``fit`` from the previous solution.
    random_state : int, RandomState instance or None, default=None
        Seed of the shuffling and of the early-stopping split.
    n_jobs : int, default=None
        numba threads used while fitting; ``None`` or -1: all of them.
    verbose : int, default=0
        Print the loss, samples/s and elapsed time of every epoch.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The class labels; for two classes ``classes_[1]`` is the positive one.
    coef_ : ndarray of shape (1, n_features) or (n_classes, n_features)
        Coefficients, in X's float dtype.
    intercept_ : ndarray of shape (1,) or (n_classes,)
        Intercepts.
    n_iter_ : ndarray of shape (1,)
        Epochs (lbfgs and gd: iterations) run by the last ``fit``.
    history_ : dict
        ``"loss"``: the objective per epoch (per iteration for lbfgs and gd: at
        the accepted iterate, or at the point each fixed gd step starts
        from); ``"time"``: seconds since the start of training at the end of
        each epoch; ``"optimality"`` (lbfgs and gd): the measure ``tol``
        bounds, per iteration; ``"validation_score"`` with ``early_stopping``.
    t_ : float
        Updates made by sgd/minibatch so far (``partial_fit`` continues it).
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
        "penalty": [
            StrOptions({"l2", "l1", "elasticnet"}),
            None,
            Hidden(StrOptions({"deprecated"})),
        ],
        "C": [Interval(Real, 0, None, closed="right")],
        "alpha": [Interval(Real, 0, None, closed="neither"), None],
        "l1_ratio": [Interval(Real, 0, 1, closed="both"), None],
        "fit_intercept": ["boolean"],
        "max_iter": [Interval(Integral, 0, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left"), None],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "learning_rate": [StrOptions({"auto", *SCHEDULES})],
        "eta0": [Interval(Real, 0, None, closed="neither")],
        "power_t": [Interval(Real, None, None, closed="neither")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "shuffle": ["boolean", StrOptions({"blocks"})],
        "average": ["boolean", Interval(Integral, 1, None, closed="left")],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "class_weight": [dict, StrOptions({"balanced"}), None],
        "warm_start": ["boolean"],
        "random_state": ["random_state"],
        "n_jobs": [Integral, None],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        *,
        solver="lbfgs",
        penalty="deprecated",
        C=1.0,
        alpha=None,
        l1_ratio=0.0,
        fit_intercept=True,
        max_iter=100,
        tol=1e-4,
        n_iter_no_change=5,
        learning_rate="auto",
        eta0=0.01,
        power_t=0.5,
        batch_size=256,
        shuffle=True,
        average=False,
        early_stopping=False,
        validation_fraction=0.1,
        class_weight=None,
        warm_start=False,
        random_state=None,
        n_jobs=None,
        verbose=0,
    ):
        self.solver = solver
        self.penalty = penalty
        self.C = C
        self.alpha = alpha
        self.l1_ratio = l1_ratio
        self.fit_intercept = fit_intercept
        self.max_iter = max_iter
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.learning_rate = learning_rate
        self.eta0 = eta0
        self.power_t = power_t
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.average = average
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.class_weight = class_weight
        self.warm_start = warm_start
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.verbose = verbose

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None, sample_weight=None, *, validation=None, checkpoint=None):
        """Fit the model to X and labels y, or to a :class:`fastlr.Dataset`.

        A fit is all or nothing: the fitted attributes are computed first and
        set together at the end, so a fit that raises (bad input, a
        KeyboardInterrupt) leaves the estimator as it was before the call.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            float32 input trains in float32. C-contiguous float input is not
            copied; other dense input is converted once; sparse input becomes
            CSR and is never densified.
            A :class:`fastlr.Dataset` (data in memory or in files, read in
            blocks) is streamed: one block in memory at a time, its labels and
            weights from the dataset (``y`` and ``sample_weight`` stay None).
            lbfgs and gd make one pass over the blocks per evaluation and reach
            the in-memory optimum; sgd and minibatch visit the blocks in a
            shuffled order and shuffle the rows of each.
        y : array-like of shape (n_samples,)
            Labels of any type (ints, strings, bools), at least two distinct.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weight of each sample. Weights whose sum exceeds
            ``sqrt`` of the dtype's largest value (1.3e154 for float64) are
            divided by a power of two first; the penalty strength keeps their
            true sum, so the objective is unchanged.
        validation : fastlr.Dataset, optional
            sgd and minibatch on a Dataset: held-out data whose accuracy
            decides early stopping (as ``early_stopping`` does with a share of
            the training data) and is recorded in ``history_``.
        checkpoint : fastlr.Checkpoint, optional
            With a Dataset: save the whole training state every ``every``
            epochs (lbfgs: iterations), atomically, and resume from it with
            ``Checkpoint(..., resume=True)``.

        Returns
        -------
        self : LogisticRegression

        Raises
        ------
        ValueError
            With ``warm_start=True``, when the previous model has other
            classes or another number of features than X and y.
        """
        self._check_penalty()
        with numba_threads(self.n_jobs):
            if isinstance(X, Dataset):
                fitted = self._fit_dataset(X, y, sample_weight, validation, checkpoint)
            else:
                _check_dataset_only(validation, checkpoint)
                fitted = self._fit(X, y, sample_weight)
        self._commit(fitted)
        return self

    def _fit(self, X, y, sample_weight):
        """The fitted attributes of ``fit``, as a dict; the estimator is not changed."""
        X, y, features = self._validate_training(X, y)
        classes, y_idx = _encode_labels(y)
        sw, exponent = self._weights(sample_weight, y_idx, X.dtype, classes, whole=True)
        options = self._options(max_iter=self.max_iter, tol=self.tol)
        if self.early_stopping and self.solver in STOCHASTIC:
            X, y_idx, sw = self._hold_out(X, y_idx, sw, options, len(classes))
        coef0, intercept0 = self._warm_start_point(X.shape[1], classes)
        objective = self._objective(X, y_idx, sw, len(classes), exponent)
        result = solve(objective, self.solver, options, coef0, intercept0)
        return {**features, "classes_": classes, **self._result_attributes(result)}

    def _fit_dataset(self, dataset, y, sample_weight, validation, checkpoint):
        """The fitted attributes of ``fit`` on a Dataset; the estimator is not changed."""
        _check_no_arrays(y, sample_weight)
        progress = Progress() if self.verbose else None
        datafit, info = streamed_datafit(dataset, self.class_weight, progress=progress is not None)
        datafit.progress = progress
        classes = info.classes
        options = self._options(max_iter=self.max_iter, tol=self.tol)
        options.progress = progress
        if self.solver in STOCHASTIC and (validation is not None or self.early_stopping):
            datafit = self._streamed_hold_out(datafit, validation, options)
        elif validation is not None:
            raise ValueError(
                f"validation= decides early stopping, which sgd and minibatch have; "
                f"solver={self.solver!r} stops on its gradient. Drop validation= or use "
                f"solver='sgd' or 'minibatch'."
            )
        coef0, intercept0 = self._warm_start_point(info.n_features, classes)
        objective = self._penalized(datafit)
        result = solve_with_checkpoints(
            objective, self.solver, options, coef0, intercept0, checkpoint,
            self._checkpoint_identity(dataset, info),
        )  # fmt: skip
        features = {"n_features_in_": info.n_features}
        if info.feature_names is not None:
            features["feature_names_in_"] = np.asarray(info.feature_names, dtype=object)
        return {**features, "classes_": classes, **self._result_attributes(result)}

    def _streamed_hold_out(self, datafit, validation, options):
        """Early stopping of a streamed fit: on ``validation``, or on held-out blocks."""
        encoder = datafit.encoder
        if validation is None:
            datafit, held_out = datafit.hold_out(self.validation_fraction, self.random_state)
        else:
            if not isinstance(validation, Dataset):
                raise TypeError(
                    f"validation must be a fastlr.Dataset, got {type(validation).__name__}."
                )
            check_dataset_features(self._fitted_like(datafit), validation)
            held_out = (validation, None)

        def validation_score(coef, intercept):
            return accuracy(held_out[0], encoder, coef, intercept, held_out[1])

        options.validation_score = validation_score
        return datafit

    def _fitted_like(self, datafit):
        """A stand-in with the feature attributes a fit on ``datafit`` will have."""
        info = datafit.dataset.info
        names = info.feature_names
        return types.SimpleNamespace(
            n_features_in_=info.n_features,
            feature_names_in_=None if names is None else np.asarray(names, dtype=object),
        )

    def _checkpoint_identity(self, dataset, info):
        """What a resumed fit must share with the run that wrote the checkpoint."""
        return {
            "data": dataset.fingerprint(),
            "params": checkpoint_params(self.get_params(deep=False)),
            "solver": self.solver,
            "classes": info.classes.tolist(),
            "n_features": int(info.n_features),
            "dtype": str(np.dtype(dataset.dtype)),
        }

    @_stochastic_only
    def partial_fit(self, X, y, classes=None, sample_weight=None):
        """One epoch of sgd or minibatch over X, continuing the previous calls.

        Available with ``solver="sgd"`` or ``"minibatch"``.

        The update counter, the schedule's step, the L1 state and the
        shuffling generator carry over, so calls over consecutive chunks (in
        order, ``shuffle=False``, chunk sizes a multiple of ``batch_size`` for
        minibatch) equal one epoch of ``fit`` over their concatenation. Set
        ``alpha`` for a penalty strength that does not depend on each chunk's
        weight, and a learning rate other than "auto" for minibatch to match
        ``fit`` (its "auto" step comes from the first chunk here).

        The parameters are checked on every call. That state belongs to the
        ``solver``, ``penalty``, ``average``, ``learning_rate`` (and, for
        minibatch, ``batch_size``) it was made with: a call with others raises
        instead of mixing them. A model fitted by ``fit`` with another solver
        is continued from its ``coef_`` with a new state. A call that raises
        leaves the estimator as it was.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        classes : array-like of shape (n_classes,), default=None
            Every label the model will see; required on the first call.
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        self : LogisticRegression
        """
        self._validate_params()
        self._check_penalty()
        with numba_threads(self.n_jobs):
            fitted = self._partial_fit(X, y, classes, sample_weight)
        self._commit(fitted)
        return self

    def _partial_fit(self, X, y, classes, sample_weight):
        """The fitted attributes after one ``partial_fit`` epoch; the estimator is not changed."""
        first = not hasattr(self, "coef_")
        if first:
            X, y, features = self._validate_training(X, y)
            if classes is None:
                raise ValueError(
                    "The first call to partial_fit needs classes=, every label the model "
                    "will see (e.g. classes=np.unique(y_all))."
                )
            model_classes, _ = _encode_labels(np.asarray(classes), "classes")
        else:
            X, y = validate_features(self, X, y, reset=False)
            features = _feature_attributes(self)
            model_classes = self.classes_
            _check_same_classes(classes, model_classes)
        y_idx = _class_indices(y, model_classes)
        sw, exponent = self._weights(sample_weight, y_idx, X.dtype, model_classes, whole=False)
        options = self._options(max_iter=1, tol=None)
        objective = self._objective(X, y_idx, sw, len(model_classes), exponent)
        state, coef0, intercept0 = self._continuation(X.dtype)
        result = solve(objective, self.solver, options, coef0, intercept0, state=state)
        return {**features, "classes_": model_classes, **self._result_attributes(result)}

    def _check_penalty(self):
        """Raise for parameters that cannot go together; warn about those a fit ignores.

        The warnings are scikit-learn 1.8's: a FutureWarning for ``penalty``
        (deprecated) and for ``l1_ratio=None``, a UserWarning for a parameter
        that the penalty leaves unused, pointed at the caller's line.
        """
        if self.average and self.solver != "sgd":
            raise ValueError(
                f"average={self.average!r} (averaged SGD) needs solver='sgd'; "
                f"solver={self.solver!r} does not average: set average=False."
            )
        if self.penalty == "elasticnet" and self.l1_ratio is None:
            raise ValueError(
                "penalty='elasticnet' needs l1_ratio, the L1 share in [0, 1] (e.g. 0.5)."
            )
        for message, category in _penalty_warnings(self):
            warn(message, category)

    def _resolved_penalty(self):
        """``(name, l1_ratio)`` of the penalty a fit uses; ``name`` None: no penalty.

        As scikit-learn >= 1.8: ``l1_ratio`` chooses it ("l2" at 0, "l1" at 1,
        "elasticnet" between; None counts as 0) and ``C=np.inf`` removes it,
        unless ``alpha`` sets the strength; a ``penalty`` that is set
        (deprecated) decides instead.
        """
        if self.penalty == "deprecated":
            ratio = 0.0 if self.l1_ratio is None else float(self.l1_ratio)
            if self.alpha is None and self.C == np.inf:
                return None, 0.0
            name = {0.0: "l2", 1.0: "l1"}.get(ratio, "elasticnet")
            return name, ratio
        if self.penalty is None:
            return None, 0.0
        return self.penalty, _PENALTY_L1_RATIO.get(self.penalty, self.l1_ratio)

    def _validate_training(self, X, y):
        """``validate_features(reset=True)`` without touching the estimator.

        Returns X, y and the feature attributes (``n_features_in_``,
        ``feature_names_in_``) that scikit-learn's validation records; they
        are set with the rest of the model, at the end of the fit.
        """
        recorder = copy.copy(self)
        X, y = validate_features(recorder, X, y, reset=True)
        return X, y, _feature_attributes(recorder)

    def _commit(self, fitted):
        """Replace every fitted attribute by those of ``fitted``, in one step.

        The instance dictionary is swapped whole: a KeyboardInterrupt lands
        before or after it, never between two attributes, and nothing of the
        previous model (``t_``, ``feature_names_in_``, the partial_fit state)
        outlives it unless ``fitted`` has it again.
        """
        kept = {name: value for name, value in vars(self).items() if not _is_fitted_name(name)}
        self.__dict__ = {**kept, **fitted}

    def _warm_start_point(self, n_features, classes):
        """``(coef0, intercept0)`` of a warm start, or ``(None, None)``.

        Raises when the previous model does not fit this problem: its
        coefficients mean nothing for other classes or other features.
        """
        if not (self.warm_start and hasattr(self, "coef_")):
            return None, None
        if self.coef_.shape[1] != n_features or not _same_labels(self.classes_, classes):
            raise ValueError(
                f"warm_start=True starts from the previous coef_, fitted on "
                f"{self.coef_.shape[1]} features and classes {show_labels(self.classes_)}; "
                f"this X and y have {n_features} features and classes {show_labels(classes)}. "
                f"Set warm_start=False to train from zeros, or fit a new estimator "
                f"(sklearn.base.clone(model))."
            )
        return _dense(self.coef_), self.intercept_

    def _continuation(self, dtype):
        """``(state, coef0, intercept0)`` for the next partial_fit epoch.

        The saved stochastic state is copied (the solver updates it in place,
        and a call that fails must leave the saved one as it was) and checked
        against the parameters that shaped it. A model fitted by lbfgs or gd
        has no such state: its coefficients start a new one.
        """
        if not hasattr(self, "coef_"):
            return None, None, None
        saved = getattr(self, "_partial_state", None)
        if saved is None:
            return None, _dense(self.coef_), self.intercept_
        now = self._state_key()
        if saved.key != now:
            names = [name for name in saved.key if saved.key[name] != now.get(name)]
            before = ", ".join(f"{name}={saved.key[name]!r}" for name in names)
            after = ", ".join(f"{name}={now.get(name)!r}" for name in names)
            raise ValueError(
                f"partial_fit continues the training state of the previous calls, made with "
                f"{before}; the parameters are now {after}. Set them "
                f"back to continue, or call fit (or partial_fit on sklearn.base.clone(model)) "
                f"to start over."
            )
        state = copy.deepcopy(saved.state)
        if state.avg_coef is not None:
            state.avg_coef = state.avg_coef.astype(dtype, copy=False)
            state.avg_intercept = state.avg_intercept.astype(dtype, copy=False)
            # Averaged SGD continues from the plain iterate, not from coef_ (the average).
            return state, state.coef, state.intercept
        return state, _dense(self.coef_), self.intercept_

    def _state_key(self):
        """The parameters that the stochastic state depends on."""
        key = {
            "solver": self.solver,
            "penalty": self._resolved_penalty()[0],
            "average": self.average,
            "learning_rate": self.learning_rate,
        }
        if self.solver == "minibatch":
            key["batch_size"] = self.batch_size
        return key

    def _weights(self, sample_weight, y_idx, dtype, classes, whole):
        """Sample weights times class weights, in ``dtype`` (empty: all ones).

        Returns the weights and the power of two they were divided by (see
        :func:`~fastlr._validation.scale_weights`). ``whole``: the data is the
        whole training set (``fit``), where two classes must keep a positive
        weight; a partial_fit chunk may hold one class.
        """
        sw, _ = as_sample_weight(sample_weight, y_idx.shape[0], np.float64)
        if self.class_weight is None and not sw.shape[0]:
            return np.empty(0, dtype=dtype), 0
        # Scaled first (only when their sum is too large), so that the
        # "balanced" counts and the products below cannot overflow.
        sw, exponent = scale_weights(sw, np.float64)
        per_class = class_weights(
            self.class_weight,
            classes,
            lambda: np.bincount(y_idx, weights=sw if sw.shape[0] else None, minlength=len(classes)),
        )
        if per_class is not None:
            per_class, class_exponent = scale_weights(per_class, np.float64)
            sw = per_class[y_idx] * sw if sw.shape[0] else per_class[y_idx]
            exponent += class_exponent
            if not sw.sum() > 0:
                raise ValueError(
                    "class_weight and sample_weight give every sample weight 0; at least one "
                    "sample needs a positive weight."
                )
        if whole:
            cause = {
                (True, False): "class_weight leaves",
                (True, True): "class_weight and sample_weight leave",
            }.get((per_class is not None, sample_weight is not None), "sample_weight leaves")
            check_two_weighted_classes(y_idx, sw, classes, cause)
        sw, more = scale_weights(sw, dtype)
        return sw, exponent + more

    def _hold_out(self, X, y_idx, sw, options, n_classes):
        """Split off the early-stopping validation rows; return the training part."""
        # Imported here: sklearn.model_selection adds 30 ms to `import fastlr`.
        from sklearn.model_selection import train_test_split

        _check_hold_out(y_idx, self.validation_fraction, n_classes)
        rows = np.arange(X.shape[0])
        train, valid = train_test_split(
            rows, test_size=self.validation_fraction, stratify=y_idx,
            random_state=self.random_state,
        )  # fmt: skip
        train.sort()
        X_valid, y_valid = X[valid], y_idx[valid]
        sw_valid = sw[valid] if sw.shape[0] else None
        sw_train = sw[train] if sw.shape[0] else sw
        for part, weights in (("held-out", sw_valid), ("training", sw_train)):
            if weights is not None and weights.shape[0] and not weights.sum() > 0:
                raise ValueError(
                    f"early_stopping's {part} rows all have sample weight 0. Give more rows a "
                    f"positive weight, change validation_fraction or random_state, or set "
                    f"early_stopping=False."
                )

        def validation_score(coef, intercept):
            predicted = _predicted_indices(X_valid, coef, intercept)
            return np.average(predicted == y_valid, weights=sw_valid)

        options.validation_score = validation_score
        return X[train], y_idx[train], sw_train

    def _objective(self, X, y_idx, sw, n_classes, exponent=0):
        """The datafit for X and y with the penalty split into L2 and L1 strengths.

        ``exponent``: the weights ``sw`` were divided by ``2**exponent``; the
        strength ``1 / (C S)`` is that of the unscaled total ``S``.
        """
        total = float(sw.sum(dtype=np.float64)) if sw.shape[0] else float(X.shape[0])
        return self._penalized(make_datafit(X, y_idx, sw, total, n_classes), exponent)

    def _penalized(self, datafit, exponent=0):
        """The objective: ``datafit`` and the penalty, split into L2 and L1 strengths."""
        total = datafit.total_weight
        name, ratio = self._resolved_penalty()
        if name is None:
            return Objective(datafit, 0.0, self.fit_intercept)
        if self.alpha is not None:
            strength = self.alpha
        else:
            # From the mantissas: only the result can leave the float range.
            mantissas, powers = np.frexp([self.C, total])
            with np.errstate(over="ignore", under="ignore"):
                strength = float(
                    np.ldexp(1.0 / (mantissas[0] * mantissas[1]), -int(powers.sum()) - exponent)
                )
            if not np.isfinite(strength):
                raise ValueError(
                    f"C={self.C!r} is too small: the penalty strength 1 / (C * sum of sample "
                    f"weights) overflows float64. Use a larger C."
                )
        return Objective(datafit, strength * (1.0 - ratio), self.fit_intercept, l1=strength * ratio)

    def _options(self, max_iter, tol):
        return SolverOptions(
            max_iter=max_iter,
            tol=tol,
            n_iter_no_change=self.n_iter_no_change,
            learning_rate=self.learning_rate,
            eta0=self.eta0,
            power_t=self.power_t,
            batch_size=self.batch_size,
            shuffle=self.shuffle,
            average=int(self.average),
            random_state=self.random_state,
            verbose=self.verbose,
        )

    def _result_attributes(self, result):
        """The fitted attributes of a solver result, as a dict."""
        history = {"loss": np.asarray(result.loss), "time": np.asarray(result.elapsed)}
        if result.optimality:
            history["optimality"] = np.asarray(result.optimality)
        if result.score:
            history["validation_score"] = np.asarray(result.score)
        fitted = {
            "coef_": result.coef.reshape(-1, result.coef.shape[-1]),
            "intercept_": result.intercept,
            "n_iter_": np.array([result.n_iter], dtype=np.int32),
            "history_": history,
        }
        if result.state is not None:
            fitted["t_"] = result.state.t - 1.0
            fitted["_partial_state"] = _PartialState(self._state_key(), result.state)
        return fitted

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags

    def decision_function(self, X):
        """Score of each sample (binary) or of each sample and class.

        Scores beyond the float range are ``-inf`` or ``+inf``, with the sign
        of the exact score (found from a rescaled dot product), never NaN.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        scores : ndarray of shape (n_samples,) or (n_samples, n_classes)
            Binary: positive predicts ``classes_[1]``.
        """
        scores = self._checked_scores(X).exact()
        return scores[:, 0] if scores.shape[1] == 1 else scores

    def _checked_scores(self, X):
        check_is_fitted(self)
        if isinstance(X, Dataset):
            check_dataset_features(self, X)
            parts = [
                _Scores(block.X, self.coef_, self.intercept_) for _, block in dataset_blocks(X)
            ]
            return _JoinedScores(parts)
        X = validate_features(self, X, reset=False)
        return _Scores(X, self.coef_, self.intercept_)

    def score(self, X, y=None, sample_weight=None):
        """Mean accuracy on X and y, or on a :class:`fastlr.Dataset` and its labels.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features) or Dataset
            A Dataset is read block by block, its labels and weights from it.
        y : array-like of shape (n_samples,)
            True labels (None with a Dataset).
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        score : float
            Accuracy, weighted by the sample weights.
        """
        if not isinstance(X, Dataset):
            return super().score(X, y, sample_weight=sample_weight)
        _check_no_arrays(y, sample_weight)
        check_is_fitted(self)
        check_dataset_features(self, X)
        correct = total = 0.0
        for _, block in dataset_blocks(X):
            hits = self.classes_[_Scores(block.X, self.coef_, self.intercept_).indices()] == block.y
            weights = block.sample_weight
            correct += float(hits.sum()) if weights is None else float(weights[hits].sum())
            total += hits.shape[0] if weights is None else float(weights.sum())
        return correct / total

    def predict_proba(self, X):
        """Probability of each class, computed without overflow.

        Finite for any finite X: the rows whose scores overflow get the
        probabilities of their exact scores' limit (0 or 1, or shared among
        tied classes), from a rescaled dot product.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Columns follow ``classes_``.
        """
        return self._checked_scores(X).probabilities(log=False)

    def predict_log_proba(self, X):
        """Logarithm of :meth:`predict_proba`, computed without underflow to -inf."""
        return self._checked_scores(X).probabilities(log=True)

    def predict(self, X):
        """Predicted class label of each sample.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        labels : ndarray of shape (n_samples,)
        """
        indices = self._checked_scores(X).indices()  # checks that the model is fitted first
        return self.classes_[indices]

    def save(self, path):
        """Write the fitted model to ``path``; :func:`fastlr.load` reads it back.

        The file is a zip of a JSON header (parameters, classes, feature
        names, the training summary) and ``.npy`` arrays, with no pickle:
        loading it never runs code. ``coef_`` keeps its dtype, so the loaded
        model predicts bit for bit as this one; sgd and minibatch models also
        keep the state ``partial_fit`` continues from. The file is written
        atomically: an interrupted ``save`` leaves any previous file intact.

        Parameters
        ----------
        path : str or path-like
            The file to write (replaced if it exists); its folder must exist.

        Raises
        ------
        NotFittedError
            If the model has not been fitted.
        ValueError
            If ``random_state`` is a RandomState instance (set an int or None)
            or a parameter is not a JSON scalar (or, for ``class_weight``, a
            dict of them).
        """
        save_model(self, path)

    def sparsify(self):
        """Store ``coef_`` as a scipy.sparse CSR matrix, as scikit-learn's linear models do.

        Worth it when most weights are zero (an L1 penalty, ``l1_ratio`` near
        1): prediction then costs the non-zero weights, and a model file
        keeps ``coef_`` sparse. :meth:`densify` converts back; ``fit``,
        ``partial_fit`` and ``warm_start`` start from the dense weights and
        leave ``coef_`` dense.

        Returns
        -------
        self : LogisticRegression

        Raises
        ------
        NotFittedError
            If the model has not been fitted.
        """
        check_is_fitted(self, msg="Estimator, %(name)s, must be fitted before sparsifying.")
        self.coef_ = scipy.sparse.csr_matrix(self.coef_)
        return self

    def densify(self):
        """Store ``coef_`` as a dense ndarray again (the default; see :meth:`sparsify`).

        Returns
        -------
        self : LogisticRegression

        Raises
        ------
        NotFittedError
            If the model has not been fitted.
        """
        check_is_fitted(self, msg="Estimator, %(name)s, must be fitted before densifying.")
        self.coef_ = _dense(self.coef_)
        return self


# --------------------------------------------------------------------------
# The penalty parameters, as scikit-learn >= 1.8 reads them.
# --------------------------------------------------------------------------

_PENALTY_DEPRECATED = (
    "'penalty' was deprecated in scikit-learn 1.8, and fastlr follows it: it will be removed "
    "in a future release. To avoid this warning, leave 'penalty' set to its default value "
    "and use 'l1_ratio' or 'C' instead. Use l1_ratio=0 instead of penalty='l2', l1_ratio=1 "
    "instead of penalty='l1', l1_ratio set to a float between 0 and 1 instead of "
    "penalty='elasticnet', and C=np.inf instead of penalty=None."
)
_L1_RATIO_NONE_DEPRECATED = (
    "'l1_ratio=None' was deprecated in scikit-learn 1.8, and fastlr follows it: it means "
    "l1_ratio=0 (the L2 penalty) and will become an error. Use 0<=l1_ratio<=1 instead."
)


def _penalty_warnings(model):
    """``[(message, category)]`` for the penalty parameters of ``model``, in order.

    A FutureWarning for a set ``penalty`` and for ``l1_ratio=None``, and a
    UserWarning for each parameter the penalty leaves unused, so that none is
    dropped silently.
    """
    penalty, l1_ratio, C, alpha = model.penalty, model.l1_ratio, model.C, model.alpha
    found = []
    if penalty == "deprecated":
        if l1_ratio is None:
            found.append((_L1_RATIO_NONE_DEPRECATED, FutureWarning))
        if alpha is None and C == np.inf and l1_ratio not in (None, 0.0):
            found.append((
                f"C=np.inf means no penalty, which ignores l1_ratio={l1_ratio}. Give a finite "
                f"C (or alpha) to penalize, or leave l1_ratio at 0.",
                UserWarning,
            ))  # fmt: skip
    else:
        found.append((_PENALTY_DEPRECATED, FutureWarning))
        if penalty is None:
            ignored = [f"C={C}"] if C != 1.0 else []
            ignored += [f"l1_ratio={l1_ratio}"] if l1_ratio not in (None, 0.0) else []
            ignored += [f"alpha={alpha}"] if alpha is not None else []
            if ignored:
                found.append((
                    f"Setting penalty=None will ignore the C and l1_ratio parameters (and "
                    f"alpha): {', '.join(ignored)} is ignored. Leave penalty unset and use "
                    f"C=np.inf for no penalty, or drop penalty=None to use them.",
                    UserWarning,
                ))  # fmt: skip
        elif penalty in _PENALTY_L1_RATIO and l1_ratio != _PENALTY_L1_RATIO[penalty]:
            found.append((
                f"Inconsistent values: penalty={penalty} with l1_ratio={l1_ratio}. penalty is "
                f"deprecated. Please use l1_ratio only: penalty={penalty!r} fits "
                f"l1_ratio={_PENALTY_L1_RATIO[penalty]:g} and ignores l1_ratio={l1_ratio}.",
                UserWarning,
            ))  # fmt: skip
    if alpha is not None and C != 1.0 and penalty is not None:
        found.append((
            f"alpha={alpha} sets the penalty strength and ignores C={C}. Leave C at 1.0 with "
            f"alpha, or unset alpha (None) to use C.",
            UserWarning,
        ))  # fmt: skip
    return found


# --------------------------------------------------------------------------
# Fitted state.
# --------------------------------------------------------------------------

_FEATURE_ATTRS = ("n_features_in_", "feature_names_in_")


def _dense(coef):
    """``coef_`` as an ndarray, whether :meth:`LogisticRegression.sparsify` made it sparse."""
    return coef.toarray() if scipy.sparse.issparse(coef) else coef


def _feature_attributes(estimator):
    """The feature attributes that scikit-learn's validation recorded on ``estimator``."""
    return {name: getattr(estimator, name) for name in _FEATURE_ATTRS if hasattr(estimator, name)}


def _check_hold_out(y_idx, validation_fraction, n_classes):
    """Raise unless early stopping's stratified split leaves every part enough rows.

    ``train_test_split`` holds out ``ceil(validation_fraction * n)`` rows and
    needs at least one row per class on each side and two rows of each class.
    """
    n_samples = y_idx.shape[0]
    n_valid = int(np.ceil(validation_fraction * n_samples))
    n_train = n_samples - n_valid
    if min(n_valid, n_train) < n_classes:
        raise ValueError(
            f"early_stopping=True holds out validation_fraction={validation_fraction} of the "
            f"{n_samples} rows: {n_valid} for validation, {n_train} for training, and each "
            f"part needs at least one row of each of the {n_classes} classes. Use a "
            f"validation_fraction nearer 0.5, more rows, or early_stopping=False."
        )
    counts = np.bincount(y_idx, minlength=n_classes)
    if counts.min() < 2:
        raise ValueError(
            f"early_stopping=True splits the rows by class, and a class has only "
            f"{counts.min()} row; each class needs two or more (one on each side). Use more "
            f"rows, or early_stopping=False."
        )


def _is_fitted_name(name):
    """Attributes a fit sets: scikit-learn's ``name_`` ones and the partial_fit state."""
    return (name.endswith("_") and not name.startswith("__")) or name == "_partial_state"


@dataclass(frozen=True)
class _PartialState:
    """The stochastic solver's state and the parameters it was made with."""

    key: dict
    state: StochasticState


def _check_same_classes(classes, model_classes):
    if classes is None:
        return
    with label_errors(classes, "classes"):
        given = np.unique(classes)
    if not _same_labels(given, model_classes):
        raise ValueError(
            f"classes={show_labels(given)} differs from the classes of the first "
            f"partial_fit call, {show_labels(model_classes)}."
        )


def _same_labels(a, b):
    """Whether two label arrays hold the same labels (1 and 1.0 alike, 1 and '1' not)."""
    return (
        len(a) == len(b)
        and all(
            type(x) is type(y) or (isinstance(x, Real) and isinstance(y, Real))
            for x, y in zip(a.tolist(), b.tolist(), strict=True)
        )
        and a.tolist() == b.tolist()
    )


# --------------------------------------------------------------------------
# Labels.
# --------------------------------------------------------------------------


def _encode_labels(y, name="y"):
    """Return ``(classes, y as class indices)``, checking there are two or more."""
    y = np.asarray(y)
    values = _integer_values(y)
    with label_errors(y, name):
        if values is None:
            # 1-D labels of integer values are always class labels; this
            # check would hash them once more (13 ms for 1e6 labels).
            check_classification_targets(y)
        classes, y_idx = _unique_inverse(y, values)
    if classes.shape[0] < 2:
        raise ValueError(
            f"{name} has only one class ({classes.tolist()[0]!r}); logistic regression needs "
            f"samples of at least two classes. Check how y was built or sampled."
        )
    return classes, y_idx


def _class_indices(y, classes):
    """Class indices of y's labels in ``classes``; raise for a label not among them."""
    y = np.asarray(y)
    with label_errors(y):
        check_classification_targets(y)
    try:
        y_idx = np.searchsorted(classes, y)
        last = classes.shape[0] - 1
        unknown = (y_idx > last) | (classes[np.minimum(y_idx, last)] != y)
    except TypeError:  # labels of a type that does not compare with the classes
        unknown = np.ones(y.shape[0], dtype=bool)
    if np.any(unknown):
        labels = list(dict.fromkeys(y[unknown].tolist()))  # unique, in order of appearance
        raise ValueError(
            f"y holds labels not in classes_: {show_labels(labels)}; "
            f"pass every label in classes= on the first partial_fit call."
        )
    return y_idx


def _integer_values(y):
    """1-D numeric labels whose values are all integers, as int64; else None.

    Float labels such as ``0.0`` and ``1.0`` count (scikit-learn calls them
    binary or multiclass too); NaN, infinities and fractions do not.
    """
    if y.ndim != 1 or y.dtype.kind not in "biuf" or not y.size:
        return None
    if y.dtype.kind == "u" and y.max() > np.iinfo(np.int64).max:
        return None
    with np.errstate(invalid="ignore"):
        values = y.astype(np.int64)
    if y.dtype.kind == "f" and not np.array_equal(values, y):
        return None
    return values


def _unique_inverse(y, values):
    """``np.unique(y, return_inverse=True)``, in one pass for integer-valued labels.

    Sorting a million labels takes ~50 ms, a tenth of an L-BFGS fit on
    1e6 x 100; counting them takes ~3 ms. ``values`` is
    :func:`_integer_values` of y; other labels (strings, fractions, or
    integers spread over a wide range) go through ``np.unique``.
    """
    if values is not None:
        low = values.min()
        # In Python integers: the span of int64 labels may exceed int64's range.
        if int(values.max()) - int(low) <= max(16 * y.size, 1024):
            shifted = values - low
            present = np.bincount(shifted) > 0
            position = np.cumsum(present) - 1
            classes = (np.flatnonzero(present) + low).astype(y.dtype)
            return classes, position[shifted]
    return np.unique(y, return_inverse=True)


# --------------------------------------------------------------------------
# Scores and probabilities, finite for any finite X.
# --------------------------------------------------------------------------


class _Scores:
    """``X W^T + b`` for prediction, with the rows that overflowed made exact.

    The scores come from one BLAS (or sparse) product, as fast as before; only
    when they are not all finite are the offending rows recomputed, in
    float64, as ``s_i = (x_i / r_i) . (W / c) + b / (r_i c)`` with ``r_i`` the
    row's largest magnitude and ``c`` the model's: every term is at most 1, so
    ``s_i`` is finite and the exact score is ``s_i r_i c`` (an infinity when
    beyond the float range, whose sign is that of ``s_i``).
    """

    def __init__(self, X, coef, intercept):
        # A sparse coef_ (sparsify) enters the product as it is; the rows
        # that overflow are rescaled with its dense copy.
        sparse_coef = scipy.sparse.issparse(coef)
        if not sparse_coef:
            coef = np.reshape(coef, (-1, coef.shape[-1]))
        # One errstate for both (each costs microseconds, a tenth of a small predict).
        with np.errstate(over="ignore", invalid="ignore"):
            self.raw = np.asarray(safe_sparse_dot(X, coef.T, dense_output=True) + intercept)
            # The sum is finite when every score is (one pass, no temporary),
            # unless finite scores overflow it: the exact check below then.
            all_finite = np.isfinite(self.raw.sum())
        self.bad = None
        if not all_finite:
            bad = np.flatnonzero(~np.isfinite(self.raw).all(axis=1))
            if bad.size:
                self.bad = bad
                self.scaled, self.row_scale, self.coef_scale = _scaled_scores(
                    X[bad], _dense(coef), intercept
                )

    def _with_bad_rows(self, scaled):
        """A copy of the scores with the overflowed rows set to ``scaled r c``."""
        scores = self.raw.copy()
        with np.errstate(over="ignore"):  # beyond the dtype's range: +-inf, as it should
            scores[self.bad] = scaled * self.row_scale[:, None] * self.coef_scale
        return scores

    def exact(self):
        """The scores, overflowed rows replaced by their exact value (or +-inf)."""
        return self.raw if self.bad is None else self._with_bad_rows(self.scaled)

    def indices(self):
        """Index of the predicted class of each row (ties of infinite scores resolved)."""
        if self.raw.shape[1] == 1:
            return (self.exact()[:, 0] > 0).astype(np.intp)
        indices = self.raw.argmax(axis=1)
        if self.bad is not None:
            indices[self.bad] = self.scaled.argmax(axis=1)
        return indices

    def probabilities(self, log):
        """Class probabilities (their logarithms when ``log``), finite for any finite X."""
        scores = self.raw
        if self.bad is not None and scores.shape[1] == 1:
            scores = self._with_bad_rows(self.scaled)
        elif self.bad is not None:
            # Differences to the row's best score: <= 0, -inf at worst, never NaN.
            scores = self._with_bad_rows(self.scaled - self.scaled.max(axis=1, keepdims=True))
        if scores.shape[1] > 1:
            function = scipy.special.log_softmax if log else scipy.special.softmax
            return function(scores, axis=1)
        scores = np.ascontiguousarray(scores[:, 0])
        if log:
            log_neg = -maths.log1pexp_array(scores, np.empty_like(scores))
            log_pos = -maths.log1pexp_array(-scores, np.empty_like(scores))
            return np.column_stack([log_neg, log_pos])
        positive = maths.sigmoid_array(scores, np.empty_like(scores))
        negative = maths.sigmoid_array(-scores, np.empty_like(scores))
        return np.column_stack([negative, positive])


def _scaled_scores(X, coef, intercept):
    """``(s, r, c)`` with ``X W^T + b = s r[:, None] c``, each ``|s|`` at most ``n_features + 1``.

    X holds rows whose plain product overflowed (so each has a nonzero entry).
    """
    coef = np.asarray(coef, dtype=np.float64)
    intercept = np.asarray(intercept, dtype=np.float64)
    coef_scale = max(float(np.abs(coef).max(initial=0.0)), float(np.abs(intercept).max()))
    coef_scale = coef_scale or 1.0
    if scipy.sparse.issparse(X):
        X = scipy.sparse.csr_matrix(X, dtype=np.float64)
        row_scale = np.asarray(abs(X).max(axis=1).todense(), dtype=np.float64).ravel()
        row_scale[row_scale == 0] = 1.0
        X = scipy.sparse.diags(1.0 / row_scale) @ X
    else:
        X = np.asarray(X, dtype=np.float64)
        row_scale = np.abs(X).max(axis=1)
        row_scale[row_scale == 0] = 1.0
        X = X / row_scale[:, None]
    with np.errstate(under="ignore"):
        offsets = (intercept / coef_scale) / row_scale[:, None]
        scaled = np.asarray(X @ (coef / coef_scale).T) + offsets
    return scaled, row_scale, coef_scale


class _JoinedScores:
    """The :class:`_Scores` of a Dataset's blocks, answered as one."""

    def __init__(self, parts):
        self.parts = parts

    def _join(self, each):
        return np.concatenate([each(part) for part in self.parts])

    def exact(self):
        return self._join(_Scores.exact)

    def indices(self):
        return self._join(_Scores.indices)

    def probabilities(self, log):
        return self._join(lambda part: part.probabilities(log))


def _check_dataset_only(validation, checkpoint):
    """``validation=`` and ``checkpoint=`` are for fits on a Dataset."""
    for name, value in (("validation", validation), ("checkpoint", checkpoint)):
        if value is not None:
            raise ValueError(
                f"{name}= needs the training data as a fastlr.Dataset; wrap arrays as "
                f"fastlr.Dataset(X, label=y, weight=sample_weight)."
            )


def _check_no_arrays(y, sample_weight):
    """A Dataset brings its own labels and weights."""
    if y is not None or sample_weight is not None:
        raise ValueError(
            "A fastlr.Dataset holds its labels and weights: pass label= and weight= to "
            "fastlr.Dataset and leave y and sample_weight as None."
        )


def _predicted_indices(X, coef, intercept):
    """Index of the predicted class of each row of X (the early-stopping score)."""
    return _Scores(X, coef, intercept).indices()
