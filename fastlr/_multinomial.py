"""Compiled kernels of the multinomial (softmax) cross-entropy, and its objective.

With ``K`` classes, coefficients ``W`` of shape (K, d) and intercepts ``b`` of
shape (K,), sample ``i`` has scores ``z_i = W x_i + b`` and loss
``logsumexp(z_i) - z_i[y_i]``; its gradient is ``(p_i - e_{y_i}) x_i^T`` for
``W`` and ``p_i - e_{y_i}`` for ``b``, with ``p_i = softmax(z_i)`` and ``e_k``
the k-th unit vector.

Conventions are those of :mod:`fastlr._kernels`: X is C-contiguous float32 or
float64, ``y`` holds int64 class indices in ``0..K-1``, ``sw`` is the sample
weight array in X's dtype or an empty array meaning "all ones", ``order`` is an
int64 index array or an empty array meaning "rows in order". The gradient
kernels return *sums* over rows and add them into the caller's buffers
``grad_coef`` (K, d) and ``grad_intercept`` (K,), both in X's dtype. Nothing
here validates its input.

Design
------
Stability
    Each row subtracts its largest score ``m`` before exponentiating, so every
    ``exp(z_k - m)`` lies in (0, 1] and the class reaching ``m`` gives exactly 1:
    one ``exp`` per class and sample serves the probabilities and the loss.
    With ``r`` the sum of the other classes' exponentials, the loss is
    ``log1p(r) + m - z[y]`` (exact when one class dominates, where
    ``log(1 + r)`` would round to 0) and, when ``y`` is that class, its residual
    ``p_y - 1`` is computed as ``-r / (1 + r)``, without cancellation.
    The ``log1p`` is only taken when the loss is asked for.
float32
    Every constant is built from X's dtype, so float32 input is computed in
    float32; only the per-chunk loss and intercept sums are float64 scalars.
Parallel reduction
    :func:`multinomial_fused_gradient` runs ``prange`` over a fixed number of
    row chunks (:func:`fastlr._kernels.n_chunks_for`), each adding into its own
    (K, d) partial, then sums the partials in chunk order: the result is
    bitwise identical for any number of threads. The partials take
    ``n_chunks * K * d`` floats, at most ``K / 2048`` times the size of X.
Row kernel
    One pass over X: a row's K scores are dot products with the rows of ``W``
    (read from cache), then its K residuals are added into the gradient, while
    the row is still in L1.

Numba's on-disk cache keys on this file only: :func:`fastlr._kernels.learning_rate`
and :func:`fastlr._kernels.n_chunks_for` are imported, so a change to them needs
the cache cleared (``__pycache__/_multinomial.*.nbi``).
"""

import numpy as np
from numba import prange

from ._jit import kernel
from ._kernels import learning_rate, n_chunks_for

# --------------------------------------------------------------------------
# One row: scores, softmax residual and loss, gradient update.
# --------------------------------------------------------------------------


@kernel
def _row_scores(X, i, coef, intercept, scale, z):
    """Write ``scale * (coef @ X[i]) + intercept`` into ``z`` (length K)."""
    d = X.shape[1]
    for k in range(coef.shape[0]):
        dot = X.dtype.type(0)
        for j in range(d):
            dot += coef[k, j] * X[i, j]
        z[k] = scale * dot + intercept[k]


@kernel
def softmax_residual(z, label, weight, with_loss):
    """Replace scores ``z`` by ``weight * (softmax(z) - e_label)``; return the loss.

    Parameters
    ----------
    z : ndarray of shape (n_classes,)
        The scores of one sample; overwritten.
    label : int
        The sample's class.
    weight : float of z's dtype
        The sample's weight.
    with_loss : bool
        Whether to compute the loss (0 is returned otherwise).

    Returns
    -------
    loss : float of z's dtype
        ``weight * (logsumexp(z) - z[label])``.
    """
    n_classes = z.shape[0]
    one = z.dtype.type(1)
    top = 0
    for k in range(1, n_classes):
        if z[k] > z[top]:
            top = k
    shift = z[top]
    margin = shift - z[label]
    for k in range(n_classes):
        z[k] = np.exp(z[k] - shift)
    z[top] = one - one
    rest = z.dtype.type(0)
    for k in range(n_classes):
        rest += z[k]
    z[top] = one
    inv = one / (one + rest)
    residual_label = -rest * inv if label == top else z[label] * inv - one
    for k in range(n_classes):
        z[k] *= weight * inv
    z[label] = weight * residual_label
    return weight * (np.log1p(rest) + margin) if with_loss else one - one


