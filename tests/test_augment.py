"""Distortions of training batches, checked against second implementations and known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy import ndimage

from lenet5.config import RECIPES, TrainConfig
from lenet5.data.augment import Distortion, change_stroke, elastic_field, random_low_resolution


def _bar(width: int = 2) -> torch.Tensor:
    """(1, 1, 28, 28): a vertical bar in the middle, rows 4-23."""
    x = torch.zeros(1, 1, 28, 28)
    x[..., 4:24, 14 - width // 2 : 14 - width // 2 + width] = 1.0
    return x


def _old_random_affine(x: torch.Tensor, strength: float) -> torch.Tensor:
    """The `best` recipe's distortion as it was written before `Distortion` existed."""
    n = x.shape[0]
    u = torch.rand(n, 4) * 2 - 1
    angle = u[:, 0] * math.radians(10) * strength
    scale = 1 + u[:, 1] * 0.1 * strength
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack(
        [
            torch.stack([cos, -sin, u[:, 2] * (2 / 14) * strength], dim=1),
            torch.stack([sin, cos, u[:, 3] * (2 / 14) * strength], dim=1),
        ],
        dim=1,
    )
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def test_affine_part_repeats_the_best_recipe_exactly() -> None:
    x = torch.rand(16, 1, 28, 28)
    torch.manual_seed(3)
    ours = Distortion(affine=1.0)(x)
    torch.manual_seed(3)
    assert torch.equal(ours, _old_random_affine(x, 1.0))
    assert Distortion.of(TrainConfig(**RECIPES["best"])) == Distortion(affine=1.0)


def test_no_distortion_is_falsy_and_each_part_counts() -> None:
    assert not Distortion()
    assert not Distortion.of(TrainConfig())
    for field in ("affine", "shear", "aspect", "elastic", "stroke", "blur"):
        assert Distortion(**{field: 0.5})


def test_same_seed_same_distortion() -> None:
    x = torch.rand(8, 1, 28, 28)
    d = Distortion(1.0, 0.3, 0.2, 34.0, 1.0)
    torch.manual_seed(0)
    a = d(x)
    torch.manual_seed(0)
    assert torch.equal(a, d(x))
    assert not torch.equal(a, d(x))  # the next draw differs


def _slant(image: torch.Tensor) -> float:
    """Columns moved per row: the slope of the ink's mean column against its row."""
    ink = image[0, 0].numpy()
    rows = np.flatnonzero(ink.sum(axis=1) > 0.5)
    cols = [(ink[r] * np.arange(28)).sum() / ink[r].sum() for r in rows]
    return float(np.polyfit(rows, cols, 1)[0])


def test_shear_slants_within_its_bound() -> None:
    torch.manual_seed(0)
    slants = [_slant(Distortion(shear=0.3)(_bar())) for _ in range(200)]
    # Sampling at x' = x + s * y draws the bar with slope -s; |s| <= 0.3 (plus resampling).
    assert max(map(abs, slants)) <= 0.3 + 0.02
    assert min(slants) < -0.2 and max(slants) > 0.2


def test_aspect_changes_width_not_height() -> None:
    torch.manual_seed(0)
    wide = torch.zeros(1, 1, 28, 28)
    wide[..., 10:18, 6:22] = 1.0  # 16 px wide, 8 px high
    widths, heights = [], []
    for _ in range(100):
        y = Distortion(aspect=0.2)(wide)[0, 0]
        widths.append(float(y.sum(dim=0).gt(0.5 * 8).sum()))
        heights.append(float(y.sum(dim=1).gt(0.5 * 16 / 1.2).sum()))
    # Sampling at x * (1 + a) shrinks the width by 1 / (1 + a), a in [-0.2, 0.2].
    assert min(widths) >= 16 / 1.2 - 1 and max(widths) <= 16 / 0.8 + 1
    assert max(widths) - min(widths) >= 4
    assert set(heights) == {8.0}


def test_elastic_field_is_smooth_and_scales_with_alpha() -> None:
    torch.manual_seed(0)
    one = elastic_field(64, 28, 28, 1.0, torch.device("cpu"))
    torch.manual_seed(0)
    ten = elastic_field(64, 28, 28, 10.0, torch.device("cpu"))
    assert one.shape == (64, 28, 28, 2)
    torch.testing.assert_close(ten, 10 * one)
    pixels = one * 14  # grid units -> pixels on a 28-pixel image
    assert abs(float(pixels.mean())) < 0.01
    # Neighbouring displacements differ far less than the displacements themselves: smooth.
    step = (pixels[:, 1:] - pixels[:, :-1]).abs().mean()
    assert step < 0.3 * pixels.abs().mean()


def test_stroke_change_matches_scipy_morphology() -> None:
    rng = np.random.default_rng(0)
    images = (rng.random((4, 28, 28)) > 0.8) * rng.random((4, 28, 28))
    x = torch.from_numpy(images).float().unsqueeze(1)
    dilated = change_stroke(x, torch.ones(4, 1, 1, 1))
    for k in range(4):
        expected = ndimage.grey_dilation(images[k], size=(3, 3), mode="constant", cval=0.0)
        np.testing.assert_allclose(dilated[k, 0].numpy(), expected, atol=1e-6)
    bar = _bar(width=4)
    thinned = change_stroke(bar, -torch.ones(1, 1, 1, 1))
    expected = ndimage.grey_erosion(bar[0, 0].numpy(), size=(3, 3), mode="nearest")
    np.testing.assert_allclose(thinned[0, 0].numpy(), expected, atol=1e-6)
    half = change_stroke(bar, torch.full((1, 1, 1, 1), 0.5))
    assert float(half.sum()) == pytest.approx(float((bar + dilated_bar(bar)).sum()) / 2)


def dilated_bar(bar: torch.Tensor) -> torch.Tensor:
    return torch.from_numpy(ndimage.grey_dilation(bar[0, 0].numpy(), size=(3, 3))).reshape(
        bar.shape
    )


def test_thinning_keeps_a_thin_stroke_bright() -> None:
    faint = _bar(width=3) * 0.9
    faint[..., 14] = 1.0  # the core of the stroke
    thinned = change_stroke(faint, -torch.full((1, 1, 1, 1), 0.7))
    assert float(thinned.max()) == pytest.approx(1.0)


def test_low_resolution_blurs_about_half_the_batch_and_keeps_the_peak() -> None:
    torch.manual_seed(0)
    x = _bar(width=2).repeat(200, 1, 1, 1)
    y = random_low_resolution(x, 0.6)
    changed = (y - x).abs().flatten(1).amax(1) > 1e-6
    assert 70 <= int(changed.sum()) <= 130
    torch.testing.assert_close(y.flatten(1).amax(1), x.flatten(1).amax(1))

    def variation(images: torch.Tensor) -> torch.Tensor:
        return (images[..., 1:] - images[..., :-1]).abs().flatten(1).sum(1)

    assert bool((variation(y[changed]) < variation(x[changed])).all())  # smoother edges
    assert torch.equal(random_low_resolution(x, 0.0), x)
