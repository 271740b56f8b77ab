"""mnistlab: train, evaluate and compare neural networks on MNIST-format data.

    import mnistlab as ml
    ml.list_models()                                   # ['ann', 'cnn', 'logreg', 'lenet5', 'cnn-fast', 'cnn-strong']
    run = ml.compare(["ann", "cnn"], seeds=2, epochs=1, limit_train=3000)
    print(run.table())                                 # accuracy with intervals, and whether the gap is significant
    model = ml.load(run.checkpoints["cnn"][0])
    model.predict(ml.load_dataset("mnist").test_images[:5])

The names below are the public API (see docs/api.md); they load on first use, so
`import mnistlab` itself is instant and imports neither PyTorch nor anything else.
"""

from mnistlab.common.version import __version__  # noqa: F401  (the package version)

__all__ = ["Classifier", "Dataset", "MnistlabError", "Run", "TrainedModel", "compare", "create_model",
           "list_models", "load", "load_dataset", "preprocess", "runtime", "train"]


def __getattr__(name: str):
    if name == "MnistlabError":
        from mnistlab.common.errors import MnistlabError

        return MnistlabError
    if name in __all__:
        from mnistlab import api

        return getattr(api, name)
    raise AttributeError(f"module 'mnistlab' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
