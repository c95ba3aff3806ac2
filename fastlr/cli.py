"""The ``fastlr`` command line: ``fastlr demo`` and ``fastlr info``."""

import argparse
import platform
import sys
import time

import numpy as np

from ._solvers import SOLVERS


def _demo_data(n_samples, n_features, seed):
    """A generated binary problem, split 80/20 into train and test."""
    from sklearn.datasets import make_classification
    from sklearn.model_selection import train_test_split

    X, y = make_classification(
        n_samples=n_samples,
        n_features=n_features,
        n_informative=max(2, n_features // 2),
        flip_y=0.05,
        random_state=seed,
    )
    return train_test_split(X, y, test_size=0.2, random_state=seed)


def demo(args):
    """Train on generated data, printing the loss of every epoch and the accuracy."""
    from . import LogisticRegression

    X_train, X_test, y_train, y_test = _demo_data(args.n_samples, args.n_features, args.seed)
    X_train = X_train.astype(args.dtype)
    X_test = X_test.astype(args.dtype)
    print(
        f"fastlr demo: {args.solver} on {X_train.shape[0]:,} x {X_train.shape[1]} "
        f"{args.dtype} training rows (generated), {X_test.shape[0]:,} test rows"
    )
    model = LogisticRegression(
        solver=args.solver, max_iter=args.epochs, tol=None, random_state=args.seed
    )
    start = time.perf_counter()
    model.fit(X_train, y_train)
    elapsed = time.perf_counter() - start
    unit = "iteration" if args.solver == "lbfgs" else "epoch"
    for epoch, (loss, seconds) in enumerate(
        zip(model.history_["loss"], model.history_["time"], strict=True), start=1
    ):
        print(f"  {unit} {epoch:3d}  loss {loss:.6f}  at {seconds:7.3f} s")
    print(f"trained in {elapsed:.3f} s (the first run also compiles the kernels)")
    print(f"train accuracy {model.score(X_train, y_train):.4f}")
    print(f"test accuracy  {model.score(X_test, y_test):.4f}")
    return 0


def info(args):
    """Print versions and the numba threading layer in use."""
    import numba
    import scipy
    import sklearn

    from . import __version__, gradient

    X = np.zeros((4096, 2))
    gradient(X, np.zeros(4096), np.zeros(2), 0.0)  # starts numba's thread pool
    layer = numba.threading_layer()
    print(f"fastlr {__version__}, Python {platform.python_version()}, {platform.machine()}")
    print(
        f"numpy {np.__version__}, numba {numba.__version__}, scipy {scipy.__version__}, "
        f"scikit-learn {sklearn.__version__}"
    )
    print(f"numba threads: {numba.config.NUMBA_NUM_THREADS}, threading layer: {layer}")
    if layer == "workqueue":
        print(
            "warning: the workqueue layer costs ~75 us per parallel call and is not "
            "thread-safe; install the OS package libgomp1 (OpenMP) or `pip install tbb`."
        )
    return 0


def build_parser():
    """The argument parser of the ``fastlr`` command."""
    parser = argparse.ArgumentParser(prog="fastlr", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("demo", help="train on generated data and report")
    run.add_argument("--solver", choices=SOLVERS, default="minibatch")
    run.add_argument("--n-samples", type=_positive_int, default=200_000)
    run.add_argument("--n-features", type=_positive_int, default=50)
    run.add_argument("--epochs", type=_positive_int, default=10)
    run.add_argument("--dtype", choices=("float64", "float32"), default="float64")
    run.add_argument("--seed", type=int, default=0)
    run.set_defaults(func=demo)
    show = commands.add_parser("info", help="versions and threading layer")
    show.set_defaults(func=info)
    return parser


def _positive_int(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def main(argv=None):
    """Entry point of the ``fastlr`` command."""
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
