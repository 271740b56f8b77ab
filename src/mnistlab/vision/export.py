"""Export a checkpoint to ONNX and run ONNX models, for serving without PyTorch's training stack.

    mnistlab export runs/x/cnn.pt --format onnx    # writes runs/x/cnn.onnx
Needs the `onnx` extra: `pip install mnistlab[onnx]`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import warnings
from pathlib import Path

import numpy as np
import torch

from mnistlab.common.atomic import atomic_path, check_output_file
from mnistlab.training.checkpoint import load_checkpoint
from mnistlab.common.errors import ConfigError, MnistlabError

SUPPORTED_OPSETS = range(18, 22)  # the opsets the exporter writes and ONNX Runtime 1.2x runs, checked after export
DEFAULT_OPSET = 18


def _require(module: str):
    try:
        return __import__(module)
    except ImportError:
        raise MnistlabError(f"ONNX support needs the {module!r} package; install it with: pip install 'mnistlab[onnx]'") from None


@contextlib.contextmanager
def quiet_logger(name: str):
    """Raise a logger's level to ERROR for the block, then put it back (the exporter logs a line per op it skips)."""
    logger = logging.getLogger(name)
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def export_onnx(checkpoint: str | os.PathLike, out_path: str | os.PathLike | None = None,
                opset: int = DEFAULT_OPSET, overwrite: bool = False, trust_code: bool = False) -> Path:
    """Write the checkpoint's model as ONNX (input "images" (N, 1, 28, 28) float32 in [0, 1], output "logits").

    `out_path` (default: the checkpoint's path with .onnx) is never the checkpoint itself, a folder or a
    device; an existing file there is replaced only with `overwrite`. The file is self-contained (the
    weights inside, no `.data` file beside it).
    """
    if opset not in SUPPORTED_OPSETS:
        raise ConfigError(f"opset {opset} is not supported; choose {SUPPORTED_OPSETS.start}-{SUPPORTED_OPSETS.stop - 1}")
    onnx = _require("onnx")
    _require("onnxscript")
    model, state = load_checkpoint(checkpoint, trust_code=trust_code)
    out_path = Path(out_path) if out_path else Path(checkpoint).with_suffix(".onnx")
    check_output_file(out_path, "--out", [checkpoint], overwrite, example=f"{Path(checkpoint).stem}.onnx")
    example = torch.zeros(2, 1, 28, 28)
    with atomic_path(out_path) as temporary, warnings.catch_warnings(), quiet_logger("torch.onnx"):
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model, (example,), str(temporary), input_names=["images"], output_names=["logits"],
            dynamic_shapes={"images": {0: torch.export.Dim("batch")}}, opset_version=opset, dynamo=True,
            verbose=False, external_data=False,  # external data would be a hidden file beside the temporary one
        )
        exported = onnx.load(str(temporary))
        onnx.checker.check_model(exported, full_check=True)
        written = {entry.domain: entry.version for entry in exported.opset_import}.get("", None)
        if written != opset:
            raise MnistlabError(f"{out_path}: exporter wrote opset {written}, not the requested {opset}")
        metadata = {"model_name": state["model_name"], "dataset": json.dumps(state["dataset"]),
                    "metrics": json.dumps({k: v for k, v in state["metrics"].items() if not isinstance(v, (list, dict))})}
        onnx.helper.set_model_props(exported, metadata)
        onnx.save(exported, str(temporary))
    return out_path


class OnnxClassifier:
    """An exported model in ONNX Runtime, with the same call contract as `models.infer`."""

    def __init__(self, path: str | os.PathLike, threads: int | None = None):
        runtime = _require("onnxruntime")
        options = runtime.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        try:
            self.session = runtime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as error:  # onnxruntime raises its own exception types for unreadable models
            raise MnistlabError(f"{path}: not a loadable ONNX model ({type(error).__name__}); export it again") from None
        self.metadata = dict(self.session.get_modelmeta().custom_metadata_map)

    def logits(self, images: np.ndarray | torch.Tensor) -> np.ndarray:
        """Logits (N, classes) for float32 images (N, 1, 28, 28) in [0, 1]."""
        array = images.numpy() if isinstance(images, torch.Tensor) else images
        return self.session.run(["logits"], {"images": np.ascontiguousarray(array, dtype=np.float32)})[0]
