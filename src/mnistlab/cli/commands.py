"""One function per `mnistlab` command that trains, tests or reads runs: its flags into settings (`flags`), one
library call, what it prints. The commands that read a user's images are in `image_commands`; `main.COMMANDS`
maps each command's name to its function.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from mnistlab.cli.flags import config_files, model_specs, parse_seeds, settings_from, trackers_from
from mnistlab.common.errors import ConfigError
from mnistlab.common.extras import require_extra
from mnistlab.runs.metrics_check import read_metrics
from mnistlab.training.checkpoint_path import check_checkpoint_file

EXIT_USER_ERROR = 2


def print_error(message: str) -> None:
    """`mnistlab: error: ...` on stderr, on one line even when a file name holds line breaks, and with no control
    characters (a name from a file or a checkpoint could hold terminal escapes): each shows as "?"."""
    text = "".join(character if character.isprintable() else "?" for character in " ".join(message.splitlines()))
    print(f"mnistlab: error: {text}", file=sys.stderr)


def check_built_in_configs(models: list, settings: dict, model_settings: dict[str, dict]) -> None:
    """Build each built-in model's config as the run will (a built-in's recipe needs no code run), so a bad
    setting is refused before PyTorch loads; your own models' recipes are read when their code is imported."""
    from mnistlab.training.config import model_config

    for spec in models:
        if spec.builtin:
            model_config(spec, {**settings, **model_settings.get(spec.label, {})})


def compare_arguments(args: argparse.Namespace) -> tuple[list, dict, dict, list[int]]:
    """compare's flags read and checked without PyTorch: (model specs, shared settings, each model's, seeds)."""
    from mnistlab.models.spec import split_specs

    if args.resume and not args.out:
        raise ConfigError("--resume needs --out DIR, the run folder to continue")
    models = model_specs(split_specs(args.models), args.config)
    settings, model_settings = settings_from(args, [spec.label for spec in models])
    check_built_in_configs(models, settings, model_settings)
    seed_given = any("seed" in chosen for chosen in [settings, *model_settings.values()])
    return models, settings, model_settings, parse_seeds(args.seeds, settings.get("seed", 0), seed_given)


def run_compare_command(args: argparse.Namespace) -> int:
    from mnistlab.reporting.report import summary_table
    from mnistlab.study.compare import run_compare
    from mnistlab.study.plan import default_run_dir, plan_placement

    models, settings, model_settings, seeds = compare_arguments(args)
    out_dir = Path(args.out) if args.out else default_run_dir("compare")
    placement = plan_placement(args.workers, args.threads, args.device or "cpu", args.ray)
    if args.train_sizes:
        return _run_size_sweep(args, models, settings, model_settings, out_dir, seeds, placement)
    metrics = run_compare(models, settings, out_dir, seeds=seeds, model_settings=model_settings,
                          robustness=args.robustness, resume=args.resume, placement=placement, explain=args.explain,
                          data_dir=args.data_dir, progress=not args.quiet, force=args.force,
                          trackers=trackers_from(args), seeds_together=args.seeds_together)
    print(summary_table(metrics))
    print(f"\nRun folder: {out_dir}  (report.md, report.html, metrics.json, figures, predictions, checkpoints)")
    return 0


def _run_size_sweep(args, models, settings, model_settings, out_dir, seeds, placement) -> int:
    """`compare --train-sizes`: one comparison per training-set size, then the learning curve."""
    from mnistlab.reporting.learning_curves import sweep_table
    from mnistlab.study.sizes import SWEEP_MARKDOWN, parse_train_sizes, run_size_sweep

    sweep = run_size_sweep(models, settings, out_dir, parse_train_sizes(args.train_sizes), seeds=seeds,
                           model_settings=model_settings, resume=args.resume, placement=placement,
                           data_dir=args.data_dir, progress=not args.quiet, force=args.force,
                           robustness=args.robustness, explain=args.explain, seeds_together=args.seeds_together)
    print(sweep_table(sweep))
    print(f"\nRun folder: {out_dir}  ({SWEEP_MARKDOWN}, learning_curve.html, .png, .json; a compare run per size)")
    return 0


def run_models_command(args: argparse.Namespace) -> int:
    from mnistlab.models.catalogue import BUILT_IN
    from mnistlab.training.config import describe_training, load_config

    from mnistlab.models.spec import entry_points

    for entry in BUILT_IN.values():
        print(f"{entry.name:11} {entry.parameters:>9,} parameters  {entry.summary}")
        print(f"{'':11} recipe: {describe_training(load_config(recipe=entry.recipe).to_dict())}")
    for name, target in entry_points().items():
        print(f"{name:11} from an installed package: {target}")
    print("\nYour own: --models FILE.py:Class or package.module:Class (see docs/models.md)")
    return 0


