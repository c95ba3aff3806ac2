#!/usr/bin/env bash
# Out-of-core training on a LIBSVM file with the command line: generate a sparse
# data set (1e6 rows, 1e5 features, 50 non-zeros a row), train with a checkpoint
# every epoch, evaluate and predict. Replace the file by any LIBSVM data set.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p data work
python examples/make_data.py libsvm data/sparse-train.svm --rows 1_000_000 --features 100000 --nnz 50
python examples/make_data.py libsvm data/sparse-test.svm --rows 100_000 --features 100000 --nnz 50 --seed 1
fastlr convert data/sparse-train.svm work/sparse.cache --dtype float32
fastlr train work/sparse.cache --out work/sparse.fastlr --solver lbfgs --C 10 \
    --checkpoint work/sparse-checkpoints
fastlr evaluate work/sparse.fastlr data/sparse-test.svm
fastlr predict work/sparse.fastlr data/sparse-test.svm --out work/sparse-predictions.parquet --proba
