"""Reading whole numbers: a row's groups of ink, each one digit or read by the row reader.

The row's ink falls into groups with paper between them (`lenet5.data.segment`). A group that
the model reads as one digit (not refused), and not wider than a digit can be, is one digit, so
digits written apart read as they always did. A group that is not one digit (two or more
that touch) goes to the row reader (`lenet5.inference.sweep`: LeNet-5 swept along the row,
trained on rows): it says which digits the group holds, and each of the group's pieces goes
to the digit read nearest it, for the digit's box and input (`predict --multi`, the API, the
page).

Without the row reader, the paper's way (LeCun et al. 1998, V): the group was cut more often
than needed; every run of up to MAX_RUN consecutive pieces shaped like a digit is read by the model,
all in one batch, and the group's reading is the split into runs whose probabilities multiply
to the most (a Viterbi search), each run's probability being its most likely digit's. A run
that is two digits at once gets a low probability from a model that learned to say "not a
digit", so the best path separates them. A digit's shape bounds what a run may be: at least
MIN_HEIGHT and MIN_WIDTH (a speck or a sliver is not a digit), at most MAX_WIDTH.
benchmarks/whole_numbers.py measures both ways.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from lenet5.data.preprocess import SCALE, ImageError, centre_digit, ink_region, to_gray
from lenet5.data.segment import Atoms, SegmentError, cut_row
from lenet5.inference.calibration import REFUSE_BELOW
from lenet5.inference.engines import Model
from lenet5.inference.predict import NOT_A_DIGIT, Prediction, predict_inputs

if TYPE_CHECKING:
    from lenet5.models import RowReader, RowReaders

MAX_RUN = 4  # pieces one digit may be cut into
MAX_WIDTH = 1.2  # times the digits' height: no digit is wider
MIN_WIDTH = 0.08  # times the digits' height: a 1 is a stroke at least this wide
# Ink wider than this times the digits' height is never one digit, however it reads (of the
# lone digits in benchmarks/whole_numbers.py's rows, 0.6% are wider than 1.6 and 0.1% than 2;
# MAX_WIDTH, tighter, bounds the runs of pieces that a cut group is read in).
WIDEST = 2.0
MIN_HEIGHT = 0.45  # times the digits' height: no digit is shorter
# A swept digit's probabilities: the row reader's times the digit model's on its pieces to this
# power (0.5 was best of 0, 0.3, 0.5, 1 on benchmarks/whole_numbers.py's dev rows).
PIECES_WEIGHT = 0.5
MISFIT = -20.0  # log-score of a run that cannot be a digit (kept only when nothing else fits)
FLOOR = 1e-6  # probabilities below this count as this (log of 0)


@dataclass
class NumberReading:
    """A row read as a number: its digits, left to right, each with its box."""

    digits: list[Prediction]

    @property
    def closest(self) -> str:
        return "".join(str(p.digit) for p in self.digits)

    @property
    def unread(self) -> list[int]:
        """Positions (from 1) of the pieces that are not a digit."""
        return [k for k, p in enumerate(self.digits, 1) if p.refused]

    def answer(self) -> dict:
        """The JSON answer: the number, or null with the reason and the closest reading."""
        unread = self.unread
        answer: dict = {"number": None if unread else self.closest}
        if unread:
            answer |= {"reason": f"{NOT_A_DIGIT} at position {unread[0]}", "closest": self.closest}
        answer["digits"] = [p.answer() for p in self.digits]
        return answer


def read_number(
    model: Model, image: Image.Image, reader: RowReader | RowReaders | None = None
) -> NumberReading:
    """Read the digits of a row (a year, a postcode, an amount), left to right, each with its
    box in the image's pixels; `reader`, the row reader, reads the groups of touching digits
    (None: the best path through their pieces). Raises ImageError for a blank image or one in
    far too many pieces."""
    ink, (top, left) = ink_region(to_gray(image))
    try:
        atoms = cut_row(ink)
    except SegmentError as exc:
        raise ImageError(str(exc)) from None
    groups = _groups(atoms)
    runs = [(i, j, 0.0) for i, j in groups]
    if reader is None:
        runs += [r for i, j in groups if j > i + 1 for r in _candidate_runs(atoms, i, j)]
    read = predict_inputs(model, [atoms.digit(i, j) for i, j, _ in runs])
    if reader is None:
        scores = _scores(atoms, groups, runs, [p.probabilities[p.digit] for p in read])
        index = {(i, j): k for k, (i, j, _) in enumerate(runs)}
        found = [(atoms.box(i, j), read[index[i, j]]) for i, j in _best_path(len(atoms), scores)]
    else:
        found = []
        for (i, j), whole in zip(groups, read, strict=True):
            one = _one_digit(atoms, i, j, whole.probabilities[whole.digit])
            swept = [] if one else _swept(model, reader, atoms, i, j)
            found += swept or [(atoms.box(i, j), whole)]
    scale = float(image.info.get(SCALE, 1.0))  # boxes in the file's pixels
    return NumberReading(
        [
            replace(
                p,
                box=(
                    math.floor((left + x0) * scale),
                    math.floor((top + y0) * scale),
                    math.ceil((left + x1) * scale),
                    math.ceil((top + y1) * scale),
                ),
            )
            for (x0, y0, x1, y1), p in found
        ]
    )


Box = tuple[int, int, int, int]


def _swept(
    model: Model, reader: RowReader | RowReaders, atoms: Atoms, first: int, stop: int
) -> list[tuple[Box, Prediction]]:
    """The digits the row reader reads in pieces first..stop-1 (a group), each with its box and
    input: the pieces whose centre of ink lies nearest it, or (none does) the columns halfway
    to its neighbours. A digit with pieces of its own is read by the digit model too, and its
    probabilities are the row reader's times the digit model's to PIECES_WEIGHT (normalised):
    the row reader counts the digits, and the digit model, which reads lone digits from other
    hands better, helps say which."""
    from lenet5.inference.sweep import sweep_digits

    gx0, gy0, gx1, gy1 = atoms.box(first, stop)
    labels = atoms.labels[gy0:gy1, gx0:gx1]
    ink = np.where((labels > first) & (labels <= stop), atoms.ink[gy0:gy1, gx0:gx1], 0.0)
    read = sweep_digits(reader, ink, atoms.height)
    if not read:
        return []
    centres = np.array([gx0 + c for _, c in read])
    mass = np.bincount(labels.ravel(), weights=ink.ravel(), minlength=stop + 1)
    moment = np.bincount(
        labels.ravel(), weights=(ink * np.arange(gx0, gx1)).ravel(), minlength=stop + 1
    )
    piece_x = moment[first + 1 : stop + 1] / np.maximum(mass[first + 1 : stop + 1], 1e-9)
    nearest = np.abs(piece_x[:, None] - centres[None, :]).argmin(axis=1)  # (pieces,)
    edges = np.concatenate([[gx0], (centres[1:] + centres[:-1]) / 2, [gx1]]).round().astype(int)
    found = []
    for k, (probabilities, _) in enumerate(read):
        mine = np.flatnonzero(nearest == k)
        if len(mine):
            run = first + int(mine[0]), first + int(mine[-1]) + 1
            box, image = atoms.box(*run), atoms.digit(*run)
        else:
            x0 = int(edges[k])
            part = ink[:, x0 - gx0 : max(int(edges[k + 1]), x0 + 1) - gx0]
            if not part.any():
                x0, part = gx0, ink  # (a digit read where no ink is: shown as the group)
            rows, cols = np.flatnonzero(part.any(axis=1)), np.flatnonzero(part.any(axis=0))
            box = (
                x0 + int(cols[0]),
                gy0 + int(rows[0]),
                x0 + int(cols[-1]) + 1,
                gy0 + int(rows[-1]) + 1,
            )
            image = centre_digit(part)
        found.append((box, probabilities, image, len(mine) > 0))
    owned = [image for _, _, image, own in found if own]
    again = predict_inputs(model, owned) if owned else []
    predictions = []
    for box, probabilities, image, own in found:
        if own:
            probabilities = probabilities * np.asarray(again.pop(0).probabilities) ** PIECES_WEIGHT
            probabilities = probabilities / probabilities.sum()
        predictions.append(
            (box, Prediction(int(probabilities.argmax()), probabilities.tolist(), image))
        )
    return predictions


def _scores(
    atoms: Atoms,
    groups: list[tuple[int, int]],
    runs: list[tuple[int, int, float]],
    top: list[float],
) -> dict[tuple[int, int], float]:
    """Each run's log-score from its `top` probability: 0 for a group read as one digit (its
    cut runs are left out); else the log of the top probability, plus the run's fit (groups
    first in `runs`, as `top`)."""
    scores: dict[tuple[int, int], float] = {}
    whole = []
    for (i, j), p in zip(groups, top, strict=False):
        if _one_digit(atoms, i, j, p) or j == i + 1:
            scores[i, j] = 0.0  # ink that reads as one digit is one (or cannot be cut)
            whole.append((i, j))
        elif _fits_width(atoms, i, j, MAX_WIDTH):
            scores[i, j] = math.log(max(p, FLOOR))
    for (i, j, fit), p in zip(runs[len(groups) :], top[len(groups) :], strict=True):
        if not any(a <= i and j <= b for a, b in whole):
            scores[i, j] = fit + math.log(max(p, FLOOR))
    return scores


def _one_digit(atoms: Atoms, i: int, j: int, top: float) -> bool:
    """Whether pieces i..j-1, whose likeliest digit has probability `top`, are one digit: read
    as one (not refused) and no wider than WIDEST. (Squeezed into 28x28, a row of five
    touching digits can read as a 2 at 0.42.)"""
    return top >= REFUSE_BELOW and _fits_width(atoms, i, j, WIDEST)


def _fits_width(atoms: Atoms, i: int, j: int, widest: float) -> bool:
    """Whether pieces i..j-1 are no wider than `widest` times the digits' height."""
    x0, _, x1, _ = atoms.box(i, j)
    return x1 - x0 <= widest * atoms.height


