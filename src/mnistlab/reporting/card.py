"""Model cards: a checkpoint described for a person, as Markdown beside it (`<checkpoint>.md`).

    mnistlab card runs/demo/cnn-seed0.pt     # prints the card; compare and train write it beside the file

A card says what the model is (architecture, parameters, classes), what it was
trained on (split sizes, checksums, the config), how well it did (this
checkpoint's test accuracy and, from the run's metrics.json beside it, the
interval over seeds, per-class recall, calibration, robustness where measured),
what its "not sure" threshold means, its known failure modes, all from the
run's own measurements, and how to load it. Nothing here trains or tests: a
card only reads the checkpoint and the run's records.
"""

from __future__ import annotations

import os
from pathlib import Path

from mnistlab.common.atomic import write_text_atomic
from mnistlab.common.errors import MnistlabError
from mnistlab.evaluation.evaluate import most_confused_pairs
from mnistlab.evaluation.ood import KEEP_DIGITS
from mnistlab.evaluation.robustness import CLEAN
from mnistlab.models.catalogue import BUILT_IN
from mnistlab.reporting.document import percent
from mnistlab.runs.folder import METRICS_FILE, read_metrics
from mnistlab.training.checkpoint import load_checkpoint, read_checkpoint
from mnistlab.training.config import describe_training

WEAKEST_CLASSES = 3  # classes named as the weakest, by recall
WORST_CORRUPTIONS = 3  # corruptions named as the hardest
MISCALIBRATED_ECE = 0.02  # test ECE from which miscalibration is listed as a failure mode


def card_path(checkpoint: str | os.PathLike) -> Path:
    """Where a checkpoint's card lives: `<checkpoint>.md` (cnn.pt -> cnn.pt.md), never a run's own report.md."""
    checkpoint = Path(checkpoint)
    return checkpoint.with_name(checkpoint.name + ".md")


def write_model_cards(run_dir: str | os.PathLike, metrics: dict) -> list[Path]:
    """Write the card of every checkpoint a compare run lists in `metrics`; return their paths."""
    run_dir, written = Path(run_dir), []
    for result in metrics["models"].values():
        for record in result["seeds"]:
            path = card_path(run_dir / record["checkpoint"])
            write_text_atomic(path, model_card(run_dir / record["checkpoint"], metrics))
            written.append(path)
    return written


def write_model_card(checkpoint: str | os.PathLike) -> Path:
    """Write the card of a lone checkpoint (`mnistlab train`'s) beside it; return its path."""
    path = card_path(checkpoint)
    write_text_atomic(path, model_card(checkpoint))
    return path


def run_metrics_for(checkpoint: Path) -> dict | None:
    """The metrics.json of the run folder holding `checkpoint`, if it lists it (a lone checkpoint has none)."""
    if not (checkpoint.parent / METRICS_FILE).is_file():
        return None
    try:
        metrics = read_metrics(checkpoint.parent)
    except MnistlabError:  # a damaged metrics.json: the card is written from the checkpoint alone
        return None
    listed = any(record["checkpoint"] == checkpoint.name for result in metrics["models"].values()
                 for record in result["seeds"])
    return metrics if listed else None


def model_card(checkpoint: str | os.PathLike, metrics: dict | None = None) -> str:
    """The card of `checkpoint` as Markdown; `metrics` is its run's (read from beside it when not given)."""
    checkpoint = Path(checkpoint)
    state = read_checkpoint(checkpoint)
    own = state.get("model_spec", {}).get("kind", "built-in") != "built-in"
    model = None if own else load_checkpoint(checkpoint)[0]  # a card never runs a user's model code
    metrics = metrics if metrics is not None else run_metrics_for(checkpoint)
    name, config, dataset, scores = state["model_name"], state["config"], state["dataset"], state.get("metrics", {})
    run_result, seed_record = None, None
    if metrics is not None:
        run_result = next((result for result in metrics["models"].values()
                           if any(record["checkpoint"] == checkpoint.name for record in result["seeds"])), None)
        seed_record = next((record for record in (run_result or {}).get("seeds", [])
                            if record["checkpoint"] == checkpoint.name), None)
    versions = state.get("versions", {})
    made_by = f"mnistlab {versions.get('mnistlab', '?')}" + (f" (commit {versions['commit']})" if versions.get("commit") else "")
    lines = [f"# Model card: {name} (seed {config.get('seed', '?')})", "",
             f"Checkpoint `{checkpoint.name}`, written by {made_by} with PyTorch {versions.get('torch', '?')}.", ""]
    lines += what_it_is(name, model, state)
    lines += training_data(dataset, config)
    lines += results(scores, run_result, seed_record, metrics)
    lines += not_sure(scores)
    lines += failure_modes(scores, run_result, seed_record, metrics, dataset["class_names"])
    lines += how_to_load(checkpoint, own)
    return "\n".join(lines).rstrip() + "\n"


