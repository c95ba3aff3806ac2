"""Streamed training: a datafit over a :class:`fastlr.Dataset`, one block in memory at a time.

A pass over the data reads the blocks in a fixed order, the next one on a
second thread while the kernels compute the current one (they release the
GIL), and adds each block's gradient sums into the same buffers through the
kernels' contract (:mod:`fastlr.kernels`). The additions happen in the same
order on every pass, so a streamed fit is bitwise reproducible, and it equals
the in-memory fit on the same rows up to the rounding of that order.

The stochastic epochs visit the blocks in an order shuffled from the solver's
generator and shuffle the rows inside each block as it is read
(:func:`fastlr._orders.block_plans`); the update counter, the schedule, the
L1 state and the averages carry from block to block as they do from one
``partial_fit`` call to the next.

What the process holds: the block being computed, the one being read, the
model and O(n_features) state, whatever the number of rows.
"""

from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple

import numpy as np
import scipy.sparse

from . import _validation, kernels
from ._datafits import BinaryLoss, MultinomialLoss, squared_row_norms, weighted_scores
from ._orders import block_plans, whole_run
from .kernels.reduction import n_chunks_for


class PreparedBlock(NamedTuple):
    """A block as the kernels take it.

    Attributes
    ----------
    X : ndarray or CsrArrays
        The rows, in the training dtype.
    y : ndarray
        Targets: 0/1 in the training dtype (binary) or int64 class indices.
    sw : ndarray
        Sample weights times class weights in the training dtype, or empty.
    matrix : ndarray or scipy.sparse.csr_matrix
        The rows as the block held them (for norms and Gram products).
    n_rows : int
    """

    X: object
    y: np.ndarray
    sw: np.ndarray
    matrix: object
    n_rows: int


class BlockEncoder:
    """Turns the blocks of a :class:`fastlr.Dataset` into :class:`PreparedBlock`.

    Parameters
    ----------
    classes : ndarray of shape (n_classes,)
        The sorted labels of the fit.
    dtype : numpy dtype
        The training dtype.
    class_weight : ndarray of shape (n_classes,) or None
        Weight of each class, multiplying the sample weights.
    source : str
        How error messages name the data.
    """

    def __init__(self, classes, dtype, class_weight=None, source="the dataset"):
        self.classes = np.asarray(classes)
        self.multinomial = self.classes.shape[0] > 2
        self.dtype = np.dtype(dtype)
        self.class_weight = class_weight
        self.source = source

    def __call__(self, block, index):
        """The kernels' arguments for ``block``, the dataset's block number ``index``."""
        if block.y is None:
            raise ValueError(
                f"Block {index} of {self.source} has no labels; training needs the label "
                f"column (pass label= to fastlr.Dataset)."
            )
        labels = self.class_indices(np.asarray(block.y), index)
        targets = labels if self.multinomial else labels.astype(self.dtype)
        return PreparedBlock(
            self._rows(block.X),
            targets,
            self._weights(block.sample_weight, labels),
            block.X,
            block.X.shape[0],
        )

    def class_indices(self, y, index):
        """Class index (int64) of each label of block ``index``; unknown labels raise."""
        classes = self.classes
        position = np.searchsorted(classes, y)
        found = classes[np.minimum(position, classes.shape[0] - 1)] == y
        if not found.all():
            raise ValueError(self.unknown_labels(index, np.unique(y[~found])[:5].tolist()))
        return position.astype(np.int64, copy=False)

    def unknown_labels(self, index, unknown):
        """The message for labels of block ``index`` that the first pass did not find."""
        return (
            f"Block {index} of {self.source} holds labels that are not among the classes "
            f"{self.classes.tolist()} the first pass found: {unknown}. The data changed since "
            f"it was scanned; scan it again (a new fastlr.Dataset) and refit."
        )

    def _rows(self, X):
        if scipy.sparse.issparse(X):
            arrays = _validation.csr_arrays(X)
            if arrays.data.dtype != self.dtype:
                arrays = arrays._replace(data=arrays.data.astype(self.dtype))
            return arrays
        return np.ascontiguousarray(X, dtype=self.dtype)

    def row_weights(self, sample_weight, labels):
        """Each row's sample weight times its class's weight (None: all ones)."""
        weights = None
        if sample_weight is not None:
            weights = np.asarray(sample_weight, dtype=self.dtype)
        if self.class_weight is not None:
            per_row = self.class_weight[labels].astype(self.dtype)
            weights = per_row if weights is None else weights * per_row
        return weights

    def _weights(self, sample_weight, labels):
        weights = self.row_weights(sample_weight, labels)
        if weights is None:
            return np.empty(0, self.dtype)
        return np.ascontiguousarray(weights)


