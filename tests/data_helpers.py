"""Writers of small test files in every format fastlr.data reads, and a block collector.

Every writer stores the values exactly (text with Python's shortest
round-trip ``repr``), so that reading a file back must give the very arrays
it was written from.
"""

import gzip
import itertools

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import scipy.sparse


def make_data(n=50, d=4, dtype=np.float64, sparse=False, seed=0, n_classes=3):
    """``(X, y, w)``: X (dense or CSR with empty rows), int labels, float64 weights."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)).astype(dtype)
    if sparse:
        X[rng.random((n, d)) < 0.6] = 0
        X[3] = 0  # an empty row
        X = scipy.sparse.csr_matrix(X)
    y = rng.integers(0, n_classes, n)
    w = rng.random(n) * 2
    return X, y, w


def dense(X):
    return X.toarray() if scipy.sparse.issparse(X) else np.asarray(X)


def collect(dataset):
    """Every block of a pass: ``(X, y, w, blocks)``, X stacked (CSR stays CSR)."""
    blocks = list(dataset)
    Xs = [b.X for b in blocks]
    X = scipy.sparse.vstack(Xs, format="csr") if scipy.sparse.issparse(Xs[0]) else np.vstack(Xs)
    y = None if blocks[0].y is None else np.concatenate([b.y for b in blocks])
    w = (
        None
        if blocks[0].sample_weight is None
        else np.concatenate([b.sample_weight for b in blocks])
    )
    return X, y, w, blocks


def text(value):
    """A number as exact text (float32 values through their exact float64)."""
    return repr(float(value)) if isinstance(value, (float, np.floating)) else str(value)


def write_csv(path, X, y=None, w=None, *, header=True, names=None, gz=False, delimiter=","):
    X = dense(X)
    names = names or [f"f{j}" for j in range(X.shape[1])]
    columns = (
        list(names) + (["label"] if y is not None else []) + (["weight"] if w is not None else [])
    )
    lines = [delimiter.join(columns)] if header else []
    for i in range(X.shape[0]):
        fields = [text(v) for v in X[i]]
        fields += [text(y[i])] if y is not None else []
        fields += [text(w[i])] if w is not None else []
        lines.append(delimiter.join(fields))
    data = ("\n".join(lines) + "\n").encode()
    (gzip.open if gz else open)(path, "wb").write(data)
    return path


def write_libsvm(path, X, y, *, zero_based=False, gz=False, comments=False, qid=False):
    X = scipy.sparse.csr_matrix(X)
    lines = ["# written by the test suite"] if comments else []
    for i in range(X.shape[0]):
        row = X.getrow(i)
        order = np.argsort(row.indices)
        fields = [text(y[i])] + ([f"qid:{i % 3}"] if qid else [])
        fields += [
            f"{j + (0 if zero_based else 1)}:{text(v)}"
            for j, v in zip(row.indices[order], row.data[order], strict=True)
        ]
        lines.append(" ".join(fields) + (f"  # row {i}" if comments else ""))
        if comments and i == 2:
            lines.append("")
    data = ("\n".join(lines) + "\n").encode()
    with (gzip.open if gz else open)(path, "wb") as file:
        file.write(data)
    return path


def write_parquet(path, X, y=None, w=None, *, row_group_size=20, names=None):
    X = dense(X)
    names = names or [f"f{j}" for j in range(X.shape[1])]
    columns = {name: pa.array(X[:, j]) for j, name in enumerate(names)}
    if y is not None:
        columns["label"] = pa.array(y)
    if w is not None:
        columns["weight"] = pa.array(w)
    pq.write_table(pa.table(columns), path, row_group_size=row_group_size)
    return path


def write_npz_shards(folder, X, y, w=None, *, n_shards=3):
    folder.mkdir(exist_ok=True)
    bounds = np.linspace(0, X.shape[0], n_shards + 1).astype(int)
    for k, (a, b) in enumerate(itertools.pairwise(bounds)):
        arrays = {"y": y[a:b]}
        if w is not None:
            arrays["w"] = w[a:b]
        if scipy.sparse.issparse(X):
            part = X[a:b]
            arrays.update(data=part.data, indices=part.indices, indptr=part.indptr,
                          shape=np.array(part.shape))  # fmt: skip
        else:
            arrays["X"] = X[a:b]
        np.savez(folder / f"shard-{k:02d}.npz", **arrays)
    return folder
