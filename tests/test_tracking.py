"""MLflow and TensorBoard logging, read back through their own readers (MlflowClient, EventAccumulator).

Fast tests log to a real MLflow file store; the slow ones start a real `mlflow server` on 127.0.0.1 (and stop it),
one of them killing it mid-run: the run folder must still be complete.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from conftest import assert_one_line_error, register_tiny_dataset, run_cli
from mnistlab.runs.folder import read_metrics

TINY = ["--quiet", "--threads", "1"]


def client_for(uri):
    from mlflow import MlflowClient

    os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3 reads file: stores only when told
    return MlflowClient(tracking_uri=uri)


def runs_by_name(client, experiment="mnistlab"):
    experiment_id = client.get_experiment_by_name(experiment).experiment_id
    return {run.info.run_name: run for run in client.search_runs([experiment_id])}


def assert_compare_logged(client, run_dir: Path):
    """One parent run for the study and a finished child per (model, seed), holding what the run folder holds."""
    metrics = read_metrics(run_dir)
    runs = runs_by_name(client)
    parent = runs[run_dir.name]
    assert parent.info.status == "FINISHED"
    assert parent.data.tags["dataset.sha256.t10k-images-idx3-ubyte"] == metrics["dataset"]["checksums"][
        "t10k-images-idx3-ubyte"]
    assert parent.data.tags["version.mnistlab"] == metrics["versions"]["mnistlab"]
    assert parent.data.tags["machine.cpu_capability"] == metrics["machine"]["cpu_capability"]
    parent_files = {item.path for item in client.list_artifacts(parent.info.run_id)}
    assert {"metrics.json", "report.md", "report.html", "accuracy_plot.png"} <= parent_files
    for name, result in metrics["models"].items():
        assert parent.data.metrics[f"{name}.test_accuracy"] == pytest.approx(result["test_accuracy"])
        for record in result["seeds"]:
            child = runs[f"{name}-seed{record['seed']}"]
            assert child.info.status == "FINISHED"
            assert child.data.tags["mlflow.parentRunId"] == parent.info.run_id
            assert child.data.params["seed"] == str(record["seed"]) and child.data.params["epochs"] == "2"
            assert child.data.metrics["test_accuracy"] == pytest.approx(record["test_accuracy"])
            assert child.data.metrics["calibration.before.ece"] == pytest.approx(record["calibration"]["before"]["ece"])
            history = sorted((m.step, m.value) for m in client.get_metric_history(child.info.run_id, "val_loss"))
            assert history == [(epoch["epoch"], epoch["val_loss"]) for epoch in record["history"]]
            files = {item.path for item in client.list_artifacts(child.info.run_id)}
            assert files == {record["checkpoint"], f"{record['checkpoint']}.md"}
    assert len(runs) == 1 + sum(len(result["seeds"]) for result in metrics["models"].values())


@pytest.fixture(scope="module")
def logged_run(tmp_path_factory):
    """A tiny compare logged to an MLflow file store and to TensorBoard while it runs."""
    root = tmp_path_factory.mktemp("tracked")
    with pytest.MonkeyPatch.context() as monkeypatch:
        _, data_dir, _, _ = register_tiny_dataset(root / "data", monkeypatch)
        from mnistlab.cli.main import main

        assert main([*TINY, "--data-dir", str(data_dir), "compare", "--dataset", "tiny", "--epochs", "2",
                     "--models", "logreg,ann", "--seeds", "0,1", "--out", str(root / "run"),
                     "--mlflow", (root / "mlruns").as_uri(), "--tensorboard", str(root / "tb")]) == 0
        yield root, data_dir


def test_compare_logs_a_parent_and_a_child_per_model_and_seed_to_an_mlflow_file_store(logged_run):
    root, _ = logged_run
    assert "MLFLOW_ALLOW_FILE_STORE" not in os.environ or os.environ["MLFLOW_ALLOW_FILE_STORE"] == "true"
    assert_compare_logged(client_for((root / "mlruns").as_uri()), root / "run")


def test_tensorboard_event_files_read_back_through_tensorboards_reader(logged_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    root, _ = logged_run
    metrics = read_metrics(root / "run")
    for name, result in metrics["models"].items():
        for record in result["seeds"]:
            events = EventAccumulator(str(root / "tb" / "run" / f"{name}-seed{record['seed']}")).Reload()
            scalars = events.Scalars("accuracy/validation")
            assert [event.step for event in scalars] == [epoch["epoch"] for epoch in record["history"]]
            assert [event.value for event in scalars] == pytest.approx(  # event files hold float32
                [epoch["val_accuracy"] for epoch in record["history"]], rel=1e-6)
            assert events.Scalars("test/accuracy")[0].value == pytest.approx(record["test_accuracy"])
            assert events.PluginTagToContent("hparams")  # the hparams plugin's table has this run
        events = EventAccumulator(str(root / "tb" / "run" / name)).Reload()
        [image] = events.Images("confusion_matrix")
        classes = len(result["confusion_matrix"])
        assert (image.height, image.width) == (16 * classes, 16 * classes)


def test_track_logs_a_finished_run_afterwards_and_an_unreachable_server_stops_before_training(logged_run, capsys):
    root, data_dir = logged_run
    store = (root / "later").as_uri()
    code, out, err = run_cli(capsys, "track", root / "run", "--mlflow", store, "--mlflow-experiment", "later")
    assert code == 0, err
    assert len(runs_by_name(client_for(store), "later")) == 5 and "4 (model, seed) run(s)" in out
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    code, _, err = run_cli(capsys, *TINY, "--data-dir", data_dir, "compare", "--dataset", "tiny", "--models", "ann",
                           "--out", root / "never", "--mlflow", f"http://127.0.0.1:{port}")
    assert_one_line_error(code, err, f"--mlflow http://127.0.0.1:{port}", "does not answer", "nothing was run")
    assert not (root / "never").exists()


def test_train_and_tune_log_their_runs(tiny_dataset, tmp_path, capsys):
    _, data_dir, _, _ = tiny_dataset
    store = (tmp_path / "mlruns").as_uri()
    code, _, err = run_cli(capsys, *TINY, "--data-dir", data_dir, "train", "ann", "--dataset", "tiny", "--epochs", "2",
                           "--out", tmp_path / "ann.pt", "--mlflow", store)
    assert code == 0, err
    [trained] = runs_by_name(client_for(store)).values()
    assert {item.path for item in client_for(store).list_artifacts(trained.info.run_id)} == {"ann.pt", "ann.pt.md"}
    assert [m.step for m in client_for(store).get_metric_history(trained.info.run_id, "val_accuracy")] == [1, 2]
    code, _, err = run_cli(capsys, *TINY, "--data-dir", data_dir, "tune", "ann", "--dataset", "tiny", "--trials", "2",
                           "--epochs", "1", "--out", tmp_path / "tune", "--mlflow", store, "--mlflow-experiment", "t",
                           "--tensorboard", tmp_path / "tb")
    assert code == 0, err
    runs = runs_by_name(client_for(store), "t")
    assert set(runs) == {"tune", "trial-0", "trial-1"}
    assert all(runs[f"trial-{n}"].data.tags["mlflow.parentRunId"] == runs["tune"].info.run_id for n in (0, 1))
    assert {"best.toml", "trials.csv", "tune.md"} <= {a.path for a in client_for(store).list_artifacts(
        runs["tune"].info.run_id)}
    assert (tmp_path / "tb" / "tune" / "trial-1").is_dir()


# -- a real tracking server ----------------------------------------------------------------------------------------

@pytest.fixture
def mlflow_server(tmp_path):
    """`mlflow server` on a free 127.0.0.1 port (SQLite store, artifacts proxied); stopped at the end of the test."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
               "--backend-store-uri", f"sqlite:///{tmp_path / 'server.db'}",
               "--artifacts-destination", str(tmp_path / "server-artifacts")]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:  # bounded: the server answers /health or the test fails
        assert process.poll() is None, "mlflow server exited"
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2):
                break
        except OSError:
            assert time.monotonic() < deadline, "mlflow server did not start"
            time.sleep(0.5)
    yield url, process
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest.mark.slow
def test_compare_logs_to_a_real_tracking_server_and_loses_nothing_when_it_dies_mid_run(mlflow_server, tiny_dataset, tmp_path, capsys):
    url, _ = mlflow_server
    _, data_dir, _, _ = tiny_dataset
    code, _, err = run_cli(capsys, *TINY, "--data-dir", data_dir, "compare", "--dataset", "tiny", "--epochs", "2",
                           "--models", "logreg,ann", "--seeds", "0,1", "--out", tmp_path / "run", "--mlflow", url)
    assert code == 0, err
    client = client_for(url)
    assert_compare_logged(client, tmp_path / "run")
    child = runs_by_name(client)["ann-seed1"]
    downloaded = client.download_artifacts(child.info.run_id, "ann-seed1.pt", str(tmp_path / "down"))
    assert Path(downloaded).read_bytes() == (tmp_path / "run" / "ann-seed1.pt").read_bytes()
    a_server_that_dies_mid_run_loses_nothing_in_the_run_folder(mlflow_server, data_dir, tmp_path / "dies")


