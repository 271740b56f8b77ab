"""What a tracker implements: the hooks a run calls, each a no-op here. The backends (`mlflow_log`,
`tensorboard_log`) subclass it; `hooks` runs several behind one set of hooks."""

from __future__ import annotations

from pathlib import Path


class Tracker:
    """What a tracker may implement; each method has the run's own records as arguments and does nothing here."""

    name = "tracker"

    def start(self, out_dir: Path, plan: dict) -> None:
        """A run starts writing `out_dir`; `plan` is its state/plan.json (models, seeds, dataset, configs)."""

    def job_finished(self, out_dir: Path, model_name: str, config: dict, record: dict) -> None:
        """One (model, seed) job finished: its resolved `config` and the record saved in state/ (history, test
        scores, calibration, the checkpoint's file name in `out_dir`)."""

    def run_finished(self, out_dir: Path, metrics: dict) -> None:
        """The run folder is complete: metrics.json (`metrics`), report, figures, model cards."""

    def trained(self, checkpoint: Path, state: dict) -> None:
        """`mnistlab train` wrote `checkpoint` (its contents: config, dataset, history) and its card."""

    def tune_finished(self, out_dir: Path, study: dict) -> None:
        """A tune study finished writing `out_dir`; `study` holds its plan and every trial (see tune.search)."""

    def close(self) -> None:
        """Flush and end whatever is open (called once, also after an error)."""
