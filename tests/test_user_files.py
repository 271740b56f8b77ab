"""Nothing the user owns is replaced or deleted unless they ask: every command's output path, one by one.

Outputs never replace a command's inputs, folders or devices; an existing file is
replaced only with --force; compare and tune write only a new or empty folder or
their own earlier run (--resume continues it, --force deletes that run's own files
first); commands that only read leave no file behind.
"""

import datetime
import os
import shutil

import pytest
from conftest import assert_one_line_error, register_tiny_dataset, run_cli, snapshot
from serve_support import draw_seven, encode, save_untrained_checkpoints

from mnistlab.vision.loading import find_checkpoints
from mnistlab.runs.folder import LOCK_FILE
from mnistlab.runs.claim import claimed, locked, run_files
from mnistlab.study.plan import default_run_dir

QUICK = ["--quiet", "--threads", "1"]
TINY = ["--dataset", "tiny", "--epochs", "1", "--batch-size", "32"]


@pytest.fixture(scope="module")
def earlier_run(tmp_path_factory):
    """A finished compare run of logreg and ann on the tiny dataset (registered while the module runs)."""
    from mnistlab.cli.main import main

    folder = tmp_path_factory.mktemp("earlier")
    with pytest.MonkeyPatch.context() as monkeypatch:
        _, data_dir, _, _ = register_tiny_dataset(folder / "data", monkeypatch)
        out = folder / "run"
        assert main([*QUICK, "--data-dir", str(data_dir), "compare", "--models", "logreg,ann", *TINY,
                     "--out", str(out)]) == 0
        yield out, data_dir


@pytest.fixture
def run_copy(earlier_run, tmp_path):
    """A copy of the earlier run with a file of the user's beside its own, and the tiny dataset's folder."""
    out = tmp_path / "run"
    shutil.copytree(earlier_run[0], out)
    (out / "notes.txt").write_text("the user's own notes")
    return out, earlier_run[1]


@pytest.fixture
def no_training(monkeypatch):
    """Fail the test if any model starts training."""
    monkeypatch.setattr("mnistlab.data.splits.stratified_split", lambda *args, **kwargs: pytest.fail("training started"))


def users_folder(tmp_path):
    """A folder of the user's, with files named as a run's would be."""
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "report.md").write_text("my report")
    (folder / "logreg.pt").write_bytes(b"my checkpoint")
    return folder


def test_a_finished_run_leaves_no_lock_file(earlier_run):
    out, _ = earlier_run
    assert not (out / LOCK_FILE).exists() and (out / "logreg.pt").is_file()


@pytest.mark.parametrize("flags", [[], ["--force"], ["--resume"]])
def test_compare_refuses_a_folder_that_holds_other_files(tiny_dataset, tmp_path, capsys, no_training, flags):
    _, data_dir, _, _ = tiny_dataset
    folder = users_folder(tmp_path)
    before = snapshot(folder)
    code, _, err = run_cli(capsys, *QUICK, "--data-dir", data_dir, "compare", "--models", "logreg", *TINY,
                           "--out", folder, *flags)
    assert_one_line_error(code, err, str(folder), "holds no mnistlab compare run", "new or empty folder")
    assert snapshot(folder) == before and not (folder / LOCK_FILE).exists()


def test_tune_refuses_a_folder_that_holds_other_files(tiny_dataset, tmp_path, capsys, no_training):
    _, data_dir, _, _ = tiny_dataset
    folder = users_folder(tmp_path)
    (folder / "best.toml").write_text("[train]\nepochs = 3\n")
    before = snapshot(folder)
    for flags in ([], ["--force"]):
        code, _, err = run_cli(capsys, *QUICK, "--data-dir", data_dir, "tune", "logreg", *TINY, "--trials", "1",
                               "--out", folder, *flags)
        assert_one_line_error(code, err, str(folder), "holds no mnistlab tune run")
    assert snapshot(folder) == before