def a_server_that_dies_mid_run_loses_nothing_in_the_run_folder(mlflow_server, data_dir, tmp_path):
    """(One server start serves both cases.)"""
    from mnistlab.study.compare import run_compare
    from mnistlab.tracking.hooks import Tracker, open_trackers

    url, process = mlflow_server

    class KillServer(Tracker):  # runs before the MLflow tracker: the server is gone when it logs the first job
        def job_finished(self, *args):
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    trackers = open_trackers(mlflow=url)
    trackers.trackers.insert(0, KillServer())
    with pytest.warns(UserWarning, match="MLflow logging stopped") as caught:
        metrics = run_compare(["logreg", "ann"], {"dataset": "tiny", "epochs": 2}, tmp_path / "run", seeds=[0, 1],
                              data_dir=data_dir, progress=False, trackers=trackers)
    assert len([w for w in caught if "MLflow" in str(w.message)]) == 1  # one warning, then no more attempts
    assert read_metrics(tmp_path / "run") == json.loads((tmp_path / "run" / "metrics.json").read_text()) == metrics
    for result in metrics["models"].values():
        for record in result["seeds"]:
            assert (tmp_path / "run" / record["checkpoint"]).is_file()
            assert (tmp_path / "run" / f"{record['checkpoint']}.md").is_file()
    assert {"report.md", "report.html", "predictions.npz"} <= {path.name for path in (tmp_path / "run").iterdir()}
    assert np.isfinite([result["test_accuracy"] for result in metrics["models"].values()]).all()


def test_the_python_api_logs_a_comparison_too(tiny_dataset, tmp_path):
    import mnistlab

    _, data_dir, _, _ = tiny_dataset
    run = mnistlab.compare(["logreg"], dataset="tiny", epochs=1, data_dir=data_dir, out=tmp_path / "run",
                           threads=1, tensorboard=tmp_path / "tb")
    assert list((tmp_path / "tb" / "run" / "logreg-seed0").glob("events.out.tfevents.*"))
    assert run.accuracy["logreg"] == read_metrics(tmp_path / "run")["models"]["logreg"]["test_accuracy"]
