"""Logging runs to the trackers a team already uses: MLflow (extra: mlflow) and TensorBoard (extra: tensorboard).

Trackers only read what a run records anyway (each finished job's record and
checkpoint, then the run folder's metrics.json, report and figures), so the run
folder is complete whatever happens to a tracker: one that fails is reported once
as a warning and skipped from then on (`hooks.Trackers`).
"""

from mnistlab.tracking.hooks import Trackers, log_run_folder, open_trackers

__all__ = ["Trackers", "log_run_folder", "open_trackers"]
