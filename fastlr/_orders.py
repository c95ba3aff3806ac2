"""The order in which the stochastic solvers visit the rows, epoch after epoch.

In memory, :func:`row_orders` shuffles all the rows each epoch (the next
epoch's order on a second thread, for large data). Streamed from a
:class:`fastlr.Dataset`, :func:`block_plans` shuffles the order of the blocks
and, as each block is read, the rows inside it: the memory the orders take is
that of one block, whatever the number of rows.
"""

from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple

import numpy as np


def row_orders(n_samples, rng, ahead):
    """Generate each epoch's row order: the one before, shuffled by ``rng``.

    Parameters
    ----------
    n_samples : int
    rng : numpy.random.RandomState or None
        None: every epoch takes the rows in order.
    ahead : bool
        Shuffle the next order on a second thread while the caller runs the
        epoch. The orders, and the generator's state after the last order
        taken, are the same as without: a shuffle made ahead for an epoch that
        never came is undone when the generator is closed.

    Yields
    ------
    order : ndarray of shape (n_samples,)
        int64 row indices; read-only to the caller until it asks for the next.
    """
    order = np.arange(n_samples, dtype=np.int64)
    if rng is None:
        while True:
            yield order
    rng.shuffle(order)
    if not ahead:
        while True:
            yield order
            rng.shuffle(order)
    with ThreadPoolExecutor(max_workers=1) as pool:
        while True:
            before = rng.get_state()
            upcoming = pool.submit(_shuffled_copy, rng, order)
            try:
                yield order
            except GeneratorExit:
                upcoming.result()
                rng.set_state(before)
                raise
            order = upcoming.result()


def _shuffled_copy(rng, order):
    """A copy of ``order`` shuffled by ``rng``."""
    upcoming = order.copy()
    rng.shuffle(upcoming)
    return upcoming


class BlockPlan(NamedTuple):
    """One streamed epoch: the blocks to visit, in order, and how to order their rows.

    Attributes
    ----------
    blocks : ndarray of int64
        Block indices in visiting order.
    rng : numpy.random.RandomState or None
        Draws each block's row order as the block is visited (None: rows in
        order).
    """

    blocks: np.ndarray
    rng: object

    def rows(self, n_rows):
        """The row order of the next block of ``n_rows`` rows (int64)."""
        if self.rng is None:
            return np.arange(n_rows, dtype=np.int64)
        return self.rng.permutation(n_rows).astype(np.int64, copy=False)


def block_plans(blocks, block_rng, row_rng):
    """Generate each streamed epoch's :class:`BlockPlan`.

    Parameters
    ----------
    blocks : ndarray of int64
        The blocks an epoch visits (all of them, or the training share).
    block_rng : numpy.random.RandomState or None
        Shuffles the blocks' order at the start of each epoch; None keeps
        them in order (a source that can only be read sequentially).
    row_rng : numpy.random.RandomState or None
        Shuffles the rows of each block as it is visited; None keeps them in
        order.

    Yields
    ------
    plan : BlockPlan
    """
    blocks = np.asarray(blocks, dtype=np.int64)
    while True:
        order = blocks if block_rng is None else block_rng.permutation(blocks)
        yield BlockPlan(order, row_rng)
