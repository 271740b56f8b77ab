"""What a run will do, decided before it starts: its models (specs resolved, code imported), their configs,
where its jobs run, and its folder's default name. Compare, train, tune and the size sweep all start here."""

from __future__ import annotations

import datetime
import os
import warnings
from pathlib import Path
from typing import Sequence

from mnistlab.common.errors import ConfigError
from mnistlab.models.catalogue import BUILT_IN
from mnistlab.models.contract import resolve
from mnistlab.models.spec import ModelSpec, as_spec
from mnistlab.runs.folder import model_file_names
from mnistlab.study.executor import Placement
from mnistlab.study.jobs import default_devices
from mnistlab.training.config import TrainConfig, model_config
from mnistlab.training.runtime import check_workers, device_name, has_native_bf16, job_threads, resolve_device


def default_run_dir(kind: str) -> Path:
    """`runs/<timestamp>-<kind>` under the current directory, numbered (-2, -3...) if that is taken already."""
    base = Path("runs") / f"{datetime.datetime.now():%Y%m%d-%H%M%S}-{kind}"
    path, number = base, 2
    while os.path.lexists(path):
        path, number = base.with_name(f"{base.name}-{number}"), number + 1
    return path


def resolve_models(models: Sequence[str | ModelSpec]) -> list[ModelSpec]:
    """Each model's spec with its code imported and its recipe read; refuses bad specs and repeated labels."""
    if not models:
        raise ConfigError(f"no models given; choose from: {', '.join(BUILT_IN)}, or name your own as FILE.py:Class")
    specs = [resolve(as_spec(model)) for model in models]
    labels = [spec.label for spec in specs]
    repeated = sorted({label for label in labels if labels.count(label) > 1})
    if repeated:
        raise ConfigError(f"model(s) {', '.join(repeated)} given more than once; list each model once, or label "
                          f"them apart (--models a=FILE.py:Net,b=FILE.py:Net(width=64))")
    check_file_names(labels)
    return specs


def check_file_names(labels: list[str]) -> None:
    """Refuse labels whose files in the run folder would be the same file: one label is another's with a suffix
    the folder uses (`Net` and `Net_normalised`), or they differ only in case (one file on macOS and Windows)."""
    owners: dict[str, str] = {}
    for label in labels:
        for name in {*model_file_names(label, [0]), *model_file_names(label, [0, 1])}:
            other = owners.setdefault(name.lower(), label)
            if other != label:
                raise ConfigError(f"models {other} and {label} would both write {name} in the run folder; "
                                  f"label them apart (--models a=SPEC,b=SPEC)")


def resolve_configs(specs: Sequence[ModelSpec], settings: dict,
                    model_settings: dict[str, dict] | None = None) -> dict[str, TrainConfig]:
    """Each model's config by label, resolved once; refuses models on different datasets.

    `model_settings` maps a model's label to its own settings, which win over the shared `settings`.
    """
    configs = {spec.label: model_config(spec, {**settings, **(model_settings or {}).get(spec.label, {})})
               for spec in specs}
    datasets = {config.dataset for config in configs.values()}
    if len(datasets) > 1:
        raise ConfigError(f"the models would train on different datasets ({', '.join(sorted(datasets))}); "
                          f"compare models on one dataset")
    return configs


def plan_placement(workers: int = 1, threads: int | None = None, device: str = "cpu",
                   ray_address: str | None = None) -> Placement:
    """Check the `--workers`, `--threads`, `--device` and `--ray` choices and resolve them into a `Placement`.

    `threads=None` means this process's count in turn, or cores / workers side by side.
    """
    if workers > 1 and ray_address:
        raise ConfigError(f"--workers {workers} is invalid together with --ray (the cluster runs the jobs); drop one")
    check_workers(workers)
    torch_device = resolve_device(device)
    return Placement(workers=workers, threads=job_threads(threads, workers, bool(ray_address)),
                     device=str(torch_device), devices=tuple(default_devices(torch_device, workers)),
                     ray_address=ray_address)


def warn_without_native_bf16(configs, device) -> None:
    """bf16 autocast without hardware bf16 runs, but slower than fp32: say so once."""
    if any(config.precision == "bf16" for config in configs) and not has_native_bf16(device):
        warnings.warn(f"{device_name(device)} has no native bfloat16 (AVX512_BF16 or AMX on a CPU); "
                      f"--precision bf16 will be slower than fp32 here", stacklevel=3)
