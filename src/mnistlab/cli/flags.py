"""The command line's flags turned into what the library takes: training settings, model specs, seeds, trackers."""

from __future__ import annotations

import argparse

from mnistlab.common.errors import ConfigError
from mnistlab.common.extras import require_extra


def settings_from(args: argparse.Namespace, model_names: list[str]) -> tuple[dict, dict[str, dict]]:
    """The shared settings (--config FILE, then flags) and each model's own (--config MODEL=FILE, then flags)."""
    from mnistlab.training.config import read_settings

    shared_file, model_files = config_files(args.config, model_names)
    flags = dict(dataset=args.dataset, epochs=args.epochs, batch_size=args.batch_size,
                 learning_rate=args.learning_rate, validation_fraction=args.validation_fraction, seed=args.seed,
                 limit_train=args.limit_train, precision=args.precision)
    return (read_settings(shared_file, **flags),
            {name: read_settings(path, **flags) for name, path in model_files.items()})


def config_files(values: list[str] | None, model_names: list[str]) -> tuple[str | None, dict[str, str]]:
    """`--config` values: at most one FILE for every model, and MODEL=FILE (a model's label) for one."""
    from mnistlab.models.catalogue import BUILT_IN as MODELS

    shared, own = None, {}
    for value in values or []:
        name, equals, path = value.partition("=")
        if equals and (name in MODELS or name in model_names):
            if name not in model_names:
                raise ConfigError(f"--config {value}: {name} is not a model of this command "
                                  f"({', '.join(model_names)}); name one of them or drop the file")
            if name in own:
                raise ConfigError(f"--config {name}=... given twice; give each model one file")
            own[name] = path
        elif shared is not None:
            raise ConfigError(f"--config {value}: a file for every model is given already ({shared}); "
                              f"give one shared file, and MODEL=FILE for a model's own")
        else:
            shared = value
    return shared, own


def model_specs(texts: list[str], config_values: list[str] | None) -> list:
    """Each `--models` entry as a spec: a `[models.LABEL]` table of the shared config file, or the text itself.
    Model files are read here, not run."""
    from mnistlab.models.spec import parse_spec, written_label
    from mnistlab.training.config import read_model_tables

    shared, _ = config_files(config_values, [written_label(text) for text in texts])
    tables = read_model_tables(shared)
    return [parse_spec(tables[text]["spec"], tables[text].get("arguments"), label=text) if text in tables
            else parse_spec(text) for text in texts]


def trackers_from(args: argparse.Namespace, strict: bool = False):
    """The trackers --mlflow and --tensorboard ask for, connected now: before any training starts."""
    from mnistlab.tracking.hooks import open_trackers

    if args.mlflow:  # the CLI is the entry point: its own lines say enough (MLflow logs each database migration)
        import logging

        require_extra("mlflow", "--mlflow")
        import mlflow  # noqa: F401  (sets up its loggers when imported: quieted after that)

        logging.getLogger("mlflow").setLevel(logging.WARNING)
    return open_trackers(args.mlflow, args.tensorboard, args.mlflow_experiment, strict)


def parse_seeds(text: str | None, first_seed: int, seed_given: bool) -> list[int] | None:
    """`--seeds`: an integer N means N seeds from `first_seed`; a comma-separated list means those seeds."""
    if text is None:
        return None
    text = text.strip()
    try:
        if "," not in text:
            count = int(text)
            if not 1 <= count <= 1000:
                raise ValueError
            return list(range(first_seed, first_seed + count))
        seeds = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ConfigError(f"--seeds {text[:40]!r} is invalid; give a count from 1 to 1000 (--seeds 5) "
                          f"or a list (--seeds 0,1,2)") from None
    if seed_given:
        raise ConfigError(f"--seeds {text} lists the seeds, so --seed (or a config file's seed) must not be given too")
    return seeds
