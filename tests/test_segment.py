"""Cutting rows of digits into pieces (lenet5.data.segment) and making rows (lenet5.data.rows)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy import ndimage

from lenet5.data.rows import ink_crop, make_row, make_rows
from lenet5.data.segment import MAX_ATOMS, SegmentError, cut_paths, cut_row, digit_height


def _ring(size: int = 40, thickness: int = 5) -> np.ndarray:
    """A 0 as a ring of ink, (size, size) float."""
    yy, xx = np.mgrid[:size, :size] - (size - 1) / 2
    r = np.hypot(yy, xx * 1.4)
    return ((r <= size / 2 - 1) & (r > size / 2 - 1 - thickness)).astype(np.float32)


def _bar(height: int = 40, width: int = 5) -> np.ndarray:
    return np.ones((height, width), np.float32)


def test_two_rings_touching_are_cut_where_they_touch() -> None:
    ring = ink_crop(_ring() * 255)
    row = np.zeros((ring.shape[0], 2 * ring.shape[1] - 3), np.float32)  # overlapping by 3 columns
    row[:, : ring.shape[1]] = ring
    right = row[:, ring.shape[1] - 3 :]
    np.maximum(right, ring, out=right)
    assert ndimage.label(row > 0)[1] == 1  # one connected piece of ink
    paths = cut_paths(row, digit_height(row))
    contact = ring.shape[1] - 3 + 1.5
    assert any(abs(p.mean() - contact) <= 3 for p in paths)
    atoms = cut_row(row)
    assert len(atoms) >= 2
    assert atoms.cuts[0] == 0 and atoms.cuts[1:].max() > 0  # cuts cross ink, gaps do not


def test_apart_parts_are_pieces_in_order_and_specks_are_dropped() -> None:
    row = np.zeros((40, 60), np.float32)
    row[:, 40:45] = 1.0  # a bar on the right
    row[:, 5:10] = 1.0  # one on the left
    row[20, 25] = 1.0  # a speck between
    atoms = cut_row(row)
    assert len(atoms) == 2
    assert atoms.boxes.tolist() == [[5, 0, 10, 40], [40, 0, 45, 40]]
    assert (atoms.labels[:, 5:10] == 1).all() and (atoms.labels[:, 40:45] == 2).all()
    assert atoms.labels[20, 25] == 0 and atoms.cuts.tolist() == [0.0, 0.0]


def test_a_part_lying_under_another_joins_it() -> None:
    """A 5's detached bar is cut with its body, never apart from it at the gap between."""
    row = np.zeros((40, 40), np.float32)
    row[10:40, 5:30] = _ring(30, 4)[:, 2:27]  # the body
    row[2:5, 8:30] = 1.0  # the bar, above it
    atoms = cut_row(row)
    assert atoms.cuts[0] == 0 and (atoms.cuts[1:] > 0).all()  # every boundary a cut through ink
    whole = (atoms.labels > 0).sum()
    assert whole == (row > 0).sum()


def test_a_row_in_too_many_pieces_is_refused() -> None:
    row = np.tile(np.r_[_bar()[0], np.zeros(3)], MAX_ATOMS + 10)[None].repeat(40, axis=0)
    with pytest.raises(SegmentError, match="pieces"):
        cut_row(row.astype(np.float32))


def test_rows_apart_leave_paper_between_digits_and_touching_rows_touch() -> None:
    rng = np.random.default_rng(0)
    digits = [ink_crop(_ring() * 255), ink_crop(_bar() * 255), ink_crop(_ring() * 255)]
    apart = make_row(digits, [0, 1, 0], rng, touching=False)
    ink = 1.0 - np.asarray(apart.image) / 255.0
    assert ndimage.label(ink > 0.5)[1] == 3
    assert all(a[2] < b[0] for a, b in itertools.pairwise(apart.boxes))
    touching = make_row(digits, [0, 1, 0], rng, touching=True)
    ink = 1.0 - np.asarray(touching.image) / 255.0
    assert ndimage.label(ink > 0.5, structure=np.ones((3, 3)))[1] == 1
    assert touching.number == "010" and touching.image.mode == "L" and len(touching.boxes) == 3
    assert np.asarray(touching.image)[0, 0] == 255  # dark ink on white paper


def test_make_rows_is_seeded() -> None:
    crops = [ink_crop(_ring() * 255), ink_crop(_bar() * 255)]
    first = make_rows(crops, np.array([0, 1]), 3, touching=True, seed=4)
    again = make_rows(crops, np.array([0, 1]), 3, touching=True, seed=4)
    assert [r.number for r in first] == [r.number for r in again]
    assert all(4 <= len(r.number) <= 6 for r in first)
    assert all(
        np.array_equal(np.asarray(a.image), np.asarray(b.image))
        for a, b in zip(first, again, strict=True)
    )


def test_paths_stay_inside_the_part_when_the_band_is_wide(monkeypatch: pytest.MonkeyPatch) -> None:
    """Paths pushed apart so as not to cross once pushed the last one past the part's right
    edge (an IndexError) when BAND let a path drift further than MIN_PIECE keeps it in."""
    from lenet5.data import segment
    from lenet5.data.preprocess import ink_region, to_gray
    from test_numbers import _glyphs

    monkeypatch.setattr(segment, "BAND", 0.3)
    row = make_row(_glyphs("86523"), [8, 6, 5, 2, 3], np.random.default_rng(0), touching=True)
    ink = ink_region(to_gray(row.image))[0]
    atoms = cut_row(ink)
    assert len(atoms) >= 5 and (atoms.labels > 0).sum() == (atoms.ink > 0).sum()
    for path in cut_paths(ink, digit_height(ink)):
        assert path.min() >= 0 and path.max() < ink.shape[1]
