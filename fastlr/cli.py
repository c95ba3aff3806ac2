"""The ``fastlr`` command line: train, predict, evaluate and convert data sets of any size.

``fastlr train DATA --label COL --out MODEL`` streams DATA (a Parquet, CSV,
LIBSVM or ``.npy`` file, a folder of shards or a binary cache) through the
solver with a progress bar for every pass, and writes a model file;
``--checkpoint DIR`` makes a killed run resumable (``--resume``).
``fastlr predict``, ``fastlr evaluate`` and ``fastlr convert`` stream too.
``fastlr demo`` trains on generated data; ``fastlr info`` tells versions, the
threading layer and whether the compiled kernels are cached; ``fastlr warmup``
compiles them ahead of time.

Bad input gives one line on stderr and exit status 1 (2 for a bad command
line); Ctrl-C exits with 130, after saving a checkpoint when one was asked for.
"""

import argparse
import json
import platform
import sys
import time
import warnings

import numpy as np

from ._solvers import SOLVERS

EXIT_ERROR = 1
EXIT_INTERRUPTED = 130


# --------------------------------------------------------------------------
# The commands
# --------------------------------------------------------------------------


def train(args):
    """Fit a model on DATA, streamed, and write it to ``--out``."""
    import fastlr

    progress = _progress(args)
    data = _dataset(args.data, args, label=args.label)
    model = fastlr.LogisticRegression(
        solver=args.solver, **_penalty_params(args), alpha=args.alpha, max_iter=args.max_iter,
        tol=args.tol,
        batch_size=args.batch_size, learning_rate=args.learning_rate, eta0=args.eta0,
        class_weight=args.class_weight, early_stopping=args.early_stopping,
        random_state=args.random_state, n_jobs=args.n_jobs, verbose=0 if args.quiet else 1,
    )  # fmt: skip
    validation = None
    if args.validation:
        validation = _dataset(args.validation, args, label=args.label)
    checkpoint = None
    if args.checkpoint:
        checkpoint = fastlr.Checkpoint(args.checkpoint, every=args.checkpoint_every,
                                       resume=args.resume)  # fmt: skip
    elif args.resume:
        raise ValueError("--resume continues from --checkpoint DIR; give the folder.")
    start = time.perf_counter()
    try:
        model.fit(data, validation=validation, checkpoint=checkpoint)
    except KeyboardInterrupt:
        _say_interrupted(args, checkpoint)
        return EXIT_INTERRUPTED
    model.save(args.out)
    seconds = time.perf_counter() - start
    progress.line(
        f"trained {args.solver} on {data.info.n_rows:,} rows x {data.info.n_features} features "
        f"in {seconds:.2f} s ({model.n_iter_[0]} "
        f"{'iterations' if args.solver == 'lbfgs' else 'epochs'}, final loss "
        f"{model.history_['loss'][-1]:.6g}); model written to {args.out}"
    )
    return 0


def _say_interrupted(args, checkpoint):
    if checkpoint is None:
        print(
            "fastlr: interrupted; nothing was saved (train with --checkpoint DIR to be able to "
            "resume).",
            file=sys.stderr,
        )
        return
    command = " ".join(_quote(part) for part in sys.argv[1:] if part != "--resume")
    print(
        f"fastlr: interrupted; the last completed epoch is saved in {checkpoint.directory}. "
        f"Resume with: fastlr {command} --resume",
        file=sys.stderr,
    )


def _quote(part):
    return part if part and all(c.isalnum() or c in "-_./=:," for c in part) else repr(part)


def predict(args):
    """Write predictions for DATA to ``--out`` (CSV, Parquet or .npy by its extension)."""
    import fastlr

    from ._streaming import write_predictions

    model = fastlr.load(args.model)
    data = _dataset(args.data, args, label=args.label, columns=_model_columns(model, args))
    progress = _progress(args)
    n_rows = write_predictions(
        model, data, args.out, proba=args.proba, progress=None if args.quiet else progress
    )
    progress.line(f"{n_rows:,} predictions written to {args.out}")
    return 0


def evaluate(args):
    """Print the log-loss, accuracy and ROC AUC of a model on labelled DATA."""
    import fastlr

    from ._streaming import evaluate as evaluate_model

    model = fastlr.load(args.model)
    data = _dataset(args.data, args, label=args.label, columns=_model_columns(model, args))
    metrics = evaluate_model(model, data)
    if args.json:
        print(json.dumps(metrics))
        return 0
    auc = "n/a (one class)" if metrics["roc_auc"] is None else f"{metrics['roc_auc']:.6f}"
    print(f"rows      {metrics['n_rows']:,}")
    print(f"log-loss  {metrics['log_loss']:.6f}")
    print(f"accuracy  {metrics['accuracy']:.6f}")
    print(f"ROC AUC   {auc}")
    return 0


