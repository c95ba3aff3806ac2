"""The Python side of the reverse-communication solvers: L-BFGS and FISTA.

:mod:`fastlr._lbfgs` and :mod:`fastlr._fista` keep their whole state in a
few arrays; compiled ``start`` and ``advance`` functions do everything
between two evaluations of the objective and return a status: ``EVALUATE``
and ``NEW_ITERATE`` ask for the objective at ``x``, any other status ends
the run. :func:`drive` evaluates, reports each accepted iterate, stops at
``max_iter`` and hands the state to a checkpoint; given a saved state it
continues from it.

``max_iter`` is enforced here, not in the compiled code: an iterate
accepted at ``max_iter`` has already set up the next search, so a
checkpoint taken there continues, bit for bit, into a run resumed with a
larger ``max_iter``.
"""

from dataclasses import dataclass

import numpy as np

#: The statuses every reverse-communication solver shares.
EVALUATE, NEW_ITERATE = 0, 1


@dataclass(frozen=True)
class Layout:
    """Where a solver keeps what the driver reads.

    Attributes
    ----------
    n_iter : int
        Slot of the iteration count in ``counts``.
    objective, optimality : int
        Slots in ``scalars`` of the last iterate's objective and optimality measure.
    iterate : int
        Row of ``vectors`` holding the last accepted iterate while ``x``
        holds the next point to evaluate.
    max_iter_status : int
        The solver's status for a run that ended at ``max_iter``.
    """

    n_iter: int
    objective: int
    optimality: int
    iterate: int
    max_iter_status: int


@dataclass
class Driven:
    """What :func:`drive` ends with: the last iterate in ``x``, and the status."""

    x: np.ndarray
    objective: float
    optimality: float
    n_iter: int
    status: int


def drive(evaluate, x, g, state, begin, advance, layout, max_iter, callback=None, saver=None,
          resume=None):  # fmt: skip
    """Run a reverse-communication solver to a stopping status or ``max_iter``.

    Parameters
    ----------
    evaluate : callable
        ``evaluate(x, g)``: the objective at ``x``, its smooth gradient written into ``g``.
    x, g : ndarray
        The point to evaluate (the start) and the gradient buffer.
    state : dict of str to ndarray
        The solver's state arrays by name, with ``"vectors"``, ``"scalars"``
        and ``"counts"``; all but the settings, which are rebuilt from the
        run's parameters.
    begin : callable
        ``begin(f)``: the compiled ``start`` on the evaluated starting point.
    advance : callable
        ``advance(f)``: the compiled ``advance`` on the evaluated point ``x``.
    layout : Layout
    max_iter : int
    callback : callable, optional
        ``callback(objective, optimality)`` after each accepted iterate.
    saver : callable, optional
        ``saver(n_iter, arrays, status)`` after each accepted iterate (after
        ``callback``), with ``x`` and the state arrays (which the solver will
        change: copy what you keep) and the status: ``EVALUATE`` or
        ``NEW_ITERATE`` when the run can go on, else the final one.
    resume : tuple, optional
        ``(arrays, status)`` that ``saver`` was given: continue from there.

    Returns
    -------
    result : Driven
    """
    vectors, scalars, counts = state["vectors"], state["scalars"], state["counts"]
    arrays = {"x": x, **state}
    if resume is None:
        status = begin(evaluate(x, g))
        n_iter = 0
    else:
        saved, status = resume
        for name, value in arrays.items():
            value[...] = saved[name]
        n_iter = int(counts[layout.n_iter])
    while True:
        if counts[layout.n_iter] > n_iter:
            n_iter = int(counts[layout.n_iter])
            if callback is not None:
                callback(float(scalars[layout.objective]), float(scalars[layout.optimality]))
            if saver is not None:
                saver(n_iter, arrays, status)
        if status in (EVALUATE, NEW_ITERATE) and n_iter >= max_iter and n_iter > 0:
            # The next point is set up; the result is the last iterate.
            x[...] = vectors[layout.iterate]
            status = layout.max_iter_status
        if status not in (EVALUATE, NEW_ITERATE):
            break
        status = advance(evaluate(x, g))
    return Driven(
        x, float(scalars[layout.objective]), float(scalars[layout.optimality]), n_iter, status
    )
