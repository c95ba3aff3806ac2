"""Steps of the stochastic epochs: schedules, penalties, and the weight scale.

As scikit-learn's ``WeightVector``, the epochs keep the L2 shrinkage as a
scalar factor ``wscale`` of the stored weights (so a step costs the row's
non-zeros, not the number of features), fold it back into the weights when it
gets small (:func:`shrink`, :func:`rescale`), take L1 as the cumulative
truncation of Tsuruoka et al. (:func:`truncate`) or the proximal step
(:func:`soft_threshold`), and keep the running average of averaged SGD
(:func:`average_step`), lazily on sparse rows (:func:`lazy_average_step`,
:func:`fold_average`). The epoch kernels call these helpers rather than write
the steps out, except where a call measured slower (each such place says so).

:class:`EpochArgs` names what a solver hands to an epoch kernel.
"""

from typing import NamedTuple

import numpy as np

from .._jit import kernel

# Schedules: scikit-learn's SGD ones, and HARMONIC, fastlr's "auto" decay.
CONSTANT, INVSCALING, OPTIMAL, HARMONIC = 0, 1, 2, 3


class EpochArgs(NamedTuple):
    """What an sgd or mini-batch epoch kernel takes after the data and the row order.

    The arrays are updated in place by the epoch; ``t`` comes back as the
    epoch's second return value.

    Attributes
    ----------
    coef : ndarray of shape (n_features,) or (n_classes, n_features)
        The weights, in the data's dtype.
    intercept : ndarray of shape (1,) or (n_classes,)
    fit_intercept : bool
    alpha, l1 : float
        L2 and L1 strengths on the mean loss; ``alpha + l1`` drives the
        "optimal" schedule.
    l1_state : ndarray of shape (coef.size + 1,)
        The cumulative L1 state of :func:`truncate` (per weight, then the
        total); sgd only.
    schedule : int
        ``CONSTANT``, ``INVSCALING``, ``OPTIMAL`` or ``HARMONIC``.
    rate : ndarray of shape (3,)
        ``(eta0, power_t, t0)`` of the schedule (see :func:`learning_rate`).
    t : float
        Updates made so far, plus one.
    average_start : float
        Averaged SGD from update ``average_start`` on; 0 turns it off (sgd only).
    avg_coef, avg_intercept : ndarray
        The running averages (empty when not averaging).
    """

    coef: np.ndarray
    intercept: np.ndarray
    fit_intercept: bool
    alpha: float
    l1: float
    l1_state: np.ndarray
    schedule: int
    rate: np.ndarray
    t: float
    average_start: float = 0.0
    avg_coef: np.ndarray | None = None
    avg_intercept: np.ndarray | None = None

    def minibatch(self):
        """The arguments the mini-batch epochs take (no averaging)."""
        return self[:9]


@kernel
def learning_rate(schedule, t, eta0, power_t, alpha, t0):
    """Step size at update ``t`` (counted from 1).

    ``CONSTANT``, ``INVSCALING`` and ``OPTIMAL`` as scikit-learn's SGD;
    ``HARMONIC`` is ``eta0 / (1 + (t - 1) / t0)``: the step starts at ``eta0``
    and halves after ``t0`` updates, which is the "optimal" decay
    ``1 / (lambda t)`` for ``lambda = 1 / (eta0 t0)`` (``t0`` infinite: constant).
    """
    if schedule == OPTIMAL:
        return 1.0 / (alpha * (t0 + t - 1.0))
    if schedule == HARMONIC:
        return eta0 / (1.0 + (t - 1.0) / t0)
    if schedule == INVSCALING:
        return eta0 / t**power_t
    return eta0


@kernel
def truncate(coef, j, wscale, l1_state):
    """Cumulative L1 step on ``coef[j]`` (stored divided by ``wscale``).

    ``l1_state[-1]`` is the total penalty ``u`` so far, ``l1_state[j]`` what
    weight ``j`` has received: it moves toward 0 by at most ``u - q_j``.
    """
    u = l1_state[l1_state.shape[0] - 1]
    before = coef[j]
    if before > 0:
        coef[j] = max(0.0, before - (u + l1_state[j]) / wscale)
    elif before < 0:
        coef[j] = min(0.0, before + (u - l1_state[j]) / wscale)
    l1_state[j] += wscale * (coef[j] - before)


