"""Careless or hostile input to the CLI: one-line errors with exit 2, nothing lost, no traceback, ever."""

import json
import math
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import assert_one_line_error, run_cli
from mnistlab.training.checkpoint import load_checkpoint
from mnistlab.cli.main import main
from mnistlab.common.errors import CheckpointError
from mnistlab.models import build_model
from mnistlab.runs.folder import locked

TINY = ["--dataset", "tiny", "--epochs", "1", "--batch-size", "32"]



def test_global_flags_work_after_the_subcommand(tiny_dataset, tmp_path, capsys):
    _, data_dir, _, _ = tiny_dataset
    code, out, err = run_cli(capsys, "compare", "--models", "logreg", *TINY, "--out", tmp_path / "run",
                             "--data-dir", data_dir, "--quiet", "--threads", "1")
    assert code == 0, err
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["machine"]["threads"] == 1
    code, out, err = run_cli(capsys, "train", "logreg", *TINY, "--out", tmp_path / "m.pt", "--quiet",
                             "--data-dir", data_dir)
    assert code == 0 and (tmp_path / "m.pt").is_file(), err


@pytest.mark.parametrize(("argv", "fragments"), [
    (["compare", "--models", "ann,ann"], ["ann given more than once"]),
    (["compare", "--lr", "inf"], ["learning_rate = inf", "finite"]),
    (["compare", "--lr", "nan"], ["learning_rate = nan", "finite"]),
    (["compare", "--lr", "1e30"], ["learning_rate = 1e+30 is invalid"]),
    (["compare", "--epochs", "100000000"], ["epochs = 100000000 is invalid"]),
    (["compare", "--seed", "-1"], ["seed = -1 is invalid"]),
    (["compare", "--threads", "0"], ["--threads 0 is invalid"]),
])
def test_absurd_settings_are_refused_up_front(argv, fragments, capsys):
    assert_one_line_error(*run_cli(capsys, *argv)[::2], *fragments)


def test_a_config_file_with_a_bad_train_table_is_a_one_line_error(tmp_path, capsys):
    config = tmp_path / "bad.toml"
    config.write_text("train = 5\n")
    assert_one_line_error(*run_cli(capsys, "compare", "--config", config)[::2], str(config), "table")


def test_out_that_is_a_file_is_refused_before_training(tiny_dataset, tmp_path, capsys, monkeypatch):
    _, data_dir, _, _ = tiny_dataset
    for module in ("mnistlab.study.single", "mnistlab.study.jobs"):  # train and compare
        monkeypatch.setattr(f"{module}.train", lambda *args, **kwargs: pytest.fail("trained anyway"))
    a_file = tmp_path / "file.txt"
    a_file.write_text("keep me")
    for argv in (["compare", "--out", a_file], ["train", "logreg", "--out", a_file / "m.pt"]):
        code, _, err = run_cli(capsys, "--data-dir", data_dir, *argv, *TINY)
        assert_one_line_error(code, err, str(a_file), "not a folder")
    assert a_file.read_text() == "keep me"


def test_a_locked_run_folder_refuses_a_second_run(tiny_dataset, tmp_path, capsys):
    _, data_dir, _, _ = tiny_dataset
    out = tmp_path / "run"
    with locked(out):
        code, _, err = run_cli(capsys, "--quiet", "--data-dir", data_dir, "compare", "--models", "logreg", *TINY,
                               "--out", out)
        assert_one_line_error(code, err, str(out), "another mnistlab run", str(os.getpid()))
        assert not (out / "metrics.json").exists()
    assert run_cli(capsys, "--quiet", "--data-dir", data_dir, "compare", "--models", "logreg", *TINY, "--out", out)[0] == 0


def test_a_second_process_cannot_write_a_locked_folder(tiny_dataset, tmp_path):
    """The lock is an OS lock between processes, released when its holder dies."""
    out = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time\nfrom mnistlab.runs.folder import locked\n"
        f"with locked({str(out)!r}):\n    print('held', flush=True)\n    time.sleep(60)\n")],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(Exception, match="another mnistlab run"):
            with locked(out):
                pass
    finally:
        holder.kill()
        holder.wait()
    with locked(out):  # the kernel released the dead holder's lock
        pass


