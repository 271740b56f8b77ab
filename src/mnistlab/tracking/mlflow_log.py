"""MLflow logging (`--mlflow URI`, extra: mlflow): a parent run per study, a child run per (model, seed) or trial.

    compare: parent = the run folder (tags: dataset checksums, machine, versions; the report,
             metrics.json and figures as artifacts; each model's test accuracy and interval);
             child = one (model, seed): its resolved config as params, per-epoch loss and
             accuracy with their epoch as step, test scores, calibration, the checkpoint and its card
    train:   one run, as a compare child;  tune: parent = the study, child = one trial

URIs: `file:./mlruns`, `sqlite:///mlflow.db`, or a tracking server `http://HOST:PORT`.
Everything goes through one `MlflowClient` for that URI (no global active run, no
change to the process's MLflow settings), and HTTP calls give up after one retry and
30 s, so a server that dies mid-run costs seconds, not the run (see `hooks.Trackers`).
"""

from __future__ import annotations

import contextlib
import os
import time
import urllib.error
import urllib.request
from pathlib import Path

from mnistlab.common.errors import ConfigError, first_line
from mnistlab.tracking.tracker import Tracker

HTTP_RETRIES = "1"  # MLflow's HTTP retries per call (its default, 7 with backoff, can wait minutes)
HTTP_TIMEOUT = "30"  # seconds per HTTP call
HEALTH_TIMEOUT = 5  # seconds for the reachability check before a run starts
BATCH = 1000  # the most metrics one log_batch call may carry
HISTORY_KEYS = ("train_loss", "train_accuracy", "val_loss", "val_accuracy")
RUN_FIGURES = ("*.png",)


@contextlib.contextmanager
def mlflow_settings():
    """MLflow's settings for our calls (it reads them from the environment per call), then restored: HTTP retries
    and timeout lowered, and the file store allowed: MLflow 3 refuses `file:` URIs unless told
    MLFLOW_ALLOW_FILE_STORE (the store is in maintenance mode; sqlite: is its recommended replacement)."""
    settings = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": HTTP_RETRIES, "MLFLOW_HTTP_REQUEST_TIMEOUT": HTTP_TIMEOUT,
                "MLFLOW_ALLOW_FILE_STORE": "true"}
    saved = {name: os.environ.get(name) for name in settings}
    os.environ.update(settings)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def check_reachable(uri: str) -> None:
    """`ConfigError` unless an http(s) tracking server answers its /health page within a few seconds."""
    if not uri.startswith(("http://", "https://")):
        return
    try:
        with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=HEALTH_TIMEOUT) as response:
            response.read(64)
    except (urllib.error.URLError, OSError, ValueError) as error:
        reason = " ".join(str(getattr(error, "reason", error)).splitlines())[:200]
        raise ConfigError(f"--mlflow {uri}: the MLflow server does not answer ({reason}); start it (mlflow server) "
                          f"or check the address; nothing was run") from None


def artifact_location(uri: str) -> str | None:
    """Where a new experiment keeps its files: beside the database for `sqlite:///path.db` (MLflow's own default
    is ./mlruns under whatever folder the command runs in); the store's or server's choice otherwise."""
    if not uri.startswith("sqlite:///"):
        return None
    return (Path(uri[len("sqlite:///"):]).resolve().parent / "mlartifacts").as_uri()