@kernel
def _add_row_outer(X, i, r, out):
    """``out += r X[i]^T``: ``out`` of shape (K, d), ``r`` of shape (K,)."""
    d = X.shape[1]
    for k in range(out.shape[0]):
        rk = r[k]
        for j in range(d):
            out[k, j] += rk * X[i, j]


# --------------------------------------------------------------------------
# Gradient sums: serial over a range of rows, and the fused parallel pass.
# --------------------------------------------------------------------------


@kernel
def multinomial_rows_gradient(
    X, y, sw, order, start, stop, coef, intercept, with_loss, grad_coef, grad_intercept
):
    """Add the gradient sums over rows ``order[start:stop]`` (or ``start:stop``).

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    y : ndarray of shape (n_samples,)
        int64 class indices.
    sw : ndarray of shape (n_samples,) or (0,)
    order : ndarray of shape (n_order,) or (0,)
        int64 row indices.
    start, stop : int
        The range of positions in ``order`` (or of rows) summed over.
    coef : ndarray of shape (n_classes, n_features)
    intercept : ndarray of shape (n_classes,)
    with_loss : bool
        Also sum the loss; skipping it saves one ``log1p`` per sample.
    grad_coef : ndarray of shape (n_classes, n_features)
        ``sum_i sw_i (p_i - e_{y_i}) x_i^T`` is added into it.
    grad_intercept : ndarray of shape (n_classes,)
        ``sum_i sw_i (p_i - e_{y_i})`` is added into it.

    Returns
    -------
    loss_sum : float
        ``sum_i sw_i loss_i`` (0 when ``with_loss`` is false).
    """
    n_classes = coef.shape[0]
    one = X.dtype.type(1)
    has_sw = sw.shape[0] > 0
    has_order = order.shape[0] > 0
    z = np.empty(n_classes, X.dtype)
    db = np.zeros(n_classes)
    cost = 0.0
    for position in range(start, stop):
        i = order[position] if has_order else position
        _row_scores(X, i, coef, intercept, one, z)
        cost += softmax_residual(z, y[i], sw[i] if has_sw else one, with_loss)
        _add_row_outer(X, i, z, grad_coef)
        for k in range(n_classes):
            db[k] += z[k]
    for k in range(n_classes):
        grad_intercept[k] += db[k]
    return cost


