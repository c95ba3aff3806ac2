"""The order in which the stochastic solvers visit the rows, epoch after epoch.

In memory, :func:`row_orders` shuffles all the rows each epoch (the next
epoch's order on a second thread, for large data). Streamed from a
:class:`fastlr.Dataset`, :func:`block_plans` shuffles the order of the blocks
and, as each block is read, the rows inside it: the memory the orders take is
that of one block, whatever the number of rows.

``shuffle="blocks"`` visits blocks of contiguous rows in a shuffled order and
keeps the rows of each block in order: the dataset's blocks when streamed,
and in memory blocks of :func:`shuffle_block_rows` rows (:func:`block_orders`,
which draws the blocks' order from :func:`block_plans`). Mini-batches are cut
from the blocks, so each reads contiguous memory.
"""

import contextlib
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple

import numpy as np

#: Bytes of rows per block of ``shuffle="blocks"`` in memory: about one core's
#: L2 cache. Runs this long read as fast as the whole array streamed in order
#: (docs/design.md); shorter blocks shuffle more finely.
SHUFFLE_BLOCK_BYTES = 1 << 20
#: Fewest blocks an in-memory epoch is cut into, where the rows allow: small
#: data keeps its blocks small enough to be shuffled.
MIN_SHUFFLE_BLOCKS = 16


class EpochOrder(NamedTuple):
    """One in-memory epoch: the positions it visits, as runs, and the row at each.

    Attributes
    ----------
    rows : ndarray of int64
        The row at each position; empty: position ``k`` is row ``k`` (the
        rows of a run are contiguous, and read in place).
    runs : ndarray of shape (n_runs, 2)
        int64 ``[start, stop)`` ranges of positions, in visiting order.
        Mini-batches are cut from each run in turn, never spanning two.
    """

    rows: np.ndarray
    runs: np.ndarray

    def row_order(self):
        """Every row the epoch visits, in visiting order (int64): the per-example order."""
        starts, stops = self.runs[:, 0], self.runs[:, 1]
        if self.rows.shape[0]:
            if self.runs.shape[0] == 1 and starts[0] == 0 and stops[0] == self.rows.shape[0]:
                return self.rows
            return np.concatenate([self.rows[a:b] for a, b in self.runs])
        lengths = stops - starts
        first = np.cumsum(lengths) - lengths  # each run's first position in the result
        offsets = np.repeat(starts - first, lengths)
        return offsets + np.arange(lengths.sum(), dtype=np.int64)


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


def whole_run(n_positions):
    """The ``runs`` of an epoch over all its ``n_positions`` positions: one run."""
    return np.array([[0, n_positions]], dtype=np.int64)


def epoch_row_orders(n_samples, rng, ahead):
    """:func:`row_orders` as :class:`EpochOrder` of one run; closing it closes them."""
    whole = whole_run(n_samples)
    orders = row_orders(n_samples, rng, ahead)
    with contextlib.closing(orders):
        for order in orders:
            yield EpochOrder(order, whole)


def shuffle_block_rows(n_samples, row_bytes, batch_size):
    """Rows per in-memory block of ``shuffle="blocks"``.

    Whole batches (so that no batch but a block's last is cut short) of about
    ``SHUFFLE_BLOCK_BYTES`` of rows, and at least one batch; fewer batches
    where the rows would otherwise make fewer than ``MIN_SHUFFLE_BLOCKS`` blocks.

    Parameters
    ----------
    n_samples : int
    row_bytes : float
        Bytes a row takes in memory (dense: ``n_features * itemsize``).
    batch_size : int
        Rows per step (1 for sgd).

    Returns
    -------
    block_rows : int
        A multiple of ``batch_size``.
    """
    batch_bytes = batch_size * max(row_bytes, 1)
    batches = max(1, int(SHUFFLE_BLOCK_BYTES // batch_bytes))
    batches = min(batches, max(1, n_samples // (MIN_SHUFFLE_BLOCKS * batch_size)))
    return batches * batch_size


def block_orders(n_samples, block_rows, rng):
    """Generate each in-memory epoch of ``shuffle="blocks"``.

    The rows are cut into blocks of ``block_rows`` contiguous rows (the last
    one holds what is left); each epoch visits every block once, in an order
    drawn from ``rng`` by :func:`block_plans` (one permutation of the blocks
    per epoch), and the rows of each block in order.

    Parameters
    ----------
    n_samples : int
    block_rows : int
    rng : numpy.random.RandomState or None
        None: the blocks in order.

    Yields
    ------
    order : EpochOrder
        Empty ``rows``; one run per block.
    """
    starts = np.arange(0, n_samples, block_rows, dtype=np.int64)
    bounds = np.stack([starts, np.minimum(starts + block_rows, n_samples)], axis=1)
    in_place = np.empty(0, dtype=np.int64)
    for plan in block_plans(np.arange(starts.shape[0]), rng, None):
        yield EpochOrder(in_place, bounds[plan.blocks])