def test_a_corrupt_plan_cannot_be_resumed_and_says_so(tiny_dataset, tmp_path, capsys):
    _, data_dir, _, _ = tiny_dataset
    out = tmp_path / "run"
    argv = ["--quiet", "--data-dir", data_dir, "compare", "--models", "logreg", *TINY, "--out", out]
    assert run_cli(capsys, *argv)[0] == 0
    (out / "state" / "plan.json").write_text("{not json")
    assert_one_line_error(*run_cli(capsys, *argv, "--resume")[::2], "plan.json", "unreadable")


def test_divergence_stops_training_with_the_epoch_and_step(tiny_dataset, tmp_path, capsys, monkeypatch):
    """A loss that turns NaN stops the run at once; the jobs that finished before stay in the run folder."""
    import torch.nn.functional as F

    _, data_dir, _, _ = tiny_dataset
    calls, real = [], F.cross_entropy

    def cross_entropy(logits, *args, **kwargs):
        calls.append(1)
        loss = real(logits, *args, **kwargs)
        return loss * math.nan if len(calls) == 9 else loss  # logreg: 4 steps, validation, test; ann: step 3

    monkeypatch.setattr(F, "cross_entropy", cross_entropy)
    out = tmp_path / "run"
    code, _, err = run_cli(capsys, "--quiet", "--data-dir", data_dir, "compare", "--models", "logreg,ann", *TINY,
                           "--out", out)
    assert_one_line_error(code, err, "ann seed 0 epoch 1/1, step 3", "loss became nan", "lower the learning rate")
    assert (out / "state" / "logreg-seed0.json").is_file() and (out / "logreg.pt").is_file()
    assert not (out / "metrics.json").exists()


def test_a_full_disk_is_a_one_line_error_and_finished_jobs_stay(tiny_dataset, tmp_path, capsys, monkeypatch):
    """ENOSPC while writing the report: exit 2, one line, and --resume finishes the run from the finished jobs."""
    import errno

    _, data_dir, _, _ = tiny_dataset

    from mnistlab.study.compare import write_report
    failures = [OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(tmp_path / "run" / "report.md"))]

    def disk_full_once(*args, **kwargs):
        if failures:
            raise failures.pop()
        write_report(*args, **kwargs)

    monkeypatch.setattr("mnistlab.study.compare.write_report", disk_full_once)
    argv = ["--quiet", "--data-dir", data_dir, "compare", "--models", "logreg", *TINY, "--out", tmp_path / "run"]
    assert_one_line_error(*run_cli(capsys, *argv)[::2], "report.md", "No space left on device", "--resume")
    monkeypatch.setattr("mnistlab.study.jobs.train", lambda *args, **kwargs: pytest.fail("trained again"))
    assert run_cli(capsys, *argv, "--resume")[0] == 0 and (tmp_path / "run" / "report.md").is_file()


def test_evaluate_refuses_a_dataset_name_that_is_a_path(tmp_path, capsys):
    from mnistlab.training.checkpoint import save_checkpoint

    path = tmp_path / "m.pt"
    save_checkpoint(path, build_model("logreg"), "logreg", {}, {"name": "../../etc"}, {})
    code, _, err = run_cli(capsys, "evaluate", path)
    assert_one_line_error(code, err, "not a registered dataset", "--dataset")


def valid_state() -> dict:
    return {"format_version": 1, "model_name": "logreg", "model_arguments": {},
            "state_dict": build_model("logreg").state_dict(), "config": {}, "dataset": {"name": "mnist"},
            "metrics": {}, "versions": {}}


LEAVES = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(), st.text(max_size=8),
                   st.builds(torch.zeros, st.integers(0, 3)))
VALUES = st.recursive(LEAVES, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner,
                                                                                          max_size=3), max_leaves=8)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(field=st.sampled_from(sorted(valid_state())), value=VALUES)