@kernel
def batch_weight(sw, order, start, stop):
    """Total sample weight of the rows ``order[start:stop]`` (their count without weights)."""
    if sw.shape[0] == 0:
        return float(stop - start)
    weight = 0.0
    for k in range(start, stop):
        weight += sw[order[k]]
    return weight


@kernel
def soft_threshold(coef, threshold):
    """``coef <- sign(coef) max(|coef| - threshold, 0)``, in place: the L1 prox."""
    for j in range(coef.shape[0]):
        c = coef[j]
        if c > threshold:
            coef[j] = c - threshold
        elif c < -threshold:
            coef[j] = c + threshold
        else:
            coef[j] = 0


@kernel
def rescale(coef, wscale):
    """Fold the scalar weight factor back into ``coef``."""
    factor = coef.dtype.type(wscale)
    for j in range(coef.shape[0]):
        coef[j] *= factor


@kernel
def shrink(coef, wscale, factor):
    """The weight scale times ``max(factor, 0)``, folded into ``coef`` (1-D) below 1e-9."""
    wscale *= max(0.0, factor)
    if wscale < 1e-9:
        rescale(coef, wscale)
        wscale = 1.0
    return wscale


@kernel
def lazy_average_step(avg_coef, lazy, wscale, count):
    """Running-mean step ``A <- A + (W - A) / count`` on ``A = (avg_coef + a V) / b``.

    With ``W = wscale V``: ``b <- b / (1 - 1/count)``, then ``a <- a + wscale b /
    count``; the first step (``count`` 1) sets ``A = W`` (one O(n_features) pass).
    """
    if count <= 1.0:
        avg_coef[:] = 0
        lazy[0] = wscale
        lazy[1] = 1.0
    else:
        lazy[1] /= 1.0 - 1.0 / count
        lazy[0] += wscale * lazy[1] / count


@kernel
def fold_average(coef, avg_coef, lazy):
    """``avg_coef <- (avg_coef + a coef) / b``, ``(a, b) <- (0, 1)``: the average made explicit."""
    a = coef.dtype.type(lazy[0])
    inv_b = coef.dtype.type(1.0 / lazy[1])
    for j in range(coef.shape[0]):
        avg_coef[j] = (avg_coef[j] + a * coef[j]) * inv_b
    lazy[0] = 0.0
    lazy[1] = 1.0


@kernel
def shrink_kept(coef, wscale, factor, averaging, avg_coef, lazy):
    """:func:`shrink`; with ``averaging``, the lazy average is folded first.

    ``coef`` and ``avg_coef`` are 1-D (flat views for the multinomial weights).
    While the average is lazy (``a`` non-zero), the scale is folded below 0.5,
    not 1e-9: ``avg_coef + a coef`` cancels about ``1 / wscale`` ulps (coef
    holds W / wscale), which must stay small in float32. That is one O(d) fold
    every ``ln 2 / (eta alpha)`` updates.
    """
    wscale *= max(0.0, factor)
    if wscale < (0.5 if lazy[0] != 0.0 else 1e-9):
        if averaging:
            fold_average(coef, avg_coef, lazy)
        rescale(coef, wscale)
        wscale = 1.0
    return wscale


@kernel
def truncate_kept(coef, j, wscale, l1_state, avg_coef, a):
    """:func:`truncate`, offset in the lazy average (``a`` 0: none)."""
    before = coef[j]
    truncate(coef, j, wscale, l1_state)
    if a != 0.0:
        avg_coef[j] -= coef.dtype.type(a) * (coef[j] - before)


@kernel
def scale_2d(a, factor):
    """``a *= factor`` for a 2-D array (a loop: array expressions compile slowly)."""
    for k in range(a.shape[0]):
        for j in range(a.shape[1]):
            a[k, j] *= factor


@kernel
def average_step(w, wscale, mu, avg):
    """One running-mean step ``avg <- avg + mu (wscale w - avg)``, explicit, over 1-D arrays.

    The dense epochs' average (``w`` the stored weights, or the intercept with
    ``wscale`` 1); the CSR epochs keep theirs lazily (:func:`lazy_average_step`).
    """
    scale = w.dtype.type(wscale)
    step = w.dtype.type(mu)
    for j in range(w.shape[0]):
        avg[j] += step * (scale * w[j] - avg[j])
