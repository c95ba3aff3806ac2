"""``LogisticRegressionCV``: ``C`` (and ``l1_ratio``) chosen by cross-validation.

Each fold's training rows are fitted along the grid of ``Cs`` in the order
given, every fit starting from the previous one's solution (a warm-started
regularization path), by the solvers of :class:`fastlr.LogisticRegression`:
the same objective, stopping rule and kernels. The input is validated once,
by the estimator's own checks, and the folds index the validated arrays.
"""

import inspect
from numbers import Integral
from typing import ClassVar, NamedTuple

import numba
import numpy as np
import scipy.sparse
from sklearn.base import _fit_context
from sklearn.utils._param_validation import Hidden, Interval, StrOptions

from ._logistic import _PENALTY_L1_RATIO, LogisticRegression, _encode_labels, _Scores
from ._solvers import STOCHASTIC, solve
from ._threads import numba_threads, one_blas_thread
from ._validation import as_sample_weight
from ._warnings import warn
from .data import Dataset

# The parameters of LogisticRegression that the cross-validation sets itself.
_SET_BY_CV = ("C", "alpha", "l1_ratio", "warm_start", "penalty")


class LogisticRegressionCV(LogisticRegression):
    """Logistic regression with ``C`` (and ``l1_ratio``) chosen by cross-validation.

    scikit-learn's ``LogisticRegressionCV`` on fastlr's solvers. For each
    fold of ``cv`` and each L1 share of ``l1_ratios``, the training rows are
    fitted at every ``C`` of ``Cs`` in turn, each fit warm-started from the
    previous solution, and scored on the fold's test rows. The grid point
    with the best score summed over the folds is then refitted on all the
    data (``refit=True``), or each fold's best coefficients are averaged
    (``refit=False``). The objective, the solvers and their stopping rules
    are :class:`fastlr.LogisticRegression`'s: every fit is the one
    ``LogisticRegression(C=C, ...)`` would make from the same starting point.

    Parameters
    ----------
    Cs : int or array-like of shape (n_cs,), default=10
        The values of ``C`` (inverse regularization strength) to try, in the
        order the path visits them; an int ``k`` means ``np.logspace(-4, 4, k)``.
        ``np.inf`` means no penalty.
    l1_ratios : array-like of shape (n_l1_ratios,), default=None
        The L1 shares in ``[0, 1]`` to try, each with its own path over
        ``Cs``; each chooses its penalty as ``l1_ratio`` does in
        :class:`fastlr.LogisticRegression` (0: L2, 1: L1, between: elastic
        net). None: the L2 penalty only, and the attributes without their L1
        axis (scikit-learn's legacy layout for ``l1_ratios=None``).
    penalty : {"l2", "l1", "elasticnet"}
        Deprecated, as in scikit-learn 1.8 (a FutureWarning): leave it unset
        and choose the penalties with ``l1_ratios`` and ``Cs``. Set, "l2" and
        "l1" fit that penalty alone (``l1_ratios`` is then ignored, with a
        UserWarning) and "elasticnet" needs ``l1_ratios``.
    cv : int, cross-validation generator or iterable, default=None
        Folds, as ``sklearn.model_selection.check_cv`` reads them for a
        classifier: None means 5 stratified folds (``StratifiedKFold(5)``, no
        shuffling), an int ``k`` means ``k`` of them.
    scoring : str, callable or None, default=None
        How a fold's test rows score a fit: a scikit-learn scorer name (see
        ``sklearn.metrics.get_scorer_names()``), a callable
        ``scorer(estimator, X, y)``, or None for accuracy. Higher is better.
        Scorers whose metric takes ``labels`` get all the classes, as
        scikit-learn does, so a fold missing a class scores the same way.
    refit : bool, default=True
        True: refit on all the data at the grid point of the best mean score,
        starting from the mean over the folds of the coefficients there.
        False: ``coef_`` is the mean over the folds of each fold's best
        coefficients, and ``C_`` (``l1_ratio_``) the mean of their ``C``
        (L1 share).
    solver, fit_intercept, max_iter, tol, n_iter_no_change, learning_rate, \
eta0, power_t, batch_size, shuffle, average, early_stopping, \
validation_fraction, class_weight, random_state, verbose
        As in :class:`fastlr.LogisticRegression`, for every fit. A
        ``class_weight="balanced"`` is computed once, on all of y (as
        scikit-learn does), and applied to every fold.
    n_jobs : int, default=None
        Threads used while fitting (``None`` or -1: all of numba's). When a
        pass over a fold's training rows is long enough for the kernels to
        outweigh the Python work of an iteration (``FOLD_THREADS_MIN_WORK``
        multiply-adds), the folds run on ``min(n_jobs, n_folds)`` Python
        threads, each fit's kernels on the remaining factor of numba
        threads; otherwise the folds run in turn, each fit's kernels on all
        ``n_jobs`` threads (``docs/design.md``). Each running fold holds a
        copy of its training rows.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    coef_ : ndarray of shape (1, n_features) or (n_classes, n_features)
        Coefficients of the refitted (or averaged) model, in X's float dtype.
    intercept_ : ndarray of shape (1,) or (n_classes,)
    Cs_ : ndarray of shape (n_cs,)
        The values of ``C`` tried.
    l1_ratios_ : ndarray of shape (n_l1_ratios,)
        The L1 shares tried; ``[None]`` without an ``l1_ratios`` grid.
    C_ : ndarray of shape (1,) or (n_classes,)
        The chosen ``C`` (the mean of the folds' best with ``refit=False``),
        repeated for each class in the multinomial case.
    l1_ratio_ : ndarray of shape (1,) or (n_classes,)
        The chosen L1 share, repeated as ``C_`` is: the grid's value (mean of
        the folds' best with ``refit=False``) with ``l1_ratios``; without it,
        0 (1 with the deprecated ``penalty="l1"``), where scikit-learn's
        legacy attribute holds None or 0.
    scores_ : dict of ndarray of shape (n_folds, n_cs) or (n_folds, n_cs, n_l1_ratios)
        Test scores, keyed by class (``classes_[1]`` only for two classes);
        the same array for every class. The last axis exists only with an
        ``l1_ratios`` grid.
    coefs_paths_ : dict of ndarray of shape (n_folds, n_cs, n_dof) or \
(n_folds, n_cs, n_l1_ratios, n_dof)
        Coefficients of each fit, keyed as ``scores_``; the last axis holds
        the class's coefficients, then its intercept when ``fit_intercept``
        (``n_dof = n_features + fit_intercept``).
    n_iter_ : ndarray of shape (1, n_folds, n_cs) or (1, n_folds, n_cs, n_l1_ratios)
        Iterations (sgd and minibatch: epochs) of each fit of the paths.
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (n_features_in_,)
        When X was a DataFrame with string column names.

    Examples
    --------
    >>> from sklearn.datasets import load_breast_cancer
    >>> from sklearn.preprocessing import StandardScaler
    >>> import fastlr
    >>> X, y = load_breast_cancer(return_X_y=True)
    >>> X = StandardScaler().fit_transform(X)
    >>> model = fastlr.LogisticRegressionCV(Cs=10).fit(X, y)
    >>> model.C_
    array([0.35938137])
    """

    _parameter_constraints: ClassVar[dict] = {
        **{
            name: constraint
            for name, constraint in LogisticRegression._parameter_constraints.items()
            if name not in _SET_BY_CV
        },
        "Cs": [Interval(Integral, 1, None, closed="left"), "array-like"],
        "l1_ratios": ["array-like", None],
        "penalty": [StrOptions({"l2", "l1", "elasticnet"}), Hidden(StrOptions({"deprecated"}))],
        "cv": ["cv_object"],
        # Scorer names are checked by sklearn.metrics.get_scorer in fit: importing
        # sklearn.metrics here would add 0.1 s to `import fastlr`.
        "scoring": [str, callable, None],
        "refit": ["boolean"],
    }

    def __init__(
        self,
        *,
        Cs=10,
        l1_ratios=None,
        penalty="deprecated",
        cv=None,
        scoring=None,
        refit=True,
        solver="lbfgs",
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
        random_state=None,
        n_jobs=None,
        verbose=0,
    ):
        self.Cs = Cs
        self.l1_ratios = l1_ratios
        self.penalty = penalty
        self.cv = cv
        self.scoring = scoring
        self.refit = refit
        self.solver = solver
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
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.verbose = verbose

    @property
    def partial_fit(self):
        """Not available: cross-validation fits whole training sets."""
        raise AttributeError(
            "LogisticRegressionCV has no partial_fit: it chooses C from fits on whole folds. "
            "Choose C with it, then train fastlr.LogisticRegression(solver='sgd', C=model.C_[0]) "
            "with partial_fit."
        )

    def save(self, path):
        """Not available: model files hold ``fastlr.LogisticRegression`` models.

        Raises
        ------
        TypeError
            Always; the message says how to save the chosen model.
        """
        raise TypeError(
            "fastlr model files hold fastlr.LogisticRegression models, not "
            "LogisticRegressionCV. Save the chosen model as one: fit "
            "fastlr.LogisticRegression(C=model.C_[0], ...) with the same settings (or copy "
            "classes_, coef_ and intercept_ into a fitted one) and call its save()."
        )

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None, sample_weight=None):
        """Cross-validate the grid, then refit (or average) at the best point.

        A fit is all or nothing: the fitted attributes are set together at
        the end, so a fit that raises leaves the estimator as it was.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            As for :meth:`fastlr.LogisticRegression.fit` (float32 trains in
            float32; sparse X stays CSR); not a :class:`fastlr.Dataset`.
        y : array-like of shape (n_samples,)
            Labels of any type, at least two distinct.
        sample_weight : array-like of shape (n_samples,), default=None
            Weights of the training rows in each fit, and of the test rows in
            each score.

        Returns
        -------
        self : LogisticRegressionCV
        """
        if isinstance(X, Dataset):
            raise TypeError(
                "LogisticRegressionCV takes X as an array or sparse matrix: its folds pick rows "
                "of X in memory. Read the Dataset into arrays, or train "
                "fastlr.LogisticRegression on it with a C of your choice."
            )
        grid = _Grid.of(self.Cs, self.l1_ratios, self.penalty)
        for message, category in _penalty_warnings(self.penalty, self.l1_ratios):
            warn(message, category)
        _Points(self, grid).at(grid.Cs[0], grid.l1_ratios[0])._check_penalty()
        with numba_threads(self.n_jobs) as n_threads, one_blas_thread():
            fitted = self._fit_cv(X, y, sample_weight, grid, n_threads)
        self._commit(fitted)
        return self

    def _fit_cv(self, X, y, sample_weight, grid, n_threads):
        """The fitted attributes, as a dict; the estimator is not changed."""
        # Imported here: sklearn.model_selection adds 30 ms to `import fastlr`.
        from sklearn.model_selection import check_cv

        X, y, features = self._validate_training(X, y)
        classes, y_idx = _encode_labels(y)
        sw, exponent = self._weights(sample_weight, y_idx, X.dtype, classes, whole=True)
        score_weight, _ = as_sample_weight(sample_weight, y_idx.shape[0], np.float64)
        folds = list(check_cv(self.cv, y, classifier=True).split(X, y))
        data = _Data(X, y, y_idx, sw, exponent, len(classes))
        _check_fold_weights(folds, sw)
        scorer = _FoldScorer(self.scoring, classes, X.shape[1], score_weight)
        points = _Points(self, grid)

        def fold_paths(fold):
            train, test = data.rows(fold[0]), data.rows(fold[1])
            return [self._path(points, r, train, test, scorer) for r in grid.l1_ratios]

        per_fold = _map_folds(fold_paths, folds, n_threads, _pass_work(data, folds))
        paths = [path for fold in per_fold for path in fold]
        results = _Results.of(paths, len(folds), grid, self.fit_intercept)
        if self.refit:
            coef, intercept, best_C, best_l1_ratio = self._refit(data, points, results)
        else:
            coef, intercept, best_C, best_l1_ratio = results.fold_average(grid)
        n_labels = 1 if len(classes) == 2 else len(classes)
        return {
            **features,
            "classes_": classes,
            "coef_": coef.reshape(-1, X.shape[1]),
            "intercept_": intercept,
            "Cs_": grid.Cs,
            "l1_ratios_": grid.l1_ratios_attribute(),
            "C_": np.full(n_labels, best_C),
            "l1_ratio_": np.full(n_labels, best_l1_ratio),
            **results.attributes(classes, grid),
        }

    def _path(self, points, l1_ratio, train, test, scorer):
        """Fit ``train`` at each C of the grid in turn, warm-started; score each on ``test``."""
        coefs, scores, n_iter = [], [], []
        start = (None, None)
        for C in points.grid.Cs:
            result = _solve(points.at(C, l1_ratio), train, start)
            start = (result.coef, result.intercept)
            coefs.append(_stacked(result.coef, result.intercept, self.fit_intercept))
            scores.append(scorer(test, result.coef, result.intercept))
            n_iter.append(result.n_iter)
        return _Path(np.stack(coefs), np.array(scores, dtype=np.float64), np.array(n_iter))

    def _refit(self, data, points, results):
        """Refit on all rows at the best grid point, from the folds' mean coefficients there."""
        grid = points.grid
        i_C, i_l1 = results.best_mean_index()
        C, l1_ratio = grid.Cs[i_C], grid.l1_ratios[i_l1]
        mean = results.coefs[:, :, i_C, i_l1].mean(axis=0)  # (n_outputs, n_dof)
        coef0, intercept0 = _unstacked(mean, self.fit_intercept)
        result = _solve(points.at(C, l1_ratio), data.rows(), (coef0, intercept0))
        return result.coef, result.intercept, C, grid.l1_ratio_value(l1_ratio)

    def score(self, X, y, sample_weight=None):
        """Score of X and y by ``scoring`` (accuracy when None), as in the folds.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        score : float
        """
        from sklearn.metrics import get_scorer

        scorer = get_scorer(self.scoring or "accuracy")
        weights = {} if sample_weight is None else {"sample_weight": sample_weight}
        return scorer(self, X, y, **weights)