def read_ahead(read, keys):
    """Yield ``read(key)`` for each key, reading the next one on a thread meanwhile.

    One reader thread, so a sequential source is read in order; at most two
    results exist at a time (the one yielded and the one being read). An
    exception in ``read`` is raised here, at the block it concerns.
    """
    keys = iter(keys)
    first = next(keys, None)
    if first is None:
        return
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="fastlr-read") as pool:
        upcoming = pool.submit(read, first)
        for key in keys:
            current = upcoming.result()
            upcoming = pool.submit(read, key)
            yield current
        yield upcoming.result()


class StreamedDatafit:
    """A :class:`fastlr._datafits.Datafit` over the blocks of a :class:`fastlr.Dataset`.

    Parameters
    ----------
    dataset : fastlr.Dataset
        Scanned already (its ``info`` is read here).
    loss : BinaryLoss or MultinomialLoss
    encoder : BlockEncoder
    total_weight : float
        Sum over all rows of the sample weights times the class weights.
    blocks : ndarray of int64, optional
        The blocks this datafit trains on (all of them by default; early
        stopping holds some out).

    Attributes
    ----------
    progress : fastlr._progress.Progress or None
        Reports every pass (rows/s, MB/s, ETA) when set.
    passes : int
        Passes over the data so far.
    """

    def __init__(self, dataset, loss, encoder, total_weight, blocks=None):
        self.progress = None
        self.passes = 0
        info = dataset.info
        self.dataset, self.loss, self.encoder = dataset, loss, encoder
        self.blocks = np.arange(len(info.block_rows)) if blocks is None else np.asarray(blocks)
        self.dtype = np.dtype(encoder.dtype)
        self.n_features = info.n_features
        self.n_samples = int(sum(info.block_rows[k] for k in self.blocks))
        self.coef_shape = loss.coef_shape(self.n_features)
        self.n_outputs = loss.n_outputs
        self.curvature = loss.curvature
        self.total_weight = total_weight
        # _row_norm_statistics: {(intercept_term, feature_scale): {(kind, scale): value}}
        self._row_norms = {}
        self.kernels = kernels.family(
            kernels.CsrArrays(None, None, None, 0) if info.sparse else np.empty(0),
            loss.multinomial,
        )

    def hold_out(self, fraction, random_state):
        """Split off a share of the blocks for early stopping.

        Returns the datafit of the training blocks (its total weight counted
        by a pass over their labels and weights) and ``(dataset, held-out
        blocks)``. The blocks are drawn by ``random_state``.
        """
        from sklearn.utils import check_random_state

        n_blocks = self.blocks.shape[0]
        n_held = round(fraction * n_blocks)
        if n_blocks < 2 or not 0 < n_held < n_blocks:
            raise ValueError(
                f"early_stopping holds out validation_fraction={fraction} of the {n_blocks} "
                f"blocks of {self.encoder.source}, which leaves "
                f"{'no block' if n_held == 0 else 'no training block'}. Use smaller blocks "
                f"(block_rows=), another validation_fraction, or pass validation= a Dataset."
            )
        rng = check_random_state(random_state)
        held = np.sort(rng.permutation(self.blocks)[:n_held])
        train = np.setdiff1d(self.blocks, held)
        datafit = StreamedDatafit(self.dataset, self.loss, self.encoder, 1.0, train)
        datafit.progress = self.progress
        datafit.total_weight = datafit.weight_sum()
        return datafit, (self.dataset, held)

    def weight_sum(self):
        """Sum of the sample weights times the class weights over this datafit's blocks."""
        total = 0.0
        for block in self.prepared_blocks(what="weights"):
            total += float(block.sw.sum(dtype=np.float64)) if block.sw.shape[0] else block.n_rows
        return total

    def prepared_blocks(self, order=None, what="pass"):
        """The prepared blocks in ``order`` (default: this datafit's blocks in order).

        One pass over the data: counted in ``passes`` and reported to
        ``progress`` as ``what`` when it is set.
        """
        order = self.blocks if order is None else order
        self.passes += 1
        blocks = read_ahead(self._read, order) if self.dataset.random_access else None
        blocks = self._sequential(order) if blocks is None else blocks
        if self.progress is None:
            yield from blocks
            return
        with self.progress.pass_bar(f"{what} {self.passes}", self.n_samples) as bar:
            for block in blocks:
                yield block
                bar.update(block.n_rows, _nbytes(block.matrix))

    def _read(self, index):
        return self.encoder(self.dataset.read_block(int(index)), int(index))

    def _sequential(self, order):
        """A sequential source read from its start; the blocks outside ``order`` skipped."""
        wanted = set(int(k) for k in order)
        if list(order) != sorted(wanted):
            raise ValueError(
                "This dataset is read sequentially (CSV, LIBSVM, an iterable) and cannot visit "
                "its blocks in another order; convert it to a binary cache "
                "(Dataset.to_cache) for shuffled blocks."
            )
        self.dataset.reset()
        n_blocks = len(self.dataset.info.block_rows)

        def read(index):
            block = self.dataset.next_block()
            if block is None:
                raise ValueError(
                    f"{self.encoder.source} ended after {index} blocks; the first pass found "
                    f"{n_blocks}. The data changed since it was scanned."
                )
            return self.encoder(block, index) if index in wanted else None

        for prepared in read_ahead(read, range(n_blocks)):
            if prepared is not None:
                yield prepared

    def gradient_sums(self, coef, intercept, with_loss, grad_coef, grad_intercept):
        """One pass: every block's gradient sums added into the buffers, in block order."""
        cost = 0.0
        for block in self.prepared_blocks():
            cost += self.kernels.gradient_sums(
                block.X, block.y, block.sw, coef, intercept, with_loss, grad_coef, grad_intercept
            )
        return cost

    def epoch_orders(self, rng, ahead, blocks=False, batch_size=1):
        """Each epoch's :class:`fastlr._orders.BlockPlan` (``ahead`` and ``batch_size`` do
        not apply).

        The dataset's blocks in an order shuffled by ``rng`` (in order for a
        sequential source), and the rows of each shuffled too unless
        ``blocks``. A sequential source cannot shuffle its blocks, so with
        ``blocks`` nothing would be shuffled: that raises a ValueError.
        """
        if blocks and rng is not None and not self.dataset.random_access:
            raise ValueError(
                "shuffle='blocks' visits the blocks in a shuffled order, which this dataset "
                "cannot do: it is read sequentially (CSV, LIBSVM, an iterable). Convert it to a "
                "binary cache (Dataset.to_cache), or use shuffle=True to shuffle the rows inside "
                "each block."
            )
        shuffle_blocks = rng if self.dataset.random_access else None
        return block_plans(self.blocks, shuffle_blocks, None if blocks else rng)

    def sgd_epoch(self, plan, args):
        """One per-example epoch over the plan's blocks; returns ``(loss_sum, t)``."""
        return self._epoch(plan, args, self.kernels.sgd_epoch)

    def minibatch_epoch(self, plan, batch_size, args):
        """One mini-batch epoch; batches do not span blocks. Returns ``(loss_sum, t)``."""

        def run(X, y, sw, order, block_args):
            runs = whole_run(order.shape[0])
            return self.kernels.minibatch_epoch(X, y, sw, order, runs, batch_size, block_args)

        return self._epoch(plan, args, run)

    def _epoch(self, plan, args, run):
        total, t = 0.0, args.t
        for block in self.prepared_blocks(plan.blocks, "epoch pass"):
            order = plan.rows(block.n_rows)
            loss, t = run(block.X, block.y, block.sw, order, args._replace(t=t))
            total += loss
        return total, t

    def max_weighted_row_norm(self, scale, intercept_term, feature_scale=1.0):
        """``max_i (scale sw_i) (||s x_i||^2 + s^2 intercept_term)``, in one pass.

        The pass also sums the row norms as :meth:`mean_weighted_row_norm`
        does, and keeps both: see :meth:`_row_norm_statistics`.
        """
        largest, _ = self._row_norm_statistics(scale, 1.0, intercept_term, feature_scale)
        return largest

    def mean_weighted_row_norm(self, scale, intercept_term, feature_scale=1.0):
        """``mean_i (scale sw_i) (||s x_i||^2 + s^2 intercept_term)``, in one pass.

        The pass also finds the largest as :meth:`max_weighted_row_norm` does,
        and keeps both: see :meth:`_row_norm_statistics`.
        """
        max_scale = self._step_weight_scale()
        _, total = self._row_norm_statistics(max_scale, scale, intercept_term, feature_scale)
        return total / max(self.n_samples, 1)

    def _step_weight_scale(self):
        """``n / W``: the weight scale minibatch's "auto" step asks the largest row norm at.

        See :meth:`fastlr._datafits.Objective.minibatch_lipschitz_constant`.
        """
        return self.n_samples / self.total_weight if self.total_weight else 1.0

    def _row_norm_statistics(self, max_scale, sum_scale, intercept_term, feature_scale):
        """``(max_i, sum_i)`` of the weighted row norms, at their own weight scales.

        The "auto" step of minibatch asks for the largest at ``n / W`` and the
        mean at 1: both come from the first pass and are kept, so the step
        reads the data once for them instead of twice. Each is computed per
        block by the same expression as when asked for alone, so a fit's step
        is bitwise the same whichever is asked first.
        """
        key = (intercept_term, feature_scale)
        kept = self._row_norms.get(key, {})
        wanted = {("max", max_scale), ("sum", sum_scale)}
        if wanted - kept.keys():
            largest = total = 0.0
            for block in self.prepared_blocks():
                norms = squared_row_norms(block.matrix, feature_scale)
                norms += intercept_term * feature_scale * feature_scale
                has_sw = block.sw.shape[0] > 0
                weights = block.sw * max_scale if has_sw else 1.0
                if block.n_rows:
                    largest = max(largest, float(np.max(weights * norms)))
                weights = block.sw * sum_scale if has_sw else 1.0
                total += float(np.sum(weights * norms))
            kept = {("max", max_scale): largest, ("sum", sum_scale): total}
            self._row_norms[key] = kept
        return kept[("max", max_scale)], kept[("sum", sum_scale)]

    def gram_matvec(self, v, v0, weight_scale=1.0):
        """``A^T (c W) A [v, v0]`` with ``A = [X, 1]``, summed over the blocks in one pass."""
        out = np.zeros(self.n_features + 1, dtype=self.dtype)
        v0 = self.dtype.type(v0)
        for block in self.prepared_blocks():
            if isinstance(block.X, np.ndarray):
                kernels.binary_dense.gram_matvec(
                    block.X, block.sw, v, v0, weight_scale, n_chunks_for(block.n_rows), out
                )
                continue
            z = weighted_scores(block.matrix, block.sw, v, v0, weight_scale)
            out[: self.n_features] += block.matrix.T @ z
            out[self.n_features] += z.sum()
        return out


