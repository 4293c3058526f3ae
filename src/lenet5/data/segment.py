"""Cutting a row of handwritten digits into pieces, more often than needed (over-segmentation).

LeNet-5's paper read cheque amounts this way (LeCun et al. 1998, section V): cut the ink at
every place a digit might end, let the recogniser score each run of consecutive pieces as a
digit or as garbage, and keep the best path through them (`lenet5.inference.numbers`). Here the
ink's connected parts are cut along the cheapest paths from top to bottom, paths that cross as
little ink as they can, so two digits that touch or overlap a little come apart at their
contact.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
from PIL import Image

from lenet5.data.preprocess import centre_digit, ink_map, to_gray

NOISE_AREA = 0.02  # ink parts smaller than this times the digits' height squared are specks
OVERLAP = 0.5  # a part lying this much (of its width) under another belongs to it (a 5's bar)
MIN_PIECE = 0.12  # no cut nearer than this times the height to a part's edge or another cut
MAX_CUT = 0.3  # a cut crosses at most this times the height in pixels of solid ink
BAND = 0.15  # a cut strays at most this times the height from its column
DRIFT = 0.05  # the cost of a cut's step sideways, against 1 for a pixel of solid ink
ONE_DIGIT = 0.8  # a part no wider than this times the height is taken as one digit, not cut
MAX_ATOMS = 400  # a row cut into more pieces than this is refused


class SegmentError(ValueError):
    """A row that cannot be cut into digits (far too many pieces)."""


@dataclass
class Atoms:
    """A row's ink cut into pieces, numbered left to right."""

    ink: np.ndarray  # (H, W) float32 ink of the row, 0 on paper
    labels: np.ndarray  # (H, W) int32: 0 on paper, k + 1 on piece k's pixels
    boxes: np.ndarray  # (n, 4) int: each piece's x0, y0, x1, y1 (exclusive) in the row
    height: float  # the digits' height estimate, in pixels
    cuts: np.ndarray  # (n,) the ink crossed (pixels) by the cut just left of each piece: 0 at a gap

    def __len__(self) -> int:
        return len(self.boxes)

    def box(self, first: int, stop: int) -> tuple[int, int, int, int]:
        """The box of pieces first..stop-1 together."""
        b = self.boxes[first:stop]
        return int(b[:, 0].min()), int(b[:, 1].min()), int(b[:, 2].max()), int(b[:, 3].max())

    def digit(self, first: int, stop: int) -> np.ndarray:
        """Pieces first..stop-1 together as a model input: uint8 (28, 28), MNIST-style."""
        x0, y0, x1, y1 = self.box(first, stop)
        labels = self.labels[y0:y1, x0:x1]
        inside = (labels > first) & (labels <= stop)
        return centre_digit(np.where(inside, self.ink[y0:y1, x0:x1], 0.0))


def digit_height(ink: np.ndarray) -> float:
    """The digits' height in a row: the 90th percentile of the inked columns' ink extents."""
    inked = ink > 0
    cols = inked.any(axis=0)
    top = np.argmax(inked[:, cols], axis=0)
    bottom = ink.shape[0] - np.argmax(inked[::-1, cols], axis=0)
    return float(np.percentile(bottom - top, 90))


def cut_row(ink: np.ndarray) -> Atoms:
    """A row's ink map (H, W) -> its pieces: specks dropped, parts lying under another joined
    to it, and each part cut wherever a cheap path through it runs from top to bottom."""
    from scipy import ndimage

    height = max(digit_height(ink), 1.0)
    parts, count = ndimage.label(ink > 0, structure=np.ones((3, 3)))
    areas = np.bincount(parts.ravel(), minlength=count + 1)[1:]
    slices = ndimage.find_objects(parts)
    kept = [i for i in range(count) if areas[i] >= NOISE_AREA * height**2]
    owner = {i: i for i in kept}
    by_size = sorted(kept, key=lambda i: areas[i])
    for i in by_size:  # a small part under a larger one belongs to it
        x0, x1 = slices[i][1].start, slices[i][1].stop
        overlaps = {
            j: min(x1, slices[j][1].stop) - max(x0, slices[j][1].start)
            for j in kept
            if j != i and areas[j] > areas[i]
        }
        best = max(overlaps, key=overlaps.__getitem__, default=None)
        if best is not None and overlaps[best] >= OVERLAP * (x1 - x0):
            owner[i] = best
    for i in by_size[::-1]:  # follow chains to the largest
        while owner[owner[i]] != owner[i]:
            owner[i] = owner[owner[i]]
    # (centre column, the part's rows and columns in the row, the piece's mask in them, cut)
    pieces: list[tuple[float, slice, slice, np.ndarray, float]] = []
    for root in sorted(set(owner.values()), key=lambda i: slices[i][1].start):
        ids = [i for i in kept if owner[i] == root]
        ys, xs = _union(slices, ids)
        group = np.isin(parts[ys, xs], [i + 1 for i in ids])
        for mask, cut in _cut(np.where(group, ink[ys, xs], 0.0), height):
            centre = float(np.flatnonzero(mask.any(axis=0)).mean()) + xs.start
            pieces.append((centre, ys, xs, mask, cut))
    if len(pieces) > MAX_ATOMS:
        raise SegmentError(f"the row falls into {len(pieces)} pieces (at most {MAX_ATOMS})")
    pieces.sort(key=lambda p: p[0])
    labels = np.zeros(ink.shape, np.int32)
    boxes = np.zeros((len(pieces), 4), np.int64)
    for k, (_, ys, xs, mask, _) in enumerate(pieces):
        labels[ys, xs][mask] = k + 1
        rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
        boxes[k] = cols[0], rows[0], cols[-1] + 1, rows[-1] + 1
        boxes[k] += (xs.start, ys.start, xs.start, ys.start)  # in the row
    ink = np.where(labels > 0, ink, 0.0).astype(np.float32)
    return Atoms(ink, labels, boxes, height, np.array([p[4] for p in pieces]))


