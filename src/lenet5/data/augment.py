"""Data augmentation: random distortions of a batch of digits, on the batch's own device.

`Distortion` combines what makes real handwriting differ from MNIST's: rotation, scale and
position (the `best` recipe's affine distortion), slant, aspect ratio, elastic distortion (Simard,
Steinkraus and Platt 2003) and stroke thickness. Every draw comes from the global RNG of the
batch's device, so a seeded run (and a resumed one) repeats it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from lenet5.config import ELASTIC_SIGMA, TrainConfig

MAX_ROTATION = math.radians(10)  # at affine strength 1
MAX_SHIFT = 2 / 14  # 2 pixels, in the [-1, 1] coordinates of a 28-pixel image
MAX_SCALE = 0.1  # zoom in or out by up to 10%


@dataclass(frozen=True)
class Distortion:
    """How strongly to distort each training image; 0 switches a part off."""

    affine: float = 0.0  # rotation, scale, shift; 1: up to 10 degrees, 10%, 2 px
    shear: float = 0.0  # largest slant, as the tangent of the slant angle
    aspect: float = 0.0  # largest relative change of the width against the height
    elastic: float = 0.0  # elastic displacement scale (alpha), in pixels
    stroke: float = 0.0  # largest thickening or thinning, as a share of a 3x3 dilation/erosion
    blur: float = 0.0  # low resolution: half the images pass through down to (1 - blur) x 28 px

    @classmethod
    def of(cls, config: TrainConfig) -> Distortion:
        """The random distortion a run applies to each training batch (falsy: none)."""
        return cls(
            config.augment, config.shear, config.aspect, config.elastic, config.stroke, config.blur
        )

    def __bool__(self) -> bool:
        return any((self.affine, self.shear, self.aspect, self.elastic, self.stroke, self.blur))

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Distort each image of (N, 1, H, W) by its own random amount."""
        if self.affine or self.shear or self.aspect or self.elastic:
            x = F.grid_sample(
                x, self._grid(x), mode="bilinear", padding_mode="zeros", align_corners=False
            )
        if self.stroke:
            x = random_stroke(x, self.stroke)
        if self.blur:
            x = random_low_resolution(x, self.blur)
        return x

    def _grid(self, x: torch.Tensor) -> torch.Tensor:
        """(N, H, W, 2): for each output pixel, where to sample the input."""
        n = x.shape[0]
        # The affine part draws exactly what the `best` recipe always drew, so its runs repeat.
        u = torch.rand(n, 4, device=x.device) * 2 - 1  # (N, 4) uniform in [-1, 1]
        angle = u[:, 0] * MAX_ROTATION * self.affine
        scale = 1 + u[:, 1] * MAX_SCALE * self.affine
        cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
        theta = torch.stack(
            [
                torch.stack([cos, -sin, u[:, 2] * MAX_SHIFT * self.affine], dim=1),
                torch.stack([sin, cos, u[:, 3] * MAX_SHIFT * self.affine], dim=1),
            ],
            dim=1,
        )  # (N, 2, 3)
        if self.shear or self.aspect:
            v = torch.rand(n, 2, device=x.device) * 2 - 1  # (N, 2)
            # Sampling at x' = x * (1 + a) + s * y slants the digit and narrows (or widens) it.
            shape = torch.zeros(n, 2, 2, device=x.device)
            shape[:, 0, 0] = 1 + v[:, 1] * self.aspect
            shape[:, 0, 1] = v[:, 0] * self.shear
            shape[:, 1, 1] = 1
            theta = torch.cat([shape @ theta[:, :, :2], theta[:, :, 2:]], dim=2)
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        if self.elastic:
            grid = grid + elastic_field(n, x.shape[-2], x.shape[-1], self.elastic, x.device)
        return grid


def elastic_field(
    n: int, height: int, width: int, alpha: float, device: torch.device
) -> torch.Tensor:
    """(N, H, W, 2) smooth random displacements (Simard et al. 2003): uniform noise in [-1, 1]
    blurred by a Gaussian of ELASTIC_SIGMA pixels, scaled to `alpha` pixels, in the [-1, 1]
    coordinates of grid_sample."""
    field = torch.rand(n * 2, 1, height, width, device=device) * 2 - 1
    radius = int(2 * ELASTIC_SIGMA)
    taps = torch.arange(-radius, radius + 1, device=device, dtype=field.dtype)
    kernel = torch.exp(-(taps**2) / (2 * ELASTIC_SIGMA**2))
    kernel = kernel / kernel.sum()
    field = F.conv2d(field, kernel.view(1, 1, 1, -1), padding=(0, radius))  # blur along rows
    field = F.conv2d(field, kernel.view(1, 1, -1, 1), padding=(radius, 0))  # and columns
    field = field.view(n, 2, height, width).permute(0, 2, 3, 1)  # (N, H, W, 2): (dx, dy)
    return field * alpha * field.new_tensor([2 / width, 2 / height])


def random_stroke(x: torch.Tensor, strength: float) -> torch.Tensor:
    """Thicken or thin each image's strokes by a random share in [-strength, strength]."""
    amount = (torch.rand(x.shape[0], 1, 1, 1, device=x.device) * 2 - 1) * strength
    return change_stroke(x, amount)


def change_stroke(x: torch.Tensor, amount: torch.Tensor) -> torch.Tensor:
    """Move each image of (N, 1, H, W) the share `amount` (N, 1, 1, 1) of the way to its 3x3
    grey dilation (positive) or erosion (negative).

    Erosion also dims what it keeps of a thin stroke; the strokes are brought back to the image's
    former peak, as `preprocess` saturates the core of a thin pen stroke at inference."""
    dilated = F.max_pool2d(x, 3, stride=1, padding=1)
    eroded = -F.max_pool2d(-x, 3, stride=1, padding=1)
    out = x + amount.clamp(min=0) * (dilated - x) + (-amount).clamp(min=0) * (eroded - x)
    peak_before = x.amax(dim=(2, 3), keepdim=True)
    peak_after = out.amax(dim=(2, 3), keepdim=True).clamp(min=1e-6)
    return torch.where(amount < 0, out * (peak_before / peak_after), out)


def random_low_resolution(x: torch.Tensor, strength: float) -> torch.Tensor:
    """Half the images of the batch, drawn at random, pass through a lower resolution (one size
    per batch, from (1 - strength) x 28 px up to 28 px) and back, as a small or distant photo or
    a coarse scan would give them; their strokes are brought back to the former peak."""
    side = x.shape[-1]
    low = round(side * (1 - strength * float(torch.rand(()))))
    chosen = torch.rand(x.shape[0], 1, 1, 1, device=x.device) < 0.5
    if low >= side:
        return x
    small = F.interpolate(x, size=(low, low), mode="bilinear", antialias=True, align_corners=False)
    coarse = F.interpolate(small, size=x.shape[-2:], mode="bilinear", align_corners=False)
    peak_before = x.amax(dim=(2, 3), keepdim=True)
    peak_after = coarse.amax(dim=(2, 3), keepdim=True).clamp(min=1e-6)
    return torch.where(chosen, coarse * (peak_before / peak_after), x)
