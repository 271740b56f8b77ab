"""The command line: quick real runs, the run folder's contents, and one-line errors with exit code 2."""

import gzip
import json
import shutil
import subprocess
import sys

import pytest

from conftest import assert_one_line_error, run_cli, snapshot
from mnistlab.cli.main import main
from mnistlab.data.datasets import cache_dir

QUICK = ["--epochs", "1", "--limit-train", "1500", "--batch-size", "64"]



def test_compare_writes_the_run_folder(real_data_dir, tmp_path, capsys):
    out = tmp_path / "run"
    code, stdout, _ = run_cli(capsys, "--quiet", "--data-dir", real_data_dir, "compare", "--out", out, *QUICK)
    assert code == 0
    for name in ["accuracy_plot.png", "cm_ann.png", "cm_cnn.png", "metrics.json", "report.md", "ann.pt", "cnn.pt"]:
        assert (out / name).stat().st_size > 0, name
        if name.endswith(".png"):
            assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["models"]) == {"ann", "cnn"}
    for name, result in metrics["models"].items():
        assert 0.5 < result["test_accuracy"] <= 1  # 1 epoch on 1,350 images still learns digits
        assert result["params"] == {"ann": 109_386, "cnn": 121_930}[name]
        assert result["train_seconds"] > 0 and result["test_loss"] > 0
        assert [set(record) >= {"train_loss", "train_accuracy", "val_loss", "val_accuracy"} for record in result["history"]] == [True]
        assert sum(map(sum, result["confusion_matrix"])) == 10_000
        assert f"{100 * result['test_accuracy']:.2f}" in stdout
        row = f"| {name} | {result['params']:,} | {result['cost']['multiply_adds']:,} | {100 * result['test_accuracy']:.2f} |"
        assert row in (out / "report.md").read_text()
    for result in metrics["models"].values():
        assert result["config"]["limit_train"] == 1500 and result["config"]["seed"] == 0
    assert metrics["dataset"]["checksums"]["t10k-labels-idx1-ubyte"].startswith("ff7bcfd4")
    assert metrics["dataset"]["validation_size"] == 150


def test_same_seed_twice_gives_identical_numbers(real_data_dir, tmp_path, capsys):
    results = []
    for attempt in ("a", "b"):
        code, _, _ = run_cli(capsys, "--quiet", "--data-dir", real_data_dir, "compare", "--out", tmp_path / attempt,
                             "--seed", "5", *QUICK)
        assert code == 0
        metrics = json.loads((tmp_path / attempt / "metrics.json").read_text())
        for result in metrics["models"].values():
            result["cost"].pop("inference")  # measured speeds
            for record in [result, *result["seeds"]]:  # wall-clock fields, top level and per seed
                record.pop("train_seconds")
                record.pop("evaluate_seconds", None)  # per seed only
                for epoch in record["history"]:
                    epoch.pop("seconds")
        results.append(metrics["models"])
    assert results[0] == results[1]


def test_train_then_evaluate_a_checkpoint(real_data_dir, tmp_path, capsys):
    checkpoint = tmp_path / "ann.pt"
    code, stdout, _ = run_cli(capsys, "--quiet", "--data-dir", real_data_dir, "train", "ann", "--out", checkpoint, *QUICK)
    assert code == 0 and checkpoint.is_file() and "validation accuracy" in stdout
    code, stdout, _ = run_cli(capsys, "--quiet", "--data-dir", real_data_dir, "evaluate", checkpoint, "--json")
    assert code == 0
    metrics = json.loads(stdout)
    assert metrics["model"] == "ann" and metrics["dataset"] == "mnist" and 0.5 < metrics["test_accuracy"] <= 1
    assert [row["support"] for row in metrics["per_class"]] == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def test_report_rebuilds_from_metrics_json(real_data_dir, tmp_path, capsys):
    out = tmp_path / "run"
    assert run_cli(capsys, "--quiet", "--data-dir", real_data_dir, "compare", "--models", "ann", "--out", out, *QUICK)[0] == 0
    original = (out / "report.md").read_text()
    (out / "report.md").unlink()
    (out / "accuracy_plot.png").unlink()
    code, _, _ = run_cli(capsys, "report", out)
    assert code == 0 and (out / "report.md").read_text() == original and (out / "accuracy_plot.png").is_file()