@kernel(parallel=True)
def multinomial_fused_gradient(
    X, y, sw, coef, intercept, with_loss, n_chunks, grad_coef, grad_intercept
):
    """One parallel pass over X: gradient sums and, when asked, the loss sum.

    Arguments and return as :func:`multinomial_rows_gradient` over all rows;
    ``n_chunks`` is :func:`fastlr._kernels.n_chunks_for` of the number of rows.
    Bitwise identical for any number of threads.
    """
    n = X.shape[0]
    n_classes, d = coef.shape
    chunk = -(-n // n_chunks)
    partial = np.zeros((n_chunks, n_classes, d), X.dtype)
    partial_b = np.zeros((n_chunks, n_classes), X.dtype)
    partial_cost = np.zeros(n_chunks)
    no_order = np.empty(0, np.int64)
    for c in prange(n_chunks):
        start = min(c * chunk, n)
        stop = min(start + chunk, n)
        partial_cost[c] = multinomial_rows_gradient(
            X, y, sw, no_order, start, stop, coef, intercept, with_loss, partial[c], partial_b[c]
        )
    cost = 0.0
    for c in range(n_chunks):
        grad_coef += partial[c]
        grad_intercept += partial_b[c]
        cost += partial_cost[c]
    return cost


# --------------------------------------------------------------------------
# Stochastic solvers: a whole epoch per call, shuffled through ``order``.
# --------------------------------------------------------------------------


@kernel
def multinomial_sgd_epoch(
    X, y, sw, order, coef, intercept, fit_intercept, alpha, schedule, rate, t
):
    """One epoch of per-example SGD on the softmax loss with an L2 penalty.

    For each example in ``order``: ``W <- (1 - eta alpha) W - eta sw (p - e_y) x^T``
    and ``b <- b - eta sw (p - e_y)``. As in :func:`fastlr._kernels.sgd_epoch`,
    the shrinkage is kept as a scalar factor of ``W`` so the penalty costs O(1)
    per sample.

    Parameters
    ----------
    coef : ndarray of shape (n_classes, n_features)
        Updated in place.
    intercept : ndarray of shape (n_classes,)
        Updated in place.
    rate : ndarray of shape (3,)
        ``(eta0, power_t, t0)`` of the schedule.
    t : float
        Number of updates made before this epoch, plus one.

    Returns
    -------
    sum_loss : float
        Sum over the epoch of each example's weighted loss before its update.
    t : float
        The update counter after the epoch.
    """
    n_classes = coef.shape[0]
    one = X.dtype.type(1)
    has_sw = sw.shape[0] > 0
    z = np.empty(n_classes, X.dtype)
    wscale = 1.0
    sum_loss = 0.0
    for position in range(order.shape[0]):
        i = order[position]
        _row_scores(X, i, coef, intercept, X.dtype.type(wscale), z)
        sum_loss += softmax_residual(z, y[i], sw[i] if has_sw else one, True)
        eta = learning_rate(schedule, t, rate[0], rate[1], alpha, rate[2])
        if alpha > 0.0:
            wscale *= max(0.0, 1.0 - eta * alpha)
            if wscale < 1e-9:
                coef *= X.dtype.type(wscale)
                wscale = 1.0
        if fit_intercept:
            for k in range(n_classes):
                intercept[k] -= X.dtype.type(eta) * z[k]
        step = X.dtype.type(-eta / wscale) if wscale > 0.0 else one - one
        for k in range(n_classes):
            z[k] *= step
        _add_row_outer(X, i, z, coef)
        t += 1.0
    coef *= X.dtype.type(wscale)
    return sum_loss, t


@kernel
def _batch_weight(sw, order, start, stop):
    """Total weight of the rows ``order[start:stop]``."""
    if sw.shape[0] == 0:
        return float(stop - start)
    weight = 0.0
    for position in range(start, stop):
        weight += sw[order[position]]
    return weight


@kernel
def multinomial_minibatch_epoch(
    X, y, sw, order, batch_size, coef, intercept, fit_intercept, alpha, schedule, rate, t
):
    """One epoch of mini-batch SGD on the softmax loss, batches of ``batch_size``.

    Each batch takes one step along its mean gradient plus ``alpha * W``; the
    schedule's ``t`` counts batches. Arguments and returns as
    :func:`multinomial_sgd_epoch`; the loss of each batch is taken before its step.
    """
    n = order.shape[0]
    grad = np.empty_like(coef)
    grad_b = np.empty_like(intercept)
    sum_loss = 0.0
    for start in range(0, n, batch_size):
        stop = min(start + batch_size, n)
        grad[:] = 0
        grad_b[:] = 0
        sum_loss += multinomial_rows_gradient(
            X, y, sw, order, start, stop, coef, intercept, True, grad, grad_b
        )
        weight = _batch_weight(sw, order, start, stop)
        if weight <= 0.0:
            continue
        eta = learning_rate(schedule, t, rate[0], rate[1], alpha, rate[2])
        scale = X.dtype.type(eta / weight)
        shrink = X.dtype.type(eta * alpha)
        coef -= scale * grad + shrink * coef
        if fit_intercept:
            intercept -= scale * grad_b
        t += 1.0
    return sum_loss, t


# --------------------------------------------------------------------------
# The objective L-BFGS minimizes.
# --------------------------------------------------------------------------


def multinomial_gradient_sums(X, y, sw, coef, intercept, with_loss, grad_coef, grad_intercept):
    """Add the gradient sums over all rows into the buffers; return the loss sum.

    The fused parallel kernel when the rows form several chunks, the serial
    one otherwise (one chunk has nothing to share out, and waking the thread
    pool would cost more than the pass on small data).

    Parameters
    ----------
    X, y, sw, coef, intercept, with_loss, grad_coef, grad_intercept
        As for :func:`multinomial_rows_gradient`.

    Returns
    -------
    loss_sum : float
    """
    n_chunks = n_chunks_for(X.shape[0])
    if n_chunks > 1:
        return multinomial_fused_gradient(
            X, y, sw, coef, intercept, with_loss, n_chunks, grad_coef, grad_intercept
        )
    no_order = np.empty(0, np.int64)
    return multinomial_rows_gradient(
        X, y, sw, no_order, 0, X.shape[0], coef, intercept, with_loss, grad_coef, grad_intercept
    )


class MultinomialObjective:
    """Penalized mean softmax cross-entropy: the multinomial counterpart of ``Objective``.

    ``f(W, b) = sum_i sw_i loss_i / S + alpha / 2 ||W||^2`` with ``S = sum_i sw_i``
    and ``alpha = 1 / (C S)``: scikit-learn's multinomial ``LogisticRegression``
    objective divided by ``C S``, so both share their optimum. The intercept is
    not penalized.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        C-contiguous float32 or float64.
    y : ndarray of shape (n_samples,)
        int64 class indices in ``0..n_classes-1``.
    sw : ndarray of shape (n_samples,) or (0,)
        Sample weights in X's dtype, or empty for unit weights.
    n_classes : int
        Number of classes K.
    total_weight : float
        ``S``, the sum of the sample weights.
    alpha : float
        L2 strength on the mean loss (0 for no penalty).
    fit_intercept : bool
        When false the intercept gradient is reported as 0.
    """

    def __init__(self, X, y, sw, n_classes, total_weight, alpha, fit_intercept):
        self.X, self.y, self.sw = X, y, sw
        self.n_classes = n_classes
        self.total_weight = total_weight
        self.alpha = alpha
        self.fit_intercept = fit_intercept
        self._grad = np.zeros((n_classes, X.shape[1]), dtype=X.dtype)
        self._grad_b = np.zeros(n_classes, dtype=X.dtype)

    @property
    def n_params(self):
        """Length of the flattened parameters: ``K * d`` coefficients, then ``K`` intercepts."""
        return self.n_classes * (self.X.shape[1] + 1)

    def __call__(self, coef, intercept, with_loss=True):
        """Return ``(value, grad_coef, grad_intercept)`` from one pass over X.

        Parameters
        ----------
        coef : ndarray of shape (n_classes, n_features)
            C-contiguous, in X's dtype.
        intercept : ndarray of shape (n_classes,)
            In X's dtype.
        with_loss : bool, default=True
            When false, ``value`` holds only the penalty.

        Returns
        -------
        value : float
        grad_coef : ndarray of shape (n_classes, n_features)
        grad_intercept : ndarray of shape (n_classes,)
            Buffers reused across calls; copy them to keep them.
        """
        dtype = self.X.dtype
        grad, grad_b = self._grad, self._grad_b
        grad[:] = 0
        grad_b[:] = 0
        cost = multinomial_gradient_sums(
            self.X, self.y, self.sw, coef, intercept, with_loss, grad, grad_b
        )
        scale = dtype.type(1.0 / self.total_weight)
        grad *= scale
        grad_b *= scale
        value = cost / self.total_weight
        if self.alpha > 0:
            grad += dtype.type(self.alpha) * coef
            flat = coef.ravel()
            value += 0.5 * self.alpha * float(np.dot(flat, flat))
        if not self.fit_intercept:
            grad_b[:] = 0
        return value, grad, grad_b

    def unpack(self, params):
        """``(coef, intercept)`` in X's dtype from flattened parameters.

        Parameters
        ----------
        params : ndarray of shape (n_params,)

        Returns
        -------
        coef : ndarray of shape (n_classes, n_features)
        intercept : ndarray of shape (n_classes,)
        """
        dtype = self.X.dtype
        split = self.n_classes * self.X.shape[1]
        coef = np.ascontiguousarray(params[:split].reshape(self.n_classes, -1), dtype=dtype)
        intercept = np.ascontiguousarray(params[split:], dtype=dtype)
        return coef, intercept

    def value_and_grad(self, params):
        """Objective and its gradient over flattened parameters, for scipy's L-BFGS.

        Parameters
        ----------
        params : ndarray of shape (n_params,)
            ``coef.ravel()`` followed by ``intercept`` (see :meth:`unpack`).

        Returns
        -------
        value : float
        grad : ndarray of shape (n_params,), float64
        """
        value, grad, grad_b = self(*self.unpack(params))
        return value, np.concatenate([grad.ravel(), grad_b]).astype(np.float64, copy=False)
