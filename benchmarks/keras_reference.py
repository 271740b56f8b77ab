"""The original study's stack, exactly as described: Keras 3 on TensorFlow, Sequential models.

Reads the same IDX files as mnistlab (through `mnistlab.data.datasets`), trains with
`validation_split=0.1`, Adam, categorical cross-entropy on one-hot labels,
5 epochs, batch 128, and prints one JSON line with accuracies and timings.
Needs the bench extra: `pip install -e .[bench]`.

    python -m benchmarks.keras_reference --seed 0 --out keras.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

PROCESS_START = time.perf_counter()

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from mnistlab.data.datasets import load_dataset  # noqa: E402


def build(name: str):
    """The study's ANN or CNN as a Keras Sequential model."""
    import keras
    from keras import layers

    if name == "ann":
        stack = [layers.Input((28, 28)), layers.Flatten(), layers.Dense(128, activation="relu"),
                 layers.Dense(64, activation="relu"), layers.Dense(10, activation="softmax")]
    else:
        stack = [layers.Input((28, 28, 1)), layers.Conv2D(32, 3, activation="relu"), layers.MaxPooling2D(2),
                 layers.Conv2D(64, 3, activation="relu"), layers.MaxPooling2D(2), layers.Flatten(),
                 layers.Dense(64, activation="relu"), layers.Dense(10, activation="softmax")]
    model = keras.Sequential(stack)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="categorical_crossentropy", metrics=["accuracy"])
    return model


def shaped(name: str, images: np.ndarray) -> np.ndarray:
    """Pixels / 255 as float32; the CNN gets a channel axis (N, 28, 28, 1)."""
    scaled = images.astype("float32") / 255.0
    return scaled[..., None] if name == "cnn" else scaled


def latency_ms(call, sample, repeats: int) -> dict:
    """p50 and p99 of single-image call latency in milliseconds."""
    for _ in range(5):
        call(sample)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call(sample)
        times.append((time.perf_counter() - start) * 1000)
    return {"p50_ms": float(np.percentile(times, 50)), "p99_ms": float(np.percentile(times, 99))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--models", default="ann,cnn")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--latency-repeats", type=int, default=200, help="single-image predict calls to time (0: none, for timing the trainings alone)")
    parser.add_argument("--out", help="write the JSON result here too")
    parser.add_argument("--mixed-bfloat16", action="store_true",
                        help="train and predict under Keras's mixed_bfloat16 policy (bf16 compute, fp32 weights)")
    args = parser.parse_args(argv)
    if args.latency_repeats < 0:
        parser.error(f"--latency-repeats {args.latency_repeats}: give 0 or more")

    import keras

    if args.mixed_bfloat16:
        keras.mixed_precision.set_global_policy("mixed_bfloat16")

    import_seconds = time.perf_counter() - PROCESS_START
    keras.utils.set_random_seed(args.seed)
    dataset = load_dataset("mnist", progress=False)
    result = {"seed": args.seed, "keras": keras.__version__, "import_seconds": import_seconds, "models": {},
              "policy": keras.mixed_precision.global_policy().name}
    for name in args.models.split(","):
        model = build(name)
        x_train, x_test = shaped(name, dataset.train_images), shaped(name, dataset.test_images)
        y_train = keras.utils.to_categorical(dataset.train_labels, 10)
        start = time.perf_counter()
        history = model.fit(x_train, y_train, batch_size=128, epochs=args.epochs, validation_split=0.1, verbose=0)
        train_seconds = time.perf_counter() - start
        start = time.perf_counter()
        probabilities = model.predict(x_test, verbose=0)
        predict_seconds = time.perf_counter() - start
        accuracy = float((probabilities.argmax(1) == dataset.test_labels).mean())
        result["models"][name] = {
            "test_accuracy": accuracy,
            "train_seconds": train_seconds,
            "val_accuracy": [float(value) for value in history.history["val_accuracy"]],
            "predict_images_per_second": len(x_test) / predict_seconds,
            "predict_latency": latency_ms(lambda sample: model.predict(sample, verbose=0), x_test[:1],
                                          args.latency_repeats) if args.latency_repeats > 0 else None,
        }
    result["total_seconds"] = time.perf_counter() - PROCESS_START
    text = json.dumps(result)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as handle:
            handle.write(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
