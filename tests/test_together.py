"""Seeds trained together (`training.together`, `compare --seeds-together`) against one at a time.

Checked against the reference implementation, `train.train`: the same gradients to float
rounding on a first step and the same weights after a few; the same accuracies over seeds
on real MNIST (slow); bit-for-bit repeats of the batched way, also across an interruption;
the choice recorded in the plan and kept by --resume; models that cannot train together
train one at a time, with the reason recorded.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from conftest import run_cli
from test_train import assert_same_training, tiny_dataset_object
from mnistlab.data.datasets import Dataset
from mnistlab.data.idx import encode_idx
from mnistlab.data.registry import FILE_NAMES
from mnistlab.data.folders import open_dataset
from mnistlab.models import images_to_tensor, infer
from mnistlab.models.contract import build
from mnistlab.models.spec import as_spec, parse_spec
from mnistlab.training.config import TrainConfig
from mnistlab.training.runtime import configured_runtime
from mnistlab.study import seed_groups
from mnistlab.study.executor import Placement
from mnistlab.study.seed_groups import choose_training
from mnistlab.training.together import SeedStack, probe_seconds, together_unsupported, train_together
from mnistlab.training.train import train

SEEDS = [0, 3, 11]
TOGETHER_MODELS = ["ann", "cnn", "lenet5", "logreg"]  # every built-in without batch norm or dropout
DROPOUT_MODEL = """
import torch.nn.functional as F
from torch import nn

class Dropping(nn.Module):
    def __init__(self, num_classes=10):
        super().__init__()
        self.out = nn.Linear(784, num_classes)

    def forward(self, images):
        return self.out(F.dropout(images.flatten(1), 0.5, self.training))
