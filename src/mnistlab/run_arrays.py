"""Per-image test outputs of a run (saved as `predictions.npz` by `run_folder`), so statistics and galleries can be rebuilt.

The file holds the test labels, every model's predicted class and confidence
(softmax probability of the predicted class) for every seed, and the pixels of
each test image that some model got wrong in some seed: the only images a
gallery of mistakes or disagreements can show, so a report rebuilds without
the dataset.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mnistlab.errors import MnistlabError


@dataclass
class RunArrays:
    """A run's per-image test outputs; seeds are in the order of `metrics["seeds"]`."""

    labels: np.ndarray  # (N,) true class of each test image
    predicted: dict[str, np.ndarray]  # model -> (S, N) predicted class per seed
    confidence: dict[str, np.ndarray]  # model -> (S, N) float32 probability of the predicted class
    image_indices: np.ndarray  # (K,) test-set indices whose pixels are stored, ascending
    images: np.ndarray  # (K, 28, 28) uint8 pixels of those test images

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
        )


def build_run_arrays(labels: np.ndarray, predicted: dict, confidence: dict, test_images: np.ndarray) -> RunArrays:
    """Bundle per-seed outputs, storing the pixels of every image some model misclassified in some seed."""
    predicted = {name: np.asarray(values, dtype=np.uint8) for name, values in predicted.items()}
    confidence = {name: np.asarray(values, dtype=np.float32) for name, values in confidence.items()}
    wrong = np.zeros(len(labels), dtype=bool)
    for values in predicted.values():
        wrong |= (values != labels).any(axis=0)
    indices = np.flatnonzero(wrong)
    return RunArrays(np.asarray(labels, dtype=np.uint8), predicted, confidence, indices, test_images[indices])