def _nbytes(matrix):
    """Bytes of a block's rows: the array's, or a CSR matrix's data and indices."""
    if scipy.sparse.issparse(matrix):
        return matrix.data.nbytes + matrix.indices.nbytes + matrix.indptr.nbytes
    return matrix.nbytes


def no_label_error(dataset):
    """The ValueError for training on ``dataset``, which has no labels."""
    return ValueError(
        f"{dataset.source} has no labels; pass label= (a column, an index or a file) to "
        f"fastlr.Dataset to train on it."
    )


def streamed_datafit(dataset, class_weight=None, progress=False):
    """The :class:`StreamedDatafit` of a fit on ``dataset``, and its scan.

    Parameters
    ----------
    dataset : fastlr.Dataset
    class_weight : dict, "balanced" or None
    progress : bool
        Show the scan's progress bar (a first pass, for sources whose
        metadata do not say what training needs).

    Returns
    -------
    datafit : StreamedDatafit
    info : fastlr.data.DatasetInfo
    """
    info = dataset.scan(progress=progress)
    if not info.has_label:
        raise no_label_error(dataset)
    classes = info.classes
    if classes.shape[0] < 2:
        raise ValueError(
            f"{dataset.source} has only one class ({classes.tolist()[0]!r}); logistic "
            f"regression needs samples of at least two classes."
        )
    weights = _validation.class_weights(class_weight, classes, info.class_weight_sums)
    total = info.total_weight if weights is None else float(weights @ info.class_weight_sums)
    loss = MultinomialLoss(classes.shape[0]) if classes.shape[0] > 2 else BinaryLoss()
    encoder = BlockEncoder(classes, dataset.dtype, weights, dataset.source)
    return StreamedDatafit(dataset, loss, encoder, total), info


