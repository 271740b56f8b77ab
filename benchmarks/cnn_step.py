"""Where a CNN training step's time goes: each operation of one step timed alone, and the whole step.

The operations are those autograd runs for the study's CNN at batch 128, called
directly on fixed tensors of the step's shapes. Each is timed as the best (and
the median) of several rounds of 20 calls, so their sum is a floor for a step:
it leaves out autograd's bookkeeping and the cache misses of a real step.
PyTorch's profiler is not used because it slows the large zero fills it records
(the first max-pool's gradient) about threefold.

    python -m benchmarks.cnn_step [--rounds 7]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from mnistlab.models import build_model
from mnistlab.training.runtime import apply_runtime

BATCH = 128
STEPS_PER_RUN = 5 * 422  # the seed protocol: 5 epochs of 54,000 images in batches of 128


def step_operations(model: torch.nn.Module) -> dict:
    """Name -> zero-argument call, for every operation of one training step of the CNN."""
    aten = torch.ops.aten
    conv1, conv2, fc, out = model.conv1, model.conv2, model.fc, model.out
    images = torch.rand(BATCH, 1, 26, 26).contiguous(memory_format=torch.channels_last)  # already cropped
    labels = torch.randint(0, 10, (BATCH,))
    with torch.no_grad():
        conv1_out = conv1(images)
        pool1_out, pool1_indices = F.max_pool2d_with_indices(conv1_out, 2)
        relu1_out = F.relu(pool1_out)
        conv2_out = conv2(relu1_out)
        pool2_out, pool2_indices = F.max_pool2d_with_indices(conv2_out, 2)
        flat = F.relu(pool2_out).permute(0, 2, 3, 1).flatten(1)
        hidden = F.relu(fc(flat))
    logits = out(hidden).detach().requires_grad_()
    gradient = {name: torch.randn_like(t) for name, t in
                [("conv1", conv1_out), ("pool1", pool1_out), ("conv2", conv2_out), ("pool2", pool2_out),
                 ("hidden", hidden), ("logits", logits)]}
    optimiser = torch.optim.Adam(model.parameters(), fused=True)
    for parameter in model.parameters():
        parameter.grad = torch.randn_like(parameter)

    def conv_backward(grad, inputs, conv, need_input):
        return aten.convolution_backward(grad, inputs, conv.weight.detach(), [conv.out_channels], [1, 1], [0, 0],
                                         [1, 1], False, [0, 0], 1, [need_input, True, True])

    def pool_backward(grad, inputs, indices):
        return aten.max_pool2d_with_indices_backward(grad, inputs, [2, 2], [2, 2], [0, 0], [1, 1], False, indices)

    # Forward calls record autograd's graph, as in training; backward calls use detached weights.
    return {
        "conv1 forward": lambda: conv1(images),
        "pool1 forward": lambda: F.max_pool2d_with_indices(conv1_out, 2),
        "relu1 forward": lambda: F.relu(pool1_out),
        "conv2 forward": lambda: conv2(relu1_out),
        "pool2 forward + relu2": lambda: F.relu(F.max_pool2d_with_indices(conv2_out, 2)[0]),
        "dense forward": lambda: out(F.relu(fc(flat))),
        "loss forward + backward": lambda: F.cross_entropy(logits, labels).backward(),
        "dense backward": lambda: (gradient["logits"].t() @ hidden, gradient["logits"] @ out.weight.detach(),
                                   gradient["hidden"].t() @ flat, gradient["hidden"] @ fc.weight.detach()),
        "pool2 backward": lambda: pool_backward(gradient["pool2"], conv2_out, pool2_indices),
        "conv2 backward": lambda: conv_backward(gradient["conv2"], relu1_out, conv2, True),
        "relu1 backward": lambda: aten.threshold_backward(gradient["pool1"], relu1_out, 0),
        "pool1 backward": lambda: pool_backward(gradient["pool1"], conv1_out, pool1_indices),
        "conv1 backward": lambda: conv_backward(gradient["conv1"], images, conv1, False),
        "Adam step": optimiser.step,
    }


def whole_step(model: torch.nn.Module):
    """One real training step of `model` on a fixed random batch."""
    images = torch.rand(BATCH, 1, 28, 28).contiguous(memory_format=torch.channels_last)
    labels = torch.randint(0, 10, (BATCH,))
    optimiser = torch.optim.Adam(model.parameters(), fused=True)

    def step():
        loss = F.cross_entropy(model(images), labels)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
    return step


def time_calls(calls: dict, rounds: int, per_round: int = 20) -> dict:
    """Name -> list of milliseconds per call, one entry per round; rounds interleave the calls."""
    times = {name: [] for name in calls}
    for _ in range(rounds):
        for name, call in calls.items():
            for _ in range(3):
                call()
            start = time.perf_counter()
            for _ in range(per_round):
                call()
            times[name].append((time.perf_counter() - start) / per_round * 1e3)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7, help="rounds of 20 calls per operation (default: 7)")
    rounds = parser.parse_args().rounds
    apply_runtime()
    torch.manual_seed(0)
    model = build_model("cnn")
    operations = time_calls(step_operations(model), rounds)
    step = time_calls({"whole step": whole_step(build_model("cnn"))}, rounds)["whole step"]

    print(f"CNN training step at batch {BATCH}, {torch.get_num_threads()} threads; ms per call over {rounds} rounds")
    print("| operation | best | median |\n|---|---|---|")
    for name, times in operations.items():
        print(f"| {name} | {min(times):.2f} | {statistics.median(times):.2f} |")
    best_sum = sum(min(times) for times in operations.values())
    median_sum = sum(statistics.median(times) for times in operations.values())
    print(f"| sum of the operations | {best_sum:.2f} | {median_sum:.2f} |")
    print(f"| whole step | {min(step):.2f} | {statistics.median(step):.2f} |")
    print(f"\n{STEPS_PER_RUN} steps (five epochs) at the best sum: {best_sum * STEPS_PER_RUN / 1e3:.1f} s, "
          f"validation and everything outside the step left out")


if __name__ == "__main__":
    main()
