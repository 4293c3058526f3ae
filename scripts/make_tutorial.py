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
        """*What to notice:* each image is 28x28 gray levels, the digit white on black, fitted into
the central 20x20 pixels and centred by its mass; the title is its label. The same digit is
written in many ways (1s slant, 4s close or stay open): that variety is what the model must
learn.

## 2. A baseline: softmax regression, one epoch by hand

Softmax regression is one linear layer: each of the 10 digits gets a score, a **logit**, that is
a weighted sum of the 784 pixels plus a bias. **Softmax** turns the ten logits into
probabilities (exponentiate, divide by the sum). The **cross-entropy** loss is minus the log of
the probability given to the right digit, the same as comparing the probabilities with the
label written **one-hot** (a 1 for the right digit, 0 elsewhere): it is 0 when the model is
sure and right, and large when it is sure and wrong.

Before any training the tutorial's model has all weights at zero: every logit is 0, every
digit gets probability 0.1, and `argmax` picks the first, 0. Its accuracy is the share of
zeros in the test split:""",
    ),
    (
        "code",
        """import torch.nn.functional as F
from lenet5.data.mnist import batches

softmax = lenet5.build_model("softmax")  # 784 -> 10, zero weights as in the tutorial
before = lenet5.evaluate(softmax, splits.test)
zeros = (splits.test.labels == 0).float().mean().item()
print(f"accuracy before training: {before['accuracy']:.1%} (share of 0s in the test split: "
      f"{zeros:.1%}); loss {before['loss']:.3f} = ln 10 = {np.log(10):.3f}")""",
    ),
    (
        "md",
        """**Gradient descent** then moves every weight a small step against the gradient of the
loss; the **learning rate** (0.01) sets the step. The gradient is measured on a **batch** of
100 images at a time, and one pass over the 55,000 training images, shuffled, is an
**epoch**. Here is that epoch, written out:""",
    ),
    (
        "code",
        """learning_rate = 0.01
generator = torch.Generator().manual_seed(0)  # the shuffle of this epoch
for x, y in batches(splits.train, 100, generator):  # x: (100, 1, 28, 28) in [0, 1], y: (100,)
    logits = softmax(x)                  # (100, 10) scores
    loss = F.cross_entropy(logits, y)    # softmax, then minus the log-probability of y
    softmax.zero_grad()
    loss.backward()                      # d loss / d weight, for every weight
    with torch.no_grad():
        for weight in softmax.parameters():
            weight -= learning_rate * weight.grad  # one step of gradient descent
after = lenet5.evaluate(softmax, splits.test)
print(f"after one epoch by hand: accuracy {after['accuracy']:.2%}, loss {after['loss']:.3f}")""",
    ),
    (
        "md",
        """`lenet5.fit` runs the same loop (with `torch`'s optimizers, and Adam and the rest), and
around it evaluates after every epoch and writes checkpoints, TensorBoard events and
`metrics.jsonl` into a run directory. The same model, trained by `fit`:""",
    ),
    (
        "code",
        """def train(name, **settings):
    config = TrainConfig(epochs=EPOCHS, **settings)
    summary = lenet5.fit(config, splits, runs / name, echo=lambda line: None)
    print(f"{name}: test accuracy {summary['test_accuracy']:.2%} after "
          f"{summary['epochs']} epoch(s), training loss {summary['train_loss']:.2f}, "
          f"{summary['train_seconds']:.1f} s of training")
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
        """import inspect

from lenet5.models import LeNet5

print(inspect.getsource(LeNet5))""",
    ),
    (
        "md",
        """The tutorial's TensorFlow code says `padding="SAME"` for conv1 and `"VALID"` for conv2.
In PyTorch, SAME for a 5x5 kernel is `padding=2` (two pixels of zeros around the image, so
the output keeps 28x28); VALID is `padding=0` (the kernel stays inside the image, and 28 - 5 +
1 = 24, or here 14 - 5 + 1 = 10). Each layer's parameters are its weights plus its biases:""",
    ),
    (
        "code",
        """from lenet5.summary import format_table, layer_table

model = lenet5.build_model("lenet5")
print(format_table(layer_table(model)))
counts = {
    "conv1": 5 * 5 * 1 * 6 + 6,     # 6 kernels of 5x5 over 1 channel, 6 biases
    "conv2": 5 * 5 * 6 * 16 + 16,   # 16 kernels of 5x5 over 6 channels
    "fc1": 400 * 120 + 120,
    "fc2": 120 * 84 + 84,
    "fc3": 84 * 10 + 10,
}
print("\\n" + " + ".join(f"{name} {n:,}" for name, n in counts.items()),
      f"= {sum(counts.values()):,} = {lenet5.count_parameters(model):,}")""",
    ),
    (
        "md",
        """conv1 (5x5, 6 filters, SAME padding) keeps 28x28; pooling halves it to 14x14; conv2
(5x5, 16 filters, VALID) gives 10x10, pooled to 5x5; 16 x 5 x 5 = 400 features feed FC 120,
FC 84 and the 10 output scores: 61,706 parameters, as in the tutorial. The architecture is
LeCun, Bottou, Bengio and Haffner's (1998), made to read handwritten digits on bank cheques.

**A convolution, by hand.** A 5x5 kernel slides over the image; at each position the output is
the sum of the 25 pixels under it, each times the kernel's weight there. A kernel of -1s on the
left and +1s on the right answers where ink begins to the right: a vertical edge. Max-pooling
then keeps the largest of each 2x2 block, halving the map.""",
    ),
    (
        "code",
        """digit = splits.test.images[:1].float()[:, None] / 255  # (1, 1, 28, 28) in [0, 1]
edge = torch.tensor([[-1.0, -1.0, 0.0, 1.0, 1.0]] * 5) / 10  # (5, 5): a vertical edge
edges = F.conv2d(digit, edge[None, None], padding=2)  # SAME: (1, 1, 28, 28)
pooled = F.max_pool2d(edges, 2)  # (1, 1, 14, 14)

row, col = divmod(int(edges.abs().argmax()), 28)  # the strongest answer, computed by hand
patch = F.pad(digit, (2, 2, 2, 2))[0, 0, row : row + 5, col : col + 5]
print(f"at row {row}, column {col}: by hand {(patch * edge).sum():.4f}, "
      f"F.conv2d {edges[0, 0, row, col]:.4f}")

fig, axes = plt.subplots(1, 4, figsize=(11, 2.8))
axes[0].imshow(digit[0, 0], cmap="gray")
axes[0].set_title("the digit (28x28)")
for ax, values, title in ((axes[1], edge, "the kernel (5x5)"),
                          (axes[2], edges[0, 0], "the output (28x28)"),
                          (axes[3], pooled[0, 0], "after max-pooling (14x14)")):
    bound = float(values.abs().max())
    shown = ax.imshow(values, cmap="bwr", vmin=-bound, vmax=bound)
    fig.colorbar(shown, ax=ax, fraction=0.046)
    ax.set_title(title)
for ax in axes:
    ax.axis("off")
plt.show()""",
    ),
    (
        "md",
        """*What to notice:* the output is red where ink begins when moving right and blue where
it ends: the kernel found the digit's left and right edges. Pooling keeps the strongest answer
of each 2x2 block at half the size. conv1 learns six such kernels from the data instead of
being given them (section 6).""",
    ),
    (
        "md",
        """## 4. Training: gradient descent, Adam, dropout

The tutorial's three runs, with batches of 128 and learning rate 0.001, reshuffled every
epoch. Plain gradient descent moves slowly at this learning rate; Adam adapts each weight's
step; dropout regularises: in training it zeroes each input of the first FC layer with
probability 0.25, which is the tutorial's `keep_prob = 0.75` (the share kept) written the
PyTorch way (the share dropped). `model.eval()` switches dropout off to read; the tutorial's
code left it on when it measured test accuracy, so its dropout figure reads a noisier model.""",
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
ax.set(xlabel="batch", ylabel="training loss (mean of 20 batches)", yscale="log")
ax.legend()
plt.show()
print("What to notice: each batch's loss in the first epoch, read back from the TensorBoard "
      "events. Plain gradient descent stays near ln 10 = 2.30; the others fall.\\n")

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
        """*What to notice:* one epoch already orders the optimizers as 40 do. Plain gradient
descent at learning rate 0.001 has hardly started: its training loss is still close to
ln 10 = 2.30, the loss of giving every digit the same probability, so its accuracy is near
chance. Adam, at the same learning rate, scales each weight's step by the size of its recent
gradients and is far ahead.

In the study quoted above, one 40-epoch run each, dropout ended at 99.16% and plain Adam at
99.08%, where the tutorial saw dropout slightly behind: 8 images in 10,000, no more than one
seed's luck. To rank them takes several seeds.

**Learning over time.** Both were trained again for 40 epochs with three seeds each
(`lenet5 experiments --only lenet5-adam lenet5-adam-dropout --seeds 3`, 2026-12-04, two CPU
cores); their `metrics.jsonl` files are shipped in `docs/study/metrics/` and read here, not
retrained. Error rates per epoch, on the training images as trained and on the validation
split:""",
    ),
    (
        "code",
        """import json

curves = {
    path.stem: [json.loads(line) for line in path.read_text().splitlines()]
    for path in sorted(Path("study/metrics").glob("*.jsonl"))
}
fig, axes = plt.subplots(1, 2, figsize=(11, 3.8), sharey=True)
for ax, config in zip(axes, ("lenet5-adam", "lenet5-adam-dropout")):
    for seed, colour in zip(range(3), ("tab:blue", "tab:orange", "tab:green")):
        rows = curves[f"{config}-s{seed}"]
        epochs = [r["epoch"] for r in rows]
        ax.plot(epochs, [100 * (1 - r["train_accuracy"]) for r in rows], color=colour,
                linestyle="--", label=f"seed {seed}, training")
        ax.plot(epochs, [100 * (1 - r["val_accuracy"]) for r in rows], color=colour,
                label=f"seed {seed}, validation")
    ax.set(title=config, xlabel="epoch", yscale="log")
    ax.grid(alpha=0.3)
axes[0].set_ylabel("error (%)")
axes[1].legend(fontsize=7)
plt.show()
for config in ("lenet5-adam", "lenet5-adam-dropout"):
    final = [100 * curves[f"{config}-s{seed}"][-1]["val_accuracy"] for seed in range(3)]
    print(f"{config:<20} validation accuracy after 40 epochs, seeds 0-2: "
          + ", ".join(f"{v:.2f}%" for v in final)
          + f" (mean {np.mean(final):.2f}%, spread {max(final) - min(final):.2f} points)")""",
    ),
    (
        "md",
        """*What to notice:* without dropout the training error falls towards zero while the
validation error stops falling after about ten epochs: the network learns its training images
by heart, **overfitting**, and more epochs buy nothing on new images. Dropout keeps the
training error higher (it trains a thinned network each step) and the validation error lower.
Over three seeds the difference holds on every seed (test accuracy: plain Adam 98.99-99.07%,
dropout 99.15-99.28%), which one run could not show.

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
shown = axes[0, 1].imshow(inside.saliency, cmap="bwr", vmin=-bound, vmax=bound)
axes[0, 1].set_title("saliency")
fig.colorbar(shown, ax=axes[0, 1], fraction=0.046, pad=0.04)  # red raised the score
for row, (name, maps) in enumerate(inside.activations.items(), start=1):
    for k, fmap in enumerate(maps):  # a layer's maps share one scale: its colour bar
        shown = axes[row, k].imshow(fmap, cmap="gray", vmin=0, vmax=maps.max())
    axes[row, 0].set_title(f"{name} {maps.shape}", loc="left")
    fig.colorbar(shown, ax=axes[row].tolist(), fraction=0.01, pad=0.01)
plt.show()""",
    ),
    (
        "md",
        """*What to notice:* the maps of one layer share a scale (its colour bar, after ReLU: 0 is
black), so a dark map is one that barely answers this digit. conv1's six maps respond to edges of
given orientations; after pooling, conv2 combines them into sixteen maps of stroke parts,
pooled to 5x5 before the fully connected layers. The saliency's colour bar is in the units of
the answer's score.

The six kernels conv1 learned, above the maps they make of this digit:""",
    ),
    (
        "code",
        """kernels = model.get_submodule("conv1").weight.detach()[:, 0]  # (6, 5, 5)
fig, axes = plt.subplots(2, 6, figsize=(11, 4))
bound = float(kernels.abs().max())
for k in range(6):
    shown = axes[0, k].imshow(kernels[k], cmap="bwr", vmin=-bound, vmax=bound)
    conv1 = inside.activations["conv1"]
    mapped = axes[1, k].imshow(conv1[k], cmap="gray", vmin=0, vmax=conv1.max())
    axes[0, k].set_title(f"kernel {k}")
for ax in axes.ravel():
    ax.axis("off")
fig.colorbar(shown, ax=axes[0].tolist(), fraction=0.02, label="weight")
fig.colorbar(mapped, ax=axes[1].tolist(), fraction=0.02, label="conv1 after ReLU")
plt.show()""",
    ),
    (
        "md",
        """*What to notice:* kernels with a red side and a blue side are edge detectors like the
one written by hand above, at other angles; their maps light up along the strokes of that
direction.

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
        """*What to notice:* the titles give the true digit, what was read and how sure the model
was. After one epoch many of these are digits a person would hesitate over too (a 4 closed
like a 9, a 7 with a loop); the model's certainty is no proof of being right, which is why the
bundled model's probabilities are calibrated and it can answer "not a digit"
([model-card.md](model-card.md)).""",
    ),
    (
        "md",
        """## Beyond the tutorial

The tutorial ends with a trained network. What follows is this project's own: reading photos,
running without PyTorch, a model that says "not a digit", and whole numbers.

### A photo of a handwritten digit

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
left.imshow(photo, cmap="gray")
left.set_title("the photo")
right.imshow(seen, cmap="gray")
right.set_title(f"the model's input: {answer.digit} ({answer.probabilities[answer.digit]:.0%})")
for ax in (left, right):
    ax.axis("off")
plt.show()""",
    ),
    (
        "md",
        """*What to notice:* the photo's paper is gray and unevenly lit and the digit is dark;
the model's input is what MNIST's digits look like, white ink on black, cut out, fitted into
20x20 and centred by mass. Every image given to `lenet5 predict`, the page or the API goes
through this same step.

### Export to ONNX

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
        """### The bundled model: other hands, and "not a digit"

The model that ships inside the package was trained to read people's handwriting from outside
MNIST, and to say so when what it is shown is not a digit: it reads each image at three scales
and averages its answers, its probabilities are calibrated, and under 0.5 for its best digit
the answer is "not a digit", with the closest digit beside it ([model-card.md](model-card.md)).""",
    ),
    (
        "code",
        """bundled, _ = lenet5.load_model()  # no path: the bundled model
for path in ("examples/seven.jpg", "examples/letter-a.png"):
    answer = predict_image(bundled, load_image(path))
    said = "not a digit" if answer.refused else answer.digit
    print(f"{path}: {said} (closest {answer.digit}, {answer.probabilities[answer.digit]:.0%})")""",
    ),
    (
        "md",
        """### Whole numbers

People write numbers, and their digits touch. `read_number` (behind `lenet5 predict --multi`)
reads a row: ink with paper around it that reads as one digit is one digit, and a group of
touching digits goes to the row readers, LeNet-5's layers swept along the row as the 1998 paper
did, trained on rows of MNIST training digits
([predicting.md](predicting.md#whole-numbers---multi)). Here five test digits are set touching,
as a hand might write them.""",
    ),
    (
        "code",
        """from matplotlib.patches import Rectangle
from lenet5.data.rows import ink_crop, make_row
from lenet5.inference.numbers import read_number
from lenet5.inference.sweep import load_row_reader

picks = [3, 2, 1, 18, 4]  # test digits 0, 1, 2, 3 and 4
row = make_row([ink_crop(splits.test.images[k].numpy()) for k in picks],
               [int(splits.test.labels[k]) for k in picks], np.random.default_rng(1), touching=True)
reading = read_number(bundled, row.image, load_row_reader())
fig, ax = plt.subplots(figsize=(7, 2.2))
ax.imshow(row.image, cmap="gray")
for digit in reading.digits:
    x0, y0, x1, y1 = digit.box
    ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, edgecolor="tab:orange"))
    ax.text(x0, y0 - 2, str(digit.digit), color="tab:orange")
ax.set_title(f"written {row.number}, read {reading.closest}")
ax.axis("off")
plt.show()""",
    ),
    (
        "md",
        """*What to notice:* each box is the ink the reader gave that digit; where two digits
touch, the boxes overlap. On 200 such rows of MNIST test digits 91% are read exactly, and
on rows of UCI digits (other writers) 78.5%: touching digits are far from solved
(`python benchmarks/whole_numbers.py bundled`).""",
    ),
    (
        "md",
        """- `lenet5 experiments` runs the whole study at full length (40 and 50 epochs) and
  writes the report quoted above; `lenet5 train --recipe best` reaches 99.6%.
- `lenet5 serve` opens a page to draw a digit or a whole number on, with these layer maps
  drawn live, and learns from your corrections.
- `lenet5 evaluate --plots DIR` draws a model's reliability diagram and risk-coverage curve.""",
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