# --------------------------------------------------------------------------
# The grid.
# --------------------------------------------------------------------------


class _Grid(NamedTuple):
    """The values of C and of the L1 share to try, checked.

    ``l1_ratios`` is ``(None,)`` without an ``l1_ratios`` grid: one path per
    fold, at the L1 share ``share`` (1 for the deprecated ``penalty="l1"``,
    else 0).
    """

    Cs: np.ndarray
    l1_ratios: tuple
    share: float

    @classmethod
    def of(cls, Cs, l1_ratios, penalty):
        if isinstance(Cs, Integral):
            Cs = np.logspace(-4, 4, Cs)
        else:
            Cs = _float_grid(Cs, "Cs", "e.g. Cs=np.logspace(-4, 4, 10), or an int")
            if not (Cs > 0).all():
                raise ValueError(
                    f"Cs must hold values of C > 0 (np.inf for no penalty); got "
                    f"{Cs[~(Cs > 0)][0].item()!r}."
                )
        if penalty in _PENALTY_L1_RATIO:
            return cls(Cs, (None,), _PENALTY_L1_RATIO[penalty])
        if l1_ratios is None:
            if penalty == "elasticnet":
                raise ValueError(
                    "penalty='elasticnet' needs l1_ratios, the L1 shares in [0, 1] to try "
                    "(e.g. l1_ratios=[0.1, 0.5, 0.9]); penalty is deprecated, and "
                    "l1_ratios alone chooses the penalties."
                )
            return cls(Cs, (None,), 0.0)
        ratios = _float_grid(l1_ratios, "l1_ratios", "e.g. l1_ratios=[0.1, 0.5, 0.9]")
        outside = ratios[~((ratios >= 0) & (ratios <= 1))]
        if outside.size:
            raise ValueError(f"l1_ratios must lie in [0, 1]; got {outside[0].item()!r}.")
        return cls(Cs, tuple(ratios.tolist()), 0.0)

    def l1_ratio_value(self, l1_ratio):
        """The L1 share at a grid point (``share`` without a grid)."""
        return self.share if l1_ratio is None else l1_ratio

    def l1_ratios_attribute(self):
        """``l1_ratios_``: the L1 shares, or ``[None]`` without a grid."""
        if not self.has_l1_axis:
            return np.array([None], dtype=object)
        return np.array(self.l1_ratios, dtype=np.float64)

    @property
    def has_l1_axis(self):
        return self.l1_ratios != (None,)