def one_model_arguments(args: argparse.Namespace) -> tuple:
    """train's and tune's flags read and checked without PyTorch: (the model's spec, its settings)."""
    if args.command == "tune":
        require_extra("tune", "mnistlab tune")
        if args.resume and not args.out:
            raise ConfigError("--resume needs --out DIR, the run folder to continue")
    [spec] = model_specs([args.model], args.config)
    shared, own = settings_from(args, [spec.label])
    check_built_in_configs([spec], shared, own)
    return spec, {**shared, **own.get(spec.label, {})}


def run_train_command(args: argparse.Namespace) -> int:
    from mnistlab.common.atomic import check_output_file
    from mnistlab.study.plan import default_run_dir
    from mnistlab.study.single import train_checkpoint

    spec, settings = one_model_arguments(args)
    out_path = Path(args.out) if args.out else default_run_dir("train") / f"{spec.label}.pt"
    shared_file, model_files = config_files(args.config, [spec.label])
    inputs = [path for path in (shared_file, *model_files.values()) if path]
    inputs += [spec.target.rpartition(":")[0]] if spec.kind == "file" else []
    check_output_file(out_path, "--out", inputs, args.force, f"{spec.label}.pt")  # --force keeps inputs too
    metrics = train_checkpoint(spec, settings, out_path, args.data_dir, progress=not args.quiet,
                               device=args.device or "cpu", overwrite=args.force, trackers=trackers_from(args))
    last = metrics["history"][-1]
    print(f"{spec.label}: {metrics['params']:,} parameters, {metrics['train_seconds']:.1f} s, "
          f"validation accuracy {100 * last['val_accuracy']:.2f}%")
    print(f"Checkpoint: {out_path}")
    return 0


def run_tune_command(args: argparse.Namespace) -> int:
    spec, settings = one_model_arguments(args)
    import optuna

    from mnistlab.runs.folder import TUNE_SUMMARY
    from mnistlab.study.plan import default_run_dir
    from mnistlab.tune.search import run_tune

    out_dir = Path(args.out) if args.out else default_run_dir("tune")
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # the CLI is the entry point: its own lines say enough
    summary = run_tune(spec, settings, out_dir, args.trials, args.data_dir,
                       space_file=args.space, resume=args.resume, workers=args.workers, threads=args.threads,
                       device=args.device or "cpu", progress=not args.quiet, ray_address=args.ray, force=args.force,
                       trackers=trackers_from(args))
    counts = ", ".join(f"{count} {state}" for state, count in summary["trials"].items() if count)
    if summary["best_trial"] is None:
        print(f"{spec.label}: no trial completed ({counts}); see {out_dir / TUNE_SUMMARY}")
        return EXIT_USER_ERROR
    settings = ", ".join(f"{key} = {value:.4g}" if isinstance(value, float) else f"{key} = {value}"
                         for key, value in summary["best_settings"].items())
    print(f"{spec.label}: best trial {summary['best_trial']} of {args.trials} ({counts}): validation accuracy "
          f"{100 * summary['best_val_accuracy']:.2f}% with {settings}")
    print(f"\nRun folder: {out_dir}  (best.toml, trials.csv, tune.md, figures, tune.db)")
    return 0


def run_evaluate_command(args: argparse.Namespace) -> int:
    from mnistlab.study.single import evaluate_checkpoint

    metrics = evaluate_checkpoint(args.checkpoint, args.data_dir, progress=not args.quiet, dataset=args.dataset,
                                  device=args.device or "cpu", allow_class_mismatch=args.allow_class_mismatch,
                                  trust_code=args.trust_code)
    if metrics.get("note"):
        print(f"mnistlab: note: {metrics['note']}", file=sys.stderr)
    if args.json:
        print(json.dumps(metrics, indent=2))
        return 0
    loss = "n/a (labels beyond the model's classes)" if metrics["test_loss"] is None else f"{metrics['test_loss']:.4f}"
    print(f"{metrics['model']} on {metrics['dataset']} test set: accuracy {100 * metrics['test_accuracy']:.2f}%, "
          f"loss {loss}")
    print(f"{'class':>12}  precision  recall     f1  support")
    for row in metrics["per_class"]:
        print(f"{row['class']:>12}  {row['precision']:9.4f}  {row['recall']:6.4f}  {row['f1']:.4f}  {row['support']:7d}")
    return 0


def run_export_command(args: argparse.Namespace) -> int:
    checkpoint_arguments(args)  # the onnx extra first (COMMAND_EXTRAS), then the checkpoint file
    from mnistlab.vision.export import export_onnx

    written = export_onnx(args.checkpoint, args.out, args.opset, overwrite=args.force, trust_code=args.trust_code)
    print(f"Wrote {written}")
    return 0


