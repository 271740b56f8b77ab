"""One function per `mnistlab` command: its flags into settings, one library call, what it prints.

`main.main` parses the flags and sets up the runtime; `COMMANDS` maps each command's name to its function here.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from mnistlab.common.errors import ConfigError
from mnistlab.common.extras import require_extra

EXIT_USER_ERROR = 2


def print_error(message: str) -> None:
    """`mnistlab: error: ...` on stderr, on one line even when a file name holds line breaks."""
    print(f"mnistlab: error: {' '.join(message.splitlines())}", file=sys.stderr)


def _settings_from(args: argparse.Namespace, model_names: list[str]) -> tuple[dict, dict[str, dict]]:
    """The shared settings (--config FILE, then flags) and each model's own (--config MODEL=FILE, then flags)."""
    from mnistlab.training.config import read_settings

    shared_file, model_files = _config_files(args.config, model_names)
    flags = dict(dataset=args.dataset, epochs=args.epochs, batch_size=args.batch_size,
                 learning_rate=args.learning_rate, validation_fraction=args.validation_fraction, seed=args.seed,
                 limit_train=args.limit_train, precision=args.precision)
    return (read_settings(shared_file, **flags),
            {name: read_settings(path, **flags) for name, path in model_files.items()})


def _config_files(values: list[str] | None, model_names: list[str]) -> tuple[str | None, dict[str, str]]:
    """`--config` values: at most one FILE for every model, and MODEL=FILE (a model's label) for one."""
    from mnistlab.models.catalogue import BUILT_IN as MODELS

    shared, own = None, {}
    for value in values or []:
        name, equals, path = value.partition("=")
        if equals and (name in MODELS or name in model_names):
            if name not in model_names:
                raise ConfigError(f"--config {value}: {name} is not a model of this command "
                                  f"({', '.join(model_names)}); name one of them or drop the file")
            if name in own:
                raise ConfigError(f"--config {name}=... given twice; give each model one file")
            own[name] = path
        elif shared is not None:
            raise ConfigError(f"--config {value}: a file for every model is given already ({shared}); "
                              f"give one shared file, and MODEL=FILE for a model's own")
        else:
            shared = value
    return shared, own


def run_compare_command(args: argparse.Namespace) -> int:
    from mnistlab.models.spec import split_specs
    from mnistlab.reporting.report import summary_table
    from mnistlab.study.compare import default_run_dir, plan_placement, run_compare

    if args.resume and not args.out:
        raise ConfigError("--resume needs --out DIR, the run folder to continue")
    out_dir = Path(args.out) if args.out else default_run_dir("compare")
    models = _model_specs(split_specs(args.models), args.config)
    settings, model_settings = _settings_from(args, [spec.label for spec in models])
    seed_given = any("seed" in chosen for chosen in [settings, *model_settings.values()])
    seeds = parse_seeds(args.seeds, settings.get("seed", 0), seed_given)
    placement = plan_placement(args.workers, args.threads, args.device or "cpu", args.ray)
    if args.train_sizes:
        return _run_size_sweep(args, models, settings, model_settings, out_dir, seeds, placement)
    metrics = run_compare(models, settings, out_dir, seeds=seeds, model_settings=model_settings,
                          robustness=args.robustness, resume=args.resume, placement=placement, explain=args.explain,
                          data_dir=args.data_dir, progress=not args.quiet, force=args.force,
                          seeds_together=args.seeds_together)
    print(summary_table(metrics))
    print(f"\nRun folder: {out_dir}  (report.md, report.html, metrics.json, figures, predictions, checkpoints)")
    return 0


def _model_specs(texts: list[str], config_values: list[str] | None) -> list:
    """Each `--models` entry as a spec: a `[models.LABEL]` table of the shared config file, or the text itself.
    Model files are read here, not run."""
    from mnistlab.models.spec import parse_spec, written_label
    from mnistlab.training.config import read_model_tables

    shared, _ = _config_files(config_values, [written_label(text) for text in texts])
    tables = read_model_tables(shared)
    return [parse_spec(tables[text]["spec"], tables[text].get("arguments"), label=text) if text in tables
            else parse_spec(text) for text in texts]


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


