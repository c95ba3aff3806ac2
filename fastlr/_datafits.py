"""Data terms and the penalized objective that the solvers minimize.

A data term ("datafit") owns the validated training data and its compiled
kernels: gradient sums over all rows, one SGD epoch, one mini-batch epoch,
and the Gram products that bound its curvature. The solvers only see this
interface, so a new loss or storage format (CSR, multinomial) is a new
datafit, not a new solver.

Shapes: a datafit's coefficients have shape ``coef_shape`` (``(n_features,)``
for the binary loss) and its intercepts shape ``(n_outputs,)`` (``(1,)``).
"""

import math

import numpy as np
import scipy.sparse
from sklearn.utils.extmath import row_norms

from . import _kernels, _multinomial, _sparse, _sparse_multinomial, _validation
from ._gradient import gradient_sums
from ._jit import kernel


def make_datafit(X, y, sw, total_weight, n_classes):
    """The datafit for validated X (dense or CSR) and class indices ``y``.

    Parameters
    ----------
    X : ndarray or scipy.sparse CSR matrix of shape (n_samples, n_features)
        float32 or float64.
    y : ndarray of shape (n_samples,)
        Class indices in ``0..n_classes-1``.
    sw : ndarray of shape (n_samples,) or (0,)
        Sample weights in X's dtype, empty for unit weights.
    total_weight : float
    n_classes : int
        2 for the binary loss, more for the multinomial one.

    Returns
    -------
    datafit : BinaryLogistic, SparseBinaryLogistic, Multinomial or SparseMultinomial
    """
    if scipy.sparse.issparse(X):
        if n_classes > 2:
            return SparseMultinomial(X, y.astype(np.int64), sw, total_weight, n_classes)
        return SparseBinaryLogistic(X, y.astype(X.dtype), sw, total_weight)
    if n_classes > 2:
        return Multinomial(X, y.astype(np.int64), sw, total_weight, n_classes)
    return BinaryLogistic(X, y.astype(X.dtype), sw, total_weight)


class BinaryLogistic:
    """Binary cross-entropy on dense X: the seeds' loss.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        C-contiguous float32 or float64.
    y : ndarray of shape (n_samples,)
        0/1 targets in X's dtype.
    sw : ndarray of shape (n_samples,) or (0,)
        Sample weights in X's dtype, empty for unit weights.
    total_weight : float
        Sum of the sample weights.
    """

    #: Bound on the loss's second derivative in the score: sigma' <= 1/4.
    curvature = 0.25

    def __init__(self, X, y, sw, total_weight):
        self.X, self.y, self.sw = X, y, sw
        self.total_weight = total_weight
        self.dtype = X.dtype
        self.n_samples, self.n_features = X.shape
        self.coef_shape = (self.n_features,)
        self.n_outputs = 1

    def gradient_sums(self, coef, intercept, with_loss, grad_coef, grad_intercept):
        """Add the gradient sums into the buffers; return the loss sum."""
        _, db, cost = gradient_sums(
            self.X,
            self.y,
            self.sw,
            coef,
            self.dtype.type(intercept[0]),
            with_loss=with_loss,
            out=grad_coef,
        )
        grad_intercept[0] += db
        return cost

    def sgd_epoch(self, order, *args):
        """One compiled per-example epoch; returns ``(loss_sum, t)``.

        ``args``: ``coef, intercept, fit_intercept, alpha, l1, l1_state,
        schedule, rate, t, average_start, avg_coef, avg_intercept`` as
        :func:`fastlr._kernels.sgd_epoch` takes them.
        """
        return _kernels.sgd_epoch(self.X, self.y, self.sw, order, *args)

    def minibatch_epoch(self, order, batch_size, *args):
        """One compiled mini-batch epoch; returns ``(loss_sum, t)`` (args as above)."""
        return _kernels.minibatch_epoch(self.X, self.y, self.sw, order, batch_size, *args)

    def squared_row_norms(self):
        """``||x_i||^2`` of every row, as float64."""
        return row_norms(self.X, squared=True).astype(np.float64)

    def gram_matvec(self, v, v0):
        """``A^T W A [v, v0]`` with ``A = [X, 1]`` and ``W`` the sample weights."""
        out = np.zeros(self.n_features + 1, dtype=self.dtype)
        n_chunks = _kernels.n_chunks_for(self.n_samples)
        return _kernels.gram_matvec(self.X, self.sw, v, self.dtype.type(v0), n_chunks, out)


