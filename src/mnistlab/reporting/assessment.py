"""The report's assessment sections (calibration, seed ensembles, not a digit, robustness) and their figures.

Like `report`, this reads only the run folder: `metrics.json` for the numbers,
`predictions.npz` for the reliability diagrams. Sections a run has no numbers
for (an older run, one seed, no --robustness) are left out.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mnistlab.evaluation.calibration import apply_temperature, expected_calibration_error, reliability_bins
from mnistlab.reporting.drawing import draw
from mnistlab.reporting.document import FigureRef, Section, Table, format_p, percent
from mnistlab.reporting.robustness_plots import plot_reliability_diagram, plot_sweep
from mnistlab.runs.arrays import RunArrays, stored_probabilities
from mnistlab.runs.folder import ROTATION_SWEEP_PLOT, SHIFT_SWEEP_PLOT, reliability_plot_name


def draw_assessment_figures(run_dir: Path, metrics: dict, arrays: RunArrays) -> None:
    """Reliability diagrams (every seed's test images pooled) and the two sweep figures."""
    labels = arrays.labels.astype(np.int64)
    for name, result in metrics["models"].items():
        if "calibration" not in result or name not in arrays.log_probabilities:
            continue
        log_probabilities = arrays.log_probabilities[name]  # (S, N, C) float16
        pooled = np.tile(labels, len(log_probabilities))
        before = stored_probabilities(log_probabilities).reshape(len(pooled), -1)
        after = np.concatenate([apply_temperature(seed_rows.astype(np.float64), record["calibration"]["temperature"])
                                for seed_rows, record in zip(log_probabilities, result["seeds"])])
        panels = {label: {**reliability_bins(values, pooled), "ece": expected_calibration_error(values, pooled)}
                  for label, values in (("before temperature scaling", before), ("after", after))}
        seeds = f", {len(log_probabilities)} seeds pooled" if len(log_probabilities) > 1 else ""
        draw(plot_reliability_diagram, panels, f"{name}: reliability on the test set{seeds}",
             run_dir / reliability_plot_name(name))
    robustness = metrics.get("robustness")
    if robustness:
        def band(sweep: dict) -> dict:
            return {name: (entry["mean"], entry["std"]) for name, entry in sweep["models"].items()}

        draw(plot_sweep, robustness["shift_sweep"]["pixels"], band(robustness["shift_sweep"]),
             "shift (pixels; mean of right, left, down, up)", "Accuracy against shift (band: +-1 std over seeds)",
             run_dir / SHIFT_SWEEP_PLOT)
        draw(plot_sweep, robustness["rotation_sweep"]["degrees"], band(robustness["rotation_sweep"]),
             "rotation (degrees, counter-clockwise)", "Accuracy against rotation (band: +-1 std over seeds)",
             run_dir / ROTATION_SWEEP_PLOT)


def assessment_sections(metrics: dict) -> list[Section]:
    """The sections this run has numbers for, in reading order."""
    models = metrics["models"]
    sections = []
    if all("calibration" in result for result in models.values()):
        sections.append(calibration_section(models, len(metrics["seeds"])))
    if any("ensemble" in result for result in models.values()):
        sections.append(ensemble_section(models))
    if any("not_a_digit" in result for result in models.values()):
        sections.append(not_a_digit_section(models))
    if metrics.get("robustness"):
        sections.append(robustness_section(metrics["robustness"], len(metrics["seeds"])))
    return sections


def calibration_section(models: dict, seeds: int) -> Section:
    """ECE, NLL and Brier score before and after temperature scaling, per model; the reliability diagrams."""
    table = Table(["model", "NLL", "ECE (%)", "Brier", "temperature T", "NLL after T", "ECE after T (%)"])
    for name, result in models.items():
        calibration = result["calibration"]
        before, after = calibration["before"], calibration["after"]
        table.rows.append([name, f"{before['nll']:.4f}",
                           (percent(before["ece"]), f"models.{name}.calibration.before.ece"),
                           f"{before['brier']:.4f}", f"{calibration['temperature']:.3f}", f"{after['nll']:.4f}",
                           percent(after["ece"])])
    mean = ", means over seeds" if seeds > 1 else ""
    return Section("Are the probabilities honest?", [
        f"On the test split{mean}: expected calibration error (ECE: images put in 15 equal-width bins by their top "
        "probability; the share-weighted mean gap between each bin's accuracy and its mean confidence), negative "
        "log-likelihood (NLL) and Brier score, computed from the probabilities kept in `predictions.npz`. "
        "Temperature scaling divides the logits by one number T, fitted on each seed's validation split (never the "
        "test split): T > 1 means the model was overconfident, T < 1 underconfident; it never changes a prediction.",
        table,
        *[FigureRef(reliability_plot_name(name), f"{name}: reliability diagram, accuracy against confidence before "
                                                 f"and after temperature scaling") for name in models],
    ])


def ensemble_section(models: dict) -> Section:
    """Each model's seed ensemble (mean of its seeds' probabilities) against its single seeds."""
    table = Table(["model", "seeds", "single-seed accuracy (%, mean)", "ensemble accuracy (%)", "ensemble NLL",
                   "ensemble ECE (%)", "ensemble Brier"])
    for name, result in models.items():
        if "ensemble" in result:
            ensemble = result["ensemble"]
            table.rows.append([name, str(ensemble["seeds"]), percent(result["test_accuracy"]),
                               (percent(ensemble["accuracy"]), f"models.{name}.ensemble.accuracy"),
                               f"{ensemble['nll']:.4f}", percent(ensemble["ece"]), f"{ensemble['brier']:.4f}"])
    return Section("Seed ensembles", [
        "The seeds already trained, together: each model's ensemble averages its seeds' test probabilities "
        "and is scored like one model.", table])


def not_a_digit_section(models: dict) -> Section:
    """AUROC of the top probability for digits against non-digits, and what the "not sure" threshold catches."""
    table = Table(["model", "non-digits", "AUROC", "threshold (mean)", "digits kept (%)", "non-digits flagged (%)"])
    for name, result in models.items():
        for dataset, scores in result.get("not_a_digit", {}).items():
            table.rows.append([name, dataset, f"{scores['auroc']:.4f}", f"{scores['threshold']:.3f}",
                               percent(scores["digits_kept"]), percent(scores["non_digits_flagged"])])
    return Section("Not a digit", [
        "How much less sure each model is of images that are not digits: the AUROC of the top softmax probability "
        "for telling the MNIST test digits from another test set (1 = perfectly apart, 0.5 = a coin toss), means "
        "over seeds. The \"not sure\" threshold is the top probability that 95% of each seed's validation digits "
        "reach; it is saved in the checkpoints, and `predict` and `serve` flag predictions below it.", table])


def robustness_section(robustness: dict, seeds: int) -> Section:
    """The corruption table with its paired tests, and the shift and rotation sweeps."""
    names = list(robustness["models"])
    accuracy = Table(["corruption", *(f"{name} (%)" for name in names)])
    for corruption in robustness["models"][names[0]]:
        accuracy.rows.append([corruption] + [
            percent(entry["mean"]) + (f" ± {100 * entry['std']:.2f}" if entry["std"] is not None else "")
            for entry in (robustness["models"][name][corruption] for name in names)])
    mean = f"mean ± std over {seeds} seeds" if seeds > 1 else "one seed"
    blocks = [
        f"Test accuracy on corrupted copies of the test set in the spirit of MNIST-C (Mu and Gilmer 2019), each "
        f"corruption at the severity documented in `mnistlab/evaluation/corruptions.py`, drawn with seed "
        f"{robustness['corruption_seed']} so that every model and seed sees the same images ({mean}; "
        f"mean-corrupted averages the 15 corruptions).", accuracy]
    if robustness["comparisons"]:
        tests = Table(["corruption", "models", "difference (points)", "only first right", "only second right",
                       "McNemar p", "Holm p", "significant"])
        for test in robustness["comparisons"]:
            tests.rows.append([test["corruption"], " − ".join(test["models"]), percent(test["difference"]),
                               str(test["only_first_correct"]), str(test["only_second_correct"]),
                               format_p(test["p_value"]), format_p(test["p_value_holm"]),
                               "yes" if test["significant"] else "no"])
        blocks += ["Paired tests: McNemar's exact test per seed on the same images, pooled over seeds by twice the "
                   "mean p-value, Holm-adjusted over every row of this table.", tests]
    for key, unit, figure in (("shift_sweep", "pixels", SHIFT_SWEEP_PLOT), ("rotation_sweep", "degrees",
                                                                          ROTATION_SWEEP_PLOT)):
        sweep = robustness[key]
        table = Table(["model", *(f"{amount}" for amount in sweep[unit])],
                      [[name, *(f"{100 * value:.1f}" for value in entry["mean"])]
                       for name, entry in sweep["models"].items()])
        blocks += [f"Accuracy (%) against {key.split('_')[0]} ({unit}):", table,
                   FigureRef(figure, f"Line chart of each model's test accuracy against the {key.split('_')[0]} of the "
                                     f"test images, mean over seeds with a band")]
    return Section("Robustness: corruptions, shift and rotation", blocks)