def _union(slices: list[tuple[slice, slice]], ids: list[int]) -> tuple[slice, slice]:
    ys = slice(min(slices[i][0].start for i in ids), max(slices[i][0].stop for i in ids))
    xs = slice(min(slices[i][1].start for i in ids), max(slices[i][1].stop for i in ids))
    return ys, xs


def _cut(ink: np.ndarray, height: float) -> list[tuple[np.ndarray, float]]:
    """A part's ink (h, w) -> its pieces, left to right, cut along the cheap top-to-bottom
    paths (`cut_paths`): each piece's mask and the ink crossed by the cut on its left."""
    paths = cut_paths(ink, height)
    cols = np.arange(ink.shape[1])[None, :]
    side = np.zeros(ink.shape, np.int32)
    for path in paths:  # pixels on or right of a path go right
        side += cols >= path[:, None]
    inked = ink > 0
    rows = np.arange(ink.shape[0])
    crossed = [0.0] + [float(ink[rows, path].sum()) for path in paths]
    pieces: list[tuple[np.ndarray, float]] = []
    for k in range(len(paths) + 1):
        mask = inked & (side == k)
        if mask.any():
            pieces.append((mask, crossed[k] if pieces else 0.0))
    return pieces


def cut_paths(ink: np.ndarray, height: float) -> list[np.ndarray]:
    """Cheap paths from the top row to the bottom row of a part's ink (h, w), one column per
    row. From each column, the cheapest path that stays within BAND * height of it and moves
    at most one column a row; its cost is the ink it crosses plus DRIFT a sideways step. Kept:
    the paths whose cost is a local minimum among their neighbours', at most MAX_CUT * height,
    at least MIN_PIECE * height from the edges and from each other, cheapest first; returned
    left to right, never crossing."""
    h, w = ink.shape
    margin = max(2, round(MIN_PIECE * height))
    if w < max(2 * margin, ONE_DIGIT * height):
        return []
    band = max(1, round(BAND * height))
    offsets = np.arange(-band, band + 1)
    columns = np.arange(w)[:, None] + offsets[None, :]  # (w, 2 band + 1): anchor, offset
    outside = (columns < 0) | (columns >= w)
    columns = np.clip(columns, 0, w - 1)
    padded = np.where(outside, np.inf, 0.0)  # a path never leaves the part
    cost = ink[0][columns] + padded
    came = np.zeros((h, *columns.shape), np.int8)  # the offset step into each state
    inf = np.full((w, 1), np.inf)
    for r in range(1, h):
        options = np.stack(
            [
                np.hstack([inf, cost[:, :-1]]) + DRIFT,  # from offset o - 1
                cost,
                np.hstack([cost[:, 1:], inf]) + DRIFT,  # from offset o + 1
            ]
        )
        came[r] = 1 - options.argmin(axis=0)
        cost = options.min(axis=0) + ink[r][columns] + padded
    end = cost.argmin(axis=1)  # each anchor's best final offset
    total = cost[np.arange(w), end]
    window = max(1, margin // 2)
    neighbours = np.pad(total, window, constant_values=np.inf)
    local_min = total <= np.lib.stride_tricks.sliding_window_view(neighbours, 2 * window + 1).min(1)
    chosen: list[int] = []
    for x in np.argsort(total, kind="stable"):
        if total[x] > MAX_CUT * height:
            break
        if margin <= x < w - margin and local_min[x] and all(abs(x - k) >= margin for k in chosen):
            chosen.append(int(x))
    paths = []
    for x in sorted(chosen):
        offset = np.empty(h, np.int64)
        offset[-1] = end[x]
        for r in range(h - 1, 0, -1):
            offset[r - 1] = offset[r] - came[r, x, offset[r]]
        paths.append(columns[x, offset])
    for left, right in itertools.pairwise(paths):  # never crossing (nor leaving the part)
        np.minimum(np.maximum(right, left + 1), w - 1, out=right)
    return paths


def split_digits(image: Image.Image, min_area: float = 0.02) -> list[np.ndarray]:
    """lenet5 0.1.0's reader of rows, kept to measure against (benchmarks/whole_numbers.py): an
    image of a row of digits -> one MNIST-style (28, 28) uint8 image per digit, left to
    right. Connected ink components that overlap horizontally are one digit (a 5's detached
    bar); components smaller than `min_area` of the largest are noise."""
    from scipy import ndimage

    ink = ink_map(to_gray(image))
    labels, count = ndimage.label(ink > 0, structure=np.ones((3, 3)))
    slices = ndimage.find_objects(labels)
    areas = ndimage.sum_labels(np.ones_like(ink), labels, index=np.arange(1, count + 1))
    keep = [i for i in range(count) if areas[i] >= min_area * areas.max()]
    groups: list[tuple[int, int, list[int]]] = []  # (left, right, component ids)
    for i in sorted(keep, key=lambda i: slices[i][1].start):
        left, right = slices[i][1].start, slices[i][1].stop
        if groups and left < groups[-1][1]:  # overlaps the previous digit horizontally
            g_left, g_right, ids = groups[-1]
            groups[-1] = (g_left, max(g_right, right), [*ids, i + 1])
        else:
            groups.append((left, right, [i + 1]))
    return [centre_digit(np.where(np.isin(labels, ids), ink, 0.0)) for _, _, ids in groups]
