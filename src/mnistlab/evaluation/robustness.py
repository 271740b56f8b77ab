"""How much of a model's accuracy survives corrupted, shifted and rotated test images, and is the gap between models real?

Scoring takes a `logits_fn`: any callable from uint8 images (N, 28, 28) to
logits (N, classes), so a PyTorch model (`model_logits_fn`), an exported
model or a test double all fit. Everything returns plain data: per-image
correctness (N,) for the paired tests, accuracies, and JSON-ready summaries.

The corruption table compares models the way `analysis.compare_models` does on
clean images (McNemar's exact test per seed, pooled over seeds by twice the
mean p-value), without the bootstrap intervals; Holm's adjustment then runs
over every (corruption, pair) test of the table at once, so the chance of any
false "significant" in the whole table stays at or below 5%.
"""

from __future__ import annotations

from itertools import combinations
from typing import Callable, Iterable, Sequence

import numpy as np
from torch import nn

from mnistlab.evaluation import stats
from mnistlab.models import images_to_tensor, infer

LogitsFunction = Callable[[np.ndarray], np.ndarray]  # uint8 images (N, 28, 28) -> logits (N, classes)

CLEAN = "clean"  # name of the uncorrupted test set in the corruption results
SHIFT_PIXELS = tuple(range(0, 9))  # shift sweep: whole-pixel shifts, 0 to 8
SHIFT_DIRECTIONS = ("right", "left", "down", "up")  # shift sweep: accuracy is the mean over these directions
ROTATION_DEGREES = tuple(range(0, 91, 10))  # rotation sweep: counter-clockwise turns, 0 to 90 in steps of 10


def model_logits_fn(model: nn.Module, precision: str = "fp32") -> LogitsFunction:
    """A `logits_fn` for a PyTorch model: `mnistlab.models.infer` in eval mode, logits as a numpy array."""
    return lambda images: infer(model, images_to_tensor(images), precision=precision).numpy()


class ImageVariants:
    """The corrupted and rotated copies of one set of test images, each made on first use and then kept.

    Every model and seed of a run is scored on the same copies (one corruption seed), so the jobs one process
    runs share them: the image work, tens of seconds for MNIST's 10,000 test images, is done once per process
    rather than once per job, for about 25 copies of the images in memory while the object lives (200 MB for
    MNIST's test set). Shifts take a fraction of a second and are not kept. The copies are read-only.
    """

    def __init__(self, images: np.ndarray, seed: int = 0):
        self.images, self.seed = images, seed
        self._kept: dict[tuple, np.ndarray] = {}

    def corrupted(self, name: str) -> np.ndarray:
        """The images under corruption `name` (`corruptions.corrupt` with this object's seed)."""
        from mnistlab.evaluation.corruptions import corrupt  # SciPy's image filters: `train` need not import them

        return self._keep(("corruption", name), lambda: corrupt(self.images, name, self.seed))

    def rotated(self, degrees: float) -> np.ndarray:
        """The images turned counter-clockwise by `degrees` (`geometry.rotate`)."""
        from mnistlab.evaluation.geometry import rotate

        return self._keep(("rotation", float(degrees)), lambda: rotate(self.images, degrees))

    def _keep(self, key: tuple, make: Callable[[], np.ndarray]) -> np.ndarray:
        if key not in self._kept:
            self._kept[key] = make()
            self._kept[key].flags.writeable = False  # shared by every caller: none may change it for the next
        return self._kept[key]


def _variants_of(images: np.ndarray, variants: ImageVariants | None, seed: int | None = None) -> ImageVariants:
    """`variants` when it holds copies of `images` (made with `seed`, when one is named); else a new one."""
    if variants is None:
        return ImageVariants(images, seed or 0)
    if variants.images is not images or seed not in (None, variants.seed):
        raise ValueError("the variants given were made from other images or with another seed")
    return variants


