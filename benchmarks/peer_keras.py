"""Peer 1 of the benchmark suite: the tutorial's LeNet-5 ported to Keras 3 on TensorFlow.

Runs in the peer environment (benchmarks/requirements-peers.txt), not the project's, so it reads
the IDX files itself. Trains with `model.fit` (Adam 0.001, batch 128, reshuffled every epoch)
until the test accuracy reaches --target or --max-epochs pass, then measures inference, as
benchmarks/peer_protocol.py says.

    python benchmarks/peer_keras.py DATA_DIR [--max-epochs 15] [--seed 0]
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # no oneDNN/CUDA banners in the output
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import numpy as np
from peer_protocol import argument_parser, report, time_inference, train_to_target


def read_idx(directory: Path, base: str, offset: int) -> np.ndarray:
    """The payload of an IDX file (plain or .gz); `offset` skips its header."""
    path = directory / base
    raw = (
        path.read_bytes()
        if path.exists()
        else gzip.decompress((directory / f"{base}.gz").read_bytes())
    )
    return np.frombuffer(raw, dtype=np.uint8, offset=offset)


def load(directory: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Train (the 55,000 after the first 5,000) and test images as (N, 28, 28, 1) floats."""
    x = read_idx(directory, "train-images-idx3-ubyte", 16).reshape(-1, 28, 28, 1)
    y = read_idx(directory, "train-labels-idx1-ubyte", 8)
    xt = read_idx(directory, "t10k-images-idx3-ubyte", 16).reshape(-1, 28, 28, 1)
    yt = read_idx(directory, "t10k-labels-idx1-ubyte", 8)
    to_float = lambda a: (a / 255.0).astype("float32")  # noqa: E731
    return to_float(x[5000:]), y[5000:].astype("int64"), to_float(xt), yt.astype("int64")


def main() -> None:
    args = argument_parser(__doc__.splitlines()[0]).parse_args()

    import keras
    import tensorflow as tf
    from keras import layers

    keras.utils.set_random_seed(args.seed)
    x, y, xt, yt = load(args.data_dir)
    model = keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            layers.Conv2D(6, 5, padding="same", activation="relu"),
            layers.MaxPooling2D(2),
            layers.Conv2D(16, 5, padding="valid", activation="relu"),
            layers.MaxPooling2D(2),
            layers.Flatten(),
            layers.Dense(120, activation="relu"),
            layers.Dense(84, activation="relu"),
            layers.Dense(10),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.Adam(0.001),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    epochs = train_to_target(
        "keras",
        lambda: model.fit(x, y, batch_size=128, epochs=1, shuffle=True, verbose=0),
        lambda: model.evaluate(xt, yt, batch_size=1000, verbose=0)[1],
        args.max_epochs,
        args.target,
    )
    # Inference through a compiled predict step.
    predict = tf.function(lambda inputs: model(inputs, training=False), reduce_retracing=True)
    report(
        "keras",
        {"keras": keras.__version__, "tensorflow": tf.__version__},
        epochs,
        **time_inference(lambda images: predict(images).numpy(), xt),
    )


if __name__ == "__main__":
    main()