def dataset_blocks(dataset, blocks=None):
    """``(number, block)`` of ``dataset``'s blocks (all, or ``blocks``), read ahead on a thread."""
    numbers = range(dataset.n_blocks) if blocks is None else [int(k) for k in blocks]
    if dataset.random_access:
        yield from zip(numbers, read_ahead(dataset.read_block, numbers), strict=True)
        return
    wanted = set(numbers)
    dataset.reset()
    for index, block in enumerate(
        read_ahead(lambda _: dataset.next_block(), range(dataset.n_blocks))
    ):
        if index in wanted:
            yield index, block


def accuracy(dataset, encoder, coef, intercept, blocks=None):
    """Accuracy of the model ``(coef, intercept)`` over ``dataset``'s blocks.

    Weighted by the sample weights times the class weights, as the in-memory
    early stopping weighs its held-out rows.
    """
    from ._logistic import _predicted_indices

    correct = total = 0.0
    for index, block in dataset_blocks(dataset, blocks):
        labels = encoder.class_indices(np.asarray(block.y), index)
        hits = _predicted_indices(block.X, coef, intercept) == labels
        weights = encoder.row_weights(block.sample_weight, labels)
        if weights is None:
            correct += float(hits.sum())
            total += hits.shape[0]
        else:
            correct += float(weights[hits].sum(dtype=np.float64))
            total += float(weights.sum(dtype=np.float64))
    return correct / total if total > 0 else 0.0