def parse_seeds(text: str | None, first_seed: int, seed_given: bool) -> list[int] | None:
    """`--seeds`: an integer N means N seeds from `first_seed`; a comma-separated list means those seeds."""
    if text is None:
        return None
    text = text.strip()
    try:
        if "," not in text:
            count = int(text)
            if not 1 <= count <= 1000:
                raise ValueError
            return list(range(first_seed, first_seed + count))
        seeds = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ConfigError(f"--seeds {text[:40]!r} is invalid; give a count from 1 to 1000 (--seeds 5) "
                          f"or a list (--seeds 0,1,2)") from None
    if seed_given:
        raise ConfigError(f"--seeds {text} lists the seeds, so --seed (or a config file's seed) must not be given too")
    return seeds


def run_models_command(args: argparse.Namespace) -> int:
    from mnistlab.models.catalogue import BUILT_IN
    from mnistlab.training.config import describe_training, load_config

    for entry in BUILT_IN.values():
        print(f"{entry.name:11} {entry.parameters:>9,} parameters  {entry.summary}")
        print(f"{'':11} recipe: {describe_training(load_config(recipe=entry.recipe).to_dict())}")
    return 0


def run_train_command(args: argparse.Namespace) -> int:
    from mnistlab.common.atomic import check_output_file
    from mnistlab.models.spec import parse_spec
    from mnistlab.study.compare import default_run_dir
    from mnistlab.study.single import train_checkpoint

    [spec] = _model_specs([args.model], args.config)
    shared, own = _settings_from(args, [spec.label])
    settings = {**shared, **own.get(spec.label, {})}
    out_path = Path(args.out) if args.out else default_run_dir("train") / f"{spec.label}.pt"
    shared_file, model_files = _config_files(args.config, [spec.label])
    config_files = [path for path in (shared_file, *model_files.values()) if path]
    source = [spec.target.rpartition(":")[0]] if spec.kind == "file" else []
    check_output_file(out_path, "--out", config_files + source, args.force, f"{spec.label}.pt")  # keeps inputs
    metrics = train_checkpoint(spec, settings, out_path, args.data_dir, progress=not args.quiet,
                               device=args.device or "cpu", overwrite=args.force)
    last = metrics["history"][-1]
    print(f"{spec.label}: {metrics['params']:,} parameters, {metrics['train_seconds']:.1f} s, "
          f"validation accuracy {100 * last['val_accuracy']:.2f}%")
    print(f"Checkpoint: {out_path}")
    return 0


def run_tune_command(args: argparse.Namespace) -> int:
    require_extra("tune", "mnistlab tune")
    import optuna

    from mnistlab.models.spec import parse_spec
    from mnistlab.runs.folder import TUNE_SUMMARY
    from mnistlab.study.compare import default_run_dir
    from mnistlab.tune.search import run_tune

    if args.resume and not args.out:
        raise ConfigError("--resume needs --out DIR, the run folder to continue")
    [spec] = _model_specs([args.model], args.config)
    shared, own = _settings_from(args, [spec.label])
    out_dir = Path(args.out) if args.out else default_run_dir("tune")
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # the CLI is the entry point: its own lines say enough
    summary = run_tune(spec, {**shared, **own.get(spec.label, {})}, out_dir, args.trials, args.data_dir,
                       space_file=args.space, resume=args.resume, workers=args.workers, threads=args.threads,
                       device=args.device or "cpu", progress=not args.quiet, ray_address=args.ray, force=args.force)
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
    require_extra("onnx", "mnistlab export")
    from mnistlab.vision.export import export_onnx

    written = export_onnx(args.checkpoint, args.out, args.opset, overwrite=args.force, trust_code=args.trust_code)
    print(f"Wrote {written}")
    return 0


def run_report_command(args: argparse.Namespace) -> int:
    from mnistlab.reporting.report import rebuild_report
    from mnistlab.runs.folder import REPORT_MARKDOWN
    from mnistlab.study.compare import add_robustness

    if args.explain:
        require_extra("explain", "report --explain")
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