def _penalty_warnings(penalty, l1_ratios):
    """``[(message, category)]`` for a set ``penalty``, as scikit-learn 1.8 warns."""
    if penalty == "deprecated":
        return []
    found = [(_PENALTY_DEPRECATED, FutureWarning)]
    if penalty in _PENALTY_L1_RATIO and l1_ratios is not None:
        found.append((
            f"penalty={penalty!r} fits l1_ratio={_PENALTY_L1_RATIO[penalty]:g} alone and "
            f"ignores l1_ratios={l1_ratios!r}. penalty is deprecated: leave it unset, and "
            f"l1_ratios chooses the penalties.",
            UserWarning,
        ))  # fmt: skip
    return found


_PENALTY_DEPRECATED = (
    "'penalty' was deprecated in scikit-learn 1.8, and fastlr follows it: it will be removed "
    "in a future release. To avoid this warning, leave 'penalty' unset and use 'l1_ratios' "
    "and 'Cs' instead: l1_ratios=None (or (0,)) instead of penalty='l2', l1_ratios=(1,) "
    "instead of penalty='l1', l1_ratios set to floats between 0 and 1 instead of "
    "penalty='elasticnet', and Cs=(np.inf,) instead of penalty=None."
)


class _Points:
    """The ``LogisticRegression`` of each grid point: the estimator's settings, C, penalty."""

    def __init__(self, estimator, grid):
        self.grid = grid
        self.params = {
            name: value
            for name, value in estimator.get_params(deep=False).items()
            if name in LogisticRegression._parameter_constraints and name not in _SET_BY_CV
        }

    def at(self, C, l1_ratio):
        # penalty left unset: the L1 share and C choose the penalty, without warnings.
        return LogisticRegression(**self.params, C=C, l1_ratio=self.grid.l1_ratio_value(l1_ratio))