def check_dataset_features(model, dataset):
    """Raise unless ``dataset`` has the features ``model`` was fitted on (count and names)."""
    names = getattr(model, "feature_names_in_", None)
    theirs = dataset.feature_names
    if names is not None and theirs is not None and list(names) != list(theirs):
        missing = [name for name in names if name not in set(theirs)]
        extra = [name for name in theirs if name not in set(names)]
        detail = (
            f"missing {missing[:8]}, unexpected {extra[:8]}"
            if missing or extra
            else "the same names in another order"
        )
        raise ValueError(
            f"{dataset.source} has other feature columns than the model was fitted on "
            f"({detail}). Select the model's columns, in its order, with "
            f"Dataset(..., columns=model.feature_names_in_)."
        )
    if dataset.n_features != model.n_features_in_:
        raise ValueError(
            f"{dataset.source} has {dataset.n_features} features, but the model was fitted on "
            f"{model.n_features_in_}."
        )


def prediction_columns(model, proba):
    """The columns :func:`write_predictions` writes: the label, then one per class."""
    columns = ["label"]
    if proba:
        columns += [f"proba_{label}" for label in model.classes_.tolist()]
    return columns


def write_predictions(model, dataset, path, proba=False, progress=None):
    """Predict ``dataset`` block by block into a CSV, Parquet or ``.npy`` file, atomically.

    Parameters
    ----------
    model : fastlr.LogisticRegression
        Fitted.
    dataset : fastlr.Dataset
    path : path-like
        ``.csv`` (``.csv.gz``), ``.parquet`` or ``.npy``: the format follows
        the extension. Nothing is left at ``path`` if a block fails.
    proba : bool, default=False
        Also write each class's probability.
    progress : fastlr._progress.Progress, optional

    Returns
    -------
    n_rows : int
    """
    from ._logistic import _Scores
    from .data import PredictionWriter

    check_dataset_features(model, dataset)
    columns = prediction_columns(model, proba)
    writer = PredictionWriter(path, columns)
    total = dataset.info.n_rows if progress is not None else 0
    bar = progress.pass_bar("predicting", total) if progress is not None else None
    try:
        for _, block in dataset_blocks(dataset):
            scores = _Scores(block.X, model.coef_, model.intercept_)
            values = {"label": model.classes_[scores.indices()]}
            if proba:
                for column, p in zip(columns[1:], scores.probabilities(log=False).T, strict=True):
                    values[column] = p
            writer.write(values)
            if bar is not None:
                bar.update(block.n_rows, _nbytes(block.X))
    except BaseException:
        writer.abort()
        raise
    finally:
        if bar is not None:
            bar.__exit__(None, None, None)
    writer.close()
    return writer.n_rows


