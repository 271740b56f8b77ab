"""Predict digits in image files with trained checkpoints: preprocessing, probabilities, top-k.

    mnistlab predict runs/x/cnn.pt my-digit.jpg photos/ 'scans/*.png' --top-k 3 --show-input seen/

Each image goes through `preprocess` and the model: MNIST-style 28x28 for a
checkpoint trained on handwritten digits, a plain resize for any other (its
`preprocess` field, see `checkpoint.preprocessing_of`); a file that cannot be
read gets its own one-line error while the others still get predictions.
"""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

from mnistlab.common.atomic import atomic_path, same_file
from mnistlab.common.errors import ConfigError, PreprocessError
from mnistlab.models import images_to_tensor, infer
from mnistlab.vision.loading import LoadedModel
from mnistlab.vision.settings import DEFAULT_TOP_K
from mnistlab.data.decode import MAX_FILE_PIXELS
from mnistlab.vision.preprocess import preprocess

PREDICT_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm")  # read from folders


@dataclass
class ImagePrediction:
    """One image's outcome: the 28x28 input the model saw and its top classes, or the reason it failed."""

    source: str
    image: np.ndarray | None = None  # (28, 28) uint8
    top: list[tuple[str, float]] = field(default_factory=list)  # (class name, probability), most likely first
    error: str | None = None
    not_sure: bool | None = None  # top probability below the checkpoint's threshold; None without one

    def to_dict(self) -> dict:
        """Plain JSON: the image path, its top classes, the error (None when it was classified), and `not_sure`
        when the checkpoint has a threshold."""
        result = {"image": self.source, "top": [{"class": name, "probability": p} for name, p in self.top],
                  "error": self.error}
        return result if self.not_sure is None else {**result, "not_sure": self.not_sure}


def predict_probabilities(model: nn.Module, images: np.ndarray) -> np.ndarray:
    """uint8 images (N, 28, 28) -> class probabilities (N, classes), float64 rows summing to 1."""
    logits = infer(model, images_to_tensor(images))
    return torch.softmax(logits.double(), dim=1).numpy()


def top_classes(probabilities: np.ndarray, class_names: list[str], top_k: int) -> list[tuple[str, float]]:
    """The `top_k` most likely (class name, probability) of one image's probabilities, most likely first."""
    order = np.argsort(-probabilities, kind="stable")[:top_k]
    return [(class_names[index], float(probabilities[index])) for index in order]


def expand_image_paths(patterns: list[str]) -> list[tuple[str, str | None]]:
    """Files, folders (their image files, sorted) and globs -> (path, problem or None) pairs; a folder that is empty
    or cannot be listed, and a glob that matches nothing, come back with their problem, to be reported in place."""
    paths: list[tuple[str, str | None]] = []
    for pattern in patterns:
        if os.path.isdir(pattern):
            try:
                inside = sorted(str(path) for path in Path(pattern).iterdir()
                                if path.is_file() and path.suffix.lower() in PREDICT_SUFFIXES)
            except OSError as error:  # permission denied, an I/O error, a folder removed meanwhile
                reason = "permission denied" if isinstance(error, PermissionError) else error.strerror
                paths.append((pattern, f"{pattern}: cannot list this folder ({reason}); check its permissions"))
                continue
            paths.extend((path, None) for path in inside)
            if not inside:
                paths.append((pattern, f"{pattern}: folder holds no image files ({', '.join(PREDICT_SUFFIXES)})"))
        elif not os.path.exists(pattern) and glob.has_magic(pattern):
            matches = sorted(glob.glob(pattern))
            paths.extend((path, None) for path in matches)
            if not matches:
                paths.append((pattern, f"{pattern}: no files match this pattern"))
        else:
            paths.append((pattern, None))
    return paths




