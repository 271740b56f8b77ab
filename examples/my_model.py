"""A model of your own for mnistlab: a small residual CNN.

    mnistlab compare --models ann,cnn,examples/my_model.py:SmallResNet --seeds 3

The contract (docs/models.md): keyword arguments with defaults, input (B, 1, 28, 28) in [0, 1],
logits (B, num_classes) out. `recipe` is optional: how it trains unless you say otherwise.
"""

import torch.nn.functional as F
from torch import nn


class Block(nn.Module):
    """Two 3x3 convolutions with batch norm, added to their input."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.norm1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.norm2 = nn.BatchNorm2d(channels)

    def forward(self, x):
        y = F.relu(self.norm1(self.conv1(x)))
        return F.relu(x + self.norm2(self.conv2(y)))


class SmallResNet(nn.Module):
    """A stem, a residual block at 28x28 and one at 14x14, global average pooling, a linear classifier."""

    recipe = {"epochs": 3, "learning_rate": 3e-3, "schedule": "onecycle"}

    def __init__(self, width: int = 16, num_classes: int = 10):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU())
        self.block1 = Block(width)
        self.down = nn.Sequential(nn.Conv2d(width, 2 * width, 3, stride=2, padding=1, bias=False),
                                  nn.BatchNorm2d(2 * width), nn.ReLU())
        self.block2 = Block(2 * width)
        self.out = nn.Linear(2 * width, num_classes)

    def forward(self, images):
        x = self.block2(self.down(self.block1(self.stem(images))))
        return self.out(x.mean(dim=(2, 3)))
