"""`mnistlab explain`: what a checkpoint looks at in your own images, as a figure per image and JSON values.

    mnistlab explain runs/x/cnn.pt my-digit.jpg photos/ --out seen/
    # seen/my-digit.explain.png: the 28x28 input, its Integrated Gradients and occlusion maps for the top class

Images are read exactly as `mnistlab predict` reads them (`vision.predict.predict_files`:
the same preprocessing, files, folders and globs); the class explained is the
model's top class. Figures go to `<out>/<image name>.explain.png`; a file there
that this command would replace is refused before any work (unless `force`),
and so is one of the images themselves.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mnistlab.common.atomic import check_output_file
from mnistlab.common.errors import ConfigError
from mnistlab.explain.attribution import Attributions, attribute
from mnistlab.reporting.attribution_plots import plot_attribution
from mnistlab.vision.loading import LoadedModel
from mnistlab.vision.predict import ImagePrediction, expand_image_paths, predict_files

FIGURE_SUFFIX = ".explain.png"


@dataclass
class Explanation:
    """One image's outcome: its prediction, maps and figure, or the reason it failed."""

    prediction: ImagePrediction
    figure: Path | None = None
    maps: dict[str, np.ndarray] = field(default_factory=dict)  # method -> (28, 28) float32
    completeness_error: float | None = None  # IG's sum minus the logit gap it should equal

    def to_dict(self) -> dict:
        """Plain JSON: image, class explained and its probability, figure path, each map as 28 rows, and the error."""
        result = {"image": self.prediction.source, "error": self.prediction.error}
        if self.prediction.error is None:
            name, probability = self.prediction.top[0]
            result.update({"class": name, "probability": probability,
                           "figure": str(self.figure) if self.figure else None,
                           "completeness_error": self.completeness_error,
                           **{method: np.round(values, 6).tolist() for method, values in self.maps.items()}})
        return result


def figure_paths(sources: list[str], out_dir: str | os.PathLike) -> list[Path]:
    """Where each image's figure goes: <out>/<stem>.explain.png, numbered (-2, -3...) on a clash."""
    paths, taken = [], set()
    for source in sources:
        stem = Path(source).stem
        path, number = Path(out_dir) / f"{stem}{FIGURE_SUFFIX}", 2
        while path in taken:
            path, number = Path(out_dir) / f"{stem}-{number}{FIGURE_SUFFIX}", number + 1
        paths.append(path)
        taken.add(path)
    return paths


def check_figure_paths(patterns: list[str], out_dir: str | os.PathLike, force: bool = False) -> list[Path]:
    """Refuse, before any work, an `--out` that is a file, or figures that would replace a file (unless `force`)
    or one of the images; return the figure paths."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ConfigError(f"--out {out_dir}: is a file, not a folder; pass a folder for the figures")
    sources = [source for source, _ in expand_image_paths(patterns)]
    paths = figure_paths(sources, out_dir)
    for path in paths:
        check_output_file(path, "--out", sources, force, example=path.name)
    return paths


def explain_files(loaded: LoadedModel, patterns: list[str], out_dir: str | os.PathLike | None = None,
                  force: bool = False) -> list[Explanation]:
    """Predict and explain every image in `patterns`; with `out_dir`, write a figure per image there.

    Failures are recorded per image (as `predict_files` does), never raised.
    """
    paths = check_figure_paths(patterns, out_dir, force) if out_dir is not None else None
    predictions = predict_files(loaded, patterns, top_k=1)
    results = [Explanation(prediction) for prediction in predictions]
    done = [result for result in results if result.prediction.image is not None]
    if not done:
        return results
    images = np.stack([result.prediction.image for result in done])
    targets = [loaded.class_names.index(result.prediction.top[0][0]) for result in done]
    maps: Attributions = attribute(loaded.model, images, targets)
    for position, result in enumerate(done):
        result.maps = {"integrated_gradients": maps.integrated_gradients[position],
                       "occlusion": maps.occlusion[position]}
        result.completeness_error = float(maps.delta[position])
    if paths is not None:
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        for result, path in zip(results, paths):
            if result.prediction.image is None:
                continue
            name, probability = result.prediction.top[0]
            plot_attribution(result.prediction.image, {"Integrated Gradients": result.maps["integrated_gradients"],
                                                       "occlusion": result.maps["occlusion"]},
                             f"{loaded.name} reads {Path(result.prediction.source).name} as {name} "
                             f"({100 * probability:.1f}%): what raises (red) and lowers (blue) that class", path)
            result.figure = path
    return results
