"""Preview of issue 15's deeper comparison on quick runs: calibration, corruptions, sweeps, not-a-digit.

Trains each model briefly through the library (`study.train_checkpoint`), reloads the
checkpoints, assesses them (`assessment.assess_model`) and prints Markdown tables;
figures go to --out. Minutes on 2 CPU cores with the defaults:

    MNISTLAB_DATA_DIR=../shared/datasets python scripts/deeper_preview.py --out /tmp/deeper-preview
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from mnistlab import calibration, robustness
from mnistlab.assessment import assess_model
from mnistlab.checkpoint import load_checkpoint
from mnistlab.config import TrainConfig
from mnistlab.datasets import load_dataset
from mnistlab.robustness_plots import plot_reliability_diagram, plot_sweep
from mnistlab.study import train_checkpoint


def main(argv: list[str] | None = None) -> None:
    """Train, assess and print the preview tables (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for checkpoints, figures and scores.json")
    parser.add_argument("--models", default="ann,cnn-fast", help="comma-separated (default: %(default)s)")
    parser.add_argument("--seeds", default="0", help="comma-separated training seeds (default: %(default)s)")
    parser.add_argument("--epochs", type=int, default=1, help="default: %(default)s")
    parser.add_argument("--limit-train", type=int, default=2000, help="training images (default: %(default)s)")
    args = parser.parse_args(argv)
    models, seeds = args.models.split(","), [int(seed) for seed in args.seeds.split(",")]
    dataset = load_dataset("mnist", progress=False)
    fashion = load_dataset("fashion-mnist", progress=False)
    results = {name: [] for name in models}
    for name in models:
        for seed in seeds:
            path = args.out / f"{name}-seed{seed}.pt"
            train_checkpoint(name, {"epochs": args.epochs, "limit_train": args.limit_train, "seed": seed}, path,
                             progress=False)
            model, state = load_checkpoint(path)
            results[name].append(assess_model(robustness.model_logits_fn(model), dataset,
                                              TrainConfig(**state["config"]), {"fashion-mnist": fashion.test_images}))
    print_tables(models, seeds, dataset.test_labels.astype(np.int64), results)
    plot_sweep(robustness.SHIFT_PIXELS, {name: robustness.sweep_band([r.shift_accuracy for r in runs])
                                         for name, runs in results.items()},
               "shift (pixels, mean of 4 directions)", "Accuracy against shift", args.out / "shift_sweep.png")
    plot_sweep(robustness.ROTATION_DEGREES, {name: robustness.sweep_band([r.rotation_accuracy for r in runs])
                                             for name, runs in results.items()},
               "rotation (degrees, counter-clockwise)", "Accuracy against rotation", args.out / "rotation_sweep.png")
    for name, runs in results.items():
        panels = {label: {**table, "ece": runs[0].scores["calibration"][label]["ece"]}
                  for label, table in runs[0].reliability.items()}
        plot_reliability_diagram(panels, f"{name} (seed {seeds[0]}): before and after temperature scaling",
                                 args.out / f"reliability_{name}.png")
    (args.out / "scores.json").write_text(json.dumps(
        {name: [run.scores for run in runs] for name, runs in results.items()}, indent=1))


def print_tables(models, seeds, labels, results) -> None:
    """Markdown: calibration, corruption accuracies with McNemar, sweeps, not-a-digit, ensembles."""
    print("| model | seed | accuracy | NLL | ECE | Brier | T | ECE after T | NLL after T |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name in models:
        for seed, run in zip(seeds, results[name]):
            before, after = run.scores["calibration"]["before"], run.scores["calibration"]["after"]
            print(f"| {name} | {seed} | {100 * before['accuracy']:.2f}% | {before['nll']:.4f} | "
                  f"{100 * before['ece']:.2f}% | {before['brier']:.4f} | {run.scores['calibration']['temperature']:.3f}"
                  f" | {100 * after['ece']:.2f}% | {after['nll']:.4f} |")
    correct = {name: {corruption: np.stack([run.correct[corruption] for run in runs])
                      for corruption in runs[0].correct} for name, runs in results.items()}
    summaries = {name: robustness.summarise_corruptions(correct[name]) for name in models}
    tests = {test["corruption"]: test for test in robustness.compare_corruptions(models, seeds, correct)}
    pair = " vs ".join(models[:2])
    print(f"\n| corruption | {' | '.join(models)} | McNemar p ({pair}, Holm) |")
    print("|---|" + "---|" * len(models) + "---|")
    for corruption in summaries[models[0]]:
        cells = " | ".join(f"{100 * summaries[name][corruption]['mean']:.2f}%" for name in models)
        p_value = f"{tests[corruption]['p_value_holm']:.2g}" if corruption in tests else ""
        print(f"| {corruption} | {cells} | {p_value} |")
    print("\n| model | " + " | ".join(f"shift {pixels}" for pixels in robustness.SHIFT_PIXELS) + " |")
    print("|---|" + "---|" * len(robustness.SHIFT_PIXELS))
    for name in models:
        mean, _ = robustness.sweep_band([run.shift_accuracy for run in results[name]])
        print(f"| {name} | " + " | ".join(f"{100 * value:.1f}" for value in mean) + " |")
    print("\n| model | " + " | ".join(f"{degrees}°" for degrees in robustness.ROTATION_DEGREES) + " |")
    print("|---|" + "---|" * len(robustness.ROTATION_DEGREES))
    for name in models:
        mean, _ = robustness.sweep_band([run.rotation_accuracy for run in results[name]])
        print(f"| {name} | " + " | ".join(f"{100 * value:.1f}" for value in mean) + " |")
    print("\n| model | seed | AUROC digits vs Fashion-MNIST | threshold | digits kept | Fashion flagged |")
    print("|---|---|---|---|---|---|")
    for name in models:
        for seed, run in zip(seeds, results[name]):
            scores = run.scores["not_a_digit"]["fashion-mnist"]
            print(f"| {name} | {seed} | {scores['auroc']:.4f} | {scores['threshold']:.3f} | "
                  f"{100 * scores['digits_kept']:.1f}% | {100 * scores['non_digits_flagged']:.1f}% |")
    if len(seeds) > 1:
        print("\n| model | ensemble of seeds | accuracy | NLL | ECE | Brier |")
        print("|---|---|---|---|---|---|")
        for name in models:
            scores = calibration.ensemble_scores(np.stack([run.test_probabilities for run in results[name]]), labels)
            print(f"| {name} | {scores['seeds']} | {100 * scores['accuracy']:.2f}% | {scores['nll']:.4f} | "
                  f"{100 * scores['ece']:.2f}% | {scores['brier']:.4f} |")


if __name__ == "__main__":
    main()