def run_predict_command(args: argparse.Namespace) -> int:
    from mnistlab.vision.loading import load_model
    from mnistlab.vision.predict import format_table, predict_files, prepare_input_folder, save_inputs

    if args.number:
        return run_number_command(args)
    if args.show_input:
        prepare_input_folder(args.show_input, args.images, force=args.force)  # a bad folder: an error before any work
    loaded = load_model(args.checkpoint, device=args.device or "cpu", trust_code=args.trust_code)
    if loaded.note():
        print(f"mnistlab: note: {loaded.note()}", file=sys.stderr)
    results = predict_files(loaded, args.images, top_k=args.top_k)
    for result in results:
        if result.error:
            print_error(result.error)
    print(json.dumps([result.to_dict() for result in results], indent=2) if args.json else format_table(results))
    if args.show_input:
        save_inputs(results, args.show_input)  # after printing: a full disk loses no prediction
    return EXIT_USER_ERROR if any(result.error for result in results) else 0


def run_number_command(args: argparse.Namespace) -> int:
    """`predict --number`: each image read as one number, left to right."""
    from mnistlab.common.errors import PreprocessError
    from mnistlab.vision.numbers import read_number
    from mnistlab.vision.loading import load_model
    from mnistlab.vision.predict import expand_image_paths

    loaded = load_model(args.checkpoint, device=args.device or "cpu", trust_code=args.trust_code)
    results, failed = [], False
    for source, problem in expand_image_paths(args.images):
        try:
            if problem:
                raise PreprocessError(problem)
            results.append({"image": source, **read_number(loaded, source)})
        except PreprocessError as error:
            message = str(error) if problem else f"{source}: {error}"
            print_error(message)
            results.append({"image": source, "error": message})
            failed = True
    if args.json:
        print(json.dumps(results, indent=2))
    for result in results if not args.json else []:
        if "number" in result:
            boxes = "  ".join(f"{item['digit']} {max(item['probabilities']):.0%} at {tuple(item['box'])}"
                              for item in result["digits"])
            print(f"{result['image']}: {result['number']}   ({boxes})")
    return EXIT_USER_ERROR if failed else 0


def run_explain_command(args: argparse.Namespace) -> int:
    require_extra("explain", "mnistlab explain")
    from mnistlab.explain.files import check_figure_paths, explain_files
    from mnistlab.vision.loading import load_model

    check_figure_paths(args.images, args.out, args.force)  # a bad --out: an error before the checkpoint loads
    loaded = load_model(args.checkpoint, device=args.device or "cpu", trust_code=args.trust_code)
    if loaded.note():
        print(f"mnistlab: note: {loaded.note()}", file=sys.stderr)
    results = explain_files(loaded, args.images, args.out, force=args.force)
    for result in results:
        if result.prediction.error:
            print_error(result.prediction.error)
    if args.json:
        print(json.dumps([result.to_dict() for result in results]))
    else:
        for result in results:
            if result.figure:
                name, probability = result.prediction.top[0]
                print(f"{result.prediction.source}: {name} ({100 * probability:.1f}%)  -> {result.figure}")
    return EXIT_USER_ERROR if any(result.prediction.error for result in results) else 0


def run_serve_command(args: argparse.Namespace) -> int:
    require_extra("serve", "mnistlab serve")
    from mnistlab.serve.app import run_server

    run_server(args.checkpoints, host=args.host, port=args.port, allowed_hosts=args.allowed_host,
               device=args.device or "cpu", trust_code=args.trust_code)
    return 0


COMMANDS = {
    "compare": run_compare_command,
    "models": run_models_command,
    "train": run_train_command,
    "tune": run_tune_command,
    "evaluate": run_evaluate_command,
    "export": run_export_command,
    "report": run_report_command,
    "data": run_data_command,
    "predict": run_predict_command,
    "explain": run_explain_command,
    "serve": run_serve_command,
}