def convert(args):
    """Convert SOURCE to a binary cache at OUT (memory-mapped shards and a manifest)."""
    source = _dataset(args.source, args, label=args.label)
    cache = source.to_cache(args.out, progress=not args.quiet, overwrite=args.overwrite)
    info = cache.info
    _progress(args).line(
        f"{info.n_rows:,} rows x {info.n_features} features ({info.dtype}) cached in {args.out}"
    )
    return 0


def _model_columns(model, args):
    """The feature columns to read for a model fitted on named columns (None: all)."""
    if args.columns:
        return _columns(args.columns)
    names = getattr(model, "feature_names_in_", None)
    return None if names is None else [str(name) for name in names]


def demo(args):
    """Train on generated data, printing each epoch's loss as it ends, then the accuracy."""
    from . import LogisticRegression

    X_train, X_test, y_train, y_test = _demo_data(
        args.n_samples, args.n_features, args.seed, np.dtype(args.dtype)
    )
    print(
        f"fastlr demo: {args.solver} on {X_train.shape[0]:,} x {X_train.shape[1]} "
        f"{args.dtype} training rows (generated), {X_test.shape[0]:,} test rows",
        flush=True,
    )
    # verbose=1 prints every epoch (iteration for lbfgs) as it ends, not after the fit.
    model = LogisticRegression(
        solver=args.solver, max_iter=args.epochs, tol=None, random_state=args.seed, verbose=1
    )
    start = time.perf_counter()
    model.fit(X_train, y_train)
    elapsed = time.perf_counter() - start
    print(f"trained in {elapsed:.3f} s (the first run also compiles the kernels)")
    print(f"train accuracy {model.score(X_train, y_train):.4f}")
    print(f"test accuracy  {model.score(X_test, y_test):.4f}")
    return 0


def _demo_data(n_samples, n_features, seed, dtype):
    """Rows drawn from a logistic model, split 80/20 into train and test.

    X is standard normal; the labels are Bernoulli draws of the sigmoid of a
    fixed linear score (coefficients of norm 2, intercept 0.5), so no classifier
    beats about 80% accuracy. Drawn with NumPy in ``dtype``: fast enough that
    the demo's first epoch is not kept waiting by its data.
    """
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n_samples, n_features), dtype=dtype)
    coef = rng.standard_normal(n_features)
    coef *= 2.0 / np.linalg.norm(coef)
    score = X @ coef.astype(dtype) + 0.5
    y = (rng.random(n_samples) < 1.0 / (1.0 + np.exp(-score))).astype(np.int64)
    n_train = min(n_samples - 1, max(1, round(0.8 * n_samples)))
    return X[:n_train], X[n_train:], y[:n_train], y[n_train:]


def info(args):
    """Print versions and the numba threading layer in use."""
    import numba
    import scipy
    import sklearn

    from . import __version__, gradient
    from ._jit import cached_signatures

    X = np.zeros((4096, 2))
    gradient(X, np.zeros(4096), np.zeros(2), 0.0)  # starts numba's thread pool
    layer = numba.threading_layer()
    print(f"fastlr {__version__}, Python {platform.python_version()}, {platform.machine()}")
    print(
        f"numpy {np.__version__}, numba {numba.__version__}, scipy {scipy.__version__}, "
        f"scikit-learn {sklearn.__version__}"
    )
    print(f"numba threads: {numba.config.NUMBA_NUM_THREADS}, threading layer: {layer}")
    cached, kernels = cached_signatures()
    if cached:
        print(
            f"compiled kernels: {cached} signatures of {kernels} kernels cached for this build "
            f"and CPU (first fits load them)"
        )
    else:
        print(
            f"compiled kernels: none of the {kernels} kernels cached for this build and CPU; "
            f"`fastlr warmup` compiles them (a minute or two), else each first fit does"
        )
    if layer == "workqueue":
        print(
            "warning: the workqueue layer costs ~75 us per parallel call and is not "
            "thread-safe; install the OS package libgomp1 (OpenMP) or `pip install tbb`."
        )
    return 0


