"""Statistics for comparing models over seeds: t-intervals, a paired bootstrap, McNemar's exact test.

Pure functions of arrays and counts: no I/O, no printing, seeded where random.
The methods, and why they were chosen:

- Accuracy over seeds: mean, sample standard deviation and a Student-t 95%
  interval, which is exact for normally distributed accuracies and the usual
  choice for the handful of seeds a CPU allows.
- Difference between two models: a percentile bootstrap over test images with
  the same resampled images for both models and every seed (paired), so it
  measures how much the seed-averaged gap depends on which test images were drawn.
- McNemar's exact test: a two-sided binomial test on the discordant pairs of
  one seed (images only one of the two models got right).
- Pooling McNemar over seeds: every seed is tested on the same test images, so
  the per-seed tests are dependent and Fisher's or Stouffer's combination (or
  summing discordant counts) would overstate the evidence. Twice the mean of
  the per-seed p-values is a valid p-value under any dependence (Rüschendorf
  1982; Vovk and Wang 2020, "Combining p-values via averaging"); it is
  conservative, so a difference it calls significant is one to trust.
- Several pairs: Holm's step-down adjustment of the pooled p-values keeps the
  chance of any false "significant" at or below 5%.
"""

from __future__ import annotations

import numpy as np

CONFIDENCE = 0.95  # level of every interval here
ALPHA = 0.05  # significance level of the tests
RESAMPLES = 10_000  # bootstrap resamples


def t_interval(values, confidence: float = CONFIDENCE, bounds: tuple[float, float] | None = None) -> dict:
    """Mean, sample std (ddof=1) and Student-t interval of `values`; std and interval are None for one value.

    `bounds` clips the interval to the values' possible range (for accuracies, (0, 1)).
    """
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 1 or len(values) == 0:
        raise ValueError(f"t_interval needs a non-empty 1-D sequence, got shape {values.shape}")
    mean = float(values.mean())
    if len(values) == 1:
        return {"n": 1, "mean": mean, "std": None, "ci_low": None, "ci_high": None}
    std = float(values.std(ddof=1))
    from scipy import stats as scipy_stats  # here, as below: slow to import, and only a report tests

    half_width = float(scipy_stats.t.ppf(0.5 + confidence / 2, df=len(values) - 1)) * std / np.sqrt(len(values))
    low, high = mean - half_width, mean + half_width
    if bounds is not None:
        low, high = max(low, bounds[0]), min(high, bounds[1])
    return {"n": len(values), "mean": mean, "std": std, "ci_low": low, "ci_high": high}


def bootstrap_mean_interval(
    values, resamples: int = RESAMPLES, confidence: float = CONFIDENCE, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of `values` (N,), resampling entries with replacement."""
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 1 or len(values) == 0:
        raise ValueError(f"bootstrap needs a non-empty 1-D sequence, got shape {values.shape}")
    rng = np.random.default_rng(seed)
    means = np.empty(resamples)
    chunk = max(1, 2_000_000 // len(values))  # resamples drawn at once: about 16 MB of indices
    for start in range(0, resamples, chunk):
        count = min(chunk, resamples - start)
        indices = rng.integers(0, len(values), size=(count, len(values)))
        means[start:start + count] = values[indices].mean(axis=1)
    low, high = np.quantile(means, [0.5 - confidence / 2, 0.5 + confidence / 2])
    return float(low), float(high)


def paired_differences(correct_a, correct_b) -> np.ndarray:
    """Per-image difference in correctness, A minus B, averaged over seeds: (S, N) or (N,) booleans -> (N,)."""
    correct_a = np.atleast_2d(np.asarray(correct_a, dtype=np.float64))
    correct_b = np.atleast_2d(np.asarray(correct_b, dtype=np.float64))
    if correct_a.shape != correct_b.shape:
        raise ValueError(f"paired predictions differ in shape: {correct_a.shape} vs {correct_b.shape}")
    return (correct_a - correct_b).mean(axis=0)


def discordant_counts(correct_a, correct_b) -> tuple[int, int]:
    """(images only A got right, images only B got right) for one seed's (N,) booleans."""
    correct_a, correct_b = np.asarray(correct_a, dtype=bool), np.asarray(correct_b, dtype=bool)
    return int((correct_a & ~correct_b).sum()), int((~correct_a & correct_b).sum())


def mcnemar_exact(only_a: int, only_b: int) -> float:
    """Two-sided exact McNemar p-value from the discordant counts: 2 * P(X <= min) for X ~ Binomial(n, 1/2)."""
    if only_a < 0 or only_b < 0:
        raise ValueError(f"discordant counts must be >= 0, got {only_a} and {only_b}")
    total = only_a + only_b
    if total == 0:
        return 1.0
    from scipy import stats as scipy_stats

    return float(min(1.0, 2 * scipy_stats.binom.cdf(min(only_a, only_b), total, 0.5)))


def combine_p_values(p_values) -> float:
    """Twice the mean of dependent p-values, capped at 1: valid whatever the dependence (see module docstring)."""
    p_values = np.asarray(p_values, dtype=np.float64)
    if len(p_values) == 0 or ((p_values < 0) | (p_values > 1)).any():
        raise ValueError(f"need one or more p-values in [0, 1], got {p_values.tolist()}")
    if len(p_values) == 1:
        return float(p_values[0])
    return float(min(1.0, 2 * p_values.mean()))


def holm_adjust(p_values) -> list[float]:
    """Holm's step-down adjusted p-values, in the input order."""
    p_values = np.asarray(p_values, dtype=np.float64)
    order = np.argsort(p_values, kind="stable")
    adjusted = np.empty_like(p_values)
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (len(p_values) - rank) * p_values[index]))
        adjusted[index] = running
    return adjusted.tolist()
