"""Inference speed of trained checkpoints: batched throughput over the test set and single-image latency.

PyTorch in process and ONNX Runtime (after `mnistlab export`); the Keras
numbers come from `keras_reference.py`, measured in its own process.

    python -m benchmarks.inference runs/x/ann.pt runs/x/cnn.pt
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from mnistlab.training.checkpoint import load_checkpoint
from mnistlab.data.datasets import load_dataset
from mnistlab.vision.export import OnnxClassifier, export_onnx
from mnistlab.models import images_to_tensor, infer


def throughput(call, images, repeats: int = 5) -> float:
    """Best-of-`repeats` images per second for one call over all `images`."""
    call(images)
    best = min(_timed(call, images) for _ in range(repeats))
    return len(images) / best


def _timed(call, argument) -> float:
    start = time.perf_counter()
    call(argument)
    return time.perf_counter() - start


def latency(call, images, repeats: int = 2000) -> dict:
    """p50 / p99 milliseconds of one call on a single image, cycling through `images`."""
    samples = [images[index:index + 1] for index in range(min(repeats, len(images)))]
    for sample in samples[:50]:
        call(sample)
    times = [_timed(call, samples[index % len(samples)]) * 1000 for index in range(repeats)]
    return {"p50_ms": float(np.percentile(times, 50)), "p99_ms": float(np.percentile(times, 99))}


def measure_checkpoint(path: Path, images: torch.Tensor, onnx_dir: Path) -> dict:
    """Throughput and latency for one checkpoint in PyTorch and ONNX Runtime."""
    model, state = load_checkpoint(path)
    classifier = OnnxClassifier(export_onnx(path, onnx_dir / f"{path.stem}.onnx"))
    array = images.contiguous().numpy()

    @torch.inference_mode()
    def single(sample):
        return model(sample)

    return {
        "model": state["model_name"],
        "torch_images_per_second": throughput(lambda batch: infer(model, batch), images),
        "torch_latency": latency(single, images),
        "onnx_images_per_second": throughput(classifier.logits, array),
        "onnx_latency": latency(classifier.logits, array),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoints", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, help="write the JSON result here too")
    args = parser.parse_args(argv)
    images = images_to_tensor(load_dataset("mnist", progress=False).test_images)
    with tempfile.TemporaryDirectory() as onnx_dir:
        results = [measure_checkpoint(path, images, Path(onnx_dir)) for path in args.checkpoints]
    text = json.dumps(results)
    if args.out:
        args.out.write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