def test_rerunning_into_a_run_asks_for_resume_or_force(run_copy, capsys, no_training):
    out, data_dir = run_copy
    before = snapshot(out)
    code, _, err = run_cli(capsys, *QUICK, "--data-dir", data_dir, "compare", "--models", "logreg", *TINY,
                           "--out", out)
    assert_one_line_error(code, err, str(out), "holds an earlier compare run", "--resume", "--force")
    code, _, err = run_cli(capsys, *QUICK, "--data-dir", data_dir, "compare", "--models", "logreg", *TINY,
                           "--out", out, "--resume", "--force")
    assert_one_line_error(code, err, "--resume", "--force", "give one of them")
    assert snapshot(out) == before


def test_force_deletes_the_earlier_runs_own_files_and_nothing_else(run_copy, capsys):
    """The earlier run trained logreg and ann; a forced run of logreg alone leaves no stale ann.pt for serve to load."""
    out, data_dir = run_copy
    (out / "state" / "my-notes.txt").write_text("mine too")
    code, _, err = run_cli(capsys, *QUICK, "--data-dir", data_dir, "compare", "--models", "logreg", *TINY,
                           "--out", out, "--force")
    assert code == 0, err
    assert find_checkpoints([out]) == [out / "logreg.pt"]
    assert not any(path.name.endswith("_ann.png") or path.name.startswith("ann-seed") for path in out.rglob("*"))
    assert (out / "notes.txt").read_text() == "the user's own notes"
    assert (out / "state" / "my-notes.txt").read_text() == "mine too"
    assert not (out / LOCK_FILE).exists()


def test_force_with_an_unreadable_plan_deletes_nothing(run_copy, capsys):
    out, data_dir = run_copy
    (out / "state" / "plan.json").write_text('{"models": ["../../notes"], "seeds": [0]}')
    before = snapshot(out)
    code, _, err = run_cli(capsys, *QUICK, "--data-dir", data_dir, "compare", "--models", "logreg", *TINY,
                           "--out", out, "--force")
    assert_one_line_error(code, err, "plan.json", "delete them yourself or choose another --out")
    assert snapshot(out) == before


def test_run_files_are_only_files_a_run_writes(run_copy):
    out, _ = run_copy
    (out / "tune.db").write_text("not this run's")
    names = {str(path.relative_to(out)) for path in run_files(out, "compare")}
    assert {"logreg.pt", "ann.pt", "metrics.json", "report.md", "cm_ann.png", "state/plan.json"} <= names
    assert not names & {"notes.txt", "tune.db"}
    assert set(names) <= set(snapshot(out))


def test_resume_of_a_missing_folder_creates_nothing(tiny_dataset, tmp_path, capsys, no_training):
    _, data_dir, _, _ = tiny_dataset
    for command in (["compare", "--models", "logreg"], ["tune", "logreg", "--trials", "1"]):
        code, _, err = run_cli(capsys, *QUICK, "--data-dir", data_dir, *command, *TINY,
                               "--out", tmp_path / "missing", "--resume")
        assert_one_line_error(code, err, "nothing to resume")
        assert not (tmp_path / "missing").exists()


def test_tune_force_starts_afresh_and_keeps_the_users_files(tiny_dataset, tmp_path, capsys):
    _, data_dir, _, _ = tiny_dataset
    out = tmp_path / "tune"
    argv = [*QUICK, "--data-dir", data_dir, "tune", "logreg", *TINY, "--limit-train", "100", "--trials", "1",
            "--out", out]
    assert run_cli(capsys, *argv)[0] == 0
    (out / "notes.txt").write_text("mine")
    assert_one_line_error(*run_cli(capsys, *argv)[::2], "holds an earlier tune run", "--force")
    code, _, err = run_cli(capsys, *argv[:-4], "--trials", "2", "--out", out, "--force")
    assert code == 0, err
    assert (out / "trials.csv").read_text().count("\n") == 3  # a header and the new study's 2 trials
    assert (out / "notes.txt").read_text() == "mine" and not (out / LOCK_FILE).exists()