def _groups(atoms: Atoms) -> list[tuple[int, int]]:
    """The runs of pieces with paper between them and the next: (first, stop) each."""
    groups: list[tuple[int, int]] = []
    first, right = 0, 0
    for k in range(len(atoms)):
        if k and atoms.cuts[k] == 0 and atoms.boxes[k, 0] >= right:
            groups.append((first, k))
            first = k
        right = max(right, int(atoms.boxes[k, 2])) if k > first else int(atoms.boxes[k, 2])
    return [*groups, (first, len(atoms))] if len(atoms) else groups


def _candidate_runs(atoms: Atoms, first: int, stop: int) -> list[tuple[int, int, float]]:
    """(i, j, fit) for each run of pieces i..j-1 within first..stop-1 (the whole apart) worth
    reading: fit is 0 for a run shaped like a digit, MISFIT for a single piece that is not (so
    that a path exists)."""
    runs = []
    height = atoms.height
    for i in range(first, stop):
        for j in range(i + 1, min(stop, i + MAX_RUN) + 1):
            if (i, j) == (first, stop):
                continue  # the whole group: read as one already
            x0, y0, x1, y1 = atoms.box(i, j)
            fits = MIN_WIDTH * height <= x1 - x0 <= MAX_WIDTH * height
            fits = fits and y1 - y0 >= MIN_HEIGHT * height
            if fits or j == i + 1:
                runs.append((i, j, 0.0 if fits else MISFIT))
    return runs


def _best_path(count: int, scores: dict[tuple[int, int], float]) -> list[tuple[int, int]]:
    """The runs covering pieces 0..count-1 in order whose scores sum to the most (Viterbi)."""
    starts: dict[int, list[int]] = {}
    for i, j in scores:
        starts.setdefault(j, []).append(i)
    best = [0.0] + [-math.inf] * count
    back = [0] * (count + 1)
    for j in range(1, count + 1):
        for i in starts.get(j, []):
            if best[i] + scores[i, j] > best[j]:
                best[j], back[j] = best[i] + scores[i, j], i
    path = []
    j = count
    while j > 0:
        path.append((back[j], j))
        j = back[j]
    return path[::-1]
