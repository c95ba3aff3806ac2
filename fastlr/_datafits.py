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
from ._orders import block_orders, epoch_row_orders, shuffle_block_rows
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

    def epoch_orders(self, rng, ahead, blocks=False, batch_size=1):
        """Generator of each epoch's order, as the epochs take it.

        ``rng`` None: the rows in order. ``blocks``: blocks of contiguous rows
        in an order shuffled by ``rng``, the rows of each block in order, and
        no mini-batch of ``batch_size`` rows spanning two blocks.
        """

    def max_weighted_row_norm(self, scale, intercept_term, feature_scale=1.0):
        """``max_i (scale sw_i) (||s x_i||^2 + s^2 intercept_term)`` with ``s = feature_scale``.

        ``sw_i`` is 1 without weights; ``s`` is a power of two, 1 unless the
        squares of ``x_i`` would overflow or underflow.
        """

    def mean_weighted_row_norm(self, scale, intercept_term, feature_scale=1.0):
        """``mean_i (scale sw_i) (||s x_i||^2 + s^2 intercept_term)``, ``s`` as above."""

    def gram_matvec(self, v, v0, weight_scale=1.0):
        """``A^T (c W) A [v, v0]`` with ``A = [X, 1]``, ``W`` the sample weights.

        ``c = weight_scale``, a power of two, 1 unless the products of ``A``
        would overflow or underflow.
        """


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
        self.nbytes = X.nbytes

    def squared_row_norms(self, feature_scale=1.0):
        """``||s x_i||^2`` of every row, as float64 (see :func:`squared_row_norms`)."""
        return squared_row_norms(self.kernel_x, feature_scale)

    def gram_matvec(self, sw, v, v0, weight_scale=1.0):
        """``A^T (c W) A [v, v0]`` with ``A = [X, 1]``, by a parallel compiled pass."""
        out = np.zeros(self.n_features + 1, dtype=self.dtype)
        n_chunks = n_chunks_for(self.n_samples)
        return kernels.binary_dense.gram_matvec(
            self.kernel_x, sw, v, self.dtype.type(v0), weight_scale, n_chunks, out
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
        self.nbytes = self.kernel_x.data.nbytes + self.kernel_x.indices.nbytes

    def squared_row_norms(self, feature_scale=1.0):
        """``||s x_i||^2`` of every (summed) row, as float64 (see :func:`squared_row_norms`)."""
        return squared_row_norms(self.matrix, feature_scale)

    def gram_matvec(self, sw, v, v0, weight_scale=1.0):
        """``A^T (c W) A [v, v0]`` with ``A = [X, 1]``, by scipy's sparse products."""
        z = weighted_scores(self.matrix, sw, v, v0, weight_scale)
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
        self._row_norms = (None, None)  # (feature_scale, norms) of the last request

    def gradient_sums(self, coef, intercept, with_loss, grad_coef, grad_intercept):
        """Add the gradient sums over all rows into the buffers; return the loss sum."""
        return self.kernels.gradient_sums(
            self.storage.kernel_x, self.y, self.sw, coef, intercept, with_loss, grad_coef,
            grad_intercept,
        )  # fmt: skip

    def sgd_epoch(self, order, args):
        """One compiled per-example epoch over ``order``'s rows; returns ``(loss_sum, t)``.

        ``order`` is a :class:`fastlr._orders.EpochOrder`, ``args`` a
        :class:`fastlr.kernels.EpochArgs`.
        """
        rows = order.row_order()
        return self.kernels.sgd_epoch(self.storage.kernel_x, self.y, self.sw, rows, args)

    def minibatch_epoch(self, order, batch_size, args):
        """One compiled mini-batch epoch over ``order``'s runs; returns ``(loss_sum, t)``."""
        return self.kernels.minibatch_epoch(
            self.storage.kernel_x, self.y, self.sw, order.rows, order.runs, batch_size, args
        )

    def epoch_orders(self, rng, ahead, blocks=False, batch_size=1):
        """Each epoch's :class:`fastlr._orders.EpochOrder`.

        All the rows (:func:`fastlr._orders.row_orders`, shuffled by ``rng``
        unless it is None), or with ``blocks`` the blocks of
        :func:`fastlr._orders.block_orders`, sized for ``batch_size``.
        """
        if not blocks:
            return epoch_row_orders(self.n_samples, rng, ahead)
        row_bytes = self.storage.nbytes / max(self.n_samples, 1)
        block_rows = shuffle_block_rows(self.n_samples, row_bytes, batch_size)
        return block_orders(self.n_samples, block_rows, rng)

    def max_weighted_row_norm(self, scale, intercept_term, feature_scale=1.0):
        """``max_i (scale sw_i) (||s x_i||^2 + s^2 intercept_term)``, ``s = feature_scale``.

        ``sw_i`` is 1 without weights.
        """
        weights = self.sw * scale if self.sw.shape[0] else 1.0
        norms = self._squared_row_norms(feature_scale)
        # 0 stays 0 at any scale
        return float(np.max(weights * (norms + intercept_term * feature_scale * feature_scale)))

    def mean_weighted_row_norm(self, scale, intercept_term, feature_scale=1.0):
        """``mean_i (scale sw_i) (||s x_i||^2 + s^2 intercept_term)``, ``s = feature_scale``."""
        weights = self.sw * scale if self.sw.shape[0] else 1.0
        norms = self._squared_row_norms(feature_scale)
        return float(np.mean(weights * (norms + intercept_term * feature_scale * feature_scale)))

    def _squared_row_norms(self, feature_scale):
        """The storage's row norms, kept for the next request at the same scale.

        The "auto" steps of minibatch ask for their largest and their mean
        (two passes over X, 80 ms each at 1e6 x 100 float64); one suffices.
        """
        scale, norms = self._row_norms
        if scale != feature_scale:
            norms = self.storage.squared_row_norms(feature_scale)
            self._row_norms = (feature_scale, norms)
        return norms

    def gram_matvec(self, v, v0, weight_scale=1.0):
        """``A^T (c W) A [v, v0]`` with ``A = [X, 1]``, ``W`` the sample weights."""
        return self.storage.gram_matvec(self.sw, v, v0, weight_scale)


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
        stays stable however small the batch. As :meth:`lipschitz_constant`, it
        holds for X at any scale, and is ``inf`` beyond the float64 range.
        """
        datafit = self.datafit
        n = datafit.n_samples
        full_data, full_exponent = self._data_constant()
        full = _ldexp(full_data, full_exponent) + self.alpha
        batch = min(batch_size, n)
        if batch >= n:
            return full
        weight_scale = n / self.total_weight
        intercept_term = 1.0 if self.fit_intercept else 0.0
        largest, exponent = _in_range(
            lambda s: datafit.max_weighted_row_norm(weight_scale, intercept_term, s),
            datafit.dtype,
        )
        one_data = datafit.curvature * largest
        one_sample = _ldexp(one_data, exponent) + self.alpha
        combined = (n * (batch - 1) * full + (n - batch) * one_sample) / (batch * (n - 1))
        if math.isfinite(combined):
            return combined
        # A weighted mean of the data terms (alpha is in both), on a common exponent.
        top = max(full_exponent, exponent)
        mean = _ldexp(full_data * (n * (batch - 1) / (batch * (n - 1))), full_exponent - top)
        mean += _ldexp(one_data * ((n - batch) / (batch * (n - 1))), exponent - top)
        return _ldexp(mean, top) + self.alpha

    def mean_sample_lipschitz_constant(self):
        """The mean over the samples of their own gradient's Lipschitz constant.

        ``curvature / n sum_i sw_i (||x_i||^2 + 1) + alpha`` (without the 1
        when there is no intercept): the smoothness of sgd's per-sample step,
        which scales the gradient of sample ``i`` by ``sw_i``. As
        :meth:`minibatch_lipschitz_constant`, it holds for X at any scale.
        """
        datafit = self.datafit
        intercept_term = 1.0 if self.fit_intercept else 0.0
        mean, exponent = _in_range(
            lambda s: datafit.mean_weighted_row_norm(1.0, intercept_term, s), datafit.dtype
        )
        return _ldexp(datafit.curvature * mean, exponent) + self.alpha

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

        The estimate holds for X at any scale: when a product of the passes
        leaves the data type's range, they run again on scaled operands
        (:meth:`_gram_eigenvalue`).

        Returns
        -------
        L : float
            ``inf`` above the float64 range; 0 only when the objective is
            constant (every weighted row of X zero, no intercept, no L2 term).
        """
        value, exponent = self._data_constant(n_power_iter, rtol)
        return _ldexp(value, exponent) + self.alpha

    def _data_constant(self, n_power_iter=20, rtol=1e-3):
        """The data term's constant ``curvature / S`` times the Gram eigenvalue, as
        ``(m, e)`` for ``m 2**e``."""
        eig, exponent = self._gram_eigenvalue(n_power_iter, rtol)
        return self.datafit.curvature / self.total_weight * eig, exponent

    def _gram_eigenvalue(self, n_power_iter, rtol):
        """Largest eigenvalue of ``A^T W A`` as ``(m, e)``: it is ``m 2**e``.

        Each pass computes ``t A^T W A v`` from ``v`` scaled by ``s`` and the
        weights by ``c`` (``t = s c``), both 1 unless a result leaves the data
        type's range (:func:`_out_of_range`): the iteration then goes on from
        the same vector with :func:`_gram_scales` (``e = -log2 t``), once.
        ``m`` is ``inf`` when it overflows even so.
        """
        datafit = self.datafit
        dtype = datafit.dtype
        d = datafit.n_features
        v = np.random.default_rng(0).standard_normal(d + 1).astype(dtype)
        if not self.fit_intercept:
            v[d] = 0
        v /= np.linalg.norm(v)
        scales = None
        eig = 0.0
        done = 0
        while done < n_power_iter:
            if scales is None:
                u = datafit.gram_matvec(v[:d], v[d])
            else:
                scaled = v * dtype.type(scales[0])
                u = datafit.gram_matvec(scaled[:d], scaled[d], scales[1])
            if not self.fit_intercept:
                u[d] = 0
            new_eig = _norm(u)
            trouble = _out_of_range(new_eig, dtype)
            if trouble and scales is None:
                scales, eig = _gram_scales(dtype, trouble), 0.0
                continue
            if trouble > 0:
                return math.inf, 0
            done += 1
            if new_eig == 0.0:
                break
            v = u / dtype.type(new_eig)
            converged = abs(new_eig - eig) <= rtol * new_eig
            eig = new_eig
            if converged:
                break
        if scales is None:
            return eig, 0
        return eig, -_log2(scales[0]) - _log2(scales[1])


def squared_row_norms(matrix, feature_scale=1.0):
    """``||s x_i||^2`` of every row of a dense array or a sparse matrix, as float64.

    A sparse matrix's rows are its summed ones: duplicate entries are added
    before they are squared (a canonical copy is made only of a matrix that is
    not canonical). ``s = feature_scale`` is a power of two, 1 unless the
    squares would overflow or underflow; dense rows are then scaled a block at
    a time, to bound the temporary.

    Parameters
    ----------
    matrix : ndarray or scipy.sparse matrix of shape (n_samples, n_features)
    feature_scale : float, default=1.0

    Returns
    -------
    norms : ndarray of shape (n_samples,)
    """
    if scipy.sparse.issparse(matrix):
        matrix = _canonical(matrix)
        if feature_scale != 1.0:
            matrix = matrix * matrix.dtype.type(feature_scale)
        return row_norms(matrix, squared=True).astype(np.float64)
    if feature_scale == 1.0:
        return row_norms(matrix, squared=True).astype(np.float64)
    scale = matrix.dtype.type(feature_scale)
    norms = np.empty(matrix.shape[0])
    rows = max(1, _SCALED_VALUES // max(1, matrix.shape[1]))
    for start in range(0, matrix.shape[0], rows):
        norms[start : start + rows] = row_norms(matrix[start : start + rows] * scale, squared=True)
    return norms


#: Values of a dense block that :func:`squared_row_norms` scales at once (8 MB of float64).
_SCALED_VALUES = 1 << 20


def _canonical(matrix):
    """``matrix`` as CSR in canonical form (sorted, duplicates summed): itself when it is."""
    matrix = matrix.tocsr()
    if matrix.has_canonical_format:
        return matrix
    matrix = matrix.copy()
    matrix.sum_duplicates()
    return matrix


def weighted_scores(matrix, sw, v, v0, weight_scale):
    """``c W A [v, v0]`` for a sparse ``A = [matrix, 1]``, ``c = weight_scale``:
    ``A^T`` of it is a Gram product (see :func:`fastlr.kernels.binary_dense.gram_matvec`)."""
    z = matrix @ v + v0
    if sw.shape[0]:
        z *= sw
    if weight_scale != 1.0:
        z *= matrix.dtype.type(weight_scale)
    return z


def _norm(u):
    """``||u||_2`` as a float, without overflow or underflow of the squares.

    As LAPACK's ``nrm2``: when the plain norm is not finite or small enough
    for squares to underflow, the vector is divided by its largest magnitude
    first. NaN when ``u`` holds one.
    """
    with np.errstate(over="ignore", under="ignore"):
        norm = float(np.linalg.norm(u))
    if math.isfinite(norm) and norm >= _safe_norm(u.dtype):
        return norm
    largest = float(np.max(np.abs(u), initial=0.0))
    if largest == 0.0 or not math.isfinite(largest):
        return largest
    with np.errstate(under="ignore"):
        return largest * float(np.linalg.norm(u / u.dtype.type(largest)))


def _safe_norm(dtype):
    """A norm at least this large loses at most ``eps`` of itself (relative) to each entry
    whose square underflows."""
    info = np.finfo(dtype)
    return math.sqrt(float(info.tiny) / float(info.eps))


def _out_of_range(value, dtype):
    """1 when ``value`` overflowed ``dtype`` (or is NaN), -1 when it is so small (or 0) that
    the products it came from may have lost digits to underflow, 0 otherwise."""
    info = np.finfo(dtype)
    if not value <= float(info.max):
        return 1
    if value < float(info.tiny) / float(info.eps):
        return -1
    return 0


def _mid_range_scale(dtype, trouble):
    """The power of two ``s`` that brings features whose squares overflowed
    (``trouble`` 1) or underflowed (-1) in ``dtype`` to mid-range.

    With ``M`` the largest float, ``s = M^(-3/4)`` or ``M^(3/4)``: a square
    beyond ``M`` (at most ``M^2`` times the row's length) falls to between
    ``M^(-1/2)`` and ``M^(1/2)`` times that length, and one below ``1 / M``
    rises as far.
    """
    exponent = 3 * np.finfo(dtype).maxexp // 4
    return math.ldexp(1.0, -exponent if trouble > 0 else exponent)


def _gram_scales(dtype, trouble):
    """The powers of two ``(s, c)`` for the vector and the weights of a Gram product
    ``A^T W A v`` that overflowed (``trouble`` 1) or underflowed (-1) in ``dtype``.

    A pass forms ``A v`` (``|A|``-sized for a unit ``v``), the weighted scores,
    and their products with ``A`` (``|A|^2``-sized). With ``M`` the largest
    float and ``|A| = M^a``, overflow means ``1/2 < a <= 1`` (about), and
    ``s = M^(-3/4)``, ``c = M^(-1/2)`` put the three at ``M^(a - 3/4)``,
    ``M^(a - 5/4)`` and ``M^(2a - 5/4)``: all within ``M^(-3/4)`` and ``M^(3/4)``.
    Underflow is the mirror image.
    """
    exponent = np.finfo(dtype).maxexp
    sign = -1 if trouble > 0 else 1
    return math.ldexp(1.0, sign * (3 * exponent // 4)), math.ldexp(1.0, sign * (exponent // 2))


def _in_range(evaluate, dtype):
    """``(m, e)`` with ``evaluate(1) = m 2**e``, for a quantity quadratic in X's scale.

    ``evaluate(s)`` computes it on ``s X``; when ``evaluate(1)`` leaves the
    range (:func:`_out_of_range`), it is computed again on the mid-range scale.
    """
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        value = evaluate(1.0)
    trouble = _out_of_range(value, dtype)
    if not trouble:
        return value, 0
    feature_scale = _mid_range_scale(dtype, trouble)
    return evaluate(feature_scale), -2 * _log2(feature_scale)


def _log2(power_of_two):
    return math.frexp(power_of_two)[1] - 1


def _ldexp(value, exponent):
    """``value 2**exponent``: ``inf`` above the float64 range, and below it the
    smallest positive float for a positive value (0 stays for 0 alone)."""
    if exponent == 0:
        return value
    with np.errstate(over="ignore", under="ignore"):
        result = float(np.ldexp(value, exponent))
    return math.ulp(0.0) if result == 0.0 and value > 0.0 else result


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