def warmup(args):
    """Compile the kernels of common fits into numba's cache, one process per core."""
    from ._jit import cached_signatures
    from ._warmup import warmup as compile_kernels

    seconds = compile_kernels(args.jobs, report=lambda text: print(f"fastlr warmup: {text}"))
    cached, kernels = cached_signatures()
    print(
        f"fastlr warmup: {cached} signatures of {kernels} kernels cached in "
        f"{seconds['total']:.1f} s (checked in {seconds['check']:.1f} s)"
    )
    return 0


# --------------------------------------------------------------------------
# Arguments
# --------------------------------------------------------------------------


def _dataset(path, args, label=None, columns=None):
    """The fastlr.Dataset of a path given on the command line."""
    import fastlr

    options = {}
    if getattr(args, "no_header", False):
        options["header"] = False
    return fastlr.Dataset(
        path,
        label=_column(label),
        weight=_column(getattr(args, "weight", None)),
        columns=columns if columns is not None else _columns(getattr(args, "columns", None)),
        format=args.format,
        dtype=args.dtype,
        block_rows=args.block_rows,
        **options,
    )


def _column(text):
    """A column given as text: an int index when it is one, else a name or a path."""
    if text is None:
        return None
    return int(text) if text.lstrip("-").isdigit() else text


def _columns(text):
    return None if not text else [_column(part) for part in text.split(",") if part]


def _progress(args):
    from ._progress import Progress

    return Progress()


def _penalty_params(args):
    """``l1_ratio`` and ``C`` of ``--penalty``, ``--l1-ratio`` and ``--C``.

    ``--penalty`` names the penalty (``l1_ratio`` 0, 1, ``--l1-ratio`` for
    elasticnet; ``none`` is ``C=inf``); without it, ``--l1-ratio`` (default 0)
    chooses, as the estimator's ``l1_ratio`` does.
    """
    ratio = {"l2": 0.0, "l1": 1.0}.get(args.penalty, args.l1_ratio)
    if args.penalty in ("l2", "l1", "none") and args.l1_ratio is not None:
        raise ValueError(
            f"--penalty {args.penalty} takes no --l1-ratio; use --penalty elasticnet "
            f"--l1-ratio R, or --l1-ratio R alone."
        )
    if args.penalty == "elasticnet" and args.l1_ratio is None:
        raise ValueError("--penalty elasticnet needs --l1-ratio, the L1 share in [0, 1].")
    C = np.inf if args.penalty == "none" else args.C
    return {"l1_ratio": 0.0 if ratio is None else ratio, "C": C}


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def _positive_float(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number > 0, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a number > 0, got {text}")
    return value


def _tolerance(text):
    if text.lower() == "none":
        return None
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number >= 0 or 'none', got {text!r}") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be a number >= 0 or 'none', got {text}")
    return value


def _class_weight(text):
    if text == "balanced":
        return text
    try:
        pairs = dict(part.split("=", 1) for part in text.split(","))
        return {_label(key): float(value) for key, value in pairs.items()}
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be 'balanced' or LABEL=WEIGHT,... (e.g. 0=1,1=5), got {text!r}"
        ) from None


def _label(text):
    try:
        return int(text)
    except ValueError:
        return text


def _add_data_options(parser, label_help):
    parser.add_argument("--label", help=label_help)
    parser.add_argument("--weight", help="sample-weight column (name, index or .npy path)")
    parser.add_argument("--columns", help="feature columns, comma-separated (default: all)")
    parser.add_argument(
        "--format", choices=("npy", "shards", "parquet", "csv", "libsvm", "cache"),
        help="the data's format (default: from the extension)",
    )  # fmt: skip
    parser.add_argument("--dtype", choices=("float32", "float64"), help="training dtype")
    parser.add_argument("--block-rows", type=_positive_int, help="rows per block")
    parser.add_argument("--no-header", action="store_true", help="CSV without a header line")
    parser.add_argument("--quiet", action="store_true", help="no progress output")


