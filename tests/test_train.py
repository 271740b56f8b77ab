"""Training is seeded and repeatable; the split is stratified; checkpoints rebuild the model."""

import numpy as np
import pytest
import torch

from conftest import make_tiny_arrays
from mnistlab.training.checkpoint import load_checkpoint, save_checkpoint
from mnistlab.training.config import TrainConfig
from mnistlab.data.datasets import Dataset
from mnistlab.common.errors import CheckpointError, ConfigError
from mnistlab.models import MODELS, build_model, images_to_tensor, infer
from mnistlab.training.runtime import configured_runtime
from mnistlab.data.splits import split_indices
from mnistlab.training.train import train


def tiny_dataset_object(train_size=600, test_size=100) -> Dataset:
    arrays = make_tiny_arrays(seed=5, train=train_size, test=test_size)
    # Make the classes learnable: brighten a class-specific band of rows.
    for split in ("train", "test"):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        images //= 4
        for index, label in enumerate(labels):
            images[index, 2 * label:2 * label + 4, :] = 255
    return Dataset("tiny", tuple("0123456789"), **arrays)


def assert_same_training(first, second) -> None:
    """Two TrainResults with the same history (timings aside) and the same weights, bit for bit."""
    strip = lambda history: [{k: v for k, v in record.items() if k != "seconds"} for record in history]
    assert strip(first.history) == strip(second.history)
    for (key, a), b in zip(first.model.state_dict().items(), second.model.state_dict().values()):
        assert torch.equal(a, b), key


@pytest.mark.parametrize("name", sorted(MODELS))
def test_same_seed_gives_bit_identical_results(name):
    dataset = tiny_dataset_object()
    config = TrainConfig(epochs=2, batch_size=32, seed=7)
    first = train(name, dataset, config, progress=False)
    second = train(name, dataset, config, progress=False)
    assert_same_training(first, second)


def test_different_seeds_give_different_weights():
    dataset = tiny_dataset_object()
    first = train("ann", dataset, TrainConfig(epochs=1, seed=1), progress=False)
    second = train("ann", dataset, TrainConfig(epochs=1, seed=2), progress=False)
    assert not torch.equal(first.model.fc1.weight, second.model.fc1.weight)


def test_training_learns_and_records_every_epoch():
    dataset = tiny_dataset_object()
    result = train("ann", dataset, TrainConfig(epochs=3, batch_size=32), progress=False)
    assert [record["epoch"] for record in result.history] == [1, 2, 3]
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]
    assert result.history[-1]["val_accuracy"] > 0.9  # the synthetic classes are easy
    assert (result.train_size, result.validation_size) == (540, 60)


def test_split_is_stratified_disjoint_and_seeded():
    labels = np.repeat(np.arange(10), 100)
    train_part, validation_part = split_indices(labels, 0.1, seed=3)
    assert len(validation_part) == 100 and not set(train_part) & set(validation_part)
    assert np.bincount(labels[validation_part]).tolist() == [10] * 10
    again, _ = split_indices(labels, 0.1, seed=3)
    other, _ = split_indices(labels, 0.1, seed=4)
    assert np.array_equal(train_part, again) and not np.array_equal(train_part, other)


def test_limit_train_takes_a_seeded_subset():
    """The subset has the asked size, the same images for the same seed, others for another, and no overlap."""
    labels = np.repeat(np.arange(10), 100)

    def subset(seed):
        train_part, validation_part = split_indices(labels, 0.1, seed=seed, limit_train=200)
        assert not set(train_part) & set(validation_part)
        return np.sort(np.concatenate([train_part, validation_part])), validation_part

    first, validation = subset(0)
    assert len(first) == 200 and len(np.unique(first)) == 200
    np.testing.assert_array_equal(subset(0)[0], first)
    np.testing.assert_array_equal(subset(0)[1], validation)
    assert not np.array_equal(subset(1)[0], first)
    held_out, chosen = np.bincount(labels[validation], minlength=10), np.bincount(labels[first], minlength=10)
    assert len(validation) == 20 and np.all(np.abs(held_out - 0.1 * chosen) < 1)  # stratified: 10% of each class


def test_checkpoint_round_trip_rebuilds_the_same_function(tmp_path):
    torch.manual_seed(0)
    model = build_model("cnn")
    path = tmp_path / "cnn.pt"
    save_checkpoint(path, model, "cnn", TrainConfig().to_dict(), {"name": "mnist"}, {"test_accuracy": 0.5})
    loaded, state = load_checkpoint(path)
    inputs = images_to_tensor(np.random.default_rng(0).integers(0, 256, (4, 28, 28), dtype=np.uint8))
    torch.testing.assert_close(infer(loaded, inputs), infer(model, inputs), rtol=0, atol=0)
    assert state["model_name"] == "cnn" and state["config"]["epochs"] == 5
    assert state["versions"]["torch"] == torch.__version__
    assert state["metrics"] == {"test_accuracy": 0.5}
    assert [p.name for p in tmp_path.iterdir()] == ["cnn.pt"]  # no temporary files left