def what_it_is(name: str, model, state: dict) -> list[str]:
    """The card's first section: summary, parameters, classes, input, architecture."""
    entry = BUILT_IN.get(name)
    classes = state["dataset"]["class_names"]
    summary = entry.summary if entry else f"The registered model {name!r}."
    if model is None:  # a model of the user's own: described from its record, its code not run
        spec = state["model_spec"]
        arguments = ", ".join(f"{key}={value!r}" for key, value in spec.get("arguments", {}).items())
        parameters = state.get("metrics", {}).get("params")
        summary = (f"A model of the user's own: `{spec['target']}{f'({arguments})' if arguments else ''}` "
                   f"(source SHA-256 {spec.get('source_sha256', '?')[:16]}, recorded in the checkpoint; loading it "
                   f"runs that code, so it needs --trust-code).")
        architecture = "(built by running the recorded code: load it with trust_code=True to print it)"
    else:
        parameters = sum(parameter.numel() for parameter in model.parameters() if parameter.requires_grad)
        architecture = str(model)
    shown = ", ".join(classes[:12]) + (", ..." if len(classes) > 12 else "")
    return ["## What it is", "",
            f"{summary} {'' if parameters is None or f'{parameters:,}' in summary else f'{parameters:,} trainable parameters; '}"
            f"{len(classes)} classes ({shown}); input: one 28x28 greyscale image "
            f"({state['dataset'].get('preprocess', 'digits')} preprocessing, {state['dataset'].get('background', 'dark')} "
            f"background as trained).", "", "Architecture:", "", "```", architecture, "```", ""]


def training_data(dataset: dict, config: dict) -> list[str]:
    """Split sizes, file checksums and the resolved config."""
    lines = ["## Training data and configuration", "",
             f"Dataset `{dataset['name']}`: {dataset['train_size']:,} training images, {dataset['validation_size']:,} "
             f"held out for validation (stratified), {dataset['test_size']:,} test images. Payload SHA-256:", ""]
    lines += [f"- `{file_name}`: `{digest}`" for file_name, digest in dataset.get("checksums", {}).items()]
    lines += ["", f"Training: {describe_training(config)}.", "", "| setting | value |", "|---|---|"]
    lines += [f"| {key} | {value} |" for key, value in config.items()]
    return lines + [""]


def results(scores: dict, run_result: dict | None, seed_record: dict | None, metrics: dict | None) -> list[str]:
    """This checkpoint's scores, the run's interval over seeds, calibration, per-class recall, robustness."""
    lines = ["## Results", ""]
    history = scores.get("history") or []
    if history:
        lines.append(f"- Validation accuracy after the last epoch: {percent(history[-1]['val_accuracy'])}%.")
    if "test_accuracy" not in scores:
        lines += ["- Not tested: `mnistlab train` leaves the test split untouched; test it with "
                  "`mnistlab evaluate` on this file.", ""]
        return lines
    lines.append(f"- Test accuracy of this checkpoint: {percent(scores['test_accuracy'])}% "
                 f"(loss {scores['test_loss']:.4f}).")
    if run_result is not None:
        interval, seeds = run_result.get("accuracy") or {}, len(run_result["seeds"])
        if seeds > 1 and interval.get("ci_low") is not None:
            lines.append(f"- Over the run's {seeds} seeds: {percent(run_result['test_accuracy'])}% mean, 95% interval "
                         f"{percent(interval['ci_low'])}–{percent(interval['ci_high'])}% (Student t), std "
                         f"{percent(interval['std'])} points.")
        ensemble = run_result.get("ensemble")
        if ensemble:
            lines.append(f"- The {ensemble['seeds']} seeds' averaged probabilities (an ensemble): "
                         f"{percent(ensemble['accuracy'])}%.")
    calibration = (seed_record or {}).get("calibration")
    if calibration and "before" in calibration:
        before, after = calibration["before"], calibration["after"]
        lines.append(f"- Calibration on the test set: ECE {before['ece']:.4f}, NLL {before['nll']:.4f}, Brier "
                     f"{before['brier']:.4f}; after temperature scaling (T = {calibration['temperature']:.3g}, fitted "
                     f"on the validation split): ECE {after['ece']:.4f}, NLL {after['nll']:.4f}.")
    lines += ["", "Per-class recall on the test set (this checkpoint):", "", "| class | recall | precision | support |",
              "|---|---|---|---|"]
    lines += [f"| {row['class']} | {row['recall']:.4f} | {row['precision']:.4f} | {row['support']} |"
              for row in scores.get("per_class", [])]
    robustness = (metrics or {}).get("robustness", {}).get("models", {}).get(_model_of(run_result, metrics))
    if robustness:
        lines += ["", "Robustness (accuracy over the run's seeds, corrupted test images):", "",
                  "| test images | accuracy (%) |", "|---|---|"]
        lines += [f"| {corruption} | {percent(entry['mean'])} |" for corruption, entry in robustness.items()]
    return lines + [""]


