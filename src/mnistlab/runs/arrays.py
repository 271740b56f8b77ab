"""Per-image test outputs of a run (saved as `predictions.npz` by `run_folder`), so statistics and galleries can be rebuilt.

The file holds the test labels, every model's predicted class and confidence
(softmax probability of the predicted class) for every seed, each seed's full
log-probabilities (so seed ensembles and calibration rebuild from the folder),
and the pixels of each test image that some model got wrong in some seed: the
only images a gallery of mistakes or disagreements can show, so a report
rebuilds without the dataset.

Log-probabilities are stored as float16, (S, N, classes) per model: 20 bytes an
image and seed. Rounding keeps 11 significant bits: each stored log p is within
2^-11 (0.05%) of its value, relative to it, so every image's NLL term -log p is
within 0.05%, and p = exp(log p) within |log p| x 0.05% of its value (0.03% at
p = 0.5, 0.3% at p = 0.001; near p = 1, where confidence and ECE live, far
better). Float16 *probabilities* would round every p below 3e-8 to 0 and turn
each confident mistake's NLL term into the floor's 27.6. Every calibration and
ensemble number in metrics.json is computed from these stored values, so it
recomputes exactly from the file. Rounding can flip a near-tie: the argmax of
the stored values may differ from `predicted` on an image whose top two
classes are within the rounding (a few in 10,000 for one-epoch models), so
an accuracy from the stored probabilities may differ from the test accuracy
by those images.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mnistlab.common.errors import MnistlabError


@dataclass
class RunArrays:
    """A run's per-image test outputs; seeds are in the order of `metrics["seeds"]`."""

    labels: np.ndarray  # (N,) true class of each test image
    predicted: dict[str, np.ndarray]  # model -> (S, N) predicted class per seed
    confidence: dict[str, np.ndarray]  # model -> (S, N) float32 probability of the predicted class
    image_indices: np.ndarray  # (K,) test-set indices whose pixels are stored, ascending
    images: np.ndarray  # (K, 28, 28) uint8 pixels of those test images
    log_probabilities: dict[str, np.ndarray] = field(default_factory=dict)  # model -> (S, N, C) float16; may be
    # empty in run folders written before they were kept

    def probabilities(self, model: str) -> np.ndarray:
        """(S, N, C) float64 probabilities of `model` per seed, from the stored log-probabilities."""
        if model not in self.log_probabilities:
            raise MnistlabError(f"predictions.npz holds no probabilities for {model!r}; rerun compare to keep them")
        return stored_probabilities(self.log_probabilities[model])

    def correct(self, model: str) -> np.ndarray:
        """(S, N) booleans: did `model` get each test image right, per seed."""
        return self.predicted[model] == self.labels

    def images_at(self, indices) -> np.ndarray:
        """Pixels (len(indices), 28, 28) of the given test images; each must be one that was stored."""
        positions = np.searchsorted(self.image_indices, indices)
        positions = np.minimum(positions, len(self.image_indices) - 1)
        missing = [int(index) for index, position in zip(indices, positions)
                   if len(self.image_indices) == 0 or self.image_indices[position] != index]
        if missing:
            raise MnistlabError(f"predictions.npz holds no pixels for test image(s) {missing[:5]}; rerun compare")
        return self.images[positions]

    def to_columns(self) -> dict[str, np.ndarray]:
        """Flat name -> array columns, as stored in predictions.npz."""
        columns = {"labels": self.labels, "image_indices": self.image_indices, "images": self.images}
        for name in self.predicted:
            columns[f"predicted__{name}"] = self.predicted[name]
            columns[f"confidence__{name}"] = self.confidence[name]
        for name, values in self.log_probabilities.items():
            columns[f"log_probabilities__{name}"] = values
        return columns

    @classmethod
    def from_columns(cls, columns: dict[str, np.ndarray]) -> "RunArrays":
        """The inverse of `to_columns`."""
        models = [key.split("__", 1)[1] for key in columns if key.startswith("predicted__")]
        return cls(
            labels=columns["labels"],
            predicted={name: columns[f"predicted__{name}"] for name in models},
            confidence={name: columns[f"confidence__{name}"] for name in models},
            image_indices=columns["image_indices"],
            images=columns["images"],
            log_probabilities={name: columns[f"log_probabilities__{name}"] for name in models
                               if f"log_probabilities__{name}" in columns},
        )


def stored_log_probabilities(logits) -> np.ndarray:
    """Logits (N, C) -> log-probabilities (N, C) rounded to float16, as predictions.npz keeps them."""
    from scipy.special import log_softmax  # here: SciPy is slow to import, and `train` stores no outputs

    return log_softmax(np.asarray(logits, dtype=np.float64), axis=-1).astype(np.float16)


def stored_probabilities(log_probabilities) -> np.ndarray:
    """Stored float16 log-probabilities -> float64 probabilities (rows sum to 1 within the rounding)."""
    return np.exp(np.asarray(log_probabilities, dtype=np.float64))


def build_run_arrays(labels: np.ndarray, predicted: dict, confidence: dict, test_images: np.ndarray,
                     log_probabilities: dict | None = None) -> RunArrays:
    """Bundle per-seed outputs, storing the pixels of every image some model misclassified in some seed."""
    predicted = {name: np.asarray(values, dtype=np.uint8) for name, values in predicted.items()}
    confidence = {name: np.asarray(values, dtype=np.float32) for name, values in confidence.items()}
    wrong = np.zeros(len(labels), dtype=bool)
    for values in predicted.values():
        wrong |= (values != labels).any(axis=0)
    indices = np.flatnonzero(wrong)
    log_probabilities = {name: np.asarray(values, dtype=np.float16) for name, values in (log_probabilities or {}).items()}
    return RunArrays(np.asarray(labels, dtype=np.uint8), predicted, confidence, indices, test_images[indices],
                     log_probabilities)
