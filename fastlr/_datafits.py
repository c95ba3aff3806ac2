"""Data terms and the penalized objective that the solvers minimize.

A data term ("datafit") owns the validated training data and runs the
kernels' contract over it (:mod:`fastlr.kernels`): gradient sums over all
rows, one SGD epoch, one mini-batch epoch, and the Gram products that bound
its curvature. The solvers only see the :class:`Datafit` protocol, so a new
storage (a streamed :class:`fastlr.Dataset`, a Dask collection) or loss is a
new datafit, not a new solver.

An in-memory datafit is composed of a storage (:class:`DenseStorage`,
:class:`CsrStorage`: the rows, their norms and Gram products) and a loss
(:class:`BinaryLoss`, :class:`MultinomialLoss`: the shapes, the curvature
bound and the label encoding); the pair picks the kernel family.

Shapes: a datafit's coefficients have shape ``coef_shape`` (``(n_features,)``
for the binary loss, ``(n_classes, n_features)`` for the multinomial one) and
its intercepts shape ``(n_outputs,)``.
"""

import math
from typing import Protocol

import numpy as np
import scipy.sparse
from sklearn.utils.extmath import row_norms

from . import _validation, kernels
from ._jit import kernel
from ._orders import row_orders
from .kernels.reduction import n_chunks_for


class Datafit(Protocol):
    """What the solvers ask of a data term.

    Attributes
    ----------
    dtype : numpy dtype
        float32 or float64: the dtype of the data, the weights and the buffers.
    n_samples, n_features : int
    coef_shape : tuple
    n_outputs : int
        Number of intercepts.
    total_weight : float
        Sum of the sample weights (``n_samples`` without weights).
    curvature : float
        Bound on the loss's second derivative in the scores.
    """

    dtype: np.dtype
    n_samples: int
    n_features: int
    coef_shape: tuple
    n_outputs: int
    total_weight: float
    curvature: float

    def gradient_sums(self, coef, intercept, with_loss, grad_coef, grad_intercept):
        """Add the gradient sums over all rows into the buffers; return the loss sum."""

    def sgd_epoch(self, order, args):
        """One per-example epoch over ``order``; returns ``(loss_sum, t)``."""

    def minibatch_epoch(self, order, batch_size, args):
        """One mini-batch epoch over ``order``; returns ``(loss_sum, t)``."""

    def epoch_orders(self, rng, ahead):
        """Generator of each epoch's order, as the epochs take it (``rng`` None: in order)."""

    def max_weighted_row_norm(self, scale, intercept_term):
        """``max_i (scale sw_i) (||x_i||^2 + intercept_term)`` (``sw_i`` 1 without weights)."""

    def gram_matvec(self, v, v0):
        """``A^T W A [v, v0]`` with ``A = [X, 1]`` and ``W`` the sample weights."""


def make_datafit(X, y, sw, total_weight, n_classes):
    """The in-memory datafit for validated X (dense or CSR) and class indices ``y``.

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
    datafit : InMemoryDatafit
    """
    storage = CsrStorage(X) if scipy.sparse.issparse(X) else DenseStorage(X)
    loss = MultinomialLoss(n_classes) if n_classes > 2 else BinaryLoss()
    return InMemoryDatafit(storage, loss, y, sw, total_weight)


class DenseStorage:
    """Rows of a C-contiguous float32/float64 ndarray.

    ``kernel_x`` is what the kernels take: the array itself.
    """

    def __init__(self, X):
        self.kernel_x = X
        self.dtype = X.dtype
        self.n_samples, self.n_features = X.shape

    def squared_row_norms(self):
        """``||x_i||^2`` of every row, as float64."""
        return row_norms(self.kernel_x, squared=True).astype(np.float64)

    def gram_matvec(self, sw, v, v0):
        """``A^T W A [v, v0]`` with ``A = [X, 1]``, by a parallel compiled pass."""
        out = np.zeros(self.n_features + 1, dtype=self.dtype)
        n_chunks = n_chunks_for(self.n_samples)
        return kernels.binary_dense.gram_matvec(
            self.kernel_x, sw, v, self.dtype.type(v0), n_chunks, out
        )


class CsrStorage:
    """Rows of a scipy.sparse CSR matrix, never densified.

    ``kernel_x`` is its :class:`fastlr.kernels.CsrArrays`.
    """

    def __init__(self, X):
        self.matrix = X
        self.kernel_x = _validation.csr_arrays(X)
        self.dtype = self.kernel_x.data.dtype
        self.n_samples, self.n_features = X.shape

    def squared_row_norms(self):
        """``||x_i||^2`` of every row, as float64."""
        return row_norms(self.matrix, squared=True).astype(np.float64)

    def gram_matvec(self, sw, v, v0):
        """``A^T W A [v, v0]`` with ``A = [X, 1]``, by scipy's sparse products."""
        z = self.matrix @ v + v0
        if sw.shape[0]:
            z *= sw
        out = np.empty(self.n_features + 1, dtype=self.dtype)
        out[: self.n_features] = self.matrix.T @ z
        out[self.n_features] = z.sum()
        return out