def _float_grid(values, name, example):
    """A non-empty 1-D float64 array of ``values``, or a ValueError naming ``name``."""
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must hold numbers ({example}); got {values!r}.") from None
    if array.ndim != 1 or array.size == 0:
        raise ValueError(
            f"{name} must be a non-empty 1-D list of numbers ({example}); got {values!r}."
        )
    if np.isnan(array).any():
        raise ValueError(f"{name} holds NaN; pass numbers ({example}).")
    return array


# --------------------------------------------------------------------------
# Folds and fits.
# --------------------------------------------------------------------------


class _Rows(NamedTuple):
    """Some rows of the validated data: the training or test part of a fold, or all."""

    X: object
    y: np.ndarray  # the labels as given
    y_idx: np.ndarray
    sw: np.ndarray  # empty for unit weights
    exponent: int
    n_classes: int
    index: np.ndarray | None  # the rows' indices in the data; None for all of them


class _Data(NamedTuple):
    """The validated training data, from which folds take their rows."""

    X: object
    y: np.ndarray
    y_idx: np.ndarray
    sw: np.ndarray
    exponent: int
    n_classes: int

    def rows(self, index=None):
        """The rows ``index`` (all of them when None), copied into contiguous arrays."""
        if index is None:
            return _Rows(self.X, self.y, self.y_idx, self.sw, self.exponent, self.n_classes, None)
        sw = self.sw[index] if self.sw.shape[0] else self.sw
        return _Rows(
            self.X[index], self.y[index], self.y_idx[index], sw, self.exponent,
            self.n_classes, index,
        )  # fmt: skip


