"""The per-layer table the tutorial shows: output shape, weights, biases and total per layer."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from lenet5.models import IMAGE_SIZE


def layer_table(model: nn.Module) -> list[dict[str, Any]]:
    """One row per leaf layer, in forward order, from a forward pass of one blank image."""
    rows: list[dict[str, Any]] = []

    def record(module: nn.Module, _inputs: Any, output: torch.Tensor) -> None:
        weight = getattr(module, "weight", None)
        bias = getattr(module, "bias", None)
        weights = weight.numel() if weight is not None else 0
        biases = bias.numel() if bias is not None else 0
        rows.append(
            {
                "layer": names[module],
                "type": type(module).__name__,
                "output_shape": tuple(output.shape[1:]),
                "weights": weights,
                "biases": biases,
                "total": weights + biases,
            }
        )

    names = {m: name for name, m in model.named_modules() if not list(m.children())}
    hooks = [m.register_forward_hook(record) for m in names]
    try:
        was_training = model.training
        model.eval()
        with torch.no_grad():
            model(torch.zeros(1, 1, IMAGE_SIZE, IMAGE_SIZE, device=next(model.parameters()).device))
        model.train(was_training)
    finally:
        for hook in hooks:
            hook.remove()
    return rows


def format_table(rows: list[dict[str, Any]]) -> str:
    header = ("layer", "type", "output shape", "weights", "biases", "total")
    lines = [
        (
            r["layer"],
            r["type"],
            "x".join(map(str, r["output_shape"])),
            f"{r['weights']:,}",
            f"{r['biases']:,}",
            f"{r['total']:,}",
        )
        for r in rows
    ]
    lines.append(
        (
            "total",
            "",
            "",
            f"{sum(r['weights'] for r in rows):,}",
            f"{sum(r['biases'] for r in rows):,}",
            f"{sum(r['total'] for r in rows):,}",
        )
    )
    widths = [max(len(str(row[i])) for row in [header, *lines]) for i in range(len(header))]

    def fmt(row: tuple[str, ...]) -> str:
        left = [row[i].ljust(widths[i]) for i in range(3)]
        right = [row[i].rjust(widths[i]) for i in range(3, 6)]
        return "  ".join(left + right).rstrip()

    rule = "-" * len(fmt(header))
    return "\n".join([fmt(header), rule, *map(fmt, lines[:-1]), rule, fmt(lines[-1])])