class MlflowTracker(Tracker):
    """Logs a compare, train or tune run to MLflow (see the module docstring)."""

    name = "MLflow"

    def __init__(self, uri: str, experiment: str = "mnistlab"):
        from mlflow import MlflowClient
        from mlflow.exceptions import MlflowException
        from sqlalchemy.exc import SQLAlchemyError  # what a sqlite: store that cannot be opened raises

        check_reachable(uri)
        try:
            with mlflow_settings():
                self.client = MlflowClient(tracking_uri=uri)
                found = self.client.get_experiment_by_name(experiment)
                self.experiment_id = found.experiment_id if found else self.client.create_experiment(
                    experiment, artifact_location=artifact_location(uri))
        except (MlflowException, SQLAlchemyError, OSError, ValueError) as error:
            raise ConfigError(f"--mlflow {uri}: cannot open experiment {experiment!r} ({first_line(error)}); check the "
                              f"URI (file:./mlruns, sqlite:///mlflow.db or http://HOST:PORT); nothing was run") from None
        self.parent: str | None = None
        self.children: dict[tuple[str, int], str] = {}  # (model, seed) -> MLflow run id
        self.open_runs: list[str] = []

    # -- compare --------------------------------------------------------------------------------
    def start(self, out_dir: Path, plan: dict) -> None:
        tags = {"mnistlab.kind": "compare", "mnistlab.run_dir": str(out_dir.resolve()),
                **{f"dataset.sha256.{name}": digest for name, digest in plan["dataset"].items()}}
        self.parent = self._create(out_dir.name, tags)
        self._log(self.parent, params={"models": ",".join(plan["models"]), "seeds": ",".join(map(str, plan["seeds"])),
                                       "threads": plan.get("threads"), "device": plan.get("device")})

    def job_finished(self, out_dir: Path, model_name: str, config: dict, record: dict) -> None:
        run_id = self._create(f"{model_name}-seed{record['seed']}", {"mnistlab.model": model_name,
                                                                    "mnistlab.seed": str(record["seed"])},
                              parent=self.parent)
        self.children[(model_name, record["seed"])] = run_id
        self._log(run_id, params=config, metrics=job_metrics(record), history=record["history"])
        self._artifact(run_id, out_dir / record["checkpoint"])
        self._finish(run_id)

    def run_finished(self, out_dir: Path, metrics: dict) -> None:
        for name, result in metrics["models"].items():
            for record in result["seeds"]:  # every job is logged by now (hooks.Trackers.run_finished)
                self._artifact(self.children[(name, record["seed"])], out_dir / f"{record['checkpoint']}.md")
        self._log(self.parent, metrics=run_metrics(metrics), tags=provenance_tags(metrics))
        for path in [out_dir / "metrics.json", out_dir / "report.md", out_dir / "report.html",
                     *sorted(out_dir.glob("*.png"))]:
            self._artifact(self.parent, path)
        self._finish(self.parent)

    # -- train and tune -------------------------------------------------------------------------
    def trained(self, checkpoint: Path, state: dict) -> None:
        tags = {"mnistlab.kind": "train", "mnistlab.model": state["model_name"],
                **{f"dataset.sha256.{name}": digest for name, digest in state["dataset"]["checksums"].items()},
                **{f"version.{name}": str(value) for name, value in state.get("versions", {}).items()}}
        run_id = self._create(checkpoint.stem, tags)
        scores = state.get("metrics", {})
        self._log(run_id, params=state["config"], history=scores.get("history", []),
                  metrics={key: scores[key] for key in ("train_seconds", "params", "not_sure_threshold") if key in scores})
        self._artifact(run_id, checkpoint)
        self._artifact(run_id, checkpoint.with_name(checkpoint.name + ".md"))
        self._finish(run_id)

    def tune_finished(self, out_dir: Path, study: dict) -> None:
        tags = {"mnistlab.kind": "tune", "mnistlab.model": study["model"], "mnistlab.run_dir": str(out_dir.resolve()),
                **{f"dataset.sha256.{name}": digest for name, digest in study["dataset"].items()}}
        parent = self._create(out_dir.name, tags)
        self._log(parent, params=study["config"],
                  metrics={} if study.get("best_value") is None else {"best_val_accuracy": study["best_value"]})
        for trial in study["trials"]:
            run_id = self._create(f"trial-{trial['number']}", {"mnistlab.trial_state": trial["state"]}, parent=parent)
            steps = [{"epoch": step, "val_accuracy": value} for step, value in sorted(trial["intermediate"].items())]
            self._log(run_id, params=trial["params"], history=steps,
                      metrics={} if trial["value"] is None else {"val_accuracy_final": trial["value"]})
            self._finish(run_id, "FINISHED" if trial["state"] == "complete" else "FAILED")
        for name in ("best.toml", "trials.csv", "tune.md"):
            self._artifact(parent, out_dir / name)
        for path in sorted(out_dir.glob("*.png")):
            self._artifact(parent, path)
        self._finish(parent)

    def close(self) -> None:
        """Runs left open (the run failed or was interrupted) are marked failed."""
        with mlflow_settings():
            for run_id in list(self.open_runs):
                self.client.set_terminated(run_id, "FAILED")
                self.open_runs.remove(run_id)

    # -- the MLflow calls -----------------------------------------------------------------------
    def _create(self, name: str, tags: dict, parent: str | None = None) -> str:
        from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

        tags = {**tags, **({MLFLOW_PARENT_RUN_ID: parent} if parent else {})}
        with mlflow_settings():
            run_id = self.client.create_run(self.experiment_id, tags=tags, run_name=name).info.run_id
        self.open_runs.append(run_id)
        return run_id

    def _log(self, run_id: str, params: dict | None = None, metrics: dict | None = None, history=(),
             tags: dict | None = None) -> None:
        from mlflow.entities import Metric, Param, RunTag

        now = int(time.time() * 1000)
        entries = [Metric(key, float(value), now, 0) for key, value in (metrics or {}).items() if value is not None]
        for epoch in history:
            step = int(epoch.get("epoch", 0))
            entries += [Metric(key, float(epoch[key]), now, step) for key in HISTORY_KEYS if epoch.get(key) is not None]
        parameters = [Param(key, str(value)[:6000]) for key, value in (params or {}).items()]
        run_tags = [RunTag(key, str(value)[:5000]) for key, value in (tags or {}).items()]
        with mlflow_settings():
            for start in range(0, max(len(entries), 1), BATCH):
                chunk = entries[start:start + BATCH]
                self.client.log_batch(run_id, metrics=chunk, params=parameters if start == 0 else [],
                                      tags=run_tags if start == 0 else [])

    def _artifact(self, run_id: str, path: Path) -> None:
        if path.is_file():
            with mlflow_settings():
                self.client.log_artifact(run_id, str(path))

    def _finish(self, run_id: str, status: str = "FINISHED") -> None:
        with mlflow_settings():
            self.client.set_terminated(run_id, status)
        self.open_runs.remove(run_id)


