"""Inside the network: what each layer of LeNet-5 computes for one image, and which input
pixels drove its answer.

`explain(model, image)` returns the activations of conv1 (6 maps 28x28), pool1 (6 x 14x14),
conv2 (16 x 10x10) and pool2 (16 x 5x5), as the network passes them on (after ReLU: max-pooling
and ReLU commute, so relu(conv) is what pooling keeps), and a 28x28 saliency map: integrated
gradients (Sundararajan et al. 2017) of the predicted digit's logit from a black image, so that
the map sums to that logit minus the black image's (within the quadrature's error; `delta`).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from lenet5.data import to_float
from lenet5.errors import Lenet5Error

LAYERS = ("conv1", "pool1", "conv2", "pool2")  # LeNet5's modules whose outputs are shown
IG_STEPS = 64  # integration steps: the map sums to the logit difference within ~4% (measured)


@dataclass
class Explanation:
    digit: int
    probabilities: list[float]
    activations: dict[str, np.ndarray]  # name -> (C, H, W) float32, after ReLU
    saliency: np.ndarray  # (28, 28) float32: integrated gradients of the digit's logit
    delta: float  # completeness error: saliency.sum() - (logit(x) - logit(black))

    def to_json(self) -> dict[str, object]:
        """Plain lists, rounded to 5 decimals (the page draws 8-bit gray levels of them)."""
        return {
            "layers": {
                name: np.round(maps.astype(np.float64), 5).tolist()
                for name, maps in self.activations.items()
            },
            "saliency": np.round(self.saliency.astype(np.float64), 5).tolist(),
            "delta": self.delta,
        }


def activations(model: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Logits (N, 10) and each of LAYERS' outputs after ReLU, (N, C, H, W), read with forward
    hooks during one forward pass."""
    seen: dict[str, torch.Tensor] = {}
    hooks = [
        getattr(model, name).register_forward_hook(
            lambda _m, _i, out, name=name: seen.__setitem__(name, torch.relu(out))
        )
        for name in LAYERS
    ]
    try:
        logits = model(x)
    finally:
        for hook in hooks:
            hook.remove()
    return logits, seen


@functools.cache
def _gauss_legendre(steps: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Points in (0, 1) and weights of `steps`-point Gauss-Legendre quadrature."""
    points, weights = np.polynomial.legendre.leggauss(steps)  # on (-1, 1)
    alphas = torch.tensor((points + 1) / 2, dtype=torch.float32)
    return alphas, torch.tensor(weights / 2, dtype=torch.float32)


def integrated_gradients(
    model: nn.Module, x: torch.Tensor, target: int, steps: int = IG_STEPS
) -> torch.Tensor:
    """Integrated gradients of logit `target` for one input x (1, 1, 28, 28) from the black
    image, by Gauss-Legendre quadrature over the path alpha * x, all steps in one batch: the
    same numbers as Captum's IntegratedGradients(method="gausslegendre") (tested).

    conv1 is linear, so its outputs along the path are alpha * conv1(x) + (1 - alpha) * bias,
    and the input gradient summed over the path is conv1's transpose applied once to the summed
    gradient of its outputs: the steps skip conv1's forward and backward passes (with the
    quadrature nodes cached, this halves the time Captum takes here)."""
    alphas, weights = _gauss_legendre(steps)
    alphas = alphas.to(x.device).view(-1, 1, 1, 1)
    conv1 = model.get_submodule("conv1")
    assert isinstance(conv1, nn.Conv2d)
    with torch.no_grad():
        at_x, at_black = conv1(x), conv1(torch.zeros_like(x))  # (1, 6, 28, 28) each
    path = (at_black + alphas * (at_x - at_black)).requires_grad_()  # (steps, 6, 28, 28)
    hook = conv1.register_forward_hook(lambda _m, _i, _out: path)
    try:
        with torch.enable_grad():
            # conv1's output is replaced by `path`: a 1x1 stand-in input spares its work.
            logits = model(torch.zeros(steps, 1, 1, 1, device=x.device))
            (grads,) = torch.autograd.grad(logits[:, target].sum(), path)
    finally:
        hook.remove()
    summed = (weights.to(x.device).view(-1, 1, 1, 1) * grads).sum(dim=0, keepdim=True)
    # d conv1(alpha x) / dx is conv1's weight: back through it once, as its transpose.
    padding = conv1.padding
    assert isinstance(padding, tuple)  # LeNet5 gives numbers, not "same"
    back = torch.nn.functional.conv_transpose2d(summed, conv1.weight, padding=padding)
    return x * back


def explain(model: nn.Module, image: np.ndarray, target: int | None = None) -> Explanation:
    """Activations and saliency for one preprocessed (28, 28) uint8 image (white on black);
    the saliency is that of `target`'s logit (default: the predicted digit's)."""
    if not all(hasattr(model, name) for name in LAYERS):
        raise Lenet5Error("only LeNet-5 models can be explained (this one has no conv layers)")
    model.eval()
    x = to_float(torch.from_numpy(np.ascontiguousarray(image))[None]).to(
        next(model.parameters()).device
    )
    with torch.inference_mode():
        logits, maps = activations(model, torch.cat([x, torch.zeros_like(x)]))
    probabilities = torch.softmax(logits[0], dim=0)
    digit = int(probabilities.argmax()) if target is None else target
    saliency = integrated_gradients(model, x, digit)[0, 0].detach()
    rise = float(logits[0, digit] - logits[1, digit])  # from the black image to x
    return Explanation(
        digit=digit,
        probabilities=probabilities.tolist(),
        activations={name: maps[name][0].float().cpu().numpy() for name in LAYERS},
        saliency=saliency.float().cpu().numpy(),
        delta=float(saliency.sum()) - rise,
    )