def build_parser():
    """The argument parser of the ``fastlr`` command."""
    parser = argparse.ArgumentParser(
        prog="fastlr", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)

    fit = commands.add_parser("train", help="train a model on a data file, streamed")
    fit.add_argument("data", help="training data: file, folder, glob or binary cache")
    _add_data_options(fit, "label column: a name, an index, or a .npy file of labels")
    fit.add_argument("--out", required=True, help="the model file to write")
    fit.add_argument("--solver", choices=SOLVERS, default="lbfgs")
    fit.add_argument(
        "--penalty", choices=("l2", "l1", "elasticnet", "none"),
        help="default l2, or the penalty --l1-ratio chooses; none: no penalty",
    )  # fmt: skip
    fit.add_argument("--C", type=_positive_float, default=1.0)
    fit.add_argument("--alpha", type=_positive_float, help="strength on the mean loss (sgd)")
    fit.add_argument("--l1-ratio", type=float, help="L1 share: 0 is L2 (default), 1 is L1")
    fit.add_argument("--max-iter", type=_positive_int, default=100)
    fit.add_argument("--tol", type=_tolerance, default=1e-4)
    fit.add_argument("--batch-size", type=_positive_int, default=256)
    fit.add_argument(
        "--learning-rate", choices=("auto", "constant", "invscaling", "optimal"), default="auto"
    )
    fit.add_argument("--eta0", type=_positive_float, default=0.01)
    fit.add_argument("--class-weight", type=_class_weight)
    fit.add_argument("--early-stopping", action="store_true")
    fit.add_argument("--random-state", type=int)
    fit.add_argument("--n-jobs", type=int)
    fit.add_argument("--validation", help="held-out data for early stopping (sgd, minibatch)")
    fit.add_argument("--checkpoint", help="folder for checkpoints, to resume a killed run")
    fit.add_argument("--checkpoint-every", type=_positive_int, default=1)
    fit.add_argument("--resume", action="store_true", help="continue from --checkpoint")
    fit.set_defaults(func=train)

    guess = commands.add_parser("predict", help="write predictions for a data file")
    guess.add_argument("model")
    guess.add_argument("data")
    _add_data_options(guess, "label column to leave out of the features, if DATA has one")
    guess.add_argument("--out", required=True, help=".csv, .csv.gz, .parquet or .npy")
    guess.add_argument("--proba", action="store_true", help="also each class's probability")
    guess.set_defaults(func=predict)

    score = commands.add_parser("evaluate", help="log-loss, accuracy and ROC AUC on a data file")
    score.add_argument("model")
    score.add_argument("data")
    _add_data_options(score, "label column (required unless the format has labels)")
    score.add_argument("--json", action="store_true", help="print the metrics as JSON")
    score.set_defaults(func=evaluate)

    cache = commands.add_parser("convert", help="convert data to the binary cache")
    cache.add_argument("source")
    cache.add_argument("out", help="the cache folder to write")
    _add_data_options(cache, "label column: a name, an index, or a .npy file of labels")
    cache.add_argument("--overwrite", action="store_true", help="replace an existing cache")
    cache.set_defaults(func=convert)

    run = commands.add_parser("demo", help="train on generated data and report")
    run.add_argument("--solver", choices=SOLVERS, default="minibatch")
    run.add_argument("--n-samples", type=_positive_int, default=200_000)
    run.add_argument("--n-features", type=_positive_int, default=50)
    run.add_argument("--epochs", type=_positive_int, default=10)
    run.add_argument("--dtype", choices=("float64", "float32"), default="float64")
    run.add_argument("--seed", type=int, default=0)
    run.set_defaults(func=demo)

    show = commands.add_parser(
        "info", help="versions, threading layer and whether the kernels are compiled"
    )
    show.set_defaults(func=info)

    ahead = commands.add_parser("warmup", help="compile the kernels of common fits ahead of time")
    ahead.add_argument(
        "--jobs", type=_positive_int, default=None,
        help="processes compiling at once (default: one per core, at most 3)",
    )  # fmt: skip
    ahead.set_defaults(func=warmup)
    return parser


def main(argv=None):
    """Entry point of the ``fastlr`` command: bad input is one line and a non-zero exit."""
    args = build_parser().parse_args(argv)
    from .data import DataError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("default")
            warnings.showwarning = _show_warning
            return args.func(args)
    except KeyboardInterrupt:
        print("fastlr: interrupted.", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (DataError, ValueError, TypeError, OSError) as error:
        print(f"fastlr {args.command}: error: {_one_line(error)}", file=sys.stderr)
        return EXIT_ERROR


def _one_line(error):
    text = str(error) or type(error).__name__
    if isinstance(error, OSError) and error.filename is not None and error.strerror:
        text = f"{error.filename}: {error.strerror}"
    return " ".join(text.split())


def _show_warning(message, category, filename, lineno, file=None, line=None):
    print(f"fastlr: warning: {' '.join(str(message).split())}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
