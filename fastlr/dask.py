"""Logistic regression on a Dask cluster: ``fastlr.dask.LogisticRegression``.

The estimator of :class:`fastlr.LogisticRegression` (same parameters, same
objective, same fitted attributes) for data that lives on a
``dask.distributed`` cluster: dask arrays (ndarray or scipy.sparse chunks),
dask DataFrames (chunk sizes may be unknown), with sample and class weights,
and :class:`fastlr.Dataset` files (``.npy``, shards, Parquet, the binary
cache) that each worker reads itself.
As LightGBM's and XGBoost's Dask estimators do, it takes a ``client`` or
uses the current one::

    from distributed import Client
    import fastlr.dask

    client = Client("tcp://scheduler:8786")
    clf = fastlr.dask.LogisticRegression(C=1.0).fit(X, y)  # X, y: dask collections
    clf.predict(X)            # a dask array, computed block by block
    clf.to_local()            # a plain fastlr.LogisticRegression

The data stays on the workers, validated and encoded once per fit; the
solver runs on the client and each evaluation is one pass of compiled
block-gradient tasks whose sums are added in a fixed tree
(:mod:`fastlr._distributed`), so a fit reaches the in-memory optimum and is
bitwise reproducible for a given chunking. lbfgs and gd run on the cluster;
sgd and minibatch do not (see the README, "Past one machine: Dask").

Needs the ``dask`` extra: ``pip install fastlr[dask]``.
"""

try:
    import dask
    import dask.array as da
    import distributed
except ImportError as exc:  # pragma: no cover - exercised in a subprocess by the tests
    raise ImportError(
        f"fastlr.dask needs dask and distributed ({exc}); install them with "
        f"`pip install fastlr[dask]`."
    ) from exc

import time
from typing import ClassVar

import numpy as np
import scipy.sparse
from sklearn.utils._available_if import available_if
from sklearn.utils.validation import check_is_fitted

from . import _distributed
from ._checkpoint import checkpoint_params, solve_with_checkpoints
from ._datafits import BinaryLoss, MultinomialLoss
from ._logistic import LogisticRegression as _LocalLogisticRegression
from ._logistic import _encode_labels
from ._streaming import check_dataset_features
from ._threads import resolve_n_jobs
from ._validation import class_weights
from .data import Dataset

__all__ = ["LogisticRegression"]

#: Solvers that run on a cluster: exact passes over all the data.
CLUSTER_SOLVERS = ("lbfgs", "gd")
#: The fitted attributes a plain estimator needs (``to_local``).
FITTED_ATTRIBUTES = (
    "classes_",
    "coef_",
    "intercept_",
    "n_iter_",
    "history_",
    "n_features_in_",
    "feature_names_in_",
)


