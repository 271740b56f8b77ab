"""From per-seed results to the numbers a comparison reports: summaries over seeds, pairwise tests, error analysis.

Everything here computes and returns plain data (JSON-ready dicts, index
arrays); figures and text are drawn from it by `plots` and `report`.
"""

from __future__ import annotations

from itertools import combinations

import numpy as np

from mnistlab.evaluation import stats
from mnistlab.evaluation.evaluate import most_confused_pairs, score_predictions

BOOTSTRAP_SEED = 0  # seeds the bootstrap's resampling of test images
CONFUSED_PAIRS = 5  # most-confused class pairs listed per model

STATISTICS_METHODS = {
    "confidence": stats.CONFIDENCE,
    "alpha": stats.ALPHA,
    "accuracy_interval": "Student-t interval over seeds",
    "difference_interval": "paired percentile bootstrap over test images (same resample for both models and all seeds)",
    "bootstrap_resamples": stats.RESAMPLES,
    "bootstrap_seed": BOOTSTRAP_SEED,
    "test": "McNemar's exact test (two-sided binomial test on discordant pairs), per seed",
    "pooling": "twice the mean of the per-seed McNemar p-values (valid under any dependence between seeds)",
    "multiple_comparisons": "Holm step-down adjustment over all pairs",
}


def mean_history(histories: list[list[dict]]) -> list[dict]:
    """Per-epoch mean of every numeric field over seeds (the history itself for one seed)."""
    epochs = min(len(history) for history in histories)
    return [
        {key: sum(history[epoch][key] for history in histories) / len(histories) for key in histories[0][epoch]}
        for epoch in range(epochs)
    ]


def curve_band(histories: list[list[dict]], key: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(epochs, mean, std) of one history field over seeds; std is 0 for a single seed."""
    epochs = min(len(history) for history in histories)
    values = np.array([[history[epoch][key] for epoch in range(epochs)] for history in histories])
    return np.arange(1, epochs + 1), values.mean(axis=0), values.std(axis=0, ddof=1) if len(values) > 1 else values[0] * 0


def summarise_model(seed_records: list[dict], labels: np.ndarray, predicted: np.ndarray, class_names) -> dict:
    """A model's entry in metrics.json: means over seeds, pooled error analysis, and the per-seed records.

    `predicted` is (S, N), one row per seed in `seed_records` order. Scalars are
    means over seeds; the confusion matrix and per-class scores pool every
    seed's predictions (counts add up over seeds).
    """
    def mean(key):
        return sum(record[key] for record in seed_records) / len(seed_records)

    pooled = score_predictions(np.tile(labels, len(predicted)), predicted.reshape(-1), class_names)
    return {
        "params": seed_records[0]["params"],
        "train_seconds": mean("train_seconds"),
        "test_loss": mean("test_loss"),
        "test_accuracy": mean("test_accuracy"),
        "accuracy": stats.t_interval([record["test_accuracy"] for record in seed_records], bounds=(0.0, 1.0)),
        "confusion_matrix": pooled["confusion_matrix"],
        "per_class": pooled["per_class"],
        "confused_pairs": most_confused_pairs(pooled["confusion_matrix"], class_names, CONFUSED_PAIRS),
        "history": mean_history([record["history"] for record in seed_records]),
        "checkpoint": seed_records[0]["checkpoint"],
        "seeds": seed_records,
    }


def compare_models(model_names, seeds: list[int], labels: np.ndarray, predicted: dict[str, np.ndarray]) -> list[dict]:
    """Every pair of models: accuracy difference with a bootstrap interval, McNemar per seed and pooled.

    `predicted[name]` is (S, N) in `seeds` order. Differences are first minus second model.
    """
    comparisons = []
    for first, second in combinations(model_names, 2):
        correct_first, correct_second = predicted[first] == labels, predicted[second] == labels
        per_seed = []
        for row, seed in enumerate(seeds):
            only_first, only_second = stats.discordant_counts(correct_first[row], correct_second[row])
            differences = stats.paired_differences(correct_first[row], correct_second[row])
            low, high = stats.bootstrap_mean_interval(differences, seed=BOOTSTRAP_SEED)
            per_seed.append({"seed": seed, "difference": float(differences.mean()), "ci_low": low, "ci_high": high,
                             "only_first_correct": only_first, "only_second_correct": only_second,
                             "p_value": stats.mcnemar_exact(only_first, only_second)})
        differences = stats.paired_differences(correct_first, correct_second)
        if len(seeds) == 1:  # the pooled differences are that seed's: same resamples, same interval
            low, high = per_seed[0]["ci_low"], per_seed[0]["ci_high"]
        else:
            low, high = stats.bootstrap_mean_interval(differences, seed=BOOTSTRAP_SEED)
        comparisons.append({
            "models": [first, second],
            "difference": float(differences.mean()),
            "ci_low": low,
            "ci_high": high,
            "only_first_correct": sum(record["only_first_correct"] for record in per_seed),
            "only_second_correct": sum(record["only_second_correct"] for record in per_seed),
            "p_value": stats.combine_p_values([record["p_value"] for record in per_seed]),
            "per_seed": per_seed,
        })
    for comparison, adjusted in zip(comparisons, stats.holm_adjust([c["p_value"] for c in comparisons])):
        comparison["p_value_holm"] = adjusted
        comparison["significant"] = adjusted < stats.ALPHA
    return comparisons


def select_misclassified(labels: np.ndarray, predicted: np.ndarray, confidence: np.ndarray, count: int) -> np.ndarray:
    """Indices of up to `count` misclassified images, most confident mistakes first (ties by index)."""
    wrong = np.flatnonzero(predicted != labels)
    order = np.lexsort((wrong, -confidence[wrong]))
    return wrong[order][:count]


def select_disagreements(labels: np.ndarray, predicted: dict[str, np.ndarray], confidence: dict[str, np.ndarray],
                         count: int) -> np.ndarray:
    """Indices of up to `count` images on which the models' predictions differ, most confident disagreements first."""
    rows = np.stack(list(predicted.values()))
    differ = np.flatnonzero((rows != rows[0]).any(axis=0))
    strength = np.stack(list(confidence.values()))[:, differ].min(axis=0)  # every model sure of its answer
    order = np.lexsort((differ, -strength))
    return differ[order][:count]
