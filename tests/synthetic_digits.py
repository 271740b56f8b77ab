"""Digit-like synthetic images for tests that need ink shaped like MNIST's but no dataset."""

from __future__ import annotations

import numpy as np
from scipy import ndimage


def blobs(count: int = 64, seed: int = 0) -> np.ndarray:
    """Digit-like uint8 images: smooth random ink inside the central 20x20 box, as MNIST centres its digits."""
    rng = np.random.default_rng(seed)
    field = ndimage.gaussian_filter(rng.random((count, 20, 20)), sigma=(0, 2, 2))
    ink = field > np.quantile(field, 0.75, axis=(1, 2), keepdims=True)
    smooth = ndimage.gaussian_filter(ink.astype(float), sigma=(0, 0.6, 0.6))
    images = np.zeros((count, 28, 28), dtype=np.uint8)
    images[:, 4:24, 4:24] = np.rint(255 * smooth / smooth.max(axis=(1, 2), keepdims=True))
    return images