def not_sure(scores: dict) -> list[str]:
    """The "not sure" threshold and what it means (none for checkpoints from before it was recorded)."""
    threshold = scores.get("not_sure_threshold")
    if threshold is None:
        return []
    return ["## The \"not sure\" threshold", "",
            f"`mnistlab predict` and `mnistlab serve` mark a prediction \"not sure\" when its top probability is below "
            f"{threshold:.4f}. The threshold was chosen on the validation split so that {percent(KEEP_DIGITS, 0)}% of "
            f"real validation images reach it: about 1 in {round(1 / (1 - KEEP_DIGITS))} genuine images is flagged, "
            f"and an image far from the training data (a non-digit, a bad photo) is flagged more often, not always.", ""]


def failure_modes(scores: dict, run_result: dict | None, seed_record: dict | None, metrics: dict | None,
                  class_names) -> list[str]:
    """Known failure modes, each from a measurement of this checkpoint or its run."""
    found = []
    if "confusion_matrix" in scores:
        pairs = most_confused_pairs(scores["confusion_matrix"], class_names, 3)
        if pairs:
            found.append("Most-confused classes (test set): " + "; ".join(
                f"{pair['true']} read as {pair['predicted']} ({pair['count']} times, {percent(pair['share'], 1)}% of "
                f"the {pair['true']}s)" for pair in pairs) + ".")
        weakest = sorted(scores.get("per_class", []), key=lambda row: row["recall"])[:WEAKEST_CLASSES]
        if weakest:
            found.append("Lowest recall: " + ", ".join(f"{row['class']} ({percent(row['recall'], 1)}%)"
                                                        for row in weakest) + ".")
    calibration = (seed_record or {}).get("calibration")
    if calibration and "before" in calibration and calibration["before"]["ece"] >= MISCALIBRATED_ECE:
        direction = "overconfident" if calibration["temperature"] > 1 else "underconfident"
        found.append(f"Its probabilities are {direction}: test ECE {percent(calibration['before']['ece'])}% (fitted "
                     f"temperature {calibration['temperature']:.3g}); read them as rankings more than as frequencies.")
    robustness = (metrics or {}).get("robustness", {}).get("models", {}).get(_model_of(run_result, metrics))
    if robustness:
        corrupted = sorted((entry["mean"], corruption) for corruption, entry in robustness.items()
                           if corruption not in (CLEAN, "mean-corrupted"))[:WORST_CORRUPTIONS]
        found.append("Hardest corruptions: " + ", ".join(f"{corruption} ({percent(mean, 1)}%)"
                                                         for mean, corruption in corrupted) + ".")
    for non_digits, entry in ((run_result or {}).get("not_a_digit") or {}).items():
        found.append(f"On {non_digits} (not digits) the \"not sure\" flag catches {percent(entry['non_digits_flagged'], 1)}%"
                     f" (AUROC {entry['auroc']:.3f}); the other {percent(1 - entry['non_digits_flagged'], 1)}% are "
                     f"read as a digit above the threshold.")
    if not found:
        found.append("None measured yet: test it (`mnistlab evaluate`), or train it in `mnistlab compare` "
                     "(add --robustness for corruptions) to have them listed here.")
    return ["## Known failure modes", "", *[f"- {item}" for item in found], ""]


def how_to_load(checkpoint: Path, own: bool = False) -> list[str]:
    """Loading it in Python and on the command line (a user's own model with trust: its recorded code runs)."""
    trust, flag = (", trust_code=True", " --trust-code") if own else ("", "")
    return ["## How to load it", "", "```python", "import mnistlab", "",
            f"model = mnistlab.load(\"{checkpoint.name}\"{trust})  # rebuilds the network from the file alone",
            "labels = model.predict(images)  # images: (N, 28, 28) uint8, or image files", "```", "",
            f"Or on the command line: `mnistlab predict {checkpoint.name} digit.png{flag}`, "
            f"`mnistlab evaluate {checkpoint.name}{flag}`, `mnistlab serve --checkpoints {checkpoint.name}{flag}`.", ""]


def _model_of(run_result: dict | None, metrics: dict | None) -> str | None:
    """The model name of `run_result` in `metrics` (its key)."""
    for name, result in (metrics or {}).get("models", {}).items():
        if result is run_result:
            return name
    return None
