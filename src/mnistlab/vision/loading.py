"""Checkpoints opened for prediction: the model in eval mode with its class names, how it reads images, and a
display name that tells several checkpoints apart (`predict`, `serve` and `mnistlab.load` open them here)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from torch import nn

from mnistlab.common.errors import CheckpointError
from mnistlab.models import count_parameters
from mnistlab.training.checkpoint import background_of, load_checkpoint, preprocessing_of
from mnistlab.training.runtime import resolve_device

@dataclass
class LoadedModel:
    """A checkpoint ready to predict: its display name, the model in eval mode, and what it says about itself."""

    name: str  # unique among the loaded models: the model name, or the file's stem on a clash (see `load_models`)
    model: nn.Module
    class_names: list[str]
    dataset: str  # a registered dataset's name, or the folder's name (never its path) for one's own data
    test_accuracy: float | None  # as measured when the checkpoint was written; None if it was never tested
    params: int
    path: Path
    not_sure_threshold: float | None = None  # top probability below which a prediction is "not sure"; None if unknown
    preprocess: str = "digits"  # how image files become inputs: "digits" (photo preprocessing) or "plain" (resize)
    background: str = "dark"  # the training images' background, which inputs are brought to

    def describe(self) -> dict:
        """Plain-JSON summary (no weights)."""
        return {"name": self.name, "dataset": self.dataset, "test_accuracy": self.test_accuracy,
                "params": self.params, "class_names": self.class_names, "checkpoint": self.path.name,
                "preprocess": self.preprocess}

    @property
    def input_kind(self) -> tuple[str, str]:
        """How an image becomes this model's input: (preprocessing, training images' background)."""
        return self.preprocess, self.background

    @property
    def reads_digits(self) -> bool:
        """Trained on handwritten digits: its images get the digit photo preprocessing, and it can read a number."""
        return self.preprocess == "digits"

    def note(self) -> str | None:
        """A line saying how images are read for a checkpoint not trained on handwritten digits; None otherwise."""
        if self.reads_digits:
            return None
        return (f"{self.name} was trained on {Path(self.dataset).name or self.dataset}, not on handwritten digits: "
                f"images are resized to 28x28 as they are (gray, {self.background} background), without the digit "
                f"photo preprocessing")

    def not_sure(self, top_probability: float) -> bool | None:
        """Is a prediction with this top probability "not sure"? None when the checkpoint has no threshold."""
        return None if self.not_sure_threshold is None else bool(top_probability < self.not_sure_threshold)


def find_checkpoints(paths: list[str | os.PathLike]) -> list[Path]:
    """Checkpoint files from files and folders (a folder gives its *.pt files, sorted)."""
    found: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            inside = sorted(path.glob("*.pt"))
            if not inside:
                raise CheckpointError(f"{path}: folder holds no .pt checkpoints; pass a run folder or .pt files")
            found.extend(inside)
        elif path.is_file():
            found.append(path)
        else:
            raise CheckpointError(f"{path}: no such checkpoint file or folder; pass a run folder or .pt files")
    if not found:
        raise CheckpointError("no checkpoints given; pass a run folder or .pt files")
    return found


def load_model(path: str | os.PathLike, name: str | None = None, device: str = "cpu",
               trust_code: bool = False) -> LoadedModel:
    """Load one checkpoint file for prediction on `device`; `name` defaults to its model name.

    A model of the user's own loads only with `trust_code` (its recorded code runs; see `training.checkpoint`).
    """
    model, state = load_checkpoint(path, trust_code=trust_code)
    model.to(resolve_device(device))
    metrics = state.get("metrics") or {}
    dataset = state.get("dataset") or {}
    return LoadedModel(
        name=name or state["model_name"], model=model,
        class_names=list(dataset["class_names"]),  # one per output (`checkpoint.class_names_of`)
        dataset=public_dataset_name(str(dataset.get("name", "unknown"))), test_accuracy=metrics.get("test_accuracy"),
        params=count_parameters(model),
        path=Path(path), not_sure_threshold=metrics.get("not_sure_threshold"),
        preprocess=preprocessing_of(state), background=background_of(state),
    )


def public_dataset_name(name: str) -> str:
    """A dataset's name fit to show to anyone: one's own data is recorded by its absolute folder path, whose last
    part is kept ("/home/me/data/my-digits" -> "my-digits")."""
    if not re.search(r"[\\/]", name):
        return name
    return ([part for part in re.split(r"[\\/]", name) if part] or ["(a folder)"])[-1]


def load_models(paths: list[str | os.PathLike], skipped: list[str] | None = None,
                device: str = "cpu", trust_code: bool = False) -> list[LoadedModel]:
    """Load every checkpoint in `paths` (files or folders) with a unique display name each: its model name, or
    where several checkpoints hold the same model, each one's file stem ("cnn-seed1"), then "<folder>/<stem>",
    then a number, until the names differ.

    With a `skipped` list, a checkpoint that cannot be loaded is left out and its one-line reason appended there;
    `CheckpointError` only when none loads. Without it, the first bad checkpoint raises.
    """
    loaded: list[LoadedModel] = []
    for path in find_checkpoints(paths):
        try:
            model = load_model(path, device=device, trust_code=trust_code)
        except CheckpointError as error:
            if skipped is None:
                raise
            skipped.append(str(error))
            continue
        loaded.append(model)
    if not loaded:
        raise CheckpointError(f"none of the checkpoints could be loaded: {'; '.join(skipped or [])}")
    _name_uniquely(loaded)
    return loaded


def _name_uniquely(models: list[LoadedModel]) -> None:
    """Rename the models whose names clash after their files: stem, then folder/stem, then a number."""
    clashing = [model for model in models if [other.name for other in models].count(model.name) > 1]
    renames = (lambda model: model.path.stem, lambda model: f"{model.path.resolve().parent.name}/{model.path.stem}")
    for rename in renames:
        names = [model.name for model in models]  # before this round: every clashing name changes, not all but one
        for model in clashing:
            if names.count(model.name) > 1:
                model.name = rename(model)
    seen: set[str] = set()
    for model in models:  # the same file given twice
        base, number = model.name, 2
        while model.name in seen:
            model.name, number = f"{base}#{number}", number + 1
        seen.add(model.name)