def test_the_lock_is_exclusive_and_leaves_no_file(tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / LOCK_FILE).write_text("12345\n")  # left by a process that was killed: the kernel released its lock
    with locked(folder), pytest.raises(Exception, match=f"another mnistlab run \\(pid {os.getpid()}\\)"), \
            locked(folder):
        pass
    assert not (folder / LOCK_FILE).exists()
    with claimed(folder, "compare"):  # empty again, so a new run may take it
        pass
    assert list(folder.iterdir()) == []


def test_a_lock_taken_on_a_deleted_lock_file_is_taken_again(tmp_path, monkeypatch):
    """Its holder deletes .lock before releasing it; whoever opened the old file meanwhile must lock the new one."""
    from mnistlab.runs import claim

    opened = []

    def deleted_first(run_dir):
        handle = real(run_dir)
        if not opened:
            (run_dir / LOCK_FILE).unlink()  # the previous holder finished between our open and our flock
        opened.append(handle)
        return handle

    real = claim._open_lock_file
    monkeypatch.setattr(claim, "_open_lock_file", deleted_first)
    with locked(tmp_path):
        assert (tmp_path / LOCK_FILE).read_text() == f"{os.getpid()}\n"
    assert len(opened) == 2


def test_report_creates_nothing_and_leaves_no_lock(earlier_run, tmp_path, capsys):
    missing = tmp_path / "nonexistent"
    assert_one_line_error(*run_cli(capsys, "report", missing)[::2], str(missing / "metrics.json"), "cannot read")
    assert not missing.exists()
    folder = users_folder(tmp_path)
    before = snapshot(folder)
    assert_one_line_error(*run_cli(capsys, "report", folder)[::2], "metrics.json")
    assert snapshot(folder) == before and not (folder / LOCK_FILE).exists()


def test_train_replaces_a_file_only_with_force_and_never_an_input(tiny_dataset, tmp_path, capsys, monkeypatch):
    _, data_dir, _, _ = tiny_dataset
    config = tmp_path / "cnn.toml"
    config.write_text("[train]\nepochs = 1\n")
    existing = tmp_path / "logreg.pt"
    existing.write_bytes(b"an earlier checkpoint")
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    argv = [*QUICK, "--data-dir", data_dir, "train", "logreg", *TINY]
    with monkeypatch.context() as patch:
        patch.setattr("mnistlab.data.splits.stratified_split", lambda *args, **kwargs: pytest.fail("training started"))
        assert_one_line_error(*run_cli(capsys, *argv, "--out", existing)[::2], str(existing), "exists", "--force")
        assert_one_line_error(*run_cli(capsys, *argv, "--config", config, "--out", config, "--force")[::2],
                              "is the input")
        assert_one_line_error(*run_cli(capsys, *argv, "--out", fifo, "--force")[::2], "not a regular file")
        assert_one_line_error(*run_cli(capsys, *argv, "--out", tmp_path)[::2], "is a folder",
                              str(tmp_path / "logreg.pt"))
    assert existing.read_bytes() == b"an earlier checkpoint" and config.read_text() == "[train]\nepochs = 1\n"
    code, _, err = run_cli(capsys, *argv, "--out", existing, "--force")
    assert code == 0 and existing.read_bytes() != b"an earlier checkpoint", err


def test_predict_never_saves_over_the_images_it_reads(tmp_path, capsys, monkeypatch):
    [checkpoint] = save_untrained_checkpoints(tmp_path, names=("ann",))
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "seven.png").write_bytes(encode(draw_seven()))
    before = snapshot(photos)
    for argv in (["--show-input", photos], ["--show-input", photos, "--force"]):
        code, out, err = run_cli(capsys, "predict", checkpoint, photos, *argv)
        assert_one_line_error(code, err, f"--show-input {photos}", "holds the images being predicted")
        assert out == ""
    linked = tmp_path / "linked"  # a folder of links to the photos is the photos too
    linked.mkdir()
    (linked / "seven.png").symlink_to(photos / "seven.png")
    code, _, err = run_cli(capsys, "predict", checkpoint, photos / "seven.png", "--show-input", linked, "--force")
    assert_one_line_error(code, err, "is the input")
    assert snapshot(photos) == before