def test_fuzzed_checkpoints_load_or_fail_with_a_checkpoint_error(tmp_path, field, value):
    """Any dict that passes weights_only: a model comes back, or a one-line CheckpointError; nothing else escapes."""
    state = valid_state()
    state[field] = value
    path = tmp_path / "fuzzed.pt"
    torch.save(state, path)
    try:
        model, _ = load_checkpoint(path)
    except CheckpointError as error:
        assert "\n" not in str(error) and str(path) in str(error)
    else:
        assert sum(parameter.numel() for parameter in model.parameters()) == 7_850


def test_a_checkpoint_cannot_ask_for_a_huge_model(tmp_path):
    state = valid_state()
    state["model_arguments"] = {"hidden": [2**20, 2**20]}
    state["model_name"] = "ann"
    torch.save(state, tmp_path / "huge.pt")
    with pytest.raises(CheckpointError, match="model_arguments may hold only num_classes"):
        load_checkpoint(tmp_path / "huge.pt")


FLAG_VALUES = st.one_of(st.sampled_from(["0", "-1", "1", "nan", "inf", "-inf", "1e308", "1e-320", "", " ", "a,b",
                                         "ann,ann", "0,0", "99999999999999999999", "../..", "/dev/null", "x" * 300]),
                        st.text(max_size=6))
COMPARE_FLAGS = ["--models", "--seeds", "--seed", "--epochs", "--batch-size", "--lr", "--validation-fraction",
                 "--limit-train", "--threads", "--dataset", "--config"]


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(flags=st.lists(st.tuples(st.sampled_from(COMPARE_FLAGS), FLAG_VALUES), max_size=4))
def test_fuzzed_settings_give_a_run_or_a_one_line_error(flags, tmp_path, capsys, monkeypatch):
    """Random values for the flags: either the run reaches training or a one-line error comes back; no traceback."""
    class ReachedTraining(Exception):
        pass

    def stop(*args, **kwargs):
        raise ReachedTraining

    monkeypatch.setattr("mnistlab.study.compare.open_dataset", stop)
    argv = ["--quiet", "compare", "--out", str(tmp_path / "run")]
    for flag, value in flags:
        argv += [flag, value] if not value.startswith("-") else [f"{flag}={value}"]
    try:
        code = main(argv)
    except ReachedTraining:
        return
    except SystemExit as exit:  # argparse's own usage error: two lines of usage, exit 2
        assert exit.code == 2
        capsys.readouterr()
        return
    _, err = capsys.readouterr()
    assert_one_line_error(code, err)


def start_compare(real_data_dir, out, *extra):
    command = [sys.executable, "-m", "mnistlab", "--quiet", "--data-dir", str(real_data_dir), "compare", "--models",
               "ann", "--epochs", "3", "--limit-train", "6000", "--threads", "1", "--out", str(out), *extra]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for(process, condition, what):
    deadline = time.monotonic() + 180
    while not condition():
        assert process.poll() is None, f"the run ended before {what}: {process.stderr.read()}"
        assert time.monotonic() < deadline, f"the run never reached {what}"
        time.sleep(0.002)


@pytest.mark.parametrize("moment", ["first epoch", "last epoch", "report"])
def test_ctrl_c_at_any_moment_is_exit_130_and_the_run_resumes(real_data_dir, tmp_path, moment):
    out = tmp_path / "run"
    process = start_compare(real_data_dir, out)
    epoch_state = out / "state" / "ann-seed0.epoch.pt"

    def epochs_done():
        try:
            return len(torch.load(epoch_state, weights_only=True)["history"])
        except Exception:  # not there yet, or being replaced
            return 0

    if moment == "first epoch":
        wait_for(process, lambda: (out / "state" / "plan.json").exists(), "training")
        time.sleep(0.3)
    elif moment == "last epoch":
        wait_for(process, lambda: epochs_done() == 2, "the last epoch")
    else:
        wait_for(process, lambda: (out / "predictions.npz").exists(), "the report")
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert err.strip().splitlines()[-1].startswith("mnistlab: interrupted") and "Traceback" not in err, err
    resumed = start_compare(real_data_dir, out, "--resume")
    _, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err
    metrics = json.loads((out / "metrics.json").read_text())
    assert len(metrics["models"]["ann"]["history"]) == 3 and (out / "report.html").is_file()
