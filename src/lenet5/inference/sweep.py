"""The row readers (`lenet5.models.RowReader`): loading them, and reading touching digits.

`read_number` hands it each group of ink that the digit model does not read as one digit. It
answers the group's digits left to right (greedy CTC decoding), each with the probabilities of
its step and where along the group it was read; its "not a digit" class is spread evenly over
the ten digits, as the digit model answers a non-digit. The group is read in six views, in
one batch: a little smaller and larger than the digits' height suggests, drawn out across
(VIEWS), each as written and with its strokes thinned. A row written larger or smaller than
its height suggests, or with a bolder pen than MNIST's, is still read as its own, and digits
that overlap a lot are drawn apart. The readings vote: the digits that all the views find
likeliest together (the sum of their CTC log-likelihoods, and a bonus for each digit) are the
answer. The bundled readers are three (`RowReaders`), trained apart, and each reads all six
views: eighteen readings vote.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from lenet5.data.rows import INPUT_HEIGHT, INPUT_PAD, row_input
from lenet5.inference.bundled import WEIGHTS_DIR

if TYPE_CHECKING:
    import torch

    from lenet5.models import RowReader, RowReaders

# The bundled row readers, which vote: LeNet-5's widths started from the bundled digit model
# (reads other hands' rows better, and places each digit on its ink), and two wider ones
# started afresh, seeds 2 and 3, on 150,000 rows for 14 epochs (read MNIST's rows better).
BUNDLED_ROW_READERS = (
    WEIGHTS_DIR / "lenet5-rows.pt",
    WEIGHTS_DIR / "lenet5-rows-wide-seed2.pt",
    WEIGHTS_DIR / "lenet5-rows-wide-seed3.pt",
)
# The views of a group read (each as written and thinned): the digits' height taken as the
# first times its estimate, the row drawn out across by the second.
VIEWS = ((0.85, 1.0), (1.15, 1.0), (1.0, 1.3))
ROW_READER_FORMAT = "lenet5-row-reader"  # lenet5.training.rows.save_row_reader's files
# Each digit a reading holds adds this many nats per view to its summed log-likelihood in the
# vote (an insertion bonus, as speech decoders give each word): the readers drop digits far more
# often than they add one (16 of the 18 touching MNIST-test dev rows of 400 that the readers
# bundled before miscounted lacked a digit).
# Chosen for the bundled readers on 600 touching rows of MNIST validation digits: 1, 1.5, 2,
# 2.5, 3, 3.5 read 87.5, 88.2, 89.0, 89.7, 89.7, 88.7% of them, the count right in 95.7, 96.5,
# 97.2, 97.8, 97.7, 96.7% (docs/row-readers.md).
DIGIT_BONUS = 2.5
# A file's reader widths, from its config, and what they are when its config has none.
LENET_WIDTHS = {"conv1": 6, "conv2": 16, "features": 120}
MAX_WIDTH = 4096  # wider than this, a file's reader is not one of ours (and would fill memory)


def load_row_reader(path: str | Path | None = None) -> RowReader | RowReaders:
    """The row reader saved at `path`, in eval mode; None: the bundled ones, which vote
    (BUNDLED_ROW_READERS). Only tensors and plain values are read from a file (torch.load with
    weights_only): no code runs."""
    from lenet5.models import RowReaders

    if path is None:
        return RowReaders([_load(p) for p in BUNDLED_ROW_READERS]).eval()
    return _load(Path(path))


def _load(path: Path) -> RowReader:
    import torch

    from lenet5.inference.checkpoint import CheckpointError
    from lenet5.models import RowReader

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError, pickle.UnpicklingError) as exc:
        raise CheckpointError(f"{path}: cannot read the row reader ({exc})") from None
    if not isinstance(state, dict) or state.get("format") != ROW_READER_FORMAT:
        raise CheckpointError(f"{path}: not a lenet5 row reader")
    config = state.get("config")
    if not isinstance(config, dict):
        config = {}
    # (files from before the readers were wider than LeNet-5 hold LeNet-5's widths)
    widths = [config.get(k, d) for k, d in LENET_WIDTHS.items()]
    if not all(isinstance(w, int) and 0 < w <= MAX_WIDTH for w in widths):
        raise CheckpointError(f"{path}: the row reader's widths {widths} are not sizes")
    try:
        model = RowReader(*widths)
        model.load_state_dict(state["model"])
    except (KeyError, RuntimeError) as exc:
        raise CheckpointError(f"{path}: its weights do not fit a row reader ({exc})") from None
    return model.eval()


def sweep_digits(
    reader: RowReader | RowReaders, ink: np.ndarray, height: float
) -> list[tuple[np.ndarray, float]]:
    """A group's ink (h, w), its digits `height` pixels high -> the digits read in it, left to
    right: each one's ten probabilities and its centre column in `ink`."""
    import torch

    from lenet5.data.rows import batch_inputs, thinned
    from lenet5.models import BLANK, GARBAGE, ROW_STEP, row_steps

    inputs = [row_input(ink, height * size, stretch) for size, stretch in VIEWS]
    batch = batch_inputs([x for x, _ in inputs])  # (len(inputs), 1, 28, W)
    with torch.inference_mode():
        log_probs = torch.log_softmax(reader(torch.cat([batch, thinned(batch)])), dim=-1)
    # (as written, then thinned; for each reader of a vote)
    lengths = [row_steps(x.shape[1]) for x, _ in inputs] * (len(log_probs) // len(inputs))
    # the surest view of the winning reading gives each digit's probabilities, the placing
    # view where the digit is (`_agreed`)
    surest, place = _agreed(log_probs, lengths, first_reader=2 * len(inputs))
    probs = log_probs[surest, : lengths[surest]].exp().numpy()  # (T, ROW_CLASSES)
    places = _peaks(log_probs[place, : lengths[place]].exp().numpy())
    scale = inputs[place % len(inputs)][1]  # input columns per ink column
    read = []
    for (_, peak), (_, where) in zip(_peaks(probs), places, strict=True):
        p = probs[peak, :BLANK] / probs[peak, :BLANK].sum()  # (11,) without the blank
        digits = p[:GARBAGE] + p[GARBAGE] / GARBAGE
        # step t sees the input's columns from ROW_STEP * t, INPUT_HEIGHT wide
        centre = (ROW_STEP * where + INPUT_HEIGHT / 2 - INPUT_PAD) / scale
        read.append((digits, centre))
    return read


def _peaks(probs: np.ndarray) -> list[tuple[int, int]]:
    """A view's probabilities (T, ROW_CLASSES) -> its digits read greedily, each with the step
    where it is likeliest."""
    return [
        (label, start + int(probs[start:stop, label].argmax()))
        for label, start, stop in greedy_runs(probs.argmax(axis=1).tolist())
    ]


def _agreed(
    log_probs: torch.Tensor, lengths: list[int], first_reader: int | None = None
) -> tuple[int, int]:
    """Two views (indices into `log_probs`, (V, T, C), the first `lengths` steps of each) that
    read the reading all V views find likeliest together (each distinct greedy reading scored
    by the sum over the V of its CTC log-likelihood, plus DIGIT_BONUS per digit and view): the
    one most sure of it, and the one that places its digits. They are the same view unless
    `first_reader` is given: the first that many views are the first reader's, and the surest
    of them that read the winner places the digits, if any did. The reader started from the
    digit model reads each digit where its ink is; a wider one started afresh may read it a
    step or two off, giving it a neighbour's ink."""
    import torch
    import torch.nn.functional as F

    from lenet5.models import BLANK

    readings = [
        tuple(label for label, _, _ in greedy_runs(p[:n].argmax(dim=1).tolist()))
        for p, n in zip(log_probs, lengths, strict=True)
    ]
    candidates = sorted(set(readings))
    views, n = len(readings), len(candidates)
    targets = [c for _ in range(views) for c in candidates]  # view-major: (V * n,)
    nll = F.ctc_loss(
        log_probs.repeat_interleave(n, dim=0).transpose(0, 1),  # (T, V * n, C)
        torch.tensor([label for t in targets for label in t], dtype=torch.long),
        torch.tensor([length for length in lengths for _ in candidates]),
        torch.tensor([len(t) for t in targets]),
        blank=BLANK,
        reduction="none",
    ).view(views, n)
    nll = torch.nan_to_num(nll, posinf=1e4)  # (a reading longer than a view can hold)
    digits = torch.tensor([len(c) for c in candidates], dtype=nll.dtype)
    best = int((nll.sum(dim=0) - DIGIT_BONUS * views * digits).argmin())
    own = [v for v, reading in enumerate(readings) if reading == candidates[best]]
    first = first_reader if first_reader is not None else views
    surest = min(own, key=lambda v: float(nll[v, best]))
    return surest, min(own, key=lambda v: (v >= first, float(nll[v, best])))


def greedy_runs(best: list[int]) -> list[tuple[int, int, int]]:
    """Greedy CTC decoding of each step's likeliest class: (class, first step, stop) of each
    run of one class that is not the blank, left to right (repeats merged, blanks out)."""
    from lenet5.models import BLANK

    runs = []
    start = 0
    while start < len(best):
        stop = start + 1
        while stop < len(best) and best[stop] == best[start]:
            stop += 1
        if best[start] != BLANK:
            runs.append((best[start], start, stop))
        start = stop
    return runs
