"""Write docs/tutorial.ipynb from the cells below and execute it, so that it is stored with its
outputs (plots visible on a code host).

    LENET5_DATA=../shared/data/mnist python scripts/make_tutorial.py

tests/test_tutorial.py executes the stored notebook again, top to bottom, in CI.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "docs" / "tutorial.ipynb"

CELLS: list[tuple[str, str]] = [
    (
        "md",
        """# LeNet-5 on handwritten digits, step by step

This notebook tells the story of the classic tutorial *Convolutional Neural Network for
Handwritten Digits Recognition* with the `lenet5` package: load MNIST, try softmax regression,
build LeNet-5 layer by layer, train it with gradient descent, then Adam, then dropout, compare,
and look inside the trained network.

It runs top to bottom in about a minute on two CPU cores. To stay that quick it trains each
model for **one epoch** where the tutorial trains 40 or 50; the figures of the full-length
runs, measured with `lenet5 experiments`, are quoted along the way
([docs/study/report.md](study/report.md)). Set `LENET5_DATA` to a folder holding the four
MNIST files, or let the package download them.""",
    ),
    (
        "code",
        """import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch

import lenet5
from lenet5.config import TrainConfig

torch.manual_seed(0)
runs = Path(tempfile.mkdtemp(prefix="lenet5-tutorial-"))  # every run of this notebook goes here
EPOCHS = 1  # the tutorial: 40 (LeNet-5) and 50 (softmax regression)""",
    ),
    (
        "md",
        """## 1. The data and its split

MNIST has 60,000 training images and 10,000 test images of 28x28 gray pixels. As in the
tutorial, the first 5,000 training images are kept apart as the **validation** split, used to
choose settings; the model trains on the other 55,000, and the test split is only measured.""",
    ),
    (
        "code",
        """splits = lenet5.load_splits(progress=False)
for name in ("train", "val", "test"):
    split = getattr(splits, name)
    shape = tuple(split.images.shape[1:])
    print(f"{name:>5}: {len(split):>6} images {shape} {split.images.dtype}, "
          f"labels {torch.bincount(split.labels).tolist()}")""",
    ),
    ("md", "A look at the first training images, white ink on black as MNIST stores them:"),
    (
        "code",
        """fig, axes = plt.subplots(2, 10, figsize=(10, 2.3))
for ax, image, label in zip(axes.ravel(), splits.train.images, splits.train.labels):
    ax.imshow(image, cmap="gray")
    ax.set_title(int(label))
    ax.axis("off")
plt.show()""",
    ),
    (
        "md",
        """## 2. A baseline: softmax regression

One linear layer from the 784 pixels to 10 scores, trained with plain gradient descent
(learning rate 0.01, batches of 100). `fit` trains, evaluates after every epoch, and writes
checkpoints, TensorBoard events and `metrics.jsonl` into the run directory.""",
    ),
    (
        "code",
        """def train(name, **settings):
    config = TrainConfig(epochs=EPOCHS, **settings)
    summary = lenet5.fit(config, splits, runs / name, echo=lambda line: None)
    print(f"{name}: test accuracy {summary['test_accuracy']:.2%} after "
          f"{summary['epochs']} epoch(s), {summary['train_seconds']:.1f} s of training")
    return summary

results = {
    "softmax-gd": train("softmax-gd", model="softmax", optimizer="sgd", lr=0.01, batch_size=100)
}""",
    ),
    (
        "md",
        """The tutorial reaches 91.9% after 50 epochs; our full-length run gives 91.82%. A linear
model cannot do much better: it sees each pixel on its own.

## 3. LeNet-5, layer by layer

Two convolution + max-pooling stages find strokes and their combinations, then three fully
connected layers decide. The table follows one image through the network.""",
    ),
    (
        "code",
        """from lenet5.summary import format_table, layer_table

model = lenet5.build_model("lenet5")
print(format_table(layer_table(model)))
print(f"\\n{lenet5.count_parameters(model):,} parameters")""",
    ),
    (
        "md",
        """conv1 (5x5, 6 filters, SAME padding) keeps 28x28; pooling halves it to 14x14; conv2
(5x5, 16 filters, VALID) gives 10x10, pooled to 5x5; 16 x 5 x 5 = 400 features feed FC 120,
FC 84 and the 10 output scores: 61,706 parameters, as in the tutorial.

## 4. Training: gradient descent, Adam, dropout

The tutorial's three runs, with batches of 128 and learning rate 0.001, reshuffled every
epoch. Plain gradient descent moves slowly at this learning rate; Adam adapts each weight's
step; dropout (keep 0.75 before the first FC layer) regularises.""",
    ),
    (
        "code",
        """results["lenet5-sgd"] = train("lenet5-sgd", optimizer="sgd")
results["lenet5-adam"] = train("lenet5-adam", optimizer="adam")
results["lenet5-adam-dropout"] = train("lenet5-adam-dropout", optimizer="adam", dropout=0.25)""",
    ),
    (
        "md",
        """## 5. Learning curves and the comparison table

`fit` logs every batch's loss to TensorBoard (`tensorboard --logdir` on the run folder shows
it) and every epoch's figures to `metrics.jsonl`; here the events are read back directly.""",
    ),
    (
        "code",
        """from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

fig, ax = plt.subplots(figsize=(6, 3.5))
for name in results:
    events = EventAccumulator(str(runs / name))  # the TensorBoard events fit() wrote
    events.Reload()
    losses = [e.value for e in events.Scalars("train/loss")]
    smooth = np.convolve(losses, np.ones(20) / 20, mode="valid")  # mean of 20 batches
    ax.plot(range(20, len(losses) + 1), smooth, label=name)
ax.set(xlabel="batch", ylabel="training loss", yscale="log")
ax.legend()
plt.show()

# test accuracy of the full-length runs (docs/study/report.md) and of the tutorial
full = {"softmax-gd": "91.82%", "lenet5-sgd": "95.34%", "lenet5-adam": "99.08%",
        "lenet5-adam-dropout": "99.16%"}
tutorial = {"softmax-gd": "91.9%", "lenet5-sgd": "95.7%", "lenet5-adam": "99.0%",
            "lenet5-adam-dropout": "98.8%"}
here = f"here, {EPOCHS} epoch(s)"
print(f"{'run':<20} {here:>16} {'full length':>12} {'tutorial':>9} {'s/epoch':>8}")
for name, summary in results.items():
    print(f"{name:<20} {summary['test_accuracy']:>16.2%} {full[name]:>12} {tutorial[name]:>9} "
          f"{summary['seconds_per_epoch']:>8.1f}")""",
    ),
    (
        "md",
        """One epoch already orders the optimizers as 40 do: Adam far ahead of plain gradient
descent at the same learning rate. Over 40 epochs, dropout ends slightly ahead of plain Adam
here (99.16% against 99.08%), where the tutorial saw it slightly behind.

## 6. Inside the trained network

`lenet5.inference.explain` returns what each layer computes for one image (after ReLU) and a
saliency map: integrated gradients of the answer's score from a black image (the same numbers as
Captum's). Red pixels raised the score, blue ones lowered it.""",
    ),
    (
        "code",
        """model, _ = lenet5.load_model(runs / "lenet5-adam-dropout")
image = splits.test.images[0].numpy()
inside = lenet5.explain(model, image)
print(f"read as {inside.digit} ({inside.probabilities[inside.digit]:.1%})")

fig, axes = plt.subplots(5, 16, figsize=(16, 5.5))
for ax in axes.ravel():
    ax.axis("off")
axes[0, 0].imshow(image, cmap="gray")
axes[0, 0].set_title("input")
bound = np.abs(inside.saliency).max()
axes[0, 1].imshow(inside.saliency, cmap="bwr", vmin=-bound, vmax=bound)
axes[0, 1].set_title("saliency")
for row, (name, maps) in enumerate(inside.activations.items(), start=1):
    for k, fmap in enumerate(maps):
        axes[row, k].imshow(fmap, cmap="gray")
    axes[row, 0].set_title(f"{name} {maps.shape}", loc="left")
plt.show()""",
    ),
    (
        "md",
        """conv1's six maps respond to edges of given orientations; after pooling, conv2 combines
them into sixteen maps of stroke parts, pooled to 5x5 before the fully connected layers.

## 7. The most confident mistakes""",
    ),
    (
        "code",
        """probabilities = lenet5.predict(model, splits.test.images).numpy()
labels = splits.test.labels.numpy()
predicted = probabilities.argmax(1)
wrong = np.flatnonzero(predicted != labels)
wrong = wrong[np.argsort(-probabilities[wrong, predicted[wrong]])][:10]
print(f"{len(np.flatnonzero(predicted != labels))} of {len(labels)} test images misread")
fig, axes = plt.subplots(1, 10, figsize=(12, 1.8))
for ax, k in zip(axes, wrong):
    ax.imshow(splits.test.images[k], cmap="gray")
    sure = probabilities[k, predicted[k]]
    ax.set_title(f"{labels[k]} read {predicted[k]}\\n{sure:.0%}", fontsize=8)
    ax.axis("off")
plt.show()""",
    ),
    (
        "md",
        """## 8. A photo of a handwritten digit

A photo is not an MNIST image: dark ink on light paper, uneven light, any size. The
preprocessing does what was done to MNIST: invert, remove the lighting, cut the ink out, fit
it to 20 pixels and centre it by mass in 28x28.""",
    ),
    (
        "code",
        """from lenet5.inference.predict import predict_image
from lenet5.data.preprocess import load_image, preprocess

photo = load_image("examples/seven.jpg")  # the notebook runs in docs/
seen = preprocess(photo)
answer = predict_image(model, photo)
fig, (left, right) = plt.subplots(1, 2, figsize=(5, 2.5))
left.imshow(photo)
left.set_title("the photo")
right.imshow(seen, cmap="gray")
right.set_title(f"the model's input: {answer.digit} ({answer.probabilities[answer.digit]:.0%})")
for ax in (left, right):
    ax.axis("off")
plt.show()""",
    ),
    (
        "md",
        """## 9. Export to ONNX

The trained network as an ONNX file runs anywhere ONNX Runtime does, without PyTorch; here we
check that it gives the same digits.""",
    ),
    (
        "code",
        """from lenet5.inference.export import export_onnx
from lenet5.inference.engines import OnnxModel
from lenet5.inference.predict import probabilities as read

export_onnx(model, runs / "lenet5.onnx")
onnx_model = OnnxModel(runs / "lenet5.onnx")
inputs = splits.test.images[:1000].numpy()
same = (read(onnx_model, inputs).argmax(1) == read(model, inputs).argmax(1)).mean()
size = (runs / "lenet5.onnx").stat().st_size / 1000
print(f"{size:.0f} KB; same digit as PyTorch on {same:.1%} of 1,000 test images")""",
    ),
    (
        "md",
        """## Where to go next

- `lenet5 experiments` runs the whole study at full length (40 and 50 epochs) and writes the
  report quoted above; `lenet5 train --recipe best` reaches 99.6%.
- `lenet5 serve` opens a page to draw digits on, with these layer maps drawn live.
- The bundled model (`lenet5 predict IMAGE`) was trained to read handwriting from outside MNIST
  ([docs/model-card.md](model-card.md)).""",
    ),
]


def build() -> nbformat.NotebookNode:
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    notebook.cells = [
        nbformat.v4.new_markdown_cell(text) if kind == "md" else nbformat.v4.new_code_cell(text)
        for kind, text in CELLS
    ]
    return notebook


def execute(notebook: nbformat.NotebookNode, timeout: int = 600) -> float:
    """Run every cell in a fresh kernel (raises on the first error); returns the seconds."""
    started = time.perf_counter()
    # The kernel runs in docs/: a relative LENET5_DATA means the caller's directory, not that.
    env = dict(os.environ)
    if env.get("LENET5_DATA"):
        env["LENET5_DATA"] = str(Path(env["LENET5_DATA"]).resolve())
    client = NotebookClient(notebook, timeout=timeout, kernel_name="python3")
    client.execute(cwd=str(ROOT / "docs"), env=env)
    return time.perf_counter() - started


def main() -> None:
    notebook = build()
    seconds = execute(notebook)
    nbformat.write(notebook, str(NOTEBOOK))
    print(f"wrote {NOTEBOOK} ({seconds:.0f} s to execute)")


if __name__ == "__main__":
    main()
