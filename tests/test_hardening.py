"""Careless or hostile input to the CLI: one-line errors with exit 2, nothing lost, no traceback, ever."""

import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
import torch
from conftest import assert_one_line_error, run_cli, snapshot
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mnistlab.training.checkpoint import load_checkpoint
from mnistlab.cli.main import main
from mnistlab.common.errors import CheckpointError
from mnistlab.models import build_model
from mnistlab.runs.claim import locked

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
        "import sys, time\nfrom mnistlab.runs.claim import locked\n"
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


def test_ctrl_c_inside_code_run_from_a_string_is_still_exit_130(tmp_path):
    """A Ctrl-C that lands while a module builds a dataclass or namedtuple (`exec` of source text) is caught like
    any other, yet CPython remembers it as unhandled and, under `python -m`, would end the process by SIGINT (-2)."""
    (tmp_path / "interrupt_in_exec.py").write_text(
        "import mnistlab.cli.main as cli\n"
        "def command(own_process):\n"
        "    exec('import os, signal; os.kill(os.getpid(), signal.SIGINT)', {})\n"
        "cli.main = command\n"
        "cli.entry()\n")
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), *sys.path])}
    result = subprocess.run([sys.executable, "-m", "interrupt_in_exec"], capture_output=True, text=True,
                            env=environment, timeout=120, check=False)
    assert result.returncode == 130, result.stderr
    assert result.stderr.strip() == "" and "Traceback" not in result.stderr


@pytest.mark.parametrize(("mirror", "fragments"), [
    ("notaurl", ["--mirror notaurl", "not an http:// or https:// base URL"]),
    ("ftp://example.org/mnist/", ["--mirror ftp://example.org/mnist/", "http"]),
    ("http://127.0.0.1:99999/", ["--mirror http://127.0.0.1:99999/", "not a valid URL"]),
    ("http://127.0.0.1:1", ["could not download", "http://127.0.0.1:1/train-images-idx3-ubyte.gz"]),
])
def test_a_bad_or_unreachable_mirror_is_a_one_line_error(mirror, fragments, tiny_dataset, capsys):
    assert_one_line_error(*run_cli(capsys, "--quiet", "data", "fetch", "tiny", "--mirror", mirror)[::2], *fragments)


def test_a_mirror_without_a_trailing_slash_is_joined_with_one(tiny_dataset, http_mirrors, capsys):
    _, data_dir, _, _ = tiny_dataset
    server, base_url = http_mirrors
    server.roots = {"good": str(data_dir / "tiny")}
    code, out, err = run_cli(capsys, "--quiet", "data", "fetch", "tiny", "--mirror", base_url + "good")
    assert code == 0 and out.count("ok  ") == 4, err


def test_a_closed_pipe_ends_quietly(tmp_path):
    """`mnistlab models | head -1`: the reader goes away; no message, the shell's 141 (128 + SIGPIPE)."""
    read_end, write_end = os.pipe()
    os.close(read_end)  # gone before the first line is written
    try:
        result = subprocess.run([sys.executable, "-m", "mnistlab", "models"], stdout=write_end,
                                stderr=subprocess.PIPE, text=True, timeout=120, check=False)
    finally:
        os.close(write_end)
    assert result.returncode == 141 and result.stderr == ""


@pytest.mark.parametrize(("error_number", "advice", "not_advice"), [
    (28, "free some space", "check the path"),  # ENOSPC
    (13, "check the path and its permissions", "free some space"),  # EACCES
])
def test_os_errors_get_advice_that_fits_them(error_number, advice, not_advice, capsys, monkeypatch):
    def fail(*args):
        raise OSError(error_number, os.strerror(error_number), "/some/file")

    monkeypatch.setattr("mnistlab.training.config.describe_training", fail)  # what `models` calls for each model
    code, _, err = run_cli(capsys, "models")
    assert_one_line_error(code, err, "/some/file", advice)
    assert not_advice not in err


@pytest.mark.parametrize("argv", [
    ["--seeds", "4294967295,4294967296"],
    ["--seed", "4294967295", "--seeds", "2"],
])
def test_seeds_beyond_32_bits_are_refused_up_front(argv, capsys, monkeypatch):
    monkeypatch.setattr("mnistlab.study.compare.open_dataset", lambda *args, **kwargs: pytest.fail("went on"))
    code, _, err = run_cli(capsys, "compare", *argv)
    assert_one_line_error(code, err, "4294967296", "from 0 to 2**32 - 1")


