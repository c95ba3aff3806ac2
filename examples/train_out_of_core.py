"""Train on a file larger than memory, resumably, then evaluate on held-out data.

    python examples/make_data.py parquet data/train.parquet --rows 20_000_000
    python examples/make_data.py parquet data/test.parquet --rows 1_000_000 --seed 1
    python examples/train_out_of_core.py data/train.parquet data/test.parquet --label label

The first run converts the training file to fastlr's binary cache (one pass,
then every epoch reads memory-mapped shards at disk or page-cache speed),
trains with a checkpoint every epoch (kill it and run it again: it resumes),
saves the model and evaluates it.
"""

import argparse
from pathlib import Path

import fastlr
from fastlr._streaming import evaluate


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("train")
    parser.add_argument("test")
    parser.add_argument("--label", default="label")
    parser.add_argument("--solver", default="lbfgs", choices=("lbfgs", "gd", "sgd", "minibatch"))
    parser.add_argument("--work", default="work", help="folder for the cache, checkpoints, model")
    args = parser.parse_args()
    work = Path(args.work)
    cache = work / "train.cache"
    if not (cache / "manifest.json").exists():
        fastlr.Dataset(args.train, label=args.label).to_cache(cache, progress=True)
    train = fastlr.Dataset(cache)
    checkpoints = work / "checkpoints"
    resume = (checkpoints / "checkpoint.fastlr").exists()
    model = fastlr.LogisticRegression(solver=args.solver, max_iter=50, random_state=0, verbose=1)
    model.fit(train, checkpoint=fastlr.Checkpoint(checkpoints, resume=resume))
    model.save(work / "model.fastlr")
    metrics = evaluate(model, fastlr.Dataset(args.test, label=args.label))
    print(", ".join(f"{name} {value:.6g}" for name, value in metrics.items() if value is not None))


if __name__ == "__main__":
    main()