def job_metrics(record: dict) -> dict:
    """One job's scalars: test scores, training time, calibration before and after temperature scaling."""
    values = {key: record.get(key) for key in ("test_accuracy", "test_loss", "train_seconds", "params")}
    calibration = record.get("calibration") or {}
    for when in ("before", "after"):
        for key, value in (calibration.get(when) or {}).items():
            values[f"calibration.{when}.{key}"] = value
    if "temperature" in calibration:
        values["calibration.temperature"] = calibration["temperature"]
    return values


def run_metrics(metrics: dict) -> dict:
    """The study's scalars: each model's mean test accuracy and interval, each pair's difference and Holm p."""
    values = {}
    for name, result in metrics["models"].items():
        interval = result.get("accuracy") or {}
        values.update({f"{name}.test_accuracy": result["test_accuracy"], f"{name}.test_accuracy.ci_low":
                       interval.get("ci_low"), f"{name}.test_accuracy.ci_high": interval.get("ci_high")})
    for comparison in metrics.get("comparisons", []):
        pair = "_vs_".join(comparison["models"])
        values.update({f"{pair}.difference": comparison["difference"], f"{pair}.p_value_holm": comparison["p_value_holm"]})
    return values


def provenance_tags(metrics: dict) -> dict:
    """Machine and versions as tags."""
    return {**{f"machine.{key}": value for key, value in metrics["machine"].items()},
            **{f"version.{key}": value for key, value in metrics["versions"].items()},
            "dataset.name": metrics["dataset"]["name"]}