#: Multiply-adds of one pass over a fold's training rows (rows x stored
#: values a row x outputs) from which the folds run on Python threads: about
#: where a pass on one core (30 us) takes as long as the Python work of an
#: L-BFGS iteration. Below it a fit holds the GIL most of the time, and
#: threads only take turns (docs/design.md).
FOLD_THREADS_MIN_WORK = 1 << 17
#: False: the folds always run one after the other (the benchmark's alternative).
_FOLDS_ON_THREADS = True


def _pass_work(data, folds):
    """Multiply-adds of one pass over the largest fold's training rows."""
    n_train = max(len(train) for train, _ in folds)
    n_samples, n_features = data.X.shape
    per_row = data.X.nnz / n_samples if scipy.sparse.issparse(data.X) else n_features
    return n_train * per_row * (1 if data.n_classes == 2 else data.n_classes)


def _map_folds(function, folds, n_threads, work):
    """``[function(fold) for fold in folds]``, spread over ``n_threads`` threads.

    With passes of ``FOLD_THREADS_MIN_WORK`` multiply-adds or more,
    ``min(n_threads, len(folds))`` Python threads take the folds in turn and
    each fit's kernels run on ``n_threads // workers`` numba threads (the
    kernels release the GIL); a fit's passes then wait on no other thread,
    where a pass split across threads waits for the slowest at its end.
    Otherwise the folds run one after the other, each fit's kernels on the
    ``n_threads`` threads. Results are the same either way, bit for bit (the
    kernels' sums do not depend on the thread count). numba's workqueue
    layer runs one parallel caller at a time (:mod:`fastlr._threads`): there
    the folds run in a loop. A fold that raises cancels those not started,
    and the error is raised once the running ones end.
    """
    threads = _FOLDS_ON_THREADS and work >= FOLD_THREADS_MIN_WORK
    workers = min(n_threads, len(folds)) if threads else 1
    if workers <= 1 or numba.threading_layer() == "workqueue":
        return [function(fold) for fold in folds]

    def run(fold):
        with numba_threads(n_threads // workers):
            return function(fold)

    # Imported here: concurrent.futures adds 6 ms to `import fastlr`.
    from concurrent.futures import ThreadPoolExecutor

    executor = ThreadPoolExecutor(max_workers=workers)
    try:
        return list(executor.map(run, folds))
    finally:
        executor.shutdown(wait=True, cancel_futures=True)


def _check_fold_weights(folds, sw):
    """Raise when a fold's training rows all have weight 0: nothing to fit there."""
    if not sw.shape[0]:
        return
    for k, (train, _) in enumerate(folds):
        if not sw[train].sum() > 0:
            raise ValueError(
                f"The training rows of fold {k} all have sample weight 0 (class_weight "
                f"included), so it cannot be fitted. Give more rows a positive weight or "
                f"pass other folds with cv=."
            )


def _solve(point, rows, start):
    """``point``'s fit on ``rows`` from ``start`` (coef, intercept; None for zeros).

    The steps of ``LogisticRegression.fit`` once its input is validated and
    weighted: the early-stopping split, the objective, the solver.
    """
    X, y_idx, sw = rows.X, rows.y_idx, rows.sw
    options = point._options(max_iter=point.max_iter, tol=point.tol)
    if point.early_stopping and point.solver in STOCHASTIC:
        X, y_idx, sw = point._hold_out(X, y_idx, sw, options, rows.n_classes)
    objective = point._objective(X, y_idx, sw, rows.n_classes, rows.exponent)
    return solve(objective, point.solver, options, *start)


def _stacked(coef, intercept, fit_intercept):
    """``(n_outputs, n_features + fit_intercept)``: each output's coefficients, then intercept."""
    coef = coef.reshape(intercept.shape[0], -1)
    return np.hstack([coef, intercept[:, None]]) if fit_intercept else coef.copy()


def _unstacked(stacked, fit_intercept):
    """``(coef, intercept)`` of a :func:`_stacked` array (intercept None without one)."""
    if fit_intercept:
        return stacked[:, :-1], stacked[:, -1]
    return stacked, None


# --------------------------------------------------------------------------
# Scores.
# --------------------------------------------------------------------------


class _FoldScorer:
    """The score of coefficients on a fold's test rows, as scikit-learn's CV computes it.

    Accuracy (``scoring`` None or "accuracy") is computed from the class
    indices directly, as ``accuracy_score`` does (``np.average`` of the hits,
    weighted by the test rows' sample weights, class weights not included);
    other scorers are called on a ``LogisticRegression`` holding the
    coefficients, with every class as ``labels`` when their metric takes it.
    """

    def __init__(self, scoring, classes, n_features, sample_weight):
        self.classes = classes
        self.n_features = n_features
        self.sample_weight = sample_weight
        self.scorer = None if scoring in (None, "accuracy") else _labelled_scorer(scoring, classes)

    def __call__(self, test, coef, intercept):
        weights = self.sample_weight[test.index] if self.sample_weight.shape[0] else None
        coef = coef.reshape(intercept.shape[0], -1)
        if self.scorer is None:
            hits = _Scores(test.X, coef, intercept).indices() == test.y_idx
            return float(np.average(hits, weights=weights))
        model = LogisticRegression()
        model.classes_, model.coef_, model.intercept_ = self.classes, coef, intercept
        model.n_features_in_ = self.n_features
        extra = {} if weights is None else {"sample_weight": weights}
        return float(self.scorer(model, test.X, test.y, **extra))


def _labelled_scorer(scoring, classes):
    """``get_scorer(scoring)``, given every class as ``labels`` when its metric takes them.

    A fold's test rows may lack a class; scikit-learn's LogisticRegressionCV
    passes the classes (and, for two classes, ``classes[1]`` as
    ``pos_label``) so that such metrics still score every class.
    """
    from sklearn.metrics import get_scorer, make_scorer

    scorer = get_scorer(scoring)
    function = getattr(scorer, "_score_func", None)
    if function is None:
        return scorer
    parameters = inspect.signature(function).parameters
    if "labels" not in parameters:
        return scorer
    extra = {"labels": classes}
    if len(classes) == 2 and "pos_label" in parameters:
        extra["pos_label"] = classes[-1]
    return make_scorer(
        function,
        greater_is_better=scorer._sign == 1,
        response_method=scorer._response_method,
        **{**getattr(scorer, "_kwargs", {}), **extra},
    )


# --------------------------------------------------------------------------
# Results.
# --------------------------------------------------------------------------


class _Path(NamedTuple):
    """One fold's path at one L1 share: a fit per C."""

    coefs: np.ndarray  # (n_cs, n_outputs, n_dof)
    scores: np.ndarray  # (n_cs,)
    n_iter: np.ndarray  # (n_cs,)


class _Results(NamedTuple):
    """All the paths, on axes (fold, C, l1_ratio)."""

    coefs: np.ndarray  # (n_folds, n_outputs, n_cs, n_l1, n_dof)
    scores: np.ndarray  # (n_folds, n_cs, n_l1)
    n_iter: np.ndarray  # (n_folds, n_cs, n_l1)
    fit_intercept: bool

    @classmethod
    def of(cls, paths, n_folds, grid, fit_intercept):
        n_cs, n_l1 = len(grid.Cs), len(grid.l1_ratios)
        coefs = np.stack([path.coefs for path in paths])  # (fold * l1, C, output, dof)
        coefs = coefs.reshape(n_folds, n_l1, n_cs, *coefs.shape[2:])
        scores = np.stack([path.scores for path in paths]).reshape(n_folds, n_l1, n_cs)
        n_iter = np.stack([path.n_iter for path in paths]).reshape(n_folds, n_l1, n_cs)
        return cls(
            coefs=np.ascontiguousarray(coefs.transpose(0, 3, 2, 1, 4)),
            scores=np.ascontiguousarray(scores.transpose(0, 2, 1)),
            n_iter=np.ascontiguousarray(n_iter.transpose(0, 2, 1)).astype(np.int32),
            fit_intercept=fit_intercept,
        )

    def best_mean_index(self):
        """``(i_C, i_l1)`` of the best score summed over folds (the first of ties)."""
        total = self.scores.sum(axis=0)
        return np.unravel_index(np.argmax(total), total.shape)

    def fold_average(self, grid):
        """``(coef, intercept, C, l1_ratio)``: the folds' best fits, averaged."""
        n_folds = self.scores.shape[0]
        flat_best = np.argmax(self.scores.reshape(n_folds, -1), axis=1)
        i_C, i_l1 = np.unravel_index(flat_best, self.scores.shape[1:])
        fold = np.arange(n_folds)
        mean = self.coefs[fold, :, i_C, i_l1].mean(axis=0)  # (n_outputs, n_dof)
        coef, intercept = _unstacked(mean, self.fit_intercept)
        if intercept is None:
            intercept = np.zeros(mean.shape[0], dtype=mean.dtype)
        C = float(np.mean(grid.Cs[i_C]))
        l1_ratio = float(np.mean([grid.l1_ratio_value(grid.l1_ratios[i]) for i in i_l1]))
        return np.ascontiguousarray(coef), np.ascontiguousarray(intercept), C, l1_ratio

    def attributes(self, classes, grid):
        """``scores_``, ``coefs_paths_`` and ``n_iter_`` as scikit-learn lays them out."""
        keys = classes[1:] if len(classes) == 2 else classes
        coefs, scores, n_iter = self.coefs, self.scores, self.n_iter
        if not grid.has_l1_axis:
            coefs, scores, n_iter = coefs[..., 0, :], scores[..., 0], n_iter[..., 0]
        return {
            "scores_": {label: scores.copy() for label in keys},
            "coefs_paths_": {
                label: np.ascontiguousarray(coefs[:, k]) for k, label in enumerate(keys)
            },
            "n_iter_": n_iter[None],
        }