@pytest.mark.parametrize(("fraction", "advice"), [("0.999", "use a smaller validation_fraction"),
                                                  ("0.01", "use a larger validation_fraction")])
def test_a_split_that_cannot_be_made_says_which_way_to_go(fraction, advice, tiny_dataset, tmp_path, capsys):
    _, data_dir, _, _ = tiny_dataset
    code, _, err = run_cli(capsys, "--quiet", "--data-dir", data_dir, "train", "logreg", *TINY,
                           "--validation-fraction", fraction, "--out", tmp_path / "m.pt")
    assert_one_line_error(code, err, "validation split", advice)


@pytest.mark.parametrize(("text", "fragments"), [
    ("epochs = 2\n[train]\nseed = 1\n", ["setting 'epochs' is outside the [train] table", "move it into [train]"]),
    ("[trian]\nepochs = 2\n", ["unknown table [trian]", "the accepted tables are [train]"]),
    ("[train]\nepochs = 2\n[trian]\nseed = 1\n", ["table 'trian' is outside the [train] table"]),
])
def test_a_setting_outside_train_or_a_misspelled_table_is_an_error(text, fragments, tmp_path, capsys):
    config = tmp_path / "config.toml"
    config.write_text(text)
    assert_one_line_error(*run_cli(capsys, "compare", "--config", config)[::2], str(config), *fragments)


@pytest.mark.parametrize("command", [["compare"], ["tune", "ann"]])
def test_workers_are_bounded_by_the_machine(command, capsys, monkeypatch):
    from mnistlab.training.runtime import max_local_workers

    monkeypatch.setattr("mnistlab.study.compare.open_dataset", lambda *args, **kwargs: pytest.fail("went on"))
    monkeypatch.setattr("mnistlab.tune.search.open_dataset", lambda *args, **kwargs: pytest.fail("went on"))
    most = max_local_workers()
    assert 1 <= most <= (os.cpu_count() or 1)
    code, _, err = run_cli(capsys, *command, "--workers", most + 1)
    assert_one_line_error(code, err, f"--workers {most + 1} is invalid", f"from 1 to {most}", "540 MB")


@pytest.mark.parametrize("action", ["verify", "fetch"])
def test_data_commands_do_not_offer_a_folder_they_refuse(action, tmp_path, capsys):
    code, _, err = run_cli(capsys, "data", action, str(tmp_path))
    assert_one_line_error(code, err, "unknown dataset", "registered names only", "--dataset FOLDER")
    assert "or give a folder path" not in err


def test_verify_blames_offline_mode_only_when_it_is_on(capsys, monkeypatch):
    monkeypatch.delenv("MNISTLAB_OFFLINE")
    code, _, err = run_cli(capsys, "data", "verify", "kmnist")
    assert_one_line_error(code, err, "not found", "mnistlab data fetch kmnist")
    assert "MNISTLAB_OFFLINE" not in err
    monkeypatch.setenv("MNISTLAB_OFFLINE", "1")
    code, _, err = run_cli(capsys, "--quiet", "train", "logreg", "--dataset", "kmnist")
    assert_one_line_error(code, err, "downloads are off (MNISTLAB_OFFLINE)")


