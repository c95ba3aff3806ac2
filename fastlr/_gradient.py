"""The public gradient function: the seeds' two algorithms and the fused one, by name."""

import numpy as np
import scipy.special

from ._threads import numba_threads
from ._validation import (
    as_binary_targets,
    as_coef,
    as_features,
    as_intercept,
    as_sample_weight,
)
from .kernels import binary_dense
from .kernels.reduction import n_chunks_for

METHODS = ("loop", "vectorized", "parallel")


def gradient_sums(X, y, sw, coef, intercept, *, method="parallel", with_loss=True, out=None):
    """Add the binary gradient *sums* over the rows of X into ``out``, by ``method``.

    The algorithm-selecting form of
    :func:`fastlr.kernels.binary_dense.gradient_sums` (which is ``"parallel"``),
    for :func:`gradient` and the benchmarks; input already validated.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        C-contiguous float32 or float64.
    y : ndarray of shape (n_samples,)
        0/1 targets in X's dtype.
    sw : ndarray of shape (n_samples,) or (0,)
        Sample weights in X's dtype, or empty for unit weights.
    coef : ndarray of shape (n_features,)
        Coefficients in X's dtype.
    intercept : scalar of X's dtype
    method : {"loop", "vectorized", "parallel"}, default="parallel"
    with_loss : bool, default=True
        Also sum the loss; skipping it saves one ``log1p`` per sample.
    out : ndarray of shape (n_features,), optional
        Buffer the coefficient gradient sum is added into. Allocated (zeros)
        when omitted.

    Returns
    -------
    out : ndarray of shape (n_features,)
        ``sum_i sw_i (a_i - y_i) x_i`` added to the incoming ``out``.
    intercept_sum : float
        ``sum_i sw_i (a_i - y_i)``.
    loss_sum : float
        ``sum_i sw_i loss_i`` (0 when ``with_loss`` is false).
    """
    if out is None:
        out = np.zeros(X.shape[1], dtype=X.dtype)
    n_chunks = n_chunks_for(X.shape[0])
    if method == "parallel" and n_chunks > 1:
        db, cost = binary_dense.fused_gradient(X, y, sw, coef, intercept, with_loss, n_chunks, out)
    elif method == "loop" or method == "parallel":
        # One chunk has nothing to share out: skip the thread pool's wake-up
        # and spin, which cost L-BFGS on small data more than the pass itself.
        db, cost = binary_dense.loop_gradient(X, y, sw, coef, intercept, with_loss, out)
    elif method == "vectorized":
        db, cost = binary_dense.batch_gradient(X, y, sw, coef, intercept, with_loss, out)
    else:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}.")
    return out, db, cost