class LogisticRegression(_LocalLogisticRegression):
    """Logistic regression trained on a Dask cluster by fastlr's compiled kernels.

    The parameters and fitted attributes are those of
    :class:`fastlr.LogisticRegression`, with ``client`` added; the
    differences are listed here.

    Parameters
    ----------
    client : distributed.Client, default=None
        The cluster to train on; None: the current client
        (``distributed.default_client()``).
    solver : {"lbfgs", "gd"}, default="lbfgs"
        The solvers that run on a cluster. ``"sgd"`` and ``"minibatch"``
        raise a ``ValueError`` in ``fit``: their epochs are sequential, and
        averaging models trained apart does not reach the optimum that
        lbfgs reaches in a few passes.
    n_jobs : int, default=None
        numba threads of each block task on the workers. None: each host's
        cores divided by the task threads of its workers (at least 1), so
        the blocks computed at once share the cores.
    verbose : int, default=0
        Also print the preparation of the data and of the kernels (whether
        the workers compile them: the first fit on a new cluster does).
    **params
        See :class:`fastlr.LogisticRegression`.

    Attributes
    ----------
    classes_, coef_, intercept_, n_iter_, history_, n_features_in_, feature_names_in_
        As :class:`fastlr.LogisticRegression`; ``history_["time"]`` counts
        from the start of the solver, after the data and the kernels are
        ready on the workers.
    """

    _parameter_constraints: ClassVar[dict] = {
        **_LocalLogisticRegression._parameter_constraints,
        "client": "no_validation",
    }

    def __init__(
        self,
        *,
        client=None,
        solver="lbfgs",
        penalty="deprecated",
        C=1.0,
        alpha=None,
        l1_ratio=0.0,
        fit_intercept=True,
        max_iter=100,
        tol=1e-4,
        n_iter_no_change=5,
        learning_rate="auto",
        eta0=0.01,
        power_t=0.5,
        batch_size=256,
        shuffle=True,
        average=False,
        early_stopping=False,
        validation_fraction=0.1,
        class_weight=None,
        warm_start=False,
        random_state=None,
        n_jobs=None,
        verbose=0,
    ):
        super().__init__(
            solver=solver,
            penalty=penalty,
            C=C,
            alpha=alpha,
            l1_ratio=l1_ratio,
            fit_intercept=fit_intercept,
            max_iter=max_iter,
            tol=tol,
            n_iter_no_change=n_iter_no_change,
            learning_rate=learning_rate,
            eta0=eta0,
            power_t=power_t,
            batch_size=batch_size,
            shuffle=shuffle,
            average=average,
            early_stopping=early_stopping,
            validation_fraction=validation_fraction,
            class_weight=class_weight,
            warm_start=warm_start,
            random_state=random_state,
            n_jobs=n_jobs,
            verbose=verbose,
        )
        self.client = client

    # ------------------------------------------------------------------
    # Fitting
    # ------------------------------------------------------------------

    def fit(self, X, y=None, sample_weight=None, *, checkpoint=None):
        """Fit the model on a Dask cluster.

        The fitted attributes are set together once the solver has finished;
        a failed fit leaves the estimator as it was. The blocks of the fit
        are released from the workers when it ends.

        Parameters
        ----------
        X : dask array of shape (n_samples, n_features), dask DataFrame, or fastlr.Dataset
            Chunks of ndarrays or scipy.sparse matrices; float32 chunks train
            in float32. Chunk sizes may be unknown.

            A :class:`fastlr.Dataset` of files read at random (an ``.npy``
            file, a folder or glob of ``.npy`` / ``.npz`` shards, Parquet,
            the binary cache) is read by the workers themselves, one task per
            block: the client opens the files' metadata only and sends the
            dataset's arguments (relative paths made absolute), never rows.
            Every worker must see the files at the same path (a shared file
            system, or copies at the same path on every machine); a file a
            worker cannot find raises ``FileNotFoundError`` naming the path
            and the worker. The labels and weights come from the dataset
            (``y`` and ``sample_weight`` stay None); the fit reaches the
            optimum of ``fastlr.LogisticRegression().fit(dataset)``. A
            dataset in memory or read sequentially (CSV, LIBSVM, iterables)
            raises a ``TypeError``: convert it with ``dataset.to_cache(path)``
            or pass a dask collection.
        y : dask array or dask Series of shape (n_samples,)
            Labels of any type, partitioned like X (an in-memory array is
            split like X when X's chunk sizes are known). None with a Dataset.
        sample_weight : dask array or dask Series of shape (n_samples,), default=None
            Non-negative weights, partitioned like X. None with a Dataset.
        checkpoint : fastlr.Checkpoint, optional
            Save the solver's whole state on the client every ``every``
            iterations, atomically; ``Checkpoint(..., resume=True)`` continues
            an interrupted fit (same data graph, or a Dataset with the same
            :meth:`~fastlr.Dataset.fingerprint`, and the same parameters) to the
            model of a fit never interrupted, as on one machine.

        Returns
        -------
        self : LogisticRegression

        Raises
        ------
        ValueError
            Bad input; a problem found in one block (NaN, a wrong length, a
            negative weight) names that block, and for a Dataset the file
            (a :class:`fastlr.DataError`).
        TypeError
            X is neither a dask collection nor a Dataset the workers can read.
        OSError
            A Dataset's file missing or unreadable on a worker
            (``FileNotFoundError``, ...), naming the path and the worker.
        """
        self._validate_params()
        self._check_penalty()
        self._check_cluster_solver()
        client = self._get_client()
        blocks = self._row_blocks(X, y, sample_weight)
        with _distributed.ClusterData(client, blocks) as data:
            objective, classes = self._prepare(client, data)
            coef0, intercept0 = self._warm_start_point(blocks.n_features, classes)
            options = self._options(max_iter=self.max_iter, tol=self.tol)
            identity = self._checkpoint_identity((X, y, sample_weight), classes, blocks)
            result = self._solve(objective, options, coef0, intercept0, checkpoint, identity)
        features = {"n_features_in_": blocks.n_features}
        if blocks.feature_names is not None:
            features["feature_names_in_"] = blocks.feature_names
        # All fitted attributes replaced in one step, as the in-memory fit does.
        self._commit({**features, "classes_": classes, **self._result_attributes(result)})
        return self

    @staticmethod
    def _row_blocks(X, y, sample_weight):
        """The :class:`~fastlr._distributed.RowBlocks` of labelled training or scoring data."""
        if y is None and not isinstance(X, Dataset):
            raise ValueError(
                "y is required: pass the labels as a dask array or Series partitioned like X, "
                "or X as a fastlr.Dataset with label=."
            )
        return _distributed.row_blocks(X, y, sample_weight)

    def _prepare(self, client, data):
        """Validate, summarize and encode the blocks; return the objective on the cluster."""
        start = time.perf_counter()
        summary = data.validate()
        classes, _ = _encode_labels(summary.labels)
        class_weight = self._class_weights(classes, data)
        multinomial = classes.shape[0] > 2
        kinds = self._kernel_kinds(data.blocks, multinomial, summary.index_dtypes)
        n_threads = _distributed.warm_up(client, kinds, data.token, self.verbose)
        total_weight = data.encode(classes, class_weight)
        if total_weight <= 0:
            raise ValueError(
                "sample_weight sums to zero; at least one sample needs a positive weight."
            )
        n_samples = int(sum(summary.n_rows))
        loss = MultinomialLoss(classes.shape[0]) if multinomial else BinaryLoss()
        if self.n_jobs is not None:
            resolve_n_jobs(self.n_jobs)  # a bad value fails here, not on the workers
            n_threads = self.n_jobs
        datafit = data.datafit(loss, n_samples, total_weight, n_threads)
        if self.verbose:
            print(
                f"[fastlr.dask] {n_samples:,} rows x {data.blocks.n_features:,} features in "
                f"{len(data.futures)} blocks, {classes.shape[0]} classes, ready on the workers "
                f"in {time.perf_counter() - start:.2f} s",
                flush=True,
            )
        return self._penalized(datafit), classes

    def _kernel_kinds(self, blocks, multinomial, index_dtypes):
        gram = self.solver == "gd"
        if not blocks.sparse:
            return [_distributed.KernelKind(False, multinomial, blocks.dtype.name, None, gram)]
        return [
            _distributed.KernelKind(True, multinomial, blocks.dtype.name, index, gram)
            for index in sorted(index_dtypes)
        ]

    def _class_weights(self, classes, data):
        """Weight of each class (None without ``class_weight``), from the blocks' summaries.

        The same numbers as the in-memory estimator's: "balanced" counts each
        class by its sample weight.
        """
        return class_weights(self.class_weight, classes, lambda: data.label_weights(classes))

    def _solve(self, objective, options, coef0, intercept0, checkpoint, identity):
        """Run the solver on the client, checkpointed when asked.

        Everything a fit holds on the client is here: the objective (whose
        data is on the cluster, rebuilt by dask if a worker is lost), the
        starting point and the solver's state.
        """
        return solve_with_checkpoints(
            objective, self.solver, options, coef0, intercept0, checkpoint, identity
        )

    def _checkpoint_identity(self, collections, classes, blocks):
        """What a resumed fit must share with the run that wrote the checkpoint.

        The data is named by dask's token of the collections: the same graph
        (the same files read the same way, the same persisted arrays) has
        the same token; a Dataset by its fingerprint, as on one machine.
        """
        params = self.get_params(deep=False)
        params.pop("client")
        data = blocks.fingerprint or dask.base.tokenize(*collections)
        return {
            "data": data,
            "params": checkpoint_params(params),
            "solver": self.solver,
            "classes": classes.tolist(),
            "n_features": int(blocks.n_features),
            "dtype": str(np.dtype(blocks.dtype)),
        }

    def _check_cluster_solver(self):
        if self.solver not in CLUSTER_SOLVERS:
            raise ValueError(
                f"solver={self.solver!r} does not run on a Dask cluster: its epochs update the "
                f"model sample by sample, in sequence. Use solver='lbfgs' (the exact optimum "
                f"in a few passes) or 'gd' (with l1_ratio > 0 as well); for a "
                f"stochastic fit, stream the chunks through fastlr.LogisticRegression"
                f"(solver={self.solver!r}).partial_fit."
            )

    def _get_client(self):
        if self.client is not None:
            return self.client
        try:
            return distributed.default_client()
        except ValueError as exc:
            raise ValueError(
                "fastlr.dask.LogisticRegression needs a dask.distributed cluster: pass "
                "client=Client(...) or create a client first, e.g. "
                "Client('tcp://scheduler:8786') or Client(LocalCluster())."
            ) from exc

    @available_if(lambda self: False)
    def partial_fit(self, X, y, classes=None, sample_weight=None):
        """Not available on a cluster: see ``solver``."""

    # ------------------------------------------------------------------
    # Prediction, lazily on dask collections and Datasets of files, in
    # memory otherwise
    # ------------------------------------------------------------------

    def decision_function(self, X):
        """Scores of each sample, as a dask array computed block by block.

        Parameters
        ----------
        X : dask array or dask DataFrame of shape (n_samples, n_features), or fastlr.Dataset
            A Dataset of files (as :meth:`fit` takes it) is read by the
            workers, one chunk per block. Input the workers cannot read
            (in-memory arrays, a Dataset in memory or read sequentially) is
            scored in memory, as
            :meth:`fastlr.LogisticRegression.decision_function` does.

        Returns
        -------
        scores : dask array of shape (n_samples,) or (n_samples, n_classes)
        """
        check_is_fitted(self)
        on_cluster = self._cluster_input(X)
        if on_cluster is None:
            return super().decision_function(X)
        width = None if self.classes_.shape[0] == 2 else self.classes_.shape[0]
        return self._lazy(on_cluster, "decision_function", width, self.coef_.dtype)

    def predict_proba(self, X):
        """Class probabilities, as a dask array of shape (n_samples, n_classes)."""
        check_is_fitted(self)
        on_cluster = self._cluster_input(X)
        if on_cluster is None:
            return super().predict_proba(X)
        return self._lazy(on_cluster, "predict_proba", self.classes_.shape[0], self.coef_.dtype)

    def predict_log_proba(self, X):
        """Logarithm of :meth:`predict_proba`, as a dask array."""
        check_is_fitted(self)
        on_cluster = self._cluster_input(X)
        if on_cluster is None:
            return super().predict_log_proba(X)
        width = self.classes_.shape[0]
        return self._lazy(on_cluster, "predict_log_proba", width, self.coef_.dtype)

    def predict(self, X):
        """Predicted labels, as a dask array of shape (n_samples,)."""
        check_is_fitted(self)
        on_cluster = self._cluster_input(X)
        if on_cluster is None:
            return super().predict(X)
        return self._lazy(on_cluster, "predict", None, self.classes_.dtype)

    def _cluster_input(self, X):
        """X as a dask collection when it is one or the workers can read it; else None."""
        if _distributed.is_dask_collection(X):
            return X
        if _distributed.reads_on_workers(X):
            check_dataset_features(self, X)
            return _distributed.dataset_array(X)
        return None

    def score(self, X, y=None, sample_weight=None):
        """Mean accuracy (weighted by ``sample_weight``), computed on the cluster.

        Parameters
        ----------
        X : dask array, dask DataFrame or fastlr.Dataset
            A Dataset of files is read by the workers, its labels and weights
            from it; other in-memory input is scored in memory.
        y, sample_weight : partitioned like X (see :meth:`fit`); None with a Dataset

        Returns
        -------
        score : float
        """
        check_is_fitted(self)
        if not (_distributed.is_dask_collection(X) or _distributed.reads_on_workers(X)):
            return super().score(X, y, sample_weight=sample_weight)
        if isinstance(X, Dataset):
            check_dataset_features(self, X)
        blocks = self._row_blocks(X, y, sample_weight)
        self._check_features(blocks.n_features)
        model = dask.delayed(self.to_local(), pure=True)
        weights = blocks.sample_weight or [None] * len(blocks.X)
        parts = [
            dask.delayed(_block_accuracy, pure=True)(model, x, labels, sw)
            for x, labels, sw in zip(blocks.X, blocks.y, weights, strict=True)
        ]
        client = self._get_client()
        sums = np.array(client.gather(client.compute(parts)), dtype=np.float64).reshape(-1, 2)
        return float(sums[:, 0].sum() / sums[:, 1].sum())

    def _lazy(self, X, method, width, dtype):
        """``to_local().<method>`` mapped over X's blocks, as a dask array."""
        model = dask.delayed(self.to_local(), pure=True)
        if isinstance(X, da.Array):
            if X.ndim != 2:
                raise ValueError(f"X must be 2-D (rows x features), got shape {X.shape}.")
            self._check_features(X.shape[1])
            if X.numblocks[1] > 1:
                X = X.rechunk({1: -1})
            if width is None:
                return X.map_blocks(
                    _block_method, model, method, drop_axis=1, dtype=dtype,
                    meta=np.empty(0, dtype),
                )  # fmt: skip
            return X.map_blocks(
                _block_method, model, method, chunks=(X.chunks[0], (width,)), dtype=dtype,
                meta=np.empty((0, 0), dtype),
            )  # fmt: skip
        if X.ndim != 2:
            raise ValueError("X must be 2-D (rows x features), got a dask Series.")
        self._check_features(len(X.columns), list(X.columns))
        meta = np.empty((0,) if width is None else (0, width), dtype)
        return X.map_partitions(_block_method, model, method, meta=meta)

    def _check_features(self, n_features, columns=None):
        if n_features != self.n_features_in_:
            raise ValueError(
                f"X has {n_features} features, but this LogisticRegression was fitted with "
                f"{self.n_features_in_}; pass the columns it was trained on."
            )
        names = getattr(self, "feature_names_in_", None)
        if columns is not None and names is not None and columns != names.tolist():
            raise ValueError(
                f"X's columns {columns} differ from those seen in fit, {names.tolist()}; "
                f"select the training columns in their order (X[names])."
            )

    # ------------------------------------------------------------------
    # Conversion and copies
    # ------------------------------------------------------------------

    def to_local(self):
        """A plain :class:`fastlr.LogisticRegression` with the same parameters and fit.

        It predicts in memory and saves as any in-memory model does.

        Returns
        -------
        model : fastlr.LogisticRegression
        """
        check_is_fitted(self)
        params = self.get_params(deep=False)
        params.pop("client")
        local = _LocalLogisticRegression(**params)
        for name in FITTED_ATTRIBUTES:
            if hasattr(self, name):
                setattr(local, name, _copied(getattr(self, name)))
        return local

    def __getstate__(self):
        # A client is a live connection: it is neither pickled nor copied.
        state = dict(super().__getstate__())
        state["client"] = None
        return state

    def __sklearn_clone__(self):
        # clone deep-copies parameters, which a client cannot be; the clone shares it.
        client = self.client
        self.client = None
        try:
            clone = super().__sklearn_clone__()
        finally:
            self.client = client
        clone.client = client
        return clone


def _copied(value):
    if isinstance(value, dict):
        return {key: np.copy(item) for key, item in value.items()}
    if scipy.sparse.issparse(value):  # a coef_ made sparse by sparsify()
        return value.copy()
    return np.copy(value)


def _block_method(block, model, method):
    """``model.<method>(block)``: one block of a lazy prediction."""
    return getattr(model, method)(block)


def _block_accuracy(model, X, y, sample_weight):
    """``(weight of the correctly predicted rows, weight of all rows)`` of one block."""
    predicted = model.predict(X)
    labels = np.asarray(y)
    weights = np.ones(labels.shape[0]) if sample_weight is None else np.asarray(sample_weight)
    return float(np.dot(predicted == labels, weights)), float(weights.sum())