def test_a_failed_download_suggests_a_command_that_has_mirror(tiny_dataset, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("MNISTLAB_OFFLINE")  # the tiny dataset's mirror, 127.0.0.1:9, refuses connections
    code, _, err = run_cli(capsys, "--quiet", "train", "logreg", *TINY, "--out", tmp_path / "m.pt")
    assert_one_line_error(code, err, "could not download", "run 'mnistlab data fetch tiny --mirror URL'")
    assert "pass --mirror" not in err


def test_predict_with_a_run_folder_names_its_checkpoints(tmp_path, capsys):
    from serve_support import save_untrained_checkpoints

    save_untrained_checkpoints(tmp_path)
    code, _, err = run_cli(capsys, "predict", tmp_path, tmp_path / "x.png")
    assert_one_line_error(code, err, f"{tmp_path}: is a folder, not a checkpoint file", str(tmp_path / "ann.pt"))


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """A tiny run of two models and two seeds, with robustness: every part of metrics.json that report reads."""
    from conftest import register_tiny_dataset

    folder = tmp_path_factory.mktemp("finished")
    with pytest.MonkeyPatch.context() as monkeypatch:
        _, data_dir, _, _ = register_tiny_dataset(folder / "data", monkeypatch)
        assert main(["--quiet", "--threads", "1", "--data-dir", str(data_dir), "compare", "--models", "logreg,ann",
                     *TINY, "--seeds", "2", "--robustness", "--out", str(folder / "run")]) == 0
    return folder / "run"


@pytest.mark.parametrize(("change", "fragment"), [
    (lambda metrics: {"models": 5}, "has no 'created'"),
    (lambda metrics: {**metrics, "models": 5}, "models must be a non-empty object, not int 5"),
    (lambda metrics: [], "the file must be an object"),
    (lambda metrics: {**metrics, "models": {**metrics["models"], "ann": {**metrics["models"]["ann"],
                                                                          "test_accuracy": "high"}}},
     "models.ann.test_accuracy must be a number, not str 'high'"),
])
def test_report_on_a_malformed_metrics_file_is_a_one_line_error(change, fragment, finished_run, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    metrics = json.loads((run / "metrics.json").read_text())
    (run / "metrics.json").write_text(json.dumps(change(metrics)))
    before = snapshot(run)
    assert_one_line_error(*run_cli(capsys, "report", run)[::2], f"{run / 'metrics.json'}: not a run's metrics",
                          fragment, "rerun mnistlab compare")
    assert snapshot(run) == before


def test_report_on_metrics_of_another_run_names_the_predictions_file(finished_run, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    metrics = json.loads((run / "metrics.json").read_text())
    metrics["models"]["cnn"] = metrics["models"].pop("ann")
    (run / "metrics.json").write_text(json.dumps(metrics))
    assert_one_line_error(*run_cli(capsys, "report", run)[::2], str(run / "predictions.npz"),
                          "no predictions of cnn", "different runs")


def json_paths(value, path=()):
    """Every path into a JSON document (lists: their first two items), the root included."""
    yield path
    items = value.items() if isinstance(value, dict) else enumerate(value[:2]) if isinstance(value, list) else ()
    for key, item in items:
        yield from json_paths(item, (*path, key))


JSON_VALUES = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=4),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner,
                                                                                         max_size=3), max_leaves=6)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
@pytest.mark.slow  # seconds of work: make test runs it, the fast suite leaves it out
def test_any_damage_to_metrics_json_gives_a_report_or_a_one_line_error(data, finished_run, tmp_path_factory,
                                                                      monkeypatch):
    """One field replaced by any JSON value, or removed: the report is written or the error names the file.

    The figures are not drawn (a second each): their inputs are computed and checked all the same.
    """
    from mnistlab.reporting import assessment as report_assessment, cost, explain_report, report
    from mnistlab.common.errors import MnistlabError

    for module in (report, report_assessment, cost, explain_report):  # every module whose figures a report draws
        for name in dir(module):
            if name.startswith("plot_"):
                monkeypatch.setattr(module, name, lambda *args, **kwargs: None)
    run = tmp_path_factory.mktemp("damaged") / "run"
    shutil.copytree(finished_run, run)
    metrics = json.loads((run / "metrics.json").read_text())
    path = data.draw(st.sampled_from(list(json_paths(metrics))[1:]))
    parent = metrics
    for key in path[:-1]:
        parent = parent[key]
    if data.draw(st.booleans()) and isinstance(parent, dict):
        del parent[path[-1]]
    else:
        parent[path[-1]] = data.draw(JSON_VALUES)
    (run / "metrics.json").write_text(json.dumps(metrics))
    figures = {figure: figure.stat().st_mtime_ns for figure in run.glob("*.png")}
    try:
        report.rebuild_report(run)
    except MnistlabError as error:
        assert str(error).startswith((str(run / "metrics.json"), str(run / "predictions.npz"))), error
        assert "\n" not in str(error)
    assert {figure: figure.stat().st_mtime_ns for figure in run.glob("*.png")} == figures  # none drawn