def evaluate(model, dataset):
    """Log-loss, accuracy and ROC AUC of a fitted model on ``dataset``'s labels.

    The log-loss and accuracy are weighted by the dataset's sample weights;
    the ROC AUC (one-vs-rest, macro-averaged, for more than two classes) keeps
    each row's probabilities in memory, 4 bytes a row and class. Labels the
    model does not know count as errors (their probabilities are 0).

    Returns
    -------
    metrics : dict
        ``n_rows``, ``log_loss``, ``accuracy``, ``roc_auc`` (None when the
        labels hold one class only).
    """
    from sklearn.metrics import roc_auc_score

    from ._logistic import _Scores

    check_dataset_features(model, dataset)
    if not dataset.has_label:
        raise ValueError(f"{dataset.source} has no labels; pass label= to evaluate a model on it.")
    classes = model.classes_
    eps = np.finfo(np.float64).tiny
    loss = correct = total = 0.0
    kept_labels, kept_proba, kept_weights = [], [], []
    for _, block in dataset_blocks(dataset):
        scores = _Scores(block.X, model.coef_, model.intercept_)
        proba = scores.probabilities(log=False)
        y = np.asarray(block.y)
        position = np.minimum(np.searchsorted(classes, y), len(classes) - 1)
        known = classes[position] == y
        weights = np.ones(len(y)) if block.sample_weight is None else block.sample_weight
        p_true = np.where(known, proba[np.arange(len(y)), position], 0.0)
        loss -= float(weights @ np.log(np.maximum(p_true, eps)))
        correct += float(weights @ (classes[scores.indices()] == y))
        total += float(weights.sum())
        kept_labels.append(np.where(known, position, -1))
        kept_proba.append(proba.astype(np.float32))
        kept_weights.append(weights)
    labels = np.concatenate(kept_labels)
    proba = np.concatenate(kept_proba)
    weights = np.concatenate(kept_weights)
    auc = None
    present = np.unique(labels[labels >= 0])
    if present.shape[0] > 1 and (labels >= 0).all():
        if len(classes) == 2:
            auc = float(roc_auc_score(labels, proba[:, 1], sample_weight=weights))
        elif present.shape[0] == len(classes):
            auc = float(
                roc_auc_score(labels, proba, multi_class="ovr", average="macro",
                              sample_weight=weights)
            )  # fmt: skip
    return {
        "n_rows": int(labels.shape[0]),
        "log_loss": loss / total,
        "accuracy": correct / total,
        "roc_auc": auc,
    }
