"""fastlr's compiled kernels, and the one gradient contract of its four families.

Modules
-------
maths
    Stable sigmoid and log-loss, the vectorized exp and log1p, the loss queue
    and the row prefetch of the per-example epochs.
steps
    Schedules, penalty steps and the weight scale of the stochastic epochs
    (scikit-learn's ``WeightVector`` in one place), and :class:`EpochArgs`.
reduction
    The fixed-chunk parallel reduction (bitwise the same on any number of
    threads) and flat sums.
hardware
    The last-level cache probe.
binary_dense, binary_csr, multinomial_dense, multinomial_csr
    The four families: the binary (sigmoid) or multinomial (softmax) loss on
    dense or CSR X.

The contract
------------
Every family module exposes the same three functions, and every caller that
trains (the solvers through the datafits, the streamed passes over a
:class:`fastlr.Dataset`, the tasks on Dask workers) goes through them:

``gradient_sums(X, y, sw, coef, intercept, with_loss, grad_coef, grad_intercept) -> loss_sum``
    Adds the gradient *sums* over all rows of X into the caller's buffers and
    returns the loss sum (0.0 when ``with_loss`` is false). Sums, not means:
    calls on row blocks of a data set with the same buffers add up to the call
    on all of its rows, which is what makes out-of-core and distributed passes
    exact. The result is bitwise the same on any number of threads.
``sgd_epoch(X, y, sw, order, args) -> (loss_sum, t)``
    One per-example epoch over the rows ``order``, updating the weights in
    ``args`` (an :class:`EpochArgs`) in place.
``minibatch_epoch(X, y, sw, order, runs, batch_size, args) -> (loss_sum, t)``
    One mini-batch epoch: batches of ``batch_size`` positions cut from each
    run of ``runs`` in turn, never spanning two (a run's last batch may be
    short).

The arguments, in X's dtype (float32 or float64) unless said otherwise:

``X``
    A C-contiguous ndarray of shape (n_samples, n_features) for the dense
    families; a :class:`CsrArrays` for the CSR ones.
``y``
    Binary: 0/1 targets in X's dtype. Multinomial: int64 class indices.
``sw``
    Sample weights of shape (n_samples,), or an empty array for unit weights.
``coef``, ``grad_coef``
    Shape (n_features,) for binary, (n_classes, n_features) for multinomial.
``intercept``, ``grad_intercept``
    Shape (1,) for binary, (n_classes,) for multinomial.
``order``
    int64 row indices: position ``k`` of an epoch is row ``order[k]``. The
    mini-batch epochs also take an empty ``order``: position ``k`` is then row
    ``k``, and a run of positions is a run of contiguous rows, read in place.
``runs``
    int64 array of shape (n_runs, 2): ``[start, stop)`` ranges of positions,
    in visiting order (``[[0, n_samples]]``: one run over the whole order).

Nothing here validates its input: :mod:`fastlr._validation` does, once. The
measurements behind the kernels' constants and code shapes are in
``docs/design.md``.
"""

import numpy as np

from . import binary_csr, binary_dense, multinomial_csr, multinomial_dense
from .binary_csr import CsrArrays
from .steps import EpochArgs

__all__ = ["CsrArrays", "EpochArgs", "family", "gradient_sums"]


def family(X, multinomial):
    """The kernel module for X's storage and the loss.

    Parameters
    ----------
    X : ndarray or CsrArrays
    multinomial : bool
        True for the softmax loss, False for the binary one.

    Returns
    -------
    module
        One of :mod:`.binary_dense`, :mod:`.binary_csr`,
        :mod:`.multinomial_dense`, :mod:`.multinomial_csr`.
    """
    if isinstance(X, CsrArrays):
        return multinomial_csr if multinomial else binary_csr
    if isinstance(X, np.ndarray):
        return multinomial_dense if multinomial else binary_dense
    raise TypeError(f"X must be an ndarray or CsrArrays, got {type(X).__name__}.")


def gradient_sums(X, y, sw, coef, intercept, with_loss, grad_coef, grad_intercept):
    """The contract's gradient for any family, chosen by X's type and ``coef.ndim``.

    See the module docstring for the arguments. Returns the loss sum.
    """
    module = family(X, coef.ndim == 2)
    return module.gradient_sums(X, y, sw, coef, intercept, with_loss, grad_coef, grad_intercept)