class BinaryLoss:
    """The seeds' binary cross-entropy: one output, 0/1 targets in the data's dtype."""

    multinomial = False
    #: Bound on the loss's second derivative in the score: sigma' <= 1/4.
    curvature = 0.25
    n_outputs = 1

    def coef_shape(self, n_features):
        return (n_features,)

    def targets(self, y, dtype):
        """Class indices 0/1 as the binary kernels take them: in the data's dtype."""
        return y.astype(dtype)


class MultinomialLoss:
    """Softmax cross-entropy over ``n_classes``: int64 class indices as targets."""

    multinomial = True
    #: The softmax Hessian in the scores, diag(p) - p p^T, is at most 1/2.
    curvature = 0.5

    def __init__(self, n_classes):
        self.n_outputs = n_classes

    def coef_shape(self, n_features):
        return (self.n_outputs, n_features)

    def targets(self, y, dtype):
        """Class indices as the multinomial kernels take them: int64."""
        return y.astype(np.int64)


class InMemoryDatafit:
    """A storage and a loss over data held in memory: a :class:`Datafit`.

    Parameters
    ----------
    storage : DenseStorage or CsrStorage
    loss : BinaryLoss or MultinomialLoss
    y : ndarray of shape (n_samples,)
        Class indices.
    sw : ndarray of shape (n_samples,) or (0,)
        Sample weights in the data's dtype, empty for unit weights.
    total_weight : float
        Sum of the sample weights.
    """

    def __init__(self, storage, loss, y, sw, total_weight):
        self.storage, self.loss = storage, loss
        self.kernels = kernels.family(storage.kernel_x, loss.multinomial)
        self.dtype = storage.dtype
        self.n_samples, self.n_features = storage.n_samples, storage.n_features
        self.coef_shape = loss.coef_shape(self.n_features)
        self.n_outputs = loss.n_outputs
        self.curvature = loss.curvature
        self.y = loss.targets(y, self.dtype)
        self.sw = sw
        self.total_weight = total_weight

    def gradient_sums(self, coef, intercept, with_loss, grad_coef, grad_intercept):
        """Add the gradient sums over all rows into the buffers; return the loss sum."""
        return self.kernels.gradient_sums(
            self.storage.kernel_x, self.y, self.sw, coef, intercept, with_loss, grad_coef,
            grad_intercept,
        )  # fmt: skip

    def sgd_epoch(self, order, args):
        """One compiled per-example epoch over ``order``; returns ``(loss_sum, t)``.

        ``args`` is a :class:`fastlr.kernels.EpochArgs`.
        """
        return self.kernels.sgd_epoch(self.storage.kernel_x, self.y, self.sw, order, args)

    def minibatch_epoch(self, order, batch_size, args):
        """One compiled mini-batch epoch over ``order``; returns ``(loss_sum, t)``."""
        return self.kernels.minibatch_epoch(
            self.storage.kernel_x, self.y, self.sw, order, batch_size, args
        )

    def epoch_orders(self, rng, ahead):
        """Each epoch's row order: :func:`fastlr._orders.row_orders` over all rows."""
        return row_orders(self.n_samples, rng, ahead)

    def max_weighted_row_norm(self, scale, intercept_term):
        """``max_i (scale sw_i) (||x_i||^2 + intercept_term)`` (``sw_i`` 1 without weights)."""
        weights = self.sw * scale if self.sw.shape[0] else 1.0
        norms = self.storage.squared_row_norms() + intercept_term
        return float(np.max(weights * norms))

    def gram_matvec(self, v, v0):
        """``A^T W A [v, v0]`` with ``A = [X, 1]`` and ``W`` the sample weights."""
        return self.storage.gram_matvec(self.sw, v, v0)


class Objective:
    """Penalized mean loss, the function every solver minimizes.

    ``f(W, b) = sum_i sw_i loss_i / S + alpha / 2 ||W||^2 + l1 ||W||_1`` with
    ``S = sum_i sw_i``. With ``alpha = (1 - r) / (C S)`` and ``l1 = r / (C S)``
    this is scikit-learn's ``LogisticRegression`` objective (``r`` its
    ``l1_ratio``) divided by ``C S``, so both share their optimum. The
    intercept is not penalized.

    Parameters
    ----------
    datafit : Datafit
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
        cost 5% of a pass on digits).
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
        largest = datafit.max_weighted_row_norm(
            n / self.total_weight, 1.0 if self.fit_intercept else 0.0
        )
        one_sample = datafit.curvature * largest + self.alpha
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
