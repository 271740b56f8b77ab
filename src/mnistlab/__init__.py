"""mnistlab: train, evaluate and compare neural networks on MNIST-format data."""

__version__ = "0.1.0"