class SparseBinaryLogistic(BinaryLogistic):
    """Binary cross-entropy on CSR X, through the CSR kernels (never densified).

    Parameters
    ----------
    X : scipy.sparse CSR matrix of shape (n_samples, n_features)
    y, sw, total_weight
        As for :class:`BinaryLogistic`.
    """

    def __init__(self, X, y, sw, total_weight):
        self.matrix = X
        self.csr = _validation.csr_arrays(X)
        self.X, self.y, self.sw = X, y, sw
        self.total_weight = total_weight
        self.dtype = self.csr.data.dtype
        self.n_samples, self.n_features = X.shape
        self.coef_shape = (self.n_features,)
        self.n_outputs = 1

    def gradient_sums(self, coef, intercept, with_loss, grad_coef, grad_intercept):
        """Add the gradient sums into the buffers; return the loss sum."""
        _, db, cost = _sparse.csr_gradient_sums(
            *self.csr, self.y, self.sw, coef, self.dtype.type(intercept[0]),
            with_loss=with_loss, out=grad_coef,
        )  # fmt: skip
        grad_intercept[0] += db
        return cost

    def sgd_epoch(self, order, *args):
        """One compiled per-example epoch over CSR rows."""
        data, indices, indptr, _ = self.csr
        return _sparse.csr_sgd_epoch(data, indices, indptr, self.y, self.sw, order, *args)

    def minibatch_epoch(self, order, batch_size, *args):
        """One compiled mini-batch epoch over CSR rows."""
        data, indices, indptr, _ = self.csr
        return _sparse.csr_minibatch_epoch(
            data, indices, indptr, self.y, self.sw, order, batch_size, *args
        )

    def squared_row_norms(self):
        """``||x_i||^2`` of every row, as float64."""
        return row_norms(self.matrix, squared=True).astype(np.float64)

    def gram_matvec(self, v, v0):
        """``A^T W A [v, v0]`` with ``A = [X, 1]``, by scipy's sparse products."""
        z = self.matrix @ v + v0
        if self.sw.shape[0]:
            z *= self.sw
        out = np.empty(self.n_features + 1, dtype=self.dtype)
        out[: self.n_features] = self.matrix.T @ z
        out[self.n_features] = z.sum()
        return out


class Multinomial(BinaryLogistic):
    """Softmax cross-entropy over ``n_classes`` on dense X.

    Coefficients have shape ``(n_classes, n_features)`` and intercepts
    ``(n_classes,)``.

    Parameters
    ----------
    X, sw, total_weight
        As for :class:`BinaryLogistic`.
    y : ndarray of shape (n_samples,)
        int64 class indices.
    n_classes : int
    """

    #: The softmax Hessian in the scores, diag(p) - p p^T, is at most 1/2.
    curvature = 0.5

    def __init__(self, X, y, sw, total_weight, n_classes):
        super().__init__(X, y, sw, total_weight)
        self.coef_shape = (n_classes, self.n_features)
        self.n_outputs = n_classes

    def gradient_sums(self, coef, intercept, with_loss, grad_coef, grad_intercept):
        """Add the gradient sums into the buffers; return the loss sum."""
        return _multinomial.multinomial_gradient_sums(
            self.X, self.y, self.sw, coef, intercept, with_loss, grad_coef, grad_intercept
        )

    def sgd_epoch(self, order, *args):
        """One compiled per-example epoch on the softmax loss."""
        return _multinomial.multinomial_sgd_epoch(self.X, self.y, self.sw, order, *args)

    def minibatch_epoch(self, order, batch_size, *args):
        """One compiled mini-batch epoch on the softmax loss."""
        return _multinomial.multinomial_minibatch_epoch(
            self.X, self.y, self.sw, order, batch_size, *args
        )


