"""ONNX export: ONNX Runtime gives PyTorch's logits to 1e-5, the opset is checked, errors are clear."""

import os

import numpy as np
import pytest
import torch
from conftest import assert_one_line_error, run_cli

from mnistlab.training.checkpoint import load_checkpoint, save_checkpoint
from mnistlab.cli.main import main
from mnistlab.common.errors import ConfigError
from mnistlab.vision.export import OnnxClassifier, export_onnx
from mnistlab.models import MODELS, build_model, images_to_tensor, infer


@pytest.fixture
def checkpoint_of(tmp_path):
    def make(name):
        torch.manual_seed(0)
        path = tmp_path / f"{name}.pt"
        save_checkpoint(path, build_model(name), name, {}, {"name": "mnist", "class_names": list("0123456789")},
                        {"test_accuracy": 0.9})
        return path

    return make


@pytest.mark.parametrize("name", sorted(MODELS))
def test_onnx_runtime_matches_pytorch(checkpoint_of, name):
    checkpoint = checkpoint_of(name)
    onnx_path = export_onnx(checkpoint)
    assert onnx_path == checkpoint.with_suffix(".onnx")
    model, _ = load_checkpoint(checkpoint)
    images = images_to_tensor(np.random.default_rng(0).integers(0, 256, (37, 28, 28), dtype=np.uint8))
    classifier = OnnxClassifier(onnx_path)
    np.testing.assert_allclose(classifier.logits(images), infer(model, images).numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(classifier.logits(images[:1]), infer(model, images[:1]).numpy(), rtol=1e-5, atol=1e-5)
    assert classifier.metadata["model_name"] == name
    import onnx

    # Plain operators only: a crop is a Slice (eager training crops by negative padding, which not every runtime
    # reads as a Pad)
    assert "Pad" not in {node.op_type for node in onnx.load(str(onnx_path)).graph.node}


def test_written_opset_is_the_requested_one(checkpoint_of, tmp_path):
    import onnx

    path = export_onnx(checkpoint_of("ann"), tmp_path / "ann20.onnx", opset=20)
    assert {entry.domain: entry.version for entry in onnx.load(str(path)).opset_import}[""] == 20


def test_unsupported_opset_is_refused(checkpoint_of):
    with pytest.raises(ConfigError, match="opset 9 is not supported; choose 18-21"):
        export_onnx(checkpoint_of("ann"), opset=9)


def test_cli_export(checkpoint_of, tmp_path, capsys):
    checkpoint = checkpoint_of("cnn")
    assert main(["export", str(checkpoint), "--format", "onnx", "--out", str(tmp_path / "m.onnx")]) == 0
    assert (tmp_path / "m.onnx").stat().st_size > 100_000
    assert main(["export", str(tmp_path / "missing.pt")]) == 2
    assert "no such checkpoint" in capsys.readouterr().err


def test_export_writes_one_file_and_never_replaces_an_input(checkpoint_of, tmp_path, capsys):
    """No hidden external-data file beside the .onnx; never the checkpoint, a folder or a device as --out."""
    checkpoint = checkpoint_of("ann")
    original = checkpoint.read_bytes()
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    (tmp_path / "folder").mkdir()
    for out, fragment in ((checkpoint, "is the input"), (fifo, "not a regular file"),
                          (tmp_path / "folder", f"is a folder; give the file to write, e.g. {tmp_path / 'folder'}")):
        code, _, err = run_cli(capsys, "export", checkpoint, "--out", out, "--force")
        assert_one_line_error(code, err, f"--out {out}", fragment)
        assert "free some space" not in err
    assert checkpoint.read_bytes() == original
    assert run_cli(capsys, "export", checkpoint)[0] == 0
    assert sorted(path.name for path in tmp_path.iterdir()) == ["ann.onnx", "ann.pt", "folder", "pipe"]
    exported = (tmp_path / "ann.onnx").read_bytes()
    code, _, err = run_cli(capsys, "export", checkpoint, "--opset", "20")
    assert_one_line_error(code, err, "ann.onnx", "exists already", "--force")
    assert (tmp_path / "ann.onnx").read_bytes() == exported
    assert run_cli(capsys, "export", checkpoint, "--opset", "20", "--force")[0] == 0
    assert (tmp_path / "ann.onnx").read_bytes() != exported