CORRUPTIONS = {
    "truncated": lambda data: data[: len(data) // 2],
    "wrong-magic": lambda data: gzip.compress(b"\x08\x03" + gzip.decompress(data)[2:]),
    "checksum": lambda data: gzip.compress(gzip.decompress(data)[:-1] + b"\x07"),
    "zero-bytes": lambda data: b"",
}


@pytest.mark.parametrize("case", sorted(CORRUPTIONS))
def test_corrupted_cached_file_is_one_line_exit_2_and_cache_unchanged(real_data_dir, case, capsys):
    cached = cache_dir() / "mnist"
    shutil.copytree(real_data_dir / "mnist", cached)
    damaged = cached / "t10k-labels-idx1-ubyte.gz"
    damaged.write_bytes(CORRUPTIONS[case](damaged.read_bytes()))
    before = snapshot(cache_dir())
    code, _, err = run_cli(capsys, "--quiet", "data", "verify", "mnist")
    assert_one_line_error(code, err, str(damaged))
    assert snapshot(cache_dir()) == before


def test_corrupted_data_dir_file_stops_compare(tiny_dataset, tmp_path, capsys):
    _, data_dir, _, _ = tiny_dataset
    bad = data_dir / "tiny" / "train-images-idx3-ubyte.gz"
    bad.write_bytes(bad.read_bytes()[:-40])
    code, _, err = run_cli(capsys, "--quiet", "--data-dir", data_dir, "compare", "--dataset", "tiny", "--out", tmp_path / "run")
    assert_one_line_error(code, err, str(bad), "fetch it again")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    ("argv", "fragments"),
    [
        (["compare", "--models", "ann,resnet"], ["unknown model 'resnet'", "ann, cnn"]),
        (["train", "vgg"], ["unknown model 'vgg'"]),
        (["compare", "--epochs", "0"], ["epochs = 0 is invalid"]),
        (["compare", "--dataset", "cifar"], ["unknown dataset 'cifar'"]),
        (["compare", "--config", "/nonexistent.toml"], ["/nonexistent.toml", "cannot read config file"]),
        (["evaluate", "/nonexistent.pt"], ["/nonexistent.pt", "no such checkpoint"]),
        (["report", "/nonexistent-run"], ["/nonexistent-run/metrics.json", "cannot read"]),
        (["data", "verify", "kmnist"], ["kmnist", "not found", "MNISTLAB_DATA_DIR"]),
    ],
)
def test_bad_input_is_a_one_line_error(argv, fragments, capsys):
    code, _, err = run_cli(capsys, *argv)
    assert_one_line_error(code, err, *fragments)


def test_data_list_and_verify(real_data_dir, capsys):
    code, out, _ = run_cli(capsys, "--data-dir", real_data_dir, "data", "list")
    assert code == 0 and "kmnist" in out and str(real_data_dir / "mnist") in out
    code, out, _ = run_cli(capsys, "--quiet", "--data-dir", real_data_dir, "data", "verify", "fashion-mnist")
    assert code == 0 and out.count("ok  ") == 4


def test_data_fetch_from_a_mirror_flag(tiny_dataset, http_mirrors, capsys):
    _, data_dir, _, _ = tiny_dataset
    server, base = http_mirrors
    server.roots = {"good": data_dir / "tiny"}
    code, out, _ = run_cli(capsys, "--quiet", "data", "fetch", "tiny", "--mirror", base + "nope/", "--mirror", base + "good/")
    assert code == 0 and out.count("ok  ") == 4
    assert len(list((cache_dir() / "tiny").iterdir())) == 4


