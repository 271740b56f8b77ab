"""Data efficiency: `compare --train-sizes 600,6000,60000` (counts or fractions), a compare run per training-set size.

    from mnistlab.study.sizes import run_size_sweep
    sweep = run_size_sweep(["ann", "cnn"], {}, "runs/sizes", [600, 6000, 60000], seeds=[0, 1, 2])
    sweep["models"]["cnn"]["mean"]   # test accuracy per size, mean over seeds

Each size is a full compare run in `<out>/size-<N>/` (jobs in turn, in local
workers or on Ray, resumable, with its own report), trained on the nested,
stratified subset of N training images (`data.splits.nested_split`): for one
seed, each smaller subset lies inside each larger one, and every model of a
size trains on the same images, so McNemar's test per size is paired. The
sweep then writes `learning_curve.json`, `learning_curve.md`/`.html` and
`learning_curve.png` (accuracy against size, mean with its 95% interval over
seeds) in `<out>`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Sequence

from mnistlab.common.atomic import write_text_atomic
from mnistlab.common.errors import ConfigError
from mnistlab.data.folders import open_dataset
from mnistlab.reporting.learning_curves import learning_curve_sections, plot_learning_curves
from mnistlab.reporting.html import render_html
from mnistlab.reporting.report import render_markdown
from mnistlab.models.spec import ModelSpec
from mnistlab.study.compare import run_compare
from mnistlab.study.plan import resolve_configs, resolve_models
from mnistlab.study.executor import Placement

SWEEP_FILE = "learning_curve.json"
SWEEP_MARKDOWN = "learning_curve.md"
SWEEP_HTML = "learning_curve.html"
SWEEP_PLOT = "learning_curve.png"
MIN_SIZE = 20  # images: a stratified split needs a few of each class


def size_folder(size: int) -> str:
    """The compare run of one size, inside the sweep's folder."""
    return f"size-{size}"


def parse_train_sizes(text: str) -> list[float | int]:
    """`--train-sizes`: comma-separated counts (600) or fractions of the training set (0.01); `ConfigError` if bad."""
    sizes = []
    for part in (part.strip() for part in text.split(",")):
        try:
            value = float(part) if any(mark in part for mark in ".eE") else int(part)
        except ValueError:
            value = None
        if value is None or not value > 0 or (isinstance(value, float) and not value <= 1):
            raise ConfigError(f"--train-sizes {text[:60]!r}: {part!r} is neither a count of images (600) nor a "
                              f"fraction of the training set (0.01, at most 1); give e.g. 600,6000,60000")
        sizes.append(value)
    if not sizes:
        raise ConfigError("--train-sizes is empty; give e.g. 600,6000,60000")
    return sizes


def resolve_sizes(sizes: Sequence[float | int], total: int) -> list[int]:
    """Counts of images, ascending and distinct: fractions of `total` rounded; each from MIN_SIZE to `total`."""
    counts = sorted({round(size * total) if isinstance(size, float) else int(size) for size in sizes})
    bad = [count for count in counts if not MIN_SIZE <= count <= total]
    if bad:
        raise ConfigError(f"--train-sizes: {bad[0]:,} images is out of range; the training set has {total:,} "
                          f"images and a size needs at least {MIN_SIZE}")
    return counts


def check_sweep_folder(out_dir: Path) -> None:
    """The sweep's folder holds nothing but its own files and size runs; anything else is refused before any work."""
    if out_dir.exists() and not out_dir.is_dir():
        raise ConfigError(f"{out_dir}: exists and is not a folder; choose another --out")
    own = {SWEEP_FILE, SWEEP_MARKDOWN, SWEEP_HTML, SWEEP_PLOT}
    foreign = [path.name for path in (out_dir.iterdir() if out_dir.is_dir() else [])
               if path.name not in own and not (path.is_dir() and path.name.startswith("size-"))]
    if foreign:
        raise ConfigError(f"{out_dir}: holds {foreign[0]!r}, which is not part of a --train-sizes run; "
                          f"choose a new or empty --out")


def run_size_sweep(models: Sequence[str | ModelSpec], settings: dict, out_dir: str | os.PathLike,
                   sizes: Sequence[float | int], *, seeds: Sequence[int] | None = None,
                   model_settings: dict[str, dict] | None = None, resume: bool = False,
                   placement: Placement | None = None, data_dir: str | os.PathLike | None = None,
                   progress: bool = True, force: bool = False, **compare_options) -> dict:
    """Run `run_compare` once per training-set size into `<out>/size-<N>`; write and return the learning curve.

    `resume` continues each size's run that was started (and starts the others); `force` starts them afresh.
    `compare_options` (robustness, explain) go to every size's run.
    """
    if any("limit_train" in chosen for chosen in [settings, *(model_settings or {}).values()]):
        raise ConfigError("--train-sizes and --limit-train choose the training images both ways; drop one")
    specs = resolve_models(models)
    model_names = [spec.label for spec in specs]
    configs = resolve_configs(specs, settings, model_settings)
    out_dir = Path(out_dir)
    check_sweep_folder(out_dir)
    dataset = open_dataset(configs[model_names[0]].dataset, data_dir, progress=progress)
    counts = resolve_sizes(sizes, len(dataset.train_labels))
    runs = {}
    for count in counts:
        folder = out_dir / size_folder(count)
        runs[count] = run_compare(
            specs, {**settings, "train_size": count}, folder, seeds=seeds, model_settings=model_settings,
            resume=resume and folder.is_dir(), placement=placement, data_dir=data_dir, progress=progress,
            force=force, **compare_options)
    sweep = summarise_sweep(runs, list(model_names))
    write_text_atomic(out_dir / SWEEP_FILE, json.dumps(sweep, indent=2) + "\n")
    plot_learning_curves(sweep, out_dir / SWEEP_PLOT)
    title = f"Learning curves: {' vs '.join(model_names)} on {sweep['dataset']}"
    sections = learning_curve_sections(sweep, SWEEP_PLOT)
    write_text_atomic(out_dir / SWEEP_MARKDOWN, render_markdown(title, sections))
    write_text_atomic(out_dir / SWEEP_HTML, render_html(title, sections, out_dir))
    return sweep


def summarise_sweep(runs: dict[int, dict], model_names: list[str]) -> dict:
    """learning_curve.json from each size's metrics: accuracy per size and model over seeds, and McNemar per size."""
    sizes = sorted(runs)
    models = {}
    for name in model_names:
        rows = [runs[size]["models"][name] for size in sizes]
        models[name] = {key: [(row.get("accuracy") or {}).get(key) for row in rows]
                        for key in ("std", "ci_low", "ci_high")}
        models[name]["mean"] = [row["test_accuracy"] for row in rows]
    first = runs[sizes[0]]
    return {
        "dataset": first["dataset"]["name"],
        "seeds": first["seeds"],
        "validation_fraction": first["models"][model_names[0]]["config"]["validation_fraction"],
        "sizes": sizes,
        "train_images": [runs[size]["dataset"]["train_size"] for size in sizes],  # after the validation hold-out
        "runs": [size_folder(size) for size in sizes],
        "models": models,
        "comparisons": [[{key: comparison[key] for key in ("models", "difference", "ci_low", "ci_high", "p_value",
                                                           "p_value_holm", "significant")}
                         for comparison in runs[size].get("comparisons", [])] for size in sizes],
    }