def test_predict_replaces_a_saved_input_only_with_force(tmp_path, capsys):
    [checkpoint] = save_untrained_checkpoints(tmp_path, names=("ann",))
    image = tmp_path / "seven.jpg"
    image.write_bytes(encode(draw_seven(), "JPEG"))
    seen = tmp_path / "seen"
    seen.mkdir()
    (seen / "seven.png").write_bytes(b"the user's own seven.png")
    code, out, err = run_cli(capsys, "predict", checkpoint, image, "--show-input", seen)
    assert_one_line_error(code, err, "seven.png", "exist already", "--force")
    assert out == "" and (seen / "seven.png").read_bytes() == b"the user's own seven.png"
    assert run_cli(capsys, "predict", checkpoint, image, "--show-input", seen, "--force")[0] == 0
    assert (seen / "seven.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_read_only_commands_leave_no_file(earlier_run, tmp_path, capsys, monkeypatch):
    """evaluate, predict, data list and verify, and models write nothing where they run or read."""
    out, data_dir = earlier_run
    before = snapshot(out)
    monkeypatch.chdir(tmp_path)
    image = tmp_path / "seven.png"
    image.write_bytes(encode(draw_seven()))
    for argv in (["evaluate", out / "logreg.pt"], ["predict", out / "logreg.pt", image], ["data", "list"],
                 ["data", "verify", "tiny"], ["models"]):
        assert run_cli(capsys, "--quiet", "--data-dir", data_dir, *argv)[0] == 0, argv
    assert snapshot(out) == before and sorted(path.name for path in tmp_path.iterdir()) == ["seven.png"]


def test_serve_writes_nothing_where_it_reads_or_runs(earlier_run, tmp_path, monkeypatch):
    from fastapi.testclient import TestClient

    from mnistlab.serve.app import create_app

    out, _ = earlier_run
    before = snapshot(out)
    monkeypatch.chdir(tmp_path)
    with TestClient(create_app([out], allowed_hosts=["testserver"])) as client:
        assert client.get("/").status_code == 200
        answer = client.post("/api/predict", content=encode(draw_seven()), headers={"Content-Type": "image/png"})
        assert answer.status_code == 200, answer.text
    assert snapshot(out) == before and list(tmp_path.iterdir()) == []


def test_default_run_folders_never_reuse_a_taken_name(tmp_path, monkeypatch):
    class Frozen(datetime.datetime):
        @classmethod
        def now(cls, tz=None):
            return datetime.datetime(2026, 1, 2, 3, 4, 5)

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(datetime, "datetime", Frozen)
    first = default_run_dir("compare")
    first.mkdir(parents=True)
    second = default_run_dir("compare")
    assert first.name == "20260102-030405-compare" and second.name == "20260102-030405-compare-2"


def test_where_the_os_deletes_no_open_file_the_lock_file_goes_after_release(tmp_path, monkeypatch):
    """Windows refuses to delete an open file: `.lock` is then deleted once closed, and the lock still works."""
    from pathlib import Path

    real_unlink, refused = Path.unlink, []

    def refuse_while_open(path, missing_ok=False):
        if path.name == LOCK_FILE and not refused:
            refused.append(path)
            raise PermissionError(13, "The process cannot access the file because it is being used")
        return real_unlink(path, missing_ok=missing_ok)

    monkeypatch.setattr(Path, "unlink", refuse_while_open)
    with locked(tmp_path):
        assert (tmp_path / LOCK_FILE).read_text() == f"{os.getpid()}\n"
    assert refused and not (tmp_path / LOCK_FILE).exists()
    with locked(tmp_path):  # released: taken again at once
        pass