@pytest.mark.parametrize(
    ("content", "message"),
    [(None, "no such checkpoint"), (b"", "not a readable mnistlab checkpoint"),
     (b"garbage" * 10, "not a readable mnistlab checkpoint")],
)
def test_bad_checkpoint_files_are_clear_errors(tmp_path, content, message):
    path = tmp_path / "model.pt"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(path)


def test_checkpoint_of_another_shape_is_rejected(tmp_path):
    path = tmp_path / "ann.pt"
    save_checkpoint(path, build_model("cnn"), "ann", {}, {}, {})
    with pytest.raises(CheckpointError, match="weights do not fit model 'ann'"):
        load_checkpoint(path)


def test_too_small_limit_is_a_config_error():
    with pytest.raises(ConfigError, match="limit_train"):
        TrainConfig(limit_train=5).validate()


def test_onecycle_schedule_rises_to_the_learning_rate_then_decays():
    from mnistlab.training.train import build_optimizer

    config = TrainConfig(learning_rate=0.01, schedule="onecycle", warmup_fraction=0.25)
    optimizer, scheduler = build_optimizer(build_model("ann"), config, total_steps=100)
    rates = []
    for _ in range(100):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert rates[0] < 0.001 and max(rates) == pytest.approx(0.01) and rates.index(max(rates)) in (24, 25)
    assert rates[-1] < 0.0005


def test_constant_schedule_keeps_the_study_learning_rate():
    from mnistlab.training.train import build_optimizer

    optimizer, scheduler = build_optimizer(build_model("ann"), TrainConfig(), total_steps=10)
    for _ in range(10):
        optimizer.step()
        scheduler.step()
    assert optimizer.param_groups[0]["lr"] == 1e-3 and isinstance(optimizer, torch.optim.Adam)


def test_augmentation_is_seeded_small_and_keeps_the_ink():
    from mnistlab.training.train import augment_batch

    images = images_to_tensor(tiny_dataset_object().train_images[:16])
    first = augment_batch(images, torch.Generator().manual_seed(1))
    again = augment_batch(images, torch.Generator().manual_seed(1))
    assert torch.equal(first, again) and first.shape == images.shape
    assert not torch.allclose(first, images)
    ink_ratio = first.sum(dim=(1, 2, 3)) / images.sum(dim=(1, 2, 3))
    assert ((ink_ratio > 0.8) & (ink_ratio < 1.1)).all()


def test_fused_adam_is_the_plain_adam_update():
    """The speed change in the optimiser (one fused kernel per parameter) computes the study's Adam update."""
    import copy

    import torch.nn.functional as F

    from mnistlab.training.train import build_optimizer

    torch.manual_seed(0)
    fast = build_model("cnn")
    plain, initial = copy.deepcopy(fast), copy.deepcopy(fast)
    fast_optimizer, _ = build_optimizer(fast, TrainConfig(), total_steps=5)
    plain_optimizer = torch.optim.Adam(plain.parameters(), lr=1e-3, foreach=False, fused=False)
    images, labels = torch.rand(32, 1, 28, 28), torch.randint(0, 10, (32,))
    for _ in range(5):
        for model, optimizer in ((fast, fast_optimizer), (plain, plain_optimizer)):
            optimizer.zero_grad()
            F.cross_entropy(model(images), labels).backward()
            optimizer.step()
    for (name, updated), reference in zip(fast.named_parameters(), plain.parameters()):
        torch.testing.assert_close(updated, reference, rtol=1e-5, atol=1e-6, msg=name)
    assert not torch.equal(fast.fc.weight, initial.fc.weight)  # the steps did move the weights