def predict_files(
    loaded: LoadedModel, patterns: list[str], top_k: int | None = None, max_pixels: int = MAX_FILE_PIXELS
) -> list[ImagePrediction]:
    """Preprocess and classify every image in `patterns`; failures are recorded per image, never raised.
    `top_k` defaults to DEFAULT_TOP_K, or every class when the model has fewer."""
    if top_k is None:
        top_k = min(DEFAULT_TOP_K, len(loaded.class_names))
    if not 1 <= top_k <= len(loaded.class_names):
        raise ConfigError(f"--top-k {top_k} is out of range; choose 1 to {len(loaded.class_names)}")
    results = []
    for source, problem in expand_image_paths(patterns):
        result = ImagePrediction(source, error=problem)
        if problem is None:
            try:
                result.image = preprocess(source, max_pixels, loaded.preprocess, loaded.background)
            except PreprocessError as error:  # the message starts with the path
                result.error = str(error)
        results.append(result)
    done = [result for result in results if result.image is not None]
    if done:
        probabilities = predict_probabilities(loaded.model, np.stack([result.image for result in done]))
        for result, row in zip(done, probabilities):
            result.top = top_classes(row, loaded.class_names, top_k)
            result.not_sure = loaded.not_sure(float(row.max()))
    return results


def prepare_input_folder(folder: str | os.PathLike, patterns: list[str], force: bool = False) -> Path:
    """Check and create the `--show-input` folder before any work, so that a bad one is a one-line error now
    rather than after every image was predicted.

    Refused: a path that is a file, a folder that holds any of the images in `patterns` (saving there
    would mix 28x28 copies in with them, or replace them), and, unless `force`, a folder where a file
    `save_inputs` would write exists already.
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"--show-input {folder}: is a file, not a folder; pass a folder to save the inputs in")
    sources = [source for source, _ in expand_image_paths(patterns)]
    if folder.is_dir():
        for source in sources:
            if same_file(source, folder) or same_file(Path(source).parent, folder):
                raise ConfigError(f"--show-input {folder}: holds the images being predicted ({source}); "
                                  f"pass another folder for the 28x28 inputs")
        existing = [path for path in input_image_names(sources, folder) if os.path.lexists(path)]
        for path in existing:
            if any(same_file(path, source) for source in sources):
                raise ConfigError(f"--show-input {folder}: {path.name} is the input {path.resolve()} itself; "
                                  f"pass another folder for the 28x28 inputs")
        if existing and not force:
            more = f" and {len(existing) - 1} more" if len(existing) > 1 else ""
            raise ConfigError(f"--show-input {folder}: {existing[0].name}{more} exist already; pass an empty "
                              f"folder, or add --force to replace them")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ConfigError(f"--show-input {folder}: cannot create this folder ({error.strerror}); "
                          "pass a folder you can write to") from None
    if not os.access(folder, os.W_OK):
        raise ConfigError(f"--show-input {folder}: folder is not writable; pass a folder you can write to")
    return folder


def input_image_names(sources: list[str], folder: str | os.PathLike) -> list[Path]:
    """Where each source's 28x28 input is saved: <folder>/<image name>.png, numbered (-2, -3...) on a clash."""
    folder = Path(folder)
    names: list[Path] = []
    taken: set[Path] = set()
    for source in sources:
        stem = Path(source).stem
        path, number = folder / f"{stem}.png", 2
        while path in taken:
            path, number = folder / f"{stem}-{number}.png", number + 1
        names.append(path)
        taken.add(path)
    return names


def save_inputs(results: list[ImagePrediction], folder: str | os.PathLike) -> list[Path]:
    """Save each preprocessed 28x28 input as named by `input_image_names`; return the paths written."""
    folder = Path(folder)
    saved: list[Path] = []
    for result, path in zip(results, input_image_names([result.source for result in results], folder)):
        if result.image is None:
            continue
        try:
            with atomic_path(path) as temporary:
                Image.fromarray(result.image).save(temporary, format="PNG")
        except OSError as error:  # disk full, the folder removed meanwhile
            raise ConfigError(f"--show-input {folder}: cannot write {path.name} ({error.strerror}); "
                              "free some space or pass another folder") from None
        saved.append(path)
    return saved


def format_table(results: list[ImagePrediction]) -> str:
    """The terminal table: one row per predicted image, its top classes with probabilities in %."""
    rows = [result for result in results if result.error is None]
    if not rows:
        return ""
    width = max(len("image"), *(len(result.source) for result in rows))
    top_k = len(rows[0].top)
    header = f"{'image':<{width}}  " + "  ".join(f"{f'top-{rank + 1}':>12}" for rank in range(top_k))
    lines = [header]
    for result in rows:
        cells = "  ".join(f"{name:>4} {100 * probability:6.2f}%" for name, probability in result.top)
        lines.append(f"{result.source:<{width}}  {cells}" + ("  not sure" if result.not_sure else ""))
    return "\n".join(lines)