"""


def configs(epochs=1, **fields) -> list[TrainConfig]:
    return [TrainConfig(epochs=epochs, batch_size=32, seed=seed, **fields) for seed in SEEDS]


@pytest.mark.parametrize("name", TOGETHER_MODELS)
def test_a_first_steps_gradients_are_each_seeds_own_to_float_rounding(name):
    models, images, labels = [], [], []
    for seed in SEEDS:  # each seed built as train() builds it, with a batch of its own
        torch.manual_seed(seed)
        models.append(build(as_spec(name), 10))
        generator = torch.Generator().manual_seed(seed)
        images.append(torch.rand(16, 1, 28, 28, generator=generator))
        labels.append(torch.randint(10, (16,), generator=generator))
    stack = SeedStack(models)
    losses, _ = stack.losses(torch.stack(images), torch.stack(labels), label_smoothing=0.1)
    losses.sum().backward()
    for seed, model in enumerate(models):
        F.cross_entropy(model(images[seed]), labels[seed], label_smoothing=0.1).backward()
        for key, parameter in model.named_parameters():
            torch.testing.assert_close(stack.parameters[key].grad[seed], parameter.grad, rtol=1e-5, atol=1e-7,
                                       msg=f"{name} seed {SEEDS[seed]} {key}")


@pytest.mark.parametrize("name", ["ann", "cnn"])
def test_a_few_steps_together_end_where_one_at_a_time_ends(name):
    dataset = tiny_dataset_object(train_size=200)  # 180 training images: 6 steps of 32
    with configured_runtime(1):
        together = train_together(name, dataset, configs(augment="shift-rotate"), progress=False)
        alone = [train(name, dataset, config, progress=False) for config in configs(augment="shift-rotate")]
    for seed, (batched, reference) in zip(SEEDS, zip(together, alone)):
        assert (batched.train_size, batched.validation_size) == (reference.train_size, reference.validation_size)
        for (key, value), expected in zip(batched.model.state_dict().items(), reference.model.state_dict().values()):
            # Adam divides by the root of the squared gradients' average, so a weight whose gradient is near zero
            # moves by rounding's share of a step: at most 2% of the learning rate (1e-3) over these 6 steps.
            torch.testing.assert_close(value, expected, rtol=1e-4, atol=2e-5, msg=f"{name} seed {seed} {key}")
        record, expected = batched.history[-1], reference.history[-1]
        assert record["train_loss"] == pytest.approx(expected["train_loss"], rel=1e-5)
        assert record["val_accuracy"] == expected["val_accuracy"]


def test_training_together_repeats_bit_for_bit_also_across_an_interruption():
    dataset = tiny_dataset_object(train_size=200)
    saved = []
    with configured_runtime(1):
        first = train_together("cnn", dataset, configs(epochs=2), progress=False,
                               on_epoch_end=lambda states: saved.append(states))
        second = train_together("cnn", dataset, configs(epochs=2), progress=False)
        resumed = train_together("cnn", dataset, configs(epochs=2), progress=False, resume_states=saved[0])
    for results in (second, resumed):
        for a, b in zip(first, results):
            assert_same_training(a, b)
    assert [len(state["history"]) for state in saved[0]] == [1, 1, 1]


def test_models_with_buffers_or_random_draws_are_refused_with_the_reason(tmp_path):
    model_file = tmp_path / "dropping.py"
    model_file.write_text(DROPOUT_MODEL)
    assert "batch norm" in together_unsupported("cnn-fast", 10)
    assert "vmap" in together_unsupported(parse_spec(f"{model_file}:Dropping"), 10)
    assert together_unsupported("cnn", 10) is None


def learnable_folder(tmp_path) -> str:
    """`tiny_dataset_object` as an IDX folder for `--dataset`."""
    dataset, folder = tiny_dataset_object(train_size=200), tmp_path / "digits"
    folder.mkdir()
    for role in FILE_NAMES:
        (folder / FILE_NAMES[role]).write_bytes(encode_idx(getattr(dataset, role)))
    return str(folder)


def compare(capsys, data, out, *extra):
    return run_cli(capsys, "--quiet", "compare", "--dataset", data, "--models", "ann,cnn-fast", "--seeds", "2",
                   "--epochs", "2", "--batch-size", "32", "--threads", "1", "--out", str(out), *extra)


@pytest.mark.slow  # seconds of work: make test runs it, the fast suite leaves it out
def test_compare_records_the_way_each_model_trained_and_resume_keeps_it(capsys, tmp_path):
    data = learnable_folder(tmp_path)
    code, _, err = compare(capsys, data, tmp_path / "on", "--seeds-together", "on")
    assert code == 0, err
    plan = json.loads((tmp_path / "on" / "state" / "plan.json").read_text())
    metrics = json.loads((tmp_path / "on" / "metrics.json").read_text())
    assert plan["training"]["ann"] == metrics["models"]["ann"]["training"] == {"way": "seeds-together",
                                                                                "choice": "on"}
    assert plan["training"]["cnn-fast"]["way"] == "one-at-a-time"  # batch norm: one at a time, and why
    assert "batch norm" in metrics["models"]["cnn-fast"]["training"]["reason"]
    # A rerun the same way repeats every number, here with the groups in worker processes; the other way is
    # another run, which --resume refuses.
    assert compare(capsys, data, tmp_path / "again", "--seeds-together", "on", "--workers", "2")[0] == 0
    again = json.loads((tmp_path / "again" / "metrics.json").read_text())
    accuracies = lambda run: {name: [seed["test_accuracy"] for seed in model["seeds"]]
                              for name, model in run["models"].items()}
    assert accuracies(again) == accuracies(metrics)
    for checkpoint in ("ann-seed0.pt", "ann-seed1.pt"):  # the weights, bit for bit
        first, second = (torch.load(tmp_path / run / checkpoint, weights_only=True)["state_dict"]
                         for run in ("on", "again"))
        assert all(torch.equal(first[key], second[key]) for key in first)
    code, _, err = compare(capsys, data, tmp_path / "on", "--seeds-together", "off", "--resume")
    assert code == 2 and "training" in err
    assert compare(capsys, data, tmp_path / "on", "--resume")[0] == 0  # auto keeps the recorded way


def test_auto_trains_short_runs_one_at_a_time_without_measuring(capsys, tmp_path):
    data = learnable_folder(tmp_path)
    assert compare(capsys, data, tmp_path / "auto")[0] == 0
    plan = json.loads((tmp_path / "auto" / "state" / "plan.json").read_text())
    assert plan["training"]["ann"]["way"] == "one-at-a-time"
    assert "too short" in plan["training"]["ann"]["reason"]


def test_auto_trains_together_only_where_the_probe_measured_it_faster(monkeypatch):
    dataset = tiny_dataset_object(train_size=200)
    config = TrainConfig(epochs=100, batch_size=32)  # 600 steps per seed: worth measuring
    cases = [(0.5, 1, "seeds-together"), (0.95, 1, "one-at-a-time"), (0.5, 2, "one-at-a-time")]
    for together_seconds, workers, way in cases:  # with 2 workers, one at a time runs 2 seeds at once
        measured = {"one-at-a-time": 1.0, "seeds-together": together_seconds}
        monkeypatch.setattr(seed_groups, "probe_seconds", lambda *args, measured=measured, **kwargs: measured)
        training = choose_training([as_spec("ann")], {"ann": config}, [0, 1], "auto", dataset,
                                   Placement(workers=workers, threads=1))
        assert training["ann"]["way"] == way and training["ann"]["probe_seconds"] == measured


def test_the_probe_times_both_ways_and_leaves_the_random_state_as_it_was():
    before = torch.get_rng_state()
    with configured_runtime(1):
        seconds = probe_seconds("cnn", TrainConfig(batch_size=8), [0, 1], 10, steps=1)
    assert set(seconds) == {"one-at-a-time", "seeds-together"} and min(seconds.values()) > 0
    assert torch.equal(torch.get_rng_state(), before)


@pytest.mark.slow
def test_accuracies_over_seeds_are_indistinguishable_on_mnist(real_data_dir):
    """Per seed, the two ways' test accuracies differ by far less than seeds differ from each other."""
    dataset = open_dataset("mnist", real_data_dir, progress=False)
    dataset = Dataset("mnist", dataset.class_names, dataset.train_images, dataset.train_labels,
                      dataset.test_images[:2000], dataset.test_labels[:2000])
    seeds = [0, 1, 2, 3, 4]
    for name in ("ann", "cnn"):
        seed_configs = [TrainConfig(epochs=2, limit_train=2000, seed=seed) for seed in seeds]
        with configured_runtime(1):
            together = train_together(name, dataset, seed_configs, progress=False)
            alone = [train(name, dataset, config, progress=False) for config in seed_configs]
        test_images = images_to_tensor(dataset.test_images)

        def accuracy(model, test_images=test_images):
            return float((infer(model, test_images).argmax(1).numpy() == dataset.test_labels).mean())

        with configured_runtime(1):
            batched = np.array([accuracy(result.model) for result in together])
            reference = np.array([accuracy(result.model) for result in alone])
        spread = reference.std(ddof=1)  # seed to seed: the scale any real difference would show on
        differences = batched - reference  # paired by seed
        assert spread > 0.002, (name, reference)  # the comparison has a scale
        assert abs(differences.mean()) <= spread / np.sqrt(len(seeds)), (name, batched, reference)
        assert np.abs(differences).max() <= spread / 2, (name, batched, reference)