def exact_sums(X, y, sw, coef, intercept):
    """The sums of :func:`gradient_sums` (loss included) for scores that overflow.

    The fallback of :func:`gradient` when the fused pass is not finite: a
    score such as ``1e300 * 1e10 - 1e300 * 1e10`` is ``inf - inf`` there. Here
    each row whose plain score overflows is computed exactly on scaled
    operands (as ``predict_proba`` does), the loss in a form that is finite
    for every finite score and ``inf`` only beyond the float range, and the
    gradient sum over X divided by its largest magnitude: a sum is ``inf``
    only when it is beyond the range, never NaN. float64 throughout, the
    gradient returned in X's dtype.

    Returns
    -------
    out : ndarray of shape (n_features,)
    intercept_sum : float
    loss_sum : float
    """
    from ._logistic import _scaled_scores  # the estimator's exact scores

    X64 = np.asarray(X, dtype=np.float64)
    coef = np.asarray(coef, dtype=np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        scores = X64 @ coef + float(intercept)
    bad = np.flatnonzero(~np.isfinite(scores))
    if bad.size:
        scaled, row_scale, coef_scale = _scaled_scores(X64[bad], coef[None, :], [intercept])
        with np.errstate(over="ignore"):  # beyond the range: +-inf, as it should
            scores[bad] = (scaled[:, 0] * row_scale) * coef_scale
    positive = np.asarray(y) == 1
    # log(1 + exp(z)) - y z = log(1 + exp(-z)) for y = 1: never inf - inf.
    losses = np.logaddexp(0.0, np.where(positive, -scores, scores))
    residuals = scipy.special.expit(scores) - positive
    if sw.shape[0]:
        losses = np.where(sw > 0, sw * losses, 0.0)
        residuals *= sw
    largest = float(np.abs(X64).max(initial=0.0))
    with np.errstate(over="ignore"):
        out = (X64 / largest).T @ residuals * largest if largest > 0 else np.zeros(X.shape[1])
    return out.astype(X.dtype), float(residuals.sum()), float(losses.sum())


def gradient(
    X, y, coef, intercept, *, method="parallel", sample_weight=None, n_jobs=None,
    check_input=True,
):  # fmt: skip
    """Gradient and loss of the mean cross-entropy of binary logistic regression.

    The loss is ``J = sum_i sw_i [log(1 + exp(z_i)) - y_i z_i] / sum_i sw_i`` with
    ``z_i = x_i . coef + intercept``; its gradient is
    ``sum_i sw_i (sigmoid(z_i) - y_i) (x_i, 1) / sum_i sw_i``. No penalty.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        float32 input is computed in float32; C-contiguous float input is not
        copied.
    y : array-like of shape (n_samples,)
        Targets, each 0 or 1.
    coef : array-like of shape (n_features,)
        Coefficients.
    intercept : float
        Intercept.
    method : {"loop", "vectorized", "parallel"}, default="parallel"
        ``"loop"``: the seed's per-example loop, compiled; ``"vectorized"``: the
        seed's batch algorithm, compiled; ``"parallel"``: one fused parallel
        pass over X.
    sample_weight : array-like of shape (n_samples,), default=None
        Non-negative weights; ``None`` weighs every sample 1.
    n_jobs : int, default=None
        Threads for ``method="parallel"``; ``None`` uses all of numba's threads.
    check_input : bool, default=True
        False skips the passes over the data that check and convert it (no
        NaN or infinity, targets 0 or 1, non-negative weights), for callers
        that checked it already, as scikit-learn's ``check_input`` does. The
        arrays must then be NumPy arrays of X's float dtype, X 2-D and
        C-contiguous, of matching lengths: that much is still checked, in
        constant time, since a mismatch would read out of bounds.

    Returns
    -------
    grad_coef : ndarray of shape (n_features,)
        Gradient with respect to ``coef``, in X's float dtype.
    grad_intercept : numpy scalar
        Gradient with respect to ``intercept``.
    loss : numpy scalar
        The mean cross-entropy. Scores that overflow in the pass (``inf - inf``
        in a dot product) are recomputed exactly (:func:`exact_sums`): the
        loss is never NaN for finite input, and ``inf`` only beyond the range.

    Examples
    --------
    >>> import numpy as np, fastlr
    >>> X = np.array([[0.0, 1.0], [1.0, 0.0]])
    >>> g, g0, loss = fastlr.gradient(X, [0, 1], np.zeros(2), 0.0)
    >>> float(loss)  # log(2): both predictions are 1/2
    0.6931471805599453
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}.")
    if check_input:
        # X's NaN and infinity show in the gradient sums; they are looked for
        # (and named) only when the sums are not finite, which saves a pass.
        X = as_features(X, check_finite=False)
        n_samples, n_features = X.shape
        dtype = X.dtype
        y = as_binary_targets(y, n_samples, dtype)
        coef = as_coef(coef, n_features, dtype)
        intercept = as_intercept(intercept, dtype)
        sw, total = as_sample_weight(sample_weight, n_samples, dtype)
    else:
        sw, total = _checked_layout(X, y, coef, sample_weight)
        dtype = X.dtype
        intercept = dtype.type(intercept)
    with numba_threads(n_jobs):
        out, db, cost = gradient_sums(X, y, sw, coef, intercept, method=method)
    if not (np.isfinite(cost) and np.isfinite(db) and np.isfinite(out).all()):
        if check_input:
            as_features(X)  # raises the clear error for NaN or infinity in X
        out, db, cost = exact_sums(X, y, sw, coef, intercept)
    out /= dtype.type(total)
    with np.errstate(over="ignore"):  # a loss beyond X's dtype is inf in it
        return out, dtype.type(db / total), dtype.type(cost / total)


def _checked_layout(X, y, coef, sample_weight):
    """The O(1) checks of ``check_input=False``: types, shapes and layout, not values.

    Returns the weights (empty for none) and their total.
    """
    if not (isinstance(X, np.ndarray) and X.ndim == 2 and X.dtype in (np.float32, np.float64)):
        raise ValueError(
            "check_input=False needs X as a 2-D float32 or float64 NumPy array; pass "
            "check_input=True to convert it."
        )
    if not X.flags.c_contiguous:
        raise ValueError("check_input=False needs a C-contiguous X (np.ascontiguousarray(X)).")
    expected = {"y": (X.shape[0],), "coef": (X.shape[1],)}
    arrays = {"y": y, "coef": coef}
    if sample_weight is not None:
        expected["sample_weight"] = (X.shape[0],)
        arrays["sample_weight"] = sample_weight
    for name, value in arrays.items():
        if not (isinstance(value, np.ndarray) and value.dtype == X.dtype):
            raise ValueError(
                f"check_input=False needs {name} as a NumPy array of X's dtype ({X.dtype}); "
                f"pass check_input=True to convert it."
            )
        if value.shape != expected[name] or not value.flags.c_contiguous:
            raise ValueError(
                f"check_input=False needs {name} of shape {expected[name]}, C-contiguous; "
                f"got shape {value.shape}."
            )
    if sample_weight is None:
        return np.empty(0, dtype=X.dtype), float(X.shape[0])
    return sample_weight, float(sample_weight.sum(dtype=np.float64))
