"""Generate a binary classification data set of any size, chunk by chunk, in one format.

    python examples/make_data.py parquet data/train.parquet --rows 10_000_000 --features 100
    python examples/make_data.py csv data/train.csv.gz --rows 1_000_000
    python examples/make_data.py libsvm data/train.svm --rows 1_000_000 --features 100000 --nnz 50
    python examples/make_data.py npy data/train --rows 10_000_000   # X.npy and y.npy

The labels come from one logistic model (the same for every ``--seed``, which
draws the rows), so the data are not separable. Memory
stays at one chunk whatever the number of rows.
"""

import argparse
import gzip
from pathlib import Path

import numpy as np


def chunks(rows, features, nnz, chunk_rows, seed):
    """``(X, y)`` chunks: dense float32, or CSR when ``nnz`` is given."""
    import scipy.sparse

    # One model for every seed: a test set made with another seed fits the same model.
    coef = np.random.default_rng(2024).standard_normal(features) / np.sqrt(nnz or features)
    rng = np.random.default_rng(seed)
    for start in range(0, rows, chunk_rows):
        n = min(chunk_rows, rows - start)
        if nnz:
            indices = np.sort(rng.choice(features, size=(n, nnz)), axis=1)
            X = scipy.sparse.csr_matrix(
                (rng.standard_normal(n * nnz).astype(np.float32), indices.ravel(),
                 np.arange(0, n * nnz + 1, nnz)),
                shape=(n, features),
            )  # fmt: skip
            X.sum_duplicates()
        else:
            X = rng.standard_normal((n, features), dtype=np.float32)
        scores = X @ coef + rng.logistic(size=n)
        yield X, (scores > 0).astype(np.int8)


def write(kind, path, rows, features, nnz, chunk_rows, seed):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = chunks(rows, features, nnz, chunk_rows, seed)
    names = [f"f{j}" for j in range(features)]
    if kind == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        writer = None
        for X, y in data:
            table = pa.table({**{n: X[:, j] for j, n in enumerate(names)}, "label": y})
            writer = writer or pq.ParquetWriter(path, table.schema)
            writer.write_table(table)
        writer.close()
    elif kind == "csv":
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "wt") as out:
            out.write(",".join([*names, "label"]) + "\n")
            for X, y in data:
                np.savetxt(out, np.column_stack([X, y]), delimiter=",", fmt="%.7g")
    elif kind == "libsvm":
        from sklearn.datasets import dump_svmlight_file

        with open(path, "wb") as out:
            for X, y in data:
                dump_svmlight_file(X, y, out, zero_based=True)
    elif kind == "npy":
        path.mkdir(exist_ok=True)
        X_all = np.lib.format.open_memmap(path / "X.npy", "w+", np.float32, (rows, features))
        y_all = np.lib.format.open_memmap(path / "y.npy", "w+", np.int8, (rows,))
        start = 0
        for X, y in data:
            X_all[start : start + len(y)], y_all[start : start + len(y)] = X, y
            start += len(y)
        X_all.flush()
        y_all.flush()
    print(f"wrote {rows:,} rows x {features} features to {path}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=("parquet", "csv", "libsvm", "npy"))
    parser.add_argument("path")
    parser.add_argument("--rows", type=lambda s: int(s.replace("_", "")), default=1_000_000)
    parser.add_argument("--features", type=int, default=100)
    parser.add_argument("--nnz", type=int, help="non-zeros a row: sparse data (LIBSVM)")
    parser.add_argument("--chunk-rows", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.kind != "libsvm" and args.nnz:
        parser.error("--nnz makes sparse data, which only the libsvm format writes")
    write(args.kind, args.path, args.rows, args.features, args.nnz, args.chunk_rows, args.seed)


if __name__ == "__main__":
    main()
