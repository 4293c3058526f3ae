"""Inside the network: what each layer of LeNet-5 computes for one image, and which input
pixels drove its answer.

`explain(model, image)` returns the activations of conv1 (6 maps 28x28), pool1 (6 x 14x14),
conv2 (16 x 10x10) and pool2 (16 x 5x5), as the network passes them on (after ReLU: max-pooling
and ReLU commute, so relu(conv) is what pooling keeps), and a 28x28 saliency map: integrated
gradients (Sundararajan et al. 2017) of the predicted digit's logit from a black image, so that
the map sums to that logit minus the black image's (within the quadrature's error; `delta`).
A model that reads at several scales (`read_scales`) answers with their average; its maps and
saliency are those of the image as given. A judged model's are its reader's (the judge only
says whether the image is a digit at all).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from lenet5.data.mnist import to_float
from lenet5.errors import Lenet5Error
from lenet5.models import POOL_SIZE, digit_reader

LAYERS = ("conv1", "pool1", "conv2", "pool2")  # LeNet5's modules whose outputs are shown
# Integration steps: the map sums to the logit difference within 2% on average, 14% at most
# (measured on 100 UCI and 100 test digits; 32 steps: up to 28%).
IG_STEPS = 64


@dataclass
class Explanation:
    digit: int
    probabilities: list[float]
    activations: dict[str, np.ndarray]  # name -> (C, H, W) float32, after ReLU
    saliency: np.ndarray  # (28, 28) float32: integrated gradients of the digit's logit
    delta: float  # completeness error: saliency.sum() - (logit(x) - logit(black))
    kernels: np.ndarray  # (6, 5, 5) float32: conv1's learned weights, one kernel per map

    def to_json(self) -> dict[str, object]:
        """Plain lists, rounded to 5 decimals (the page draws 8-bit gray levels of them)."""
        return {
            "layers": {
                name: np.round(maps.astype(np.float64), 5).tolist()
                for name, maps in self.activations.items()
            },
            "saliency": np.round(self.saliency.astype(np.float64), 5).tolist(),
            "delta": self.delta,
            "kernels": np.round(self.kernels.astype(np.float64), 5).tolist(),
        }


def as_given(model: nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
    """The model's logits for the image as given: a LeNet-5 without its read scales, its
    logits divided by its temperature as the model divides them."""
    network = getattr(model, "logits", None)
    if network is None:
        return model
    return lambda x: network(x) / model.get_buffer("temperature")


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
        logits = as_given(model)(x)
    finally:
        for hook in hooks:
            hook.remove()
    return logits, seen


@functools.cache
def _gauss_legendre(steps: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Points in (0, 1) and weights of `steps`-point Gauss-Legendre quadrature."""
    points, weights = np.polynomial.legendre.leggauss(steps)  # on (-1, 1)
    return torch.from_numpy((points + 1) / 2), torch.from_numpy(weights / 2)  # float64


def integrated_gradients(
    model: nn.Module, x: torch.Tensor, target: int, steps: int = IG_STEPS
) -> torch.Tensor:
    """Integrated gradients of logit `target` for one input x (1, 1, 28, 28) from the black
    image, by Gauss-Legendre quadrature over the path alpha * x, all steps in one batch: the
    same numbers as Captum's IntegratedGradients(method="gausslegendre") (tested).

    conv1 is linear, so its outputs along the path are bias + alpha * conv1'(x) (conv1' without
    bias), and for alpha > 0 each 2x2 window of pool1 keeps the same position for every alpha:
    pool1's outputs along the path are bias + alpha * pool1(conv1'(x)). So the steps start at
    pool1, and the input gradient summed over the path goes back through pool1 and conv1 once
    (with the quadrature nodes cached, this takes less than half the time Captum takes here)."""
    alphas, weights = _gauss_legendre(steps)
    alphas = alphas.to(x).view(-1, 1, 1, 1)  # x's dtype and device
    conv1, pool1 = model.get_submodule("conv1"), model.get_submodule("pool1")
    assert isinstance(conv1, nn.Conv2d) and isinstance(pool1, nn.MaxPool2d)
    with torch.no_grad():
        bias = conv1(torch.zeros_like(x))  # (1, 6, 28, 28): the bias everywhere
        ink = conv1(x) - bias  # conv1 without its bias
        pooled, where = F.max_pool2d(ink, POOL_SIZE, return_indices=True)  # (1, 6, 14, 14)
    path = (bias[..., : pooled.shape[-2], : pooled.shape[-1]] + alphas * pooled).requires_grad_()
    hook = pool1.register_forward_hook(lambda _m, _i, _out: path)  # (steps, 6, 14, 14)
    try:
        with torch.enable_grad():
            # pool1's output is replaced by `path`: a 2x2 stand-in input spares conv1 and pool1.
            logits = as_given(model)(x.new_zeros(steps, 1, 2, 2))
            (grads,) = torch.autograd.grad(logits[:, target].sum(), path)
    finally:
        hook.remove()
    padding = conv1.padding
    assert isinstance(padding, tuple)  # LeNet5 gives numbers, not "same"
    with torch.no_grad():
        summed = (weights.to(x).view(-1, 1, 1, 1) * grads).sum(dim=0, keepdim=True)
        # Back through pool1 (to the window maxima) and conv1 (its transpose), once.
        routed = F.max_unpool2d(summed, where, (POOL_SIZE, POOL_SIZE), output_size=x.shape[-2:])
        return x * F.conv_transpose2d(routed, conv1.weight, padding=padding)


def explain(model: nn.Module, image: np.ndarray, target: int | None = None) -> Explanation:
    """Activations and saliency for one preprocessed (28, 28) uint8 image (white on black);
    the saliency is that of `target`'s logit (default: the predicted digit's)."""
    reader = digit_reader(model)
    if not all(hasattr(reader, name) for name in LAYERS):
        raise Lenet5Error("only LeNet-5 models can be explained (this one has no conv layers)")
    model.eval()
    x = to_float(torch.from_numpy(np.ascontiguousarray(image))[None]).to(
        next(model.parameters()).device
    )
    with torch.inference_mode():
        logits, maps = activations(reader, torch.cat([x, torch.zeros_like(x)]))
        probabilities = torch.softmax(model(x)[0], dim=0)  # the model's answer, as predict's
    digit = int(probabilities.argmax()) if target is None else target
    saliency = integrated_gradients(reader, x, digit)[0, 0]
    rise = float(logits[0, digit] - logits[1, digit])  # from the black image to x
    return Explanation(
        digit=digit,
        probabilities=probabilities.tolist(),
        activations={name: maps[name][0].float().cpu().numpy() for name in LAYERS},
        saliency=saliency.float().cpu().numpy(),
        delta=float(saliency.sum()) - rise,
        kernels=reader.get_parameter("conv1.weight").detach()[:, 0].float().cpu().numpy(),
    )
