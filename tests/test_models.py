"""Every registered model: shapes, gradients, parameter counts, and equivalence with the plain layout."""

import copy
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mnistlab.common.errors import ConfigError
from mnistlab.models import MODELS, build_model, count_parameters, images_to_tensor, infer


@pytest.mark.parametrize("name", sorted(MODELS))
def test_forward_and_backward_shapes(name):
    torch.manual_seed(0)
    model = build_model(name)
    images = torch.rand(5, 1, 28, 28)
    logits = model(images)
    assert logits.shape == (5, 10)
    logits.sum().backward()
    assert all(parameter.grad is not None and torch.isfinite(parameter.grad).all() for parameter in model.parameters())


@pytest.mark.parametrize("name", sorted(MODELS))
def test_infer_matches_forward_and_ignores_batching(name):
    torch.manual_seed(0)
    model = build_model(name).eval()
    images = torch.rand(7, 1, 28, 28)
    with torch.no_grad():
        expected = model(images)
    torch.testing.assert_close(infer(model, images, batch_size=3), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(("name", "parameters"), [("ann", 109_386), ("cnn", 121_930)])
def test_parameter_counts_match_the_study(name, parameters):
    assert count_parameters(build_model(name)) == parameters


def _plain_cnn_like(model):
    """The study's CNN as written (ReLU before pooling), contiguous memory, sharing `model`'s weights."""
    plain = nn.Sequential(
        nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
    )
    dense = nn.Sequential(nn.Linear(1600, 64), nn.ReLU(), nn.Linear(64, 10))
    with torch.no_grad():
        for target, source in [(plain[0], model.conv1), (plain[3], model.conv2), (dense[0], model.fc), (dense[2], model.out)]:
            target.weight.copy_(source.weight.contiguous())
            target.bias.copy_(source.bias)

    def forward(images):
        features = plain(images.contiguous())  # (B, 64, 5, 5)
        return dense(features.permute(0, 2, 3, 1).reshape(len(images), -1))

    parameters = [p for layer in (plain[0], plain[3], dense[0], dense[2]) for p in (layer.weight, layer.bias)]
    return forward, parameters  # parameters in the order of model.parameters()


def test_cnn_speedups_compute_the_study_function():
    """Pooling before ReLU, cropping what pooling drops and channels-last memory: same logits and gradients."""
    torch.manual_seed(3)
    model = build_model("cnn")
    plain, plain_parameters = _plain_cnn_like(model)
    images = torch.rand(16, 1, 28, 28)
    images[:, :, 26:, :] = images[:, :, :, 26:] = 1.0  # ink where the crop cuts: it must still make no difference
    torch.testing.assert_close(model(images.contiguous(memory_format=torch.channels_last)), plain(images),
                               rtol=1e-5, atol=1e-5)
    images.requires_grad_(True)
    grad_fast = torch.autograd.grad(model(images).square().sum(), [images, *model.parameters()])
    grad_plain = torch.autograd.grad(plain(images).square().sum(), [images, *plain_parameters])
    for fast, reference in zip(grad_fast, grad_plain):
        torch.testing.assert_close(fast, reference.reshape(fast.shape), rtol=1e-4, atol=1e-5)


def test_keras_style_initialisation():
    model = build_model("cnn")
    assert all((module.bias == 0).all() for module in model.modules() if isinstance(module, (nn.Linear, nn.Conv2d)))
    limit = np.sqrt(6 / (1600 + 64))  # Glorot-uniform bound for the 1600 -> 64 layer
    assert model.fc.weight.abs().max() <= limit and model.fc.weight.abs().max() > 0.9 * limit


def test_images_to_tensor_scales_to_unit_range():
    images = np.array([[[0] * 28] * 28, [[255] * 28] * 28], dtype=np.uint8)
    tensor = images_to_tensor(images)
    assert tensor.shape == (2, 1, 28, 28) and tensor.dtype == torch.float32
    assert tensor[0].max() == 0 and tensor[1].min() == 1


@pytest.mark.parametrize("dtype", [np.uint8, np.float32, np.float64])
def test_images_to_tensor_is_numpys_division_and_leaves_the_images_alone(dtype):
    """Whatever the dtype, layout or writability of the images: float32(images) / 255, the images unchanged, and no
    warning (a dataset's arrays are read-only)."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (6, 28, 56)).astype(dtype)[:, :, ::2]  # not contiguous
    for writable in (True, False):
        images.flags.writeable = writable
        before = images.copy()
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            tensor = images_to_tensor(images)
        expected = torch.from_numpy(images.astype(np.float32)).div_(255.0).unsqueeze(1)
        assert torch.equal(tensor, expected) and tensor.is_contiguous(memory_format=torch.channels_last)
        assert np.array_equal(images, before)
        tensor.fill_(7)  # the tensor is a copy: writing to it leaves the images alone
        assert np.array_equal(images, before)


def test_unknown_model_names_the_choices():
    with pytest.raises(ConfigError, match=r"unknown model\(s\) resnet; choose from: ann, cnn"):
        build_model("resnet")


def test_cnn_fast_crop_computes_the_same_function():
    """cnn-fast crops what its second pooling drops: same logits and gradients as without the crop, in both modes."""
    torch.manual_seed(4)
    model = build_model("cnn-fast")
    uncropped = copy.deepcopy(model)  # its own batch-norm running statistics

    def forward_uncropped(images):
        x = F.relu(uncropped.norm1(F.max_pool2d(uncropped.conv1(images), 2)))
        x = F.relu(uncropped.norm2(F.max_pool2d(uncropped.conv2(x), 2)))
        return uncropped.out(x.permute(0, 2, 3, 1).flatten(1))

    images = torch.rand(16, 1, 28, 28)
    for mode in ("train", "eval"):
        model.train(mode == "train")
        uncropped.train(mode == "train")
        logits, reference = model(images), forward_uncropped(images)
        torch.testing.assert_close(logits, reference, rtol=1e-5, atol=1e-5)
        grads = torch.autograd.grad(logits.square().sum(), list(model.parameters()))
        grads_reference = torch.autograd.grad(reference.square().sum(), list(uncropped.parameters()))
        for fast, plain in zip(grads, grads_reference):
            torch.testing.assert_close(fast, plain, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", ["cnn", "cnn-fast", "cnn-strong"])
def test_relu_gradients_keep_the_layout_of_their_activations(name, monkeypatch):
    """Each ReLU's gradient comes back in its activation's (channels-last) layout: a gradient in the default
    layout makes the backward read two layouts and run several times slower (a slice's gradient did this)."""
    layouts = []
    relu = F.relu

    def recording_relu(x, *args, **kwargs):
        out = relu(x, *args, **kwargs)
        out.register_hook(lambda grad: layouts.append((out.shape, out.stride(), grad.stride())))
        return out

    monkeypatch.setattr(F, "relu", recording_relu)
    torch.manual_seed(0)
    model = build_model(name).train()
    model(images_to_tensor(np.random.default_rng(0).integers(0, 256, (8, 28, 28), dtype=np.uint8))).sum().backward()
    assert layouts and all(out == grad for _, out, grad in layouts), layouts


@pytest.mark.parametrize(("layers", "side"), [
    ([("conv", 3), ("pool", 2), ("conv", 3), ("pool", 2)], 28),  # the study's CNN
    ([("conv", 3), ("pool", 2)], 13),  # cnn-fast's second block
    ([("conv", 5), ("pool", 2), ("conv", 3), ("pool", 2)], 29),
])
def test_rows_read_is_exactly_what_reaches_the_output(layers, side):
    """Every input row past `rows_read` has zero influence on the output; the last row it keeps has some."""
    from mnistlab.models.zoo import rows_read

    torch.manual_seed(0)
    modules, output_side = [], side
    for kind, size in layers:
        modules.append(nn.AvgPool2d(size) if kind == "pool" else nn.Conv2d(1, 1, size))  # avg: every input gets a gradient
        output_side = output_side // size if kind == "pool" else output_side - size + 1
    stack = nn.Sequential(*modules)
    image = torch.rand(1, 1, side, side, requires_grad=True)
    stack(image).sum().backward()
    influence = image.grad[0, 0].abs().sum(dim=1)  # per input row
    read = rows_read(layers, output_side)
    assert read < side
    assert torch.all(influence[read:] == 0) and influence[read - 1] > 0


def test_the_catalogue_describes_every_built_in_network():
    """The CLI lists models from `models.catalogue` without PyTorch: each entry matches the network it names."""
    from mnistlab.models import RECIPES
    from mnistlab.models.catalogue import BUILT_IN

    assert list(BUILT_IN) == list(MODELS)
    for name, entry in BUILT_IN.items():
        assert count_parameters(build_model(name)) == entry.parameters, name
        assert MODELS[name].__doc__.strip().splitlines()[0] == entry.summary, name
        assert RECIPES[name] == entry.recipe, name