class SparseMultinomial(SparseBinaryLogistic):
    """Softmax cross-entropy over ``n_classes`` on CSR X (never densified).

    The CSR kernels of :mod:`fastlr._sparse_multinomial`; the Gram products
    of :class:`SparseBinaryLogistic` (they do not depend on the loss).

    Parameters
    ----------
    X : scipy.sparse CSR matrix of shape (n_samples, n_features)
    y : ndarray of shape (n_samples,)
        int64 class indices.
    sw, total_weight
        As for :class:`BinaryLogistic`.
    n_classes : int
    """

    curvature = Multinomial.curvature

    def __init__(self, X, y, sw, total_weight, n_classes):
        super().__init__(X, y, sw, total_weight)
        self.coef_shape = (n_classes, self.n_features)
        self.n_outputs = n_classes

    def gradient_sums(self, coef, intercept, with_loss, grad_coef, grad_intercept):
        """Add the gradient sums into the buffers; return the loss sum."""
        return _sparse_multinomial.csr_multinomial_gradient_sums(
            *self.csr, self.y, self.sw, coef, intercept, with_loss, grad_coef, grad_intercept
        )

    def sgd_epoch(self, order, *args):
        """One compiled per-example epoch on the softmax loss, over CSR rows."""
        data, indices, indptr, _ = self.csr
        return _sparse_multinomial.csr_multinomial_sgd_epoch(
            data, indices, indptr, self.y, self.sw, order, *args
        )

    def minibatch_epoch(self, order, batch_size, *args):
        """One compiled mini-batch epoch on the softmax loss, over CSR rows."""
        data, indices, indptr, _ = self.csr
        return _sparse_multinomial.csr_multinomial_minibatch_epoch(
            data, indices, indptr, self.y, self.sw, order, batch_size, *args
        )


