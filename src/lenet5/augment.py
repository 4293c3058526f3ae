"""Data augmentation: small random affine distortions of a batch, on its own device."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

MAX_ROTATION = math.radians(10)  # at strength 1
MAX_SHIFT = 2 / 14  # 2 pixels, in the [-1, 1] coordinates of a 28-pixel image
MAX_SCALE = 0.1  # zoom in or out by up to 10%


def random_affine(x: torch.Tensor, strength: float = 1.0) -> torch.Tensor:
    """Rotate, scale and shift each image of (N, 1, 28, 28) by a random amount.

    Draws from the global RNG of x's device, so a seeded run (and a resumed one) repeats it.
    """
    n = x.shape[0]
    u = torch.rand(n, 4, device=x.device) * 2 - 1  # (N, 4) uniform in [-1, 1]
    angle = u[:, 0] * MAX_ROTATION * strength
    scale = 1 + u[:, 1] * MAX_SCALE * strength
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack(
        [
            torch.stack([cos, -sin, u[:, 2] * MAX_SHIFT * strength], dim=1),
            torch.stack([sin, cos, u[:, 3] * MAX_SHIFT * strength], dim=1),
        ],
        dim=1,
    )  # (N, 2, 3): output pixel -> where to sample the input
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