@pytest.mark.parametrize("kind", ["adam", "adamw"])
def test_the_eager_optimisers_are_pytorchs_bit_for_bit(kind):
    """`training.optim`'s Adam and AdamW (stepped without importing PyTorch's compiler) make PyTorch's updates
    exactly, under a schedule, and their state dicts load into PyTorch's and back: checkpoints stay interchangeable."""
    import copy

    import torch.nn.functional as F

    from mnistlab.training import optim

    torch.manual_seed(0)
    ours = build_model("ann")
    theirs = copy.deepcopy(ours)
    options = dict(lr=1e-2, fused=True, **({"weight_decay": 0.05} if kind == "adamw" else {}))
    classes = (optim.AdamW, torch.optim.AdamW) if kind == "adamw" else (optim.Adam, torch.optim.Adam)
    pairs = []
    for model, cls in zip((ours, theirs), classes):
        optimizer = cls(model.parameters(), **options)
        pairs.append((model, optimizer, torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=1e-2, total_steps=20)))
    images, labels = torch.rand(32, 1, 28, 28), torch.randint(0, 10, (32,))
    for step in range(8):
        for model, optimizer, scheduler in pairs:
            optimizer.zero_grad(set_to_none=True)
            F.cross_entropy(model(images), labels).backward()
            optimizer.step()
            scheduler.step()
        if step == 3:  # swap the optimisers' states halfway: each must take the other's
            (_, first, _), (_, second, _) = pairs
            mine, pytorchs = first.state_dict(), second.state_dict()
            first.load_state_dict(pytorchs)
            second.load_state_dict(mine)
    for (name, a), b in zip(ours.named_parameters(), theirs.parameters()):
        assert torch.equal(a, b), name
    assert pairs[0][1].state_dict()["state"][0]["step"] == 8


@pytest.mark.parametrize("name", ["cnn", "cnn-strong"])
def test_training_without_the_nan_fill_gives_the_same_numbers(name):
    """Skipping deterministic mode's NaN fill of new tensors is safe only if no kernel reads unwritten memory.

    With the fill on, any such read would turn the weights to NaN or change them; they must come out the same.
    """
    dataset = tiny_dataset_object()
    config = TrainConfig(epochs=1, batch_size=32, seed=3, augment="shift-rotate" if name == "cnn-strong" else "none")
    with configured_runtime():
        fast = train(name, dataset, config, progress=False)
        torch.utils.deterministic.fill_uninitialized_memory = True
        filled = train(name, dataset, config, progress=False)
        assert torch.empty(4).isnan().all()  # the fill really was on
    assert_same_training(fast, filled)


def test_the_runtime_is_set_for_the_block_and_put_back():
    """Library calls leave the process as they found it; `configured_runtime` restores what it changed."""
    before = (torch.get_num_threads(), torch.are_deterministic_algorithms_enabled(),
              torch.utils.deterministic.fill_uninitialized_memory)
    with configured_runtime(threads=1):
        assert torch.get_num_threads() == 1 and torch.are_deterministic_algorithms_enabled()
        assert torch.utils.deterministic.fill_uninitialized_memory is False
    assert (torch.get_num_threads(), torch.are_deterministic_algorithms_enabled(),
            torch.utils.deterministic.fill_uninitialized_memory) == before


def test_train_leaves_the_global_random_stream_and_settings_alone():
    """A notebook user's random state and thread count are the same after `train` as before."""
    torch.manual_seed(123)
    expected_next = torch.rand(3)
    torch.manual_seed(123)
    threads = torch.get_num_threads()
    train("ann", tiny_dataset_object(), TrainConfig(epochs=1, batch_size=32, seed=9), progress=False)
    assert torch.equal(torch.rand(3), expected_next)
    assert torch.get_num_threads() == threads


def test_resuming_a_regularised_run_gives_the_uninterrupted_numbers():
    """Dropout and augmentation draw random numbers every step; a resume must replay exactly those draws."""
    import copy

    dataset = tiny_dataset_object(train_size=300)
    config = TrainConfig(epochs=3, batch_size=32, seed=2, learning_rate=3e-3, schedule="onecycle",
                         augment="shift-rotate", optimizer="adamw", weight_decay=0.01, label_smoothing=0.1)
    states = []  # deep copies, as saving to disk makes them: the state holds the live tensors
    uninterrupted = train("cnn-strong", dataset, config, progress=False,
                          on_epoch_end=lambda state: states.append(copy.deepcopy(state)))
    torch.manual_seed(12345)  # a resumed process starts with other random state
    resumed = train("cnn-strong", dataset, config, progress=False, resume_state=states[0])
    assert_same_training(uninterrupted, resumed)


def test_a_one_cycle_warm_up_of_exactly_one_step_is_a_config_error_before_training():
    """PyTorch's OneCycleLR divides by (warm-up steps - 1); those settings were a ZeroDivisionError traceback."""
    from torch import nn

    from mnistlab.common.errors import ConfigError
    from mnistlab.training.config import TrainConfig
    from mnistlab.training.train import build_optimizer

    config = TrainConfig(schedule="onecycle", warmup_fraction=0.2)
    with pytest.raises(ConfigError, match="warm-up of exactly one step"):
        build_optimizer(nn.Linear(2, 2), config, total_steps=5)
    for steps in (4, 6, 100):  # any other length runs
        build_optimizer(nn.Linear(2, 2), config, total_steps=steps)