def score_images(logits_fn: LogitsFunction, images: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per-image correctness (N,) bool of `logits_fn` on `images`."""
    logits = np.asarray(logits_fn(images))
    if logits.ndim != 2 or len(logits) != len(labels):
        raise ValueError(f"logits_fn returned shape {logits.shape} for {len(labels)} images; expected (N, classes)")
    return logits.argmax(axis=1) == np.asarray(labels)


def corruption_correctness(
    logits_fn: LogitsFunction, images: np.ndarray, labels: np.ndarray,
    names: Iterable[str] | None = None, seed: int = 0, variants: ImageVariants | None = None,
) -> dict[str, np.ndarray]:
    """Per-image correctness (N,) on the clean images and on each corruption in `names` (default: all).

    Every model and seed must be scored with the same `seed`, so that they all
    see the same corrupted images and the paired tests compare like with like.
    `variants` (made from `images` with `seed`) shares corrupted copies between calls.
    """
    from mnistlab.evaluation.corruptions import CORRUPTIONS

    variants = _variants_of(images, variants, seed)
    correctness = {CLEAN: score_images(logits_fn, images, labels)}
    for name in (CORRUPTIONS if names is None else names):
        correctness[name] = score_images(logits_fn, variants.corrupted(name), labels)
    return correctness


def shift_sweep(logits_fn: LogitsFunction, images: np.ndarray, labels: np.ndarray,
                pixels: Sequence[int] = SHIFT_PIXELS, directions: Sequence[str] = SHIFT_DIRECTIONS) -> np.ndarray:
    """Accuracy (len(pixels),) at each whole-pixel shift, averaged over `directions`."""
    from mnistlab.evaluation.geometry import shift

    return np.array([
        np.mean([score_images(logits_fn, shift(images, amount, direction), labels).mean() for direction in directions])
        for amount in pixels
    ])


def rotation_sweep(logits_fn: LogitsFunction, images: np.ndarray, labels: np.ndarray,
                   degrees: Sequence[float] = ROTATION_DEGREES, variants: ImageVariants | None = None) -> np.ndarray:
    """Accuracy (len(degrees),) at each counter-clockwise rotation; `variants` shares the rotated copies."""
    variants = _variants_of(images, variants)
    return np.array([score_images(logits_fn, variants.rotated(angle), labels).mean() for angle in degrees])


def sweep_band(accuracies) -> tuple[np.ndarray, np.ndarray]:
    """(mean, sample std) over seeds of sweep accuracies (S, K); the std is 0 for one seed."""
    accuracies = np.atleast_2d(np.asarray(accuracies, dtype=np.float64))
    spread = accuracies.std(axis=0, ddof=1) if len(accuracies) > 1 else np.zeros(accuracies.shape[1])
    return accuracies.mean(axis=0), spread


def summarise_corruptions(correct: dict[str, np.ndarray]) -> dict[str, dict]:
    """One model's row of the table: per corruption, the accuracy over seeds with its t-interval (JSON-ready).

    `correct[corruption]` is (S, N) per-image correctness, one row per seed;
    the entry "mean-corrupted" averages each seed's accuracy over the corruptions (the clean images left out).
    """
    per_seed = {name: np.atleast_2d(rows).mean(axis=1) for name, rows in correct.items()}
    corrupted = [accuracies for name, accuracies in per_seed.items() if name != CLEAN]
    if corrupted:
        per_seed["mean-corrupted"] = np.mean(corrupted, axis=0)
    return {name: stats.t_interval(accuracies, bounds=(0.0, 1.0)) for name, accuracies in per_seed.items()}


def compare_corruptions(model_names: Sequence[str], seeds: Sequence[int],
                        correct: dict[str, dict[str, np.ndarray]]) -> list[dict]:
    """Every (corruption, model pair): McNemar per seed, pooled over seeds, Holm-adjusted over the whole table.

    `correct[model][corruption]` is (S, N) in `seeds` order; every model must have the same corruptions.
    """
    tests = []
    for name in correct[model_names[0]]:
        for first, second in combinations(model_names, 2):
            rows_first, rows_second = np.atleast_2d(correct[first][name]), np.atleast_2d(correct[second][name])
            counts = np.array([stats.discordant_counts(a, b) for a, b in zip(rows_first, rows_second)])  # (S, 2)
            p_values = [stats.mcnemar_exact(only_first, only_second) for only_first, only_second in counts]
            tests.append({
                "corruption": name,
                "models": [first, second],
                "difference": float(rows_first.mean() - rows_second.mean()),
                "only_first_correct": int(counts[:, 0].sum()),
                "only_second_correct": int(counts[:, 1].sum()),
                "p_value": stats.combine_p_values(p_values),
                "per_seed": [{"seed": seed, "only_first_correct": int(only_first),
                              "only_second_correct": int(only_second), "p_value": p_value}
                             for seed, (only_first, only_second), p_value in zip(seeds, counts, p_values)],
            })
    adjusted = stats.holm_adjust([test["p_value"] for test in tests])
    for test, p_value_holm in zip(tests, adjusted):
        test.update(p_value_holm=p_value_holm, significant=p_value_holm < stats.ALPHA)
    return tests
