"""The `mnistlab` command line's flags: one argparse parser with a subparser per command.

`cli` parses with it and calls the library; keeping the flag definitions here
lets the command handlers in `cli.py` read in one sitting.
"""

from __future__ import annotations

import argparse

from mnistlab.common.version import __version__

DESCRIPTION = "Train, evaluate and compare neural networks on MNIST-format images, offline and reproducibly."
EXAMPLES = """examples:
  mnistlab compare                         the ANN-vs-CNN study on MNIST, into runs/<timestamp>-compare
  mnistlab compare --seeds 5               five seeds per model: means, intervals, significance tests
  mnistlab compare --train-sizes 600,6000,60000 --seeds 3   learning curves over training-set sizes
  mnistlab models                          the models you can train, with their parameters and recipes
  mnistlab train cnn --out cnn.pt          train one model into a checkpoint
  mnistlab tune cnn --trials 20 --out t    search cnn's training settings; t/best.toml is for compare --config
  mnistlab evaluate cnn.pt                 test a checkpoint on its dataset's test split
  mnistlab predict cnn.pt digit.jpg        classify your own images or photos
  mnistlab explain cnn.pt digit.jpg        what the model looks at: attribution maps per image
  mnistlab serve --checkpoints runs/x      a draw-a-digit page and JSON API on http://127.0.0.1:8000
  mnistlab data list                       datasets and where their files are
  mnistlab runs                            the runs under runs/: models, accuracies, finished or stopped
  mnistlab compare-runs runs/a:cnn runs/b:cnn   one model from two runs, with significance tests
"""


def thread_count(text: str) -> int | str:
    """`--threads`: a whole number (checked against the limits later, with the other flags) or "auto"."""
    text = text.strip()
    if text.lower() == "auto":
        return "auto"
    if not text.isascii() or not text.isdigit():  # int() would also take "1_0", "+2" and other digits than 0-9
        raise argparse.ArgumentTypeError(f"{text[:40]!r} is not a thread count; give a whole number, or auto")
    return int(text)


def _add_global_flags(parser: argparse.ArgumentParser, subcommand: bool) -> None:
    """Flags every command takes, before or after its name (a subcommand's copy never overrides with a default)."""
    default = argparse.SUPPRESS if subcommand else None
    parser.add_argument("--data-dir", metavar="DIR", default=default,
                        help="read-only folder holding <dataset>/<file>.gz (default: $MNISTLAB_DATA_DIR)")
    parser.add_argument("--quiet", action="store_true", default=argparse.SUPPRESS if subcommand else False,
                        help="no progress bars")
    parser.add_argument("--threads", type=thread_count, metavar="N|auto", default=default,
                        help="PyTorch CPU threads (per job with --workers or --ray); part of what fixes the numbers "
                             "(default: one per core this process may use, or those cores / workers; auto: those "
                             "of the cores that are idle now, for a busy machine; the count chosen is printed)")
    parser.add_argument("--device", default=default,
                        help="where to compute: auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:N or mps (default: cpu)")


def _add_training_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="[MODEL=]FILE", action="append",
                        help="TOML file with training settings for every model, or with MODEL=FILE for one model "
                             "(repeatable: one shared file and one per model; flags override them)")
    parser.add_argument("--dataset", help="registered dataset name, or a folder of your own data "
                                          "(four IDX files, or train/<class>/*.png and test/<class>/*.png, 2 to 256 classes "
                                          "named by their folders) (default: mnist)")
    parser.add_argument("--epochs", type=int, help="passes over the training split (default: 5, or the model's recipe)")
    parser.add_argument("--batch-size", type=int, help="images per optimiser step (default: 128)")
    parser.add_argument("--lr", "--learning-rate", dest="learning_rate", type=float,
                        help="Adam learning rate (default: 0.001, or the model's recipe)")
    parser.add_argument("--validation-fraction", type=float,
                        help="share of training images held out for validation (default: 0.1)")
    parser.add_argument("--seed", type=int, help="seed for the split, initial weights and batch order (default: 0)")
    parser.add_argument("--limit-train", type=int, metavar="N",
                        help="train on a seeded random subset of N training images, for quick runs (default: all)")
    parser.add_argument("--precision", choices=["fp32", "bf16"],
                        help="fp32 (the study's), or bf16 autocast where the hardware has bfloat16 (default: fp32)")