def run_report_command(args: argparse.Namespace) -> int:
    from mnistlab.reporting.report import rebuild_report
    from mnistlab.runs.folder import REPORT_MARKDOWN
    from mnistlab.study.compare import add_robustness

    run_folder_arguments(args)
    if args.robustness:
        add_robustness(args.run_dir, args.data_dir, progress=not args.quiet, device=args.device or "cpu",
                       trust_code=args.trust_code)
    if args.explain:
        from mnistlab.explain.run_attributions import add_attributions

        add_attributions(args.run_dir, args.data_dir, progress=not args.quiet, device=args.device or "cpu",
                         trust_code=args.trust_code)
    if not (args.robustness or args.explain):
        rebuild_report(args.run_dir)
    print(f"Rebuilt {Path(args.run_dir) / REPORT_MARKDOWN} and its figures")
    return 0


def run_data_command(args: argparse.Namespace) -> int:
    from mnistlab.data import datasets, registry

    if args.data_command == "list":
        for name, spec in registry.DATASETS.items():
            where = datasets.find_local_copy(name, args.data_dir)
            print(f"{name:14} {spec.description}\n{'':14} local copy: {where or 'none (will download on first use)'}")
        return 0
    registry.get_dataset_spec(args.name, folders=False)  # a folder or unknown name: an error that fits this command
    if args.data_command == "fetch":
        paths = datasets.fetch_dataset(args.name, mirrors=args.mirror, progress=not args.quiet)
    else:
        paths = datasets.load_dataset(args.name, args.data_dir, download=False, progress=not args.quiet).sources
    for file_name, path in paths.items():
        print(f"ok  {file_name:26} {path}")
    return 0


def run_runs_command(args: argparse.Namespace) -> int:
    from mnistlab.runs.index import format_runs, list_runs

    records = list_runs(args.directory)
    if args.json:
        print(json.dumps(records, indent=2))
    elif not records:
        print(f"No run folders under {args.directory}")
    else:
        print(format_runs(records))
    return 0


def run_compare_runs_command(args: argparse.Namespace) -> int:
    from mnistlab.study.plan import default_run_dir
    from mnistlab.study.compare_runs import comparison_table, compare_runs

    out_dir = Path(args.out) if args.out else default_run_dir("compare-runs")
    result = compare_runs(args.entries, out_dir, force=args.force)
    print(comparison_table(result))
    print(f"\nReport: {out_dir}  (report.md, report.html, comparison.json)")
    return 0


def track_arguments(args: argparse.Namespace) -> None:
    """track's flags and run folder checked without PyTorch (not a finished run: said before connecting)."""
    if not (args.mlflow or args.tensorboard):
        raise ConfigError("track needs --mlflow URI or --tensorboard DIR (or both): where to log the run")
    read_metrics(args.run_dir)


COMMAND_EXTRAS = {"export": "onnx", "explain": "explain"}  # a command that cannot run without an extra says so first


def checkpoint_arguments(args: argparse.Namespace) -> None:
    """The checkpoint file a command reads (and the extra it needs), checked without PyTorch."""
    if args.command in COMMAND_EXTRAS:
        require_extra(COMMAND_EXTRAS[args.command], f"mnistlab {args.command}")
    check_checkpoint_file(args.checkpoint)


def predict_arguments(args: argparse.Namespace) -> None:
    """`predict`'s flags, without PyTorch: with --number, no option only a single-digit reading takes; then the
    checkpoint file."""
    if args.number:
        given = [name for name, used in (("--top-k", args.top_k is not None), ("--show-input", args.show_input))
                 if used]
        if given:
            raise ConfigError(f"--number does not take {' or '.join(given)}: it gives every digit's box and "
                              f"probabilities; leave {'them' if len(given) > 1 else 'it'} out")
    checkpoint_arguments(args)


def run_folder_arguments(args: argparse.Namespace) -> None:
    """The run folder `report` reads, its metrics.json checked without PyTorch (the extra --explain needs first)."""
    if args.explain:
        require_extra("explain", "report --explain")
    read_metrics(args.run_dir)


def run_track_command(args: argparse.Namespace) -> int:
    from mnistlab.tracking.hooks import log_run_folder

    track_arguments(args)
    metrics = log_run_folder(Path(args.run_dir), trackers_from(args, strict=True))
    jobs = sum(len(result["seeds"]) for result in metrics["models"].values())
    print(f"Logged {args.run_dir}: {len(metrics['models'])} model(s), {jobs} (model, seed) run(s)")
    return 0


def run_card_command(args: argparse.Namespace) -> int:
    from mnistlab.reporting.card import model_card

    print(model_card(args.checkpoint), end="")
    return 0
