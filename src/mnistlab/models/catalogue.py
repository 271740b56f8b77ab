"""The built-in models as data: name, parameters, one-line summary and training recipe, without PyTorch.

The command line lists and checks model names from here, so `mnistlab --help` and
`mnistlab models` start without importing PyTorch; `models.zoo` registers each
network with its recipe from here, and the tests check every entry against the
network it describes (its parameter count and its docstring's first line).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class CatalogueEntry:
    """One built-in model as the command line shows it."""

    name: str
    parameters: int  # trainable parameters of the network `build_model(name)` returns
    summary: str  # the first line of its class docstring
    recipe: dict = field(default_factory=dict)  # TrainConfig fields it trains with unless the user says otherwise


BUILT_IN = {entry.name: entry for entry in (
    CatalogueEntry("ann", 109_386, "The study's fully connected network: 784 -> 128 -> 64 -> 10, ReLU, "
                                   "109,386 parameters."),
    CatalogueEntry("cnn", 121_930, "The study's small CNN: two 3x3 conv + 2x2 max-pool blocks (32, 64 channels), "
                                   "dense 64, 121,930 parameters."),
    CatalogueEntry("logreg", 7_850, "Multinomial logistic regression (one linear layer, 784 -> 10), the linear "
                                    "baseline; 7,850 parameters."),
    CatalogueEntry("lenet5", 61_706, "LeNet-5 as laid out by LeCun et al. 1998: conv 6@5x5, pool, conv 16@5x5, "
                                     "pool, conv 120@5x5, 84, 10."),
    CatalogueEntry("cnn-fast", 12_858, "A speed recipe: the study's CNN shape, 16 and 32 channels, batch norm, a "
                                       "one-cycle schedule, 2 epochs.", recipe={
        # Batch 192 with the peak rate scaled by 1.5 reaches batch 128's accuracy in about a tenth less time
        # (fewer, fuller steps for the 2-core CPU); batch 256 drops seeds below 99%.
        "epochs": 2, "batch_size": 192, "learning_rate": 1.5e-2,  # peak rate of the one-cycle schedule
        "schedule": "onecycle", "warmup_fraction": 0.2,
    }),
    CatalogueEntry("cnn-strong", 197_802, "A modern small CNN: 32-32 and 64-64 channel 3x3 conv pairs, batch norm, "
                                          "dropout, augmentation, one cycle.", recipe={
        "epochs": 15, "batch_size": 128, "learning_rate": 3e-3,  # peak rate of the one-cycle schedule
        "schedule": "onecycle", "warmup_fraction": 0.2, "augment": "shift-rotate",
    }),
)}