def test_module_entry_point_runs():
    result = subprocess.run([sys.executable, "-m", "mnistlab", "--version"], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.startswith("mnistlab ")


ARGUMENT_ERRORS = [  # flags argparse accepts but the command refuses: each must be refused before PyTorch loads
    ["compare", "--no-such-flag"],
    ["train", "no-such-model"],
    ["compare", "--models", "ann,nope"],
    ["compare", "--models", "./no-such-file.py:Net"],
    ["compare", "--seeds", "abc"],
    ["compare", "--resume"],
    ["train", "ann", "--epochs", "0"],
    ["compare", "--models", "cnn-fast", "--learning-rate", "-1"],
    ["train", "cnn", "--config", "no-such-config.toml"],
    ["train", "cnn", "--config", "ann=other.toml"],
    ["tune", "cnn", "--batch-size", "0"],
    ["track", "runs/somewhere"],
    ["track", "no-such-run", "--tensorboard", "tb"],
    ["report", "no-such-run"],
    ["predict", "no-such.pt", "digit.png"],
    ["predict", "--number", ".", "digit.png"],
    ["evaluate", "no-such.pt"],
    ["explain", "no-such.pt", "digit.png"],
    ["export", "no-such.pt", "--out", "digit.onnx"],
    ["card", "no-such.pt"],
    ["compare", "--threads=--"],  # argparse turns an explicit "--" into an empty list
    ["compare", "--threads", "two"],
    ["compare", "--threads", "auto", "--ray", "127.0.0.1:1"],
    ["compare", "--seeds=--"],
    ["train", "ann", "--out=--"],
    ["predict", "--number", "--top-k", "3", "cnn.pt", "digit.png"],
]


@pytest.mark.parametrize("argv", [["--help"], ["models"], ["data", "list"], *ARGUMENT_ERRORS])
def test_listing_help_and_argument_errors_start_without_pytorch(argv, tmp_path):
    """What only prints or refuses never imports PyTorch (nor scikit-learn or SciPy): it starts at once, and a
    refusal is exit 2 with one line."""
    code = ("import sys\nfrom mnistlab.cli.main import main\n"
            f"try:\n    code = main({argv!r})\nexcept SystemExit as exit:\n    code = exit.code\n"
            "print(code, sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'sklearn', 'scipy', 'matplotlib'}))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    expected = "2 []" if argv in ARGUMENT_ERRORS else "0 []"
    assert result.stdout.strip().splitlines()[-1] == expected, result.stderr[-2000:]
    if argv in ARGUMENT_ERRORS:
        assert len(result.stderr.strip().splitlines()) == 1 or result.stderr.startswith("usage:"), result.stderr


@pytest.mark.slow  # trains on real MNIST in a fresh process
@pytest.mark.parametrize("command, unused", [
    (["train", "ann", "--out", "ann.pt"], {"sklearn", "scipy", "skimage", "matplotlib", "torch._dynamo"}),
    (["compare", "--models", "ann", "--out", "run"], {"sklearn", "skimage", "torch._dynamo"}),
])
def test_commands_import_only_what_they_use(command, unused, real_data_dir, tmp_path):
    """`train` imports none of scikit-learn, SciPy, scikit-image or matplotlib, and `compare` (which needs SciPy's
    statistics and matplotlib's figures) neither scikit-learn nor scikit-image: each takes a good part of a
    second to import. Neither imports PyTorch's compiler (`torch._dynamo`, as long again as `import torch`)."""
    argv = ["--quiet", "--data-dir", str(real_data_dir), *command, *QUICK]
    code = ("import sys\nfrom mnistlab.cli.main import main\n"
            f"code = main({argv!r})\n"
            f"print(code, sorted(({{m.split('.')[0] for m in sys.modules}} | set(sys.modules)) & set({sorted(unused)!r})))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert result.stdout.strip().splitlines()[-1] == "0 []", result.stderr[-2000:]


def test_only_the_console_script_freezes_the_garbage_collector(real_data_dir, tmp_path):
    """The console script, whose process ends with its command, freezes the objects its imports made, so that full
    collections skip PyTorch's; a caller of `main` that goes on afterwards (a notebook, a test) keeps its collector."""
    argv = ["--quiet", "--data-dir", str(real_data_dir), "train", "ann", "--out", "m.pt", *QUICK]
    code = ("import gc\nfrom mnistlab.cli.main import main\n"
            f"print(main({argv!r}), gc.get_freeze_count(), gc.isenabled())\n"
            f"print(main({argv!r} + ['--force'], own_process=True), gc.get_freeze_count() > 100_000, gc.isenabled())")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    printed = [line for line in result.stdout.splitlines() if line.startswith("0 ")]  # not what train prints
    assert printed == ["0 0 True", "0 True True"], result.stdout + result.stderr[-2000:]


def test_deterministic_mode_is_set_without_the_compiler_stack():
    code = ("import sys, torch\nfrom mnistlab.training.runtime import configured_runtime\n"
            "with configured_runtime(1):\n    on = torch.are_deterministic_algorithms_enabled()\n"
            "print(on, torch.are_deterministic_algorithms_enabled(), 'torch._inductor.config' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.stdout.split() == ["True", "False", "False"], result.stderr[-2000:]
