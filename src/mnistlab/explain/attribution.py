"""What a network looks at: Integrated Gradients and occlusion maps of its logits (Captum, extra: explain).

    from mnistlab.explain.attribution import attribute
    maps = attribute(model, images, targets)   # uint8 (N, 28, 28), class indices (N,)
    maps.integrated_gradients.shape            # (N, 28, 28): each pixel's share of logit(image) - logit(black)

Both methods explain the logit of one class per image against a black image
(MNIST's background, the "no ink" baseline):

- Integrated Gradients (Sundararajan et al. 2017) integrates the logit's
  gradient along the straight line from black to the image; its maps sum to
  logit(image) - logit(black) up to the quadrature error, which `delta` reports
  (completeness).
- Occlusion (Zeiler & Fergus 2014) blacks out a WINDOW x WINDOW patch at every
  STRIDE and records how much the logit drops; a pixel's value is the mean drop
  over the patches covering it. It needs no gradients, so it shows what the
  network reacts to even where gradients saturate.

Work is bounded per image: IG costs STEPS forward and backward passes, occlusion
one forward pass per patch position (13 x 13 for 4 x 4 patches at stride 2).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from mnistlab.common.errors import ConfigError
from mnistlab.common.extras import require_extra
from mnistlab.models import images_to_tensor

STEPS = 32  # Gauss-Legendre points along the IG path; completeness error is well under 1% of the logit gap
WINDOW = 4  # px; occlusion patch side (a stroke is about 2-3 px wide in MNIST)
STRIDE = 2  # px between occlusion patches
BATCH = 128  # images (IG path points, occluded copies) per forward pass: bounds memory
CHUNK = 16  # images explained together (BATCH // CHUNK IG steps or occluded copies of each per pass)


@dataclass
class Attributions:
    """Per image, maps of the pixels' contributions to one class's logit."""

    targets: np.ndarray  # (N,) the class explained in each image
    integrated_gradients: np.ndarray  # (N, 28, 28) float32; sums to logit(image) - logit(black) within `delta`
    occlusion: np.ndarray  # (N, 28, 28) float32; mean drop of the logit when a patch over the pixel is blacked out
    delta: np.ndarray  # (N,) float32: IG's sum minus the logit gap it should equal (completeness error)


def check_images(images: np.ndarray, targets: np.ndarray, classes: int) -> None:
    """Raise `ConfigError` unless `images` is uint8 (N, 28, 28) and `targets` N class indices below `classes`."""
    if not (isinstance(images, np.ndarray) and images.dtype == np.uint8 and images.ndim == 3
            and images.shape[1:] == (28, 28)):
        raise ConfigError(f"images must be a uint8 array of shape (N, 28, 28), got "
                          f"{getattr(images, 'dtype', type(images).__name__)} {getattr(images, 'shape', '')}")
    targets = np.asarray(targets)
    if targets.shape != (len(images),) or (len(targets) and not (0 <= targets.min() and targets.max() < classes)):
        raise ConfigError(f"targets must be {len(images)} class indices from 0 to {classes - 1}")


def attribute(model: nn.Module, images: np.ndarray, targets, steps: int = STEPS, occlusion: bool = True,
              window: int = WINDOW, stride: int = STRIDE) -> Attributions:
    """Integrated Gradients (and, with `occlusion`, occlusion) maps of `model`'s logit for `targets` on `images`.

    The model is used in eval mode on its own device; its mode and gradients are left as they were.
    """
    require_extra("explain", "attributions")
    from captum.attr import IntegratedGradients, Occlusion

    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    ig, delta, occluded = [], [], []
    try:
        with torch.no_grad():
            classes = int(model(torch.zeros(1, 1, 28, 28, device=device)).shape[1])
        check_images(images, targets, classes)
        targets = np.asarray(targets, dtype=np.int64)
        for start in range(0, len(images), CHUNK):  # bounded memory, whatever the number of images
            inputs = images_to_tensor(images[start:start + CHUNK]).to(device)
            target = torch.from_numpy(targets[start:start + CHUNK]).to(device)
            with torch.enable_grad():
                maps, gaps = IntegratedGradients(model).attribute(
                    inputs, baselines=torch.zeros_like(inputs), target=target, n_steps=steps,
                    internal_batch_size=BATCH, return_convergence_delta=True)
            ig.append(maps.detach().float().cpu().numpy()[:, 0])
            delta.append(gaps.detach().float().cpu().numpy())
            if occlusion:
                with torch.no_grad():
                    maps = Occlusion(model).attribute(
                        inputs, sliding_window_shapes=(1, window, window), strides=(1, stride, stride),
                        baselines=0.0, target=target, perturbations_per_eval=BATCH // len(inputs))
                occluded.append(maps.detach().float().cpu().numpy()[:, 0])
    finally:
        model.train(was_training)
    empty = np.zeros((0, 28, 28), dtype=np.float32)
    return Attributions(targets, np.concatenate(ig) if ig else empty, np.concatenate(occluded) if occluded else empty,
                        np.concatenate(delta) if delta else np.zeros(0, dtype=np.float32))

def logit_gap(model: nn.Module, images: np.ndarray, targets) -> np.ndarray:
    """logit(image) - logit(black) of each image's target class in eval mode: what its IG map sums to (completeness)."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    with torch.no_grad():
        inputs = images_to_tensor(images).to(device)
        rows = torch.arange(len(images))
        targets = torch.as_tensor(np.asarray(targets, dtype=np.int64))
        gap = model(inputs).float().cpu()[rows, targets] - model(torch.zeros_like(inputs)).float().cpu()[rows, targets]
    model.train(was_training)
    return gap.numpy()


def mean_per_class(maps: np.ndarray, labels: np.ndarray, classes: int) -> np.ndarray:
    """(classes, 28, 28): the mean map over the images of each class (zeros for a class with none)."""
    means = np.zeros((classes, *maps.shape[1:]), dtype=np.float32)
    for index in range(classes):
        chosen = labels == index
        if chosen.any():
            means[index] = maps[chosen].mean(axis=0)
    return means