class Objective:
    """Penalized mean loss, the function every solver minimizes.

    ``f(W, b) = sum_i sw_i loss_i / S + alpha / 2 ||W||^2 + l1 ||W||_1`` with
    ``S = sum_i sw_i``. With ``alpha = (1 - r) / (C S)`` and ``l1 = r / (C S)``
    this is scikit-learn's ``LogisticRegression`` objective (``r`` its
    ``l1_ratio``) divided by ``C S``, so both share their optimum. The
    intercept is not penalized.

    Parameters
    ----------
    datafit : BinaryLogistic or another datafit
    alpha : float
        L2 strength on the mean loss (0 for none).
    fit_intercept : bool
        When false the intercept gradient is reported as 0.
    l1 : float, default=0.0
        L1 strength on the mean loss (0 for none). It is not part of the
        gradient: the solvers apply it as a proximal step.
    """

    def __init__(self, datafit, alpha, fit_intercept, l1=0.0):
        self.datafit = datafit
        self.alpha = alpha
        self.l1 = l1
        self.fit_intercept = fit_intercept
        self.total_weight = datafit.total_weight
        # One flat buffer, coefficients then intercepts, in the data's dtype;
        # __call__ hands out views of it.
        split = math.prod(datafit.coef_shape)
        self._flat = np.zeros(split + datafit.n_outputs, dtype=datafit.dtype)
        self._grad = self._flat[:split].reshape(datafit.coef_shape)
        self._grad_intercept = self._flat[split:]

    def __call__(self, coef, intercept, with_loss=True):
        """Return ``(value, grad_coef, grad_intercept)`` from one pass over the data.

        The gradients are buffers reused across calls; copy them to keep them.
        """
        value = self._evaluate_into(coef, intercept, with_loss, self._flat)
        return value, self._grad, self._grad_intercept

    def _evaluate_into(self, coef, intercept, with_loss, flat):
        """The objective's value; its gradient written into ``flat``.

        ``flat`` is a buffer of the data's dtype, ``coef.size`` coefficients
        then the intercepts: the kernels add their sums into views of it, and
        one compiled call scales them and adds the penalty (six NumPy calls
        took 6 us, 5% of a pass on digits).
        """
        flat.fill(0)
        split = coef.size
        cost = self.datafit.gradient_sums(
            coef, intercept, with_loss, flat[:split].reshape(coef.shape), flat[split:]
        )
        return _finish_gradient(
            flat,
            split,
            coef.reshape(-1),
            cost,
            self.total_weight,
            self.alpha,
            self.l1,
            self.fit_intercept,
        )

    @property
    def n_params(self):
        """Length of the flattened parameters: the coefficients, then the intercepts."""
        return math.prod(self.datafit.coef_shape) + self.datafit.n_outputs

    def unpack(self, params):
        """``(coef, intercept)`` in the data's dtype from flattened parameters.

        Parameters
        ----------
        params : ndarray of shape (coef.size + n_outputs,)
            ``coef.ravel()`` followed by the intercepts.
        """
        dtype = self.datafit.dtype
        split = math.prod(self.datafit.coef_shape)
        coef = np.ascontiguousarray(params[:split].reshape(self.datafit.coef_shape), dtype=dtype)
        return coef, np.ascontiguousarray(params[split:], dtype=dtype)

    def value_and_grad(self, params):
        """Objective and its gradient over flattened parameters (as scipy's minimizers take).

        Returns
        -------
        value : float
        grad : ndarray of shape (params.size,)
            A new float64 array.
        """
        grad = np.empty(self.n_params)
        return self.value_and_grad_into(params, grad), grad

    def value_and_grad_into(self, params, out):
        """Objective over flattened parameters; its gradient is written into ``out``.

        Parameters
        ----------
        params : ndarray of shape (n_params,)
            ``coef.ravel()`` followed by the intercepts.
        out : ndarray of shape (n_params,)
            float64, receives the gradient in the same layout.

        Returns
        -------
        value : float
        """
        coef, intercept = self.unpack(params)
        if out.dtype == self.datafit.dtype:
            return self._evaluate_into(coef, intercept, True, out)
        value = self._evaluate_into(coef, intercept, True, self._flat)
        out[:] = self._flat
        return value

    def prox(self, coef, step):
        """Proximal step of the L1 term: soft-threshold ``coef`` by ``step * l1``."""
        if self.l1 > 0:
            threshold = coef.dtype.type(step * self.l1)
            np.copyto(coef, np.sign(coef) * np.maximum(np.abs(coef) - threshold, 0))
        return coef

    def minibatch_lipschitz_constant(self, batch_size):
        """Smoothness of a mini-batch gradient in expectation (Gower et al., 2019).

        ``L(B) = n (B - 1) / (B (n - 1)) L + (n - B) / (B (n - 1)) L_max``
        interpolates between the full-batch constant ``L`` (``B = n``) and the
        largest one-sample constant ``L_max`` (``B = 1``): a step of ``1 / L(B)``
        stays stable however small the batch.
        """
        datafit = self.datafit
        n = datafit.n_samples
        full = self.lipschitz_constant()
        batch = min(batch_size, n)
        if batch >= n:
            return full
        weights = datafit.sw * (n / self.total_weight) if datafit.sw.shape[0] else 1.0
        norms = datafit.squared_row_norms() + (1.0 if self.fit_intercept else 0.0)
        one_sample = datafit.curvature * float(np.max(weights * norms)) + self.alpha
        return (n * (batch - 1) * full + (n - batch) * one_sample) / (batch * (n - 1))

    @property
    def strength(self):
        """Total penalty strength, the ``alpha`` of the "optimal" schedule."""
        return self.alpha + self.l1

    def lipschitz_constant(self, n_power_iter=20, rtol=1e-3):
        """Upper estimate of the gradient's Lipschitz constant, by power iteration.

        The Hessian is at most ``curvature / S A^T W A + alpha I`` with
        ``A = [X, 1]`` (``A = X`` without intercept) and ``W`` the sample
        weights; the largest eigenvalue of ``A^T W A`` comes from a few passes
        over X. Integer weights and repeated rows give the same estimate.
        """
        datafit = self.datafit
        d = datafit.n_features
        v = np.random.default_rng(0).standard_normal(d + 1).astype(datafit.dtype)
        if not self.fit_intercept:
            v[d] = 0
        v /= np.linalg.norm(v)
        eig = 0.0
        for _ in range(n_power_iter):
            u = datafit.gram_matvec(v[:d], v[d])
            if not self.fit_intercept:
                u[d] = 0
            new_eig = float(np.linalg.norm(u))
            if new_eig == 0.0:
                break
            v = u / datafit.dtype.type(new_eig)
            converged = abs(new_eig - eig) <= rtol * new_eig
            eig = new_eig
            if converged:
                break
        scale = datafit.curvature / self.total_weight
        return scale * eig + self.alpha


@kernel
def _finish_gradient(out, split, coef, cost, total_weight, alpha, l1, fit_intercept):
    """Turn gradient sums into the objective's gradient, in place; return its value.

    ``out`` holds the sums over the samples, the ``split`` coefficients' first
    (their values in ``coef``, flat), then the intercepts'. The value is
    ``cost / S + alpha / 2 ||coef||^2 + l1 ||coef||_1`` with ``S`` the total
    weight; the intercepts are not penalized, and their gradient is 0
    without ``fit_intercept``.
    """
    squares = 0.0
    magnitudes = 0.0
    for i in range(split):
        w = coef[i]
        out[i] = out[i] / total_weight + alpha * w
        squares += w * w
        magnitudes += abs(w)
    for i in range(split, out.shape[0]):
        out[i] = out[i] / total_weight if fit_intercept else 0.0
    return cost / total_weight + 0.5 * alpha * squares + l1 * magnitudes
