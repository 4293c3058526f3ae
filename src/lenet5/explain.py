"""Inside the network: what each layer of LeNet-5 computes for one image, and which input
pixels drove its answer.

`explain(model, image)` returns the activations of conv1 (6 maps 28x28), pool1 (6 x 14x14),
conv2 (16 x 10x10) and pool2 (16 x 5x5), as the network passes them on (after ReLU: max-pooling
and ReLU commute, so relu(conv) is what pooling keeps), and a 28x28 saliency map: integrated
gradients (Sundararajan et al. 2017, computed by Captum) of the predicted digit's logit from a
black image, so that the map sums to that logit minus the black image's.
"""

from __future__ import annotations

import warnings
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


def explain(model: nn.Module, image: np.ndarray, target: int | None = None) -> Explanation:
    """Activations and saliency for one preprocessed (28, 28) uint8 image (white on black);
    the saliency is that of `target`'s logit (default: the predicted digit's)."""
    with warnings.catch_warnings():  # captum's tqdm.auto warns in notebooks without widgets
        warnings.simplefilter("ignore")
        from captum.attr import IntegratedGradients

    if not all(hasattr(model, name) for name in LAYERS):
        raise Lenet5Error("only LeNet-5 models can be explained (this one has no conv layers)")
    model.eval()
    x = to_float(torch.from_numpy(np.ascontiguousarray(image))[None]).to(
        next(model.parameters()).device
    )
    with torch.inference_mode():
        logits, maps = activations(model, x)
    probabilities = torch.softmax(logits, dim=1)[0]
    digit = int(probabilities.argmax()) if target is None else target
    attributions, delta = IntegratedGradients(model).attribute(
        x,
        baselines=torch.zeros_like(x),
        target=digit,
        n_steps=IG_STEPS,
        internal_batch_size=IG_STEPS,
        return_convergence_delta=True,
    )
    return Explanation(
        digit=digit,
        probabilities=probabilities.tolist(),
        activations={name: maps[name][0].float().cpu().numpy() for name in LAYERS},
        saliency=attributions[0, 0].detach().float().cpu().numpy(),
        delta=float(delta[0]),
    )