TRUST_HELP = ("build a model of your own by running the code its checkpoint recorded (only for checkpoints "
              "you trust; built-in models never need it)")


def _add_tracking_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--mlflow", metavar="URI",
                        help="also log to MLflow: file:./mlruns, sqlite:///mlflow.db or http://HOST:PORT "
                             "(needs: pip install 'mnistlab[mlflow]')")
    parser.add_argument("--mlflow-experiment", metavar="NAME", default="mnistlab",
                        help="MLflow experiment to log into, created if needed (default: %(default)s)")
    parser.add_argument("--tensorboard", metavar="DIR",
                        help="also write TensorBoard event files under DIR (needs: pip install 'mnistlab[tensorboard]')")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for all subcommands."""
    from mnistlab.models.catalogue import BUILT_IN as MODELS  # names only: no PyTorch for --help
    from mnistlab.vision.settings import DEFAULT_TOP_K

    parser = argparse.ArgumentParser(prog="mnistlab", description=DESCRIPTION, epilog=EXAMPLES,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"mnistlab {__version__}")
    _add_global_flags(parser, subcommand=False)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help, description=help[0].upper() + help[1:] + ".")
        _add_global_flags(sub, subcommand=True)
        return sub

    compare = command("compare", "train, test and compare models; write a run folder with a report")
    compare.add_argument("--models", default="ann,cnn",
                         help=f"comma-separated models: built-in names ({', '.join(MODELS)}), your own as "
                              f"FILE.py:Class or package.module:Class, with arguments as Class(width=64), labelled "
                              f"as label=SPEC (default: %(default)s; see docs/models.md)")
    compare.add_argument("--out", metavar="DIR", help="run folder (default: runs/<timestamp>-compare)")
    compare.add_argument("--seeds", metavar="N|LIST",
                         help="train each model once per seed: N seeds counting up from --seed, or a comma-separated "
                              "list such as 0,1,2 (default: the one seed --seed)")
    compare.add_argument("--resume", action="store_true",
                         help="continue the interrupted run in --out: skip finished seeds and epochs")
    compare.add_argument("--force", action="store_true",
                         help="start --out afresh when it holds an earlier compare run: delete that run's own files "
                              "(checkpoints, figures, reports, state) first; other files are kept")
    compare.add_argument("--workers", type=int, default=1, metavar="N",
                         help="run up to N (model, seed) jobs at once in local worker processes (default: %(default)s)")
    compare.add_argument("--ray", metavar="ADDRESS",
                         help="run the jobs as tasks on a Ray cluster: auto, HOST:PORT or ray://HOST:10001 "
                              "(needs: pip install 'mnistlab[ray]')")
    compare.add_argument("--robustness", action="store_true",
                         help="also test every model and seed on 15 corruptions and the shift and rotation sweeps")
    compare.add_argument("--train-sizes", metavar="LIST",
                         help="learning curves: run the comparison once per training-set size, counts or fractions "
                              "such as 600,6000,60000 or 0.01,0.1,1, each on a nested, stratified subset, into "
                              "--out/size-N; writes learning_curve.md, .html, .png and .json in --out")
    compare.add_argument("--explain", action="store_true",
                         help="also draw each model's attributions for fixed test digits and per class in the report "
                              "(needs: pip install 'mnistlab[explain]')")
    compare.add_argument("--seeds-together", choices=["auto", "on", "off"], default="auto",
                         help="train each model's seeds as one batched computation (on), one at a time (off), or "
                              "together only where a few measured steps show it faster here (auto); the numbers "
                              "agree to rounding, the way is recorded and --resume keeps it (default: %(default)s)")
    _add_training_flags(compare)
    _add_tracking_flags(compare)

    command("models", "list the registered models: parameters, training recipe, what each is")

    tune = command("tune", "search a model's training settings with Optuna, scored on the validation split; "
                           "write best.toml for compare --config")
    tune.add_argument("model", help=f"a built-in model ({', '.join(MODELS)}) or your own: FILE.py:Class")
    tune.add_argument("--trials", type=int, default=20, metavar="N",
                      help="trials in the study, pruned ones included (default: %(default)s)")
    tune.add_argument("--out", metavar="DIR", help="run folder (default: runs/<timestamp>-tune)")
    tune.add_argument("--resume", action="store_true",
                      help="continue the study in --out after an interruption (or with a larger --trials)")
    tune.add_argument("--force", action="store_true",
                      help="start --out afresh when it holds an earlier tune run: delete that run's own files "
                           "(tune.db, best.toml, trials.csv, tune.md, figures) first; other files are kept")
    tune.add_argument("--space", metavar="FILE",
                      help="TOML file whose [space] table narrows or widens the search space "
                           "(default: learning rate /10 to x10 of the recipe's, batch size, AdamW weight decay)")
    tune.add_argument("--workers", type=int, metavar="N",
                      help="run up to N trials at once in local worker processes, or with --ray at most N on the "
                           "cluster (default: 1; with --ray, as many as the cluster's CPUs allow at --threads each)")
    tune.add_argument("--ray", metavar="ADDRESS",
                      help="run the trials as tasks on a Ray cluster: auto, HOST:PORT or ray://HOST:10001 "
                           "(needs: pip install 'mnistlab[ray]')")
    _add_training_flags(tune)
    _add_tracking_flags(tune)

    train = command("train", "train one model into a checkpoint (the test split is not used)")
    train.add_argument("model", help=f"a built-in model ({', '.join(MODELS)}) or your own: FILE.py:Class")
    train.add_argument("--out", metavar="FILE", help="checkpoint path (default: runs/<timestamp>-train/MODEL.pt)")
    train.add_argument("--force", action="store_true", help="replace the --out file if it exists")
    _add_training_flags(train)
    _add_tracking_flags(train)

    evaluate = command("evaluate", "test a checkpoint on its dataset's test split")
    evaluate.add_argument("checkpoint", help="a .pt file written by train or compare")
    evaluate.add_argument("--dataset", help="registered name or folder to test on (default: the checkpoint's dataset)")
    evaluate.add_argument("--trust-code", action="store_true", help=TRUST_HELP)
    evaluate.add_argument("--json", action="store_true", help="print the full metrics as JSON")
    evaluate.add_argument("--allow-class-mismatch", action="store_true",
                          help="test on a dataset whose classes differ from the checkpoint's (scored by class index)")

    export = command("export", "export a checkpoint for other runtimes (ONNX)")
    export.add_argument("checkpoint", help="a .pt file written by train or compare")
    export.add_argument("--format", choices=["onnx"], default="onnx", help="export format (default: %(default)s)")
    export.add_argument("--out", metavar="FILE", help="output path (default: the checkpoint path with .onnx)")
    export.add_argument("--opset", type=int, default=18, help="ONNX opset version, 18-21 (default: %(default)s)")
    export.add_argument("--trust-code", action="store_true", help=TRUST_HELP)
    export.add_argument("--force", action="store_true", help="replace the output file if it exists")

    report = command("report", "rebuild a run folder's figures and report from metrics.json")
    report.add_argument("run_dir", help="a folder written by mnistlab compare")
    report.add_argument("--trust-code", action="store_true", help=TRUST_HELP)
    report.add_argument("--robustness", action="store_true",
                        help="first test the run's checkpoints as compare --robustness does (needs the dataset)")
    report.add_argument("--explain", action="store_true",
                        help="first compute the attributions compare --explain adds (needs the dataset and "
                             "mnistlab[explain])")

    predict = command("predict", "classify your own images (files, folders or globs) with a checkpoint")
    predict.add_argument("checkpoint", help="a .pt file written by train or compare")
    predict.add_argument("images", nargs="+", metavar="IMAGE", help="image files, folders of images, or globs")
    predict.add_argument("--top-k", type=int, default=None,
                         help=f"most likely classes shown per image (default: {DEFAULT_TOP_K}, or every class if the model "
                              f"has fewer)")
    predict.add_argument("--trust-code", action="store_true", help=TRUST_HELP)
    predict.add_argument("--json", action="store_true", help="print the predictions as JSON")
    predict.add_argument("--number", action="store_true",
                         help="read each image as a number written left to right: each digit, its box and probabilities")
    predict.add_argument("--show-input", metavar="DIR", help="save the 28x28 image each model saw as DIR/<name>.png")
    predict.add_argument("--force", action="store_true",
                         help="with --show-input, replace files of the same name in DIR (never the images given)")

    explain = command("explain", "show what a checkpoint looks at in your images: Integrated Gradients and occlusion "
                                 "maps of its top class (needs: pip install 'mnistlab[explain]')")
    explain.add_argument("checkpoint", help="a .pt file written by train or compare")
    explain.add_argument("images", nargs="+", metavar="IMAGE", help="image files, folders of images, or globs "
                                                                     "(read as predict reads them)")
    explain.add_argument("--out", metavar="DIR", default="explanations",
                         help="folder for the figures, DIR/<image name>.explain.png (default: %(default)s)")
    explain.add_argument("--json", action="store_true", help="print each image's class and maps (28x28) as JSON")
    explain.add_argument("--trust-code", action="store_true", help=TRUST_HELP)
    explain.add_argument("--force", action="store_true",
                         help="replace figures of the same name in DIR (never the images given)")

    serve = command("serve", "a draw-a-digit web page and a JSON API for loaded checkpoints")
    serve.add_argument("--checkpoints", nargs="+", default=["."], metavar="DIR_OR_FILE",
                       help="run folders or .pt files to load (default: the *.pt files in the current folder)")
    serve.add_argument("--trust-code", action="store_true", help=TRUST_HELP)
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default: %(default)s, this machine only)")
    serve.add_argument("--port", type=int, default=8000, help="TCP port, 1-65535 (default: %(default)s)")
    serve.add_argument("--allowed-host", action="append", default=[], metavar="NAME",
                       help="also answer requests whose Host header is NAME, e.g. the machine's name on your network "
                            "(repeatable; default: the --host address, and localhost when it is a loopback address)")

    runs = command("runs", "list the run folders under DIR: date, dataset, models, accuracies, finished or stopped")
    runs.add_argument("directory", nargs="?", default="runs", metavar="DIR",
                      help="folder holding run folders, searched 3 levels deep (default: %(default)s)")
    runs.add_argument("--json", action="store_true", help="print the index as JSON")

    compare_runs = command("compare-runs", "compare models from different runs on the same test set: "
                                           "paired McNemar per seed pair, pooled, Holm; bootstrap intervals")
    compare_runs.add_argument("entries", nargs="+", metavar="RUN[:MODEL]",
                              help="two or more run folders, each with the model to take from it "
                                   "(optional when the run has one model)")
    compare_runs.add_argument("--out", metavar="DIR",
                              help="folder for comparison.json, report.md and report.html "
                                   "(default: runs/<timestamp>-compare-runs)")
    compare_runs.add_argument("--force", action="store_true",
                              help="replace an earlier compare-runs result in --out (only its own files)")

    track = command("track", "log a finished compare run folder to MLflow or TensorBoard, as --mlflow and "
                             "--tensorboard would have during the run")
    track.add_argument("run_dir", help="a folder written by mnistlab compare")
    _add_tracking_flags(track)

    card = command("card", "print a checkpoint's model card (the <checkpoint>.md compare and train write)")
    card.add_argument("checkpoint", help="a .pt file written by train or compare")

    data = command("data", "list, fetch or verify datasets")
    data_commands = data.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    data_commands.add_parser("list", help="registered datasets and where a local copy was found")
    fetch = data_commands.add_parser("fetch", help="download a dataset into the user cache and verify it")
    fetch.add_argument("name")
    fetch.add_argument("--mirror", action="append", metavar="URL",
                       help="base URL to download from instead of the registry's mirrors (repeatable)")
    verify = data_commands.add_parser("verify", help="check a local copy's checksums and structure")
    verify.add_argument("name")
    return parser
