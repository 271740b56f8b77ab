"""The hooks a run calls as it goes (started, a job finished, the run finished), and the trackers behind them.

    trackers = open_trackers(mlflow="http://127.0.0.1:5000", tensorboard="tb")  # connects now: errors before work
    run_compare([...], settings, out_dir, trackers=trackers)

`open_trackers` connects before any work, so an unreachable server is a one-line
`ConfigError` before training starts. After that a tracker never stops the run:
the first error it raises becomes one warning (the run folder keeps every result,
and `mnistlab track RUN_DIR` can log it later) and the tracker is dropped.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from pathlib import Path

from mnistlab.common.errors import MnistlabError, first_line
from mnistlab.common.extras import require_extra
from mnistlab.runs.folder import read_metrics
from mnistlab.tracking.tracker import Tracker


class Trackers:
    """Several trackers behind one set of hooks; a tracker that raises is reported once and dropped."""

    def __init__(self, trackers: list[Tracker], strict: bool = False):
        self.trackers = list(trackers)
        self.strict = strict  # raise a tracker's error (mnistlab track, where logging is the whole job)
        self.logged: set[tuple[str, int]] = set()  # (model, seed) of the jobs logged so far

    def __bool__(self) -> bool:
        return bool(self.trackers)

    def _call(self, method: str, *args) -> None:
        for tracker in list(self.trackers):
            try:
                getattr(tracker, method)(*args)
            except Exception as error:  # any failure of a tracker (network, server, disk): the run goes on
                self.trackers.remove(tracker)
                if self.strict:
                    self._close(tracker)
                    raise MnistlabError(f"{tracker.name} logging failed ({type(error).__name__}: "
                                        f"{first_line(error)}); check the tracker and run it again") from None
                warnings.warn(f"{tracker.name} logging stopped ({type(error).__name__}: {first_line(error)}); the run "
                              f"folder keeps every result: log it later with mnistlab track", stacklevel=3)
                self._close(tracker)

    def start(self, out_dir, plan: dict) -> None:
        self._call("start", Path(out_dir), plan)

    def job_finished(self, out_dir, model_name: str, config: dict, record: dict) -> None:
        self.logged.add((model_name, record["seed"]))
        self._call("job_finished", Path(out_dir), model_name, config, record)

    def run_finished(self, out_dir, metrics: dict) -> None:
        """The run is complete; jobs not logged yet (finished before a --resume) are logged first."""
        for name, result in metrics["models"].items():
            for record in result["seeds"]:
                if (name, record["seed"]) not in self.logged:
                    self.job_finished(out_dir, name, {**result["config"], "seed": record["seed"]}, record)
        self._call("run_finished", Path(out_dir), metrics)

    def trained(self, checkpoint, state: dict) -> None:
        self._call("trained", Path(checkpoint), state)

    def tune_finished(self, out_dir, study: dict) -> None:
        self._call("tune_finished", Path(out_dir), study)

    def close(self) -> None:
        for tracker in self.trackers:
            self._close(tracker)
        self.trackers = []

    @staticmethod
    def _close(tracker: Tracker) -> None:
        try:
            tracker.close()
        except Exception:  # closing after a failure may fail the same way; the warning has been given
            pass


def open_trackers(mlflow: str | None = None, tensorboard: str | None = None, experiment: str = "mnistlab",
                  strict: bool = False) -> Trackers:
    """The trackers asked for, each checked now: `ConfigError` with one line if MLflow cannot be reached or the
    TensorBoard folder cannot be written, or if the extra is not installed. With `strict`, a tracker's later
    error is raised (as `MnistlabError`) instead of becoming a warning."""
    trackers: list[Tracker] = []
    if mlflow:
        require_extra("mlflow", "--mlflow")
        from mnistlab.tracking.mlflow_log import MlflowTracker

        trackers.append(MlflowTracker(mlflow, experiment))
    if tensorboard:
        require_extra("tensorboard", "--tensorboard")
        from mnistlab.tracking.tensorboard_log import TensorBoardTracker

        trackers.append(TensorBoardTracker(tensorboard))
    return Trackers(trackers, strict)


def log_run_folder(run_dir: str | os.PathLike, trackers: Trackers) -> dict:
    """Log a finished compare run from its folder alone (`mnistlab track`): what the run would have logged live."""
    run_dir = Path(run_dir).resolve()  # named after its folder, also when given as "."
    metrics = read_metrics(run_dir)
    plan = {"models": list(metrics["models"]), "seeds": metrics["seeds"], "dataset": metrics["dataset"]["checksums"],
            "threads": metrics["machine"].get("threads"), "device": metrics["machine"].get("device")}
    with contextlib.closing(trackers):
        trackers.start(run_dir, plan)
        trackers.run_finished(run_dir, metrics)
    return metrics
