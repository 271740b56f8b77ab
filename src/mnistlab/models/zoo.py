"""The built-in networks: the study's ANN and CNN, the linear baseline, LeNet-5, and two faster or stronger CNNs.

Each maps images (B, 1, 28, 28), float32 in [0, 1], to class logits (B, num_classes), 10 by default, and
registers itself with its training recipe (from `models.catalogue`, which the CLI reads without PyTorch).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mnistlab.data.registry import IMAGE_SIDE
from mnistlab.models.catalogue import BUILT_IN
from mnistlab.models.registry import NUM_CLASSES, register_model

def keras_initialise(model: nn.Module) -> None:
    """Initialise as Keras does by default (Glorot-uniform weights, zero biases), as the study did."""
    for module in model.modules():
        if isinstance(module, (nn.Linear, nn.Conv2d)):
            nn.init.xavier_uniform_(module.weight)
            nn.init.zeros_(module.bias)


def rows_read(layers: list[tuple[str, int]], output_side: int) -> int:
    """How many leading rows (and columns) of a stack's input reach its output.

    `layers` are ("conv", kernel) valid convolutions and ("pool", size) floor-pooling,
    in order. Floor-pooling drops a trailing odd row, and whatever fed only that row
    is never read: for the study's CNN, the output needs image rows 0-25 of 28.
    """
    needed = output_side
    for kind, size in reversed(layers):
        needed = needed * size if kind == "pool" else needed + size - 1
    return needed


def crop_unread(x: torch.Tensor, side: int) -> torch.Tensor:
    """Keep the top-left `side` x `side` of (B, C, H, W), `side` at most H and W: an exact rewrite when `side`
    comes from `rows_read`.

    The convolutions then skip the work whose results pooling would drop. Under `torch.func.vmap` (seeds
    trained together, `training.together`) the layout is the batched tensor's, so only the crop is taken.
    """
    # vmap cannot ask a per-seed view for channels-last layout; a traced graph (ONNX export, torch.compile) keeps
    # the plain slice, which every runtime reads.
    if torch._C._functorch.is_batchedtensor(x) or torch.compiler.is_compiling():
        return x[:, :, :side, :side]
    # Eager, a crop by negative padding keeps channels-last both ways: a slice's gradient would come back in the
    # default layout, and the ReLU and batch norm backward before it would then read two layouts, much slower.
    return F.pad(x, (0, side - x.shape[-1], 0, side - x.shape[-2]))


def relu_max_pool(x: torch.Tensor) -> torch.Tensor:
    """ReLU then 2x2 max-pooling, computed as pooling then ReLU.

    The two orders give the same values (ReLU is monotone, so it commutes with max),
    and pooling first runs ReLU on a quarter as many values.
    """
    return F.relu(F.max_pool2d(x, 2))


CNN_ROWS_READ = rows_read([("conv", 3), ("pool", 2), ("conv", 3), ("pool", 2)], output_side=5)  # 26 of 28


@register_model("ann")
class ANN(nn.Module):
    """The study's fully connected network: 784 -> 128 -> 64 -> 10, ReLU, 109,386 parameters.

    Reaches about 97.4% test accuracy on MNIST under the seed protocol (5 epochs of Adam).
    """

    def __init__(self, hidden: tuple[int, int] = (128, 64), num_classes: int = NUM_CLASSES):
        super().__init__()
        self.hidden = hidden
        self.fc1 = nn.Linear(IMAGE_SIDE * IMAGE_SIDE, hidden[0])
        self.fc2 = nn.Linear(hidden[0], hidden[1])
        self.out = nn.Linear(hidden[1], num_classes)
        keras_initialise(self)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = images.flatten(1)  # (B, 1, 28, 28) -> (B, 784)
        x = F.relu(self.fc1(x))  # (B, 128)
        x = F.relu(self.fc2(x))  # (B, 64)
        return self.out(x)  # (B, classes) logits


@register_model("cnn")
class CNN(nn.Module):
    """The study's small CNN: two 3x3 conv + 2x2 max-pool blocks (32, 64 channels), dense 64, 121,930 parameters.

    Reaches about 98.9-99.0% test accuracy on MNIST under the seed protocol (5 epochs of Adam).
    """

    def __init__(self, channels: tuple[int, int] = (32, 64), hidden: int = 64, num_classes: int = NUM_CLASSES):
        super().__init__()
        self.channels = channels
        self.conv1 = nn.Conv2d(1, channels[0], kernel_size=3)
        self.conv2 = nn.Conv2d(channels[0], channels[1], kernel_size=3)
        self.fc = nn.Linear(channels[1] * 5 * 5, hidden)
        self.out = nn.Linear(hidden, num_classes)
        keras_initialise(self)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        # The study's layers, computed through two exact rewrites (see `crop_unread` and `relu_max_pool`).
        images = crop_unread(images, CNN_ROWS_READ)  # (B, 1, 28, 28) -> (B, 1, 26, 26): no output reads the rest
        x = relu_max_pool(self.conv1(images))  # conv 3x3, ReLU, pool: -> (B, 32, 24, 24) -> (B, 32, 12, 12)
        x = relu_max_pool(self.conv2(x))  # conv 3x3, ReLU, pool: -> (B, 64, 10, 10) -> (B, 64, 5, 5)
        # Flatten in (height, width, channel) order, as Keras does; free for a channels-last tensor.
        x = x.permute(0, 2, 3, 1).flatten(1)  # (B, 1600)
        x = F.relu(self.fc(x))  # (B, 64)
        return self.out(x)  # (B, classes) logits


@register_model("logreg")
class LogisticRegression(nn.Module):
    """Multinomial logistic regression (one linear layer, 784 -> 10), the linear baseline; 7,850 parameters.

    Source: the "linear classifier" of LeCun et al. 1998 (12% test error there,
    trained without Adam). Under the seed protocol (5 epochs of Adam) it
    reaches about 92.1% test accuracy on MNIST (mean over seeds 0-4).
    """

    def __init__(self, num_classes: int = NUM_CLASSES):
        super().__init__()
        self.out = nn.Linear(IMAGE_SIDE * IMAGE_SIDE, num_classes)
        keras_initialise(self)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.out(images.flatten(1))  # (B, 1, 28, 28) -> (B, 784) -> (B, classes) logits


@register_model("lenet5")
class LeNet5(nn.Module):
    """LeNet-5 as laid out by LeCun et al. 1998: conv 6@5x5, pool, conv 16@5x5, pool, conv 120@5x5, 84, 10.

    Source: "Gradient-based learning applied to document recognition", Proc.
    IEEE 86(11), 1998; the paper reports 0.95% test error (99.05%) after 20
    epochs. Kept: the 28x28 input padded to 32x32, tanh, 2x2 average pooling,
    the layer sizes; simplified as is usual: C3 connects to all six C1 maps,
    pooling has no trainable scale, and the output is linear instead of RBF.
    61,706 parameters. Under the seed protocol (5 epochs of Adam) it reaches
    about 98.1% test accuracy on MNIST (mean over seeds 0-4); the paper's 20 epochs get closer to 99%.
    """

    def __init__(self, num_classes: int = NUM_CLASSES):
        super().__init__()
        self.c1 = nn.Conv2d(1, 6, kernel_size=5, padding=2)  # padding 2 = the paper's 32x32 input
        self.c3 = nn.Conv2d(6, 16, kernel_size=5)
        self.c5 = nn.Conv2d(16, 120, kernel_size=5)
        self.f6 = nn.Linear(120, 84)
        self.out = nn.Linear(84, num_classes)
        keras_initialise(self)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = F.avg_pool2d(torch.tanh(self.c1(images)), 2)  # (B, 1, 28, 28) -> (B, 6, 28, 28) -> (B, 6, 14, 14)
        x = F.avg_pool2d(torch.tanh(self.c3(x)), 2)  # -> (B, 16, 10, 10) -> (B, 16, 5, 5)
        x = torch.tanh(self.c5(x)).flatten(1)  # -> (B, 120, 1, 1) -> (B, 120)
        x = torch.tanh(self.f6(x))  # (B, 84)
        return self.out(x)  # (B, classes) logits


CNN_FAST_ROWS_READ = rows_read([("conv", 3), ("pool", 2)], output_side=5)  # 12 of 13


@register_model("cnn-fast", recipe=BUILT_IN["cnn-fast"].recipe)
class CNNFast(nn.Module):
    """A speed recipe: the study's CNN shape, 16 and 32 channels, batch norm, a one-cycle schedule, 2 epochs.

    Target: >= 99.0% MNIST test accuracy, mean over 5 seeds, in <= 15 s of
    training on a 2-core CPU (docs/performance.md has the measured figures).
    Batch norm after pooling costs a quarter of batch norm before it; no dropout
    (too few steps to need it). Wider layers (24 and 48, 20 and 40 channels)
    cost more time than the accuracy they add.
    """

    def __init__(self, channels: tuple[int, int] = (16, 32), num_classes: int = NUM_CLASSES):
        super().__init__()
        self.channels = channels
        self.conv1 = nn.Conv2d(1, channels[0], kernel_size=3, bias=False)  # batch norm supplies the bias
        self.norm1 = nn.BatchNorm2d(channels[0])
        self.conv2 = nn.Conv2d(channels[0], channels[1], kernel_size=3, bias=False)
        self.norm2 = nn.BatchNorm2d(channels[1])
        self.out = nn.Linear(channels[1] * 5 * 5, num_classes)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.norm1(F.max_pool2d(self.conv1(images), 2)))  # (B, 1, 28, 28) -> (B, 16, 13, 13)
        # Batch norm 1 sees all 13 x 13 (its statistics need them); the second block reads only 12 x 12.
        x = crop_unread(x, CNN_FAST_ROWS_READ)
        x = F.relu(self.norm2(F.max_pool2d(self.conv2(x), 2)))  # -> (B, 32, 10, 10) -> (B, 32, 5, 5)
        return self.out(x.permute(0, 2, 3, 1).flatten(1))  # (B, 800) -> (B, classes) logits


@register_model("cnn-strong", recipe=BUILT_IN["cnn-strong"].recipe)
class CNNStrong(nn.Module):
    """A modern small CNN: 32-32 and 64-64 channel 3x3 conv pairs, batch norm, dropout, augmentation, one cycle.

    Source: the VGG-style layout that public MNIST studies find strongest for a
    single small model (e.g. C. Deotte, "How to choose CNN architecture MNIST",
    Kaggle 2018, about 99.6-99.7% with augmentation), with max-pooling in place
    of strided convolutions to fit a 2-core CPU. Trained 15 epochs on randomly
    shifted (up to 2 px) and rotated (up to 10 degrees) images, one-cycle Adam.
    Target: >= 99.6% MNIST test accuracy, mean over 3 seeds, in <= 15 minutes
    of training per seed on a 2-core CPU; reaches about 99.6% (mean over seeds
    0-2, docs/results.md). 197,802 parameters.
    """

    def __init__(self, channels: tuple[int, int] = (32, 64), hidden: int = 128, dropout: float = 0.4,
                 num_classes: int = NUM_CLASSES):
        super().__init__()
        self.channels = channels
        wide, wider = channels
        self.conv1 = nn.Conv2d(1, wide, kernel_size=3, bias=False)  # batch norm supplies the biases
        self.norm1 = nn.BatchNorm2d(wide)
        self.conv2 = nn.Conv2d(wide, wide, kernel_size=3, bias=False)
        self.norm2 = nn.BatchNorm2d(wide)
        self.conv3 = nn.Conv2d(wide, wider, kernel_size=3, bias=False)
        self.norm3 = nn.BatchNorm2d(wider)
        self.conv4 = nn.Conv2d(wider, wider, kernel_size=3, bias=False)
        self.norm4 = nn.BatchNorm2d(wider)
        self.fc = nn.Linear(wider * 4 * 4, hidden, bias=False)
        self.norm5 = nn.BatchNorm1d(hidden)
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(hidden, num_classes)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.norm1(self.conv1(images)))  # (B, 1, 28, 28) -> (B, 32, 26, 26)
        x = F.relu(self.norm2(F.max_pool2d(self.conv2(x), 2)))  # -> (B, 32, 24, 24) -> (B, 32, 12, 12)
        x = F.relu(self.norm3(self.conv3(x)))  # -> (B, 64, 10, 10)
        x = F.relu(self.norm4(F.max_pool2d(self.conv4(x), 2)))  # -> (B, 64, 8, 8) -> (B, 64, 4, 4)
        x = F.relu(self.norm5(self.fc(x.permute(0, 2, 3, 1).flatten(1))))  # (B, 1024) -> (B, 128)
        return self.out(self.dropout(x))  # (B, 10) logits
