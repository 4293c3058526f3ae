"""The optimizers (Adam, AdamW, SGD) and learning-rate schedules (one-cycle, cosine) of training.

They compute what torch.optim's fused optimizers and its OneCycleLR and CosineAnnealingLR compute,
bit for bit (tests/test_optim.py runs both side by side), by calling the same fused kernels. They
exist because constructing any torch.optim optimizer imports torch._dynamo (its methods are
wrapped in torch._disable_dynamo): 1.5-2.8 s on the reference machine, half an epoch of the fast
recipe, for a compiler that training never uses. Their state dicts keep torch's layout, so a run
started by an earlier version (torch.optim's state) resumes.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch

from lenet5.config import OPTIMIZERS

BETA1, BETA2, EPS = 0.9, 0.999, 1e-8  # Adam's defaults
# torch's OneCycleLR defaults: the rate starts at max / 25 and ends 1e4 times lower still, while
# the momentum (Adam's beta1) falls from 0.95 to 0.85 as the rate rises, and rises back.
DIV_FACTOR, FINAL_DIV_FACTOR = 25.0, 1e4
MAX_MOMENTUM, BASE_MOMENTUM = 0.95, 0.85


class Optimizer:
    """One group of parameters updated by torch's fused Adam, AdamW or SGD kernel. `lr` and
    `momentum` (Adam's beta1; SGD's momentum, 0 unless a one-cycle schedule sets it) may change
    between steps."""

    def __init__(
        self, kind: str, params: Iterable[torch.Tensor], lr: float, weight_decay: float = 0.0
    ) -> None:
        if kind not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {kind!r} (choose from {', '.join(OPTIMIZERS)})")
        self.kind, self.lr, self.weight_decay = kind, lr, weight_decay
        self.momentum = 0.0 if kind == "sgd" else BETA1
        self.params = list(params)
        self.state: list[dict[str, torch.Tensor]] = [{} for _ in self.params]

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        live = [(p, s) for p, s in zip(self.params, self.state, strict=True) if p.grad is not None]
        params = [p for p, _ in live]
        grads = [p.grad for p in params]
        if self.kind == "sgd":
            self._sgd(params, grads, [s for _, s in live])  # type: ignore[arg-type]
            return
        for p, s in live:
            if not s:
                s["step"] = torch.zeros((), dtype=torch.float32, device=p.device)
                s["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                s["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
        steps = [s["step"] for _, s in live]
        torch._foreach_add_(steps, 1)
        fused = torch._fused_adamw_ if self.kind == "adamw" else torch._fused_adam_
        fused(
            params,
            grads,  # type: ignore[arg-type]
            [s["exp_avg"] for _, s in live],
            [s["exp_avg_sq"] for _, s in live],
            [],  # no AMSGrad
            steps,
            amsgrad=False,
            lr=self.lr,
            beta1=self.momentum,
            beta2=BETA2,
            weight_decay=self.weight_decay,
            eps=EPS,
            maximize=False,
        )

    def _sgd(
        self, params: list[torch.Tensor], grads: list[torch.Tensor], states: list[dict]
    ) -> None:
        first = False
        if self.momentum != 0 and not any("momentum_buffer" in s for s in states):
            first = True  # the kernel starts each buffer at the gradient
            for s, g in zip(states, grads, strict=True):
                s["momentum_buffer"] = torch.empty_like(g)
        torch._fused_sgd_(
            params,
            grads,
            [s["momentum_buffer"] for s in states] if self.momentum != 0 else [],
            weight_decay=self.weight_decay,
            momentum=self.momentum,
            lr=self.lr,
            dampening=0.0,
            nesterov=False,
            maximize=False,
            is_first_step=first,
        )

    def state_dict(self) -> dict[str, Any]:
        """torch.optim's layout: per-parameter state by index, and one parameter group."""
        group: dict[str, Any] = {
            "lr": self.lr,
            "weight_decay": self.weight_decay,
            "params": list(range(len(self.params))),
        }
        if self.kind == "sgd":
            group["momentum"] = self.momentum
        else:
            group["betas"] = (self.momentum, BETA2)
        return {
            "state": {i: dict(s) for i, s in enumerate(self.state) if s},
            "param_groups": [group],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from `state_dict()`'s output, or from a torch.optim optimizer's of the same
        kind with one parameter group."""
        (group,) = state["param_groups"]
        self.lr = group["lr"]
        self.momentum = group["momentum"] if self.kind == "sgd" else group["betas"][0]
        self.state = [{} for _ in self.params]
        for i, saved in state["state"].items():
            p = self.params[int(i)]
            for name, value in saved.items():
                if value is None:  # torch's SGD keeps a None buffer without momentum
                    continue
                if name == "step":
                    self.state[int(i)][name] = value.to(p.device, torch.float32)
                else:
                    buffer = torch.zeros_like(p, memory_format=torch.preserve_format)
                    self.state[int(i)][name] = buffer.copy_(value)


class OneCycle:
    """torch's OneCycleLR with cosine annealing: `lr` rises from max_lr / 25 to `max_lr` over the
    first `warmup` share of the steps, then falls to max_lr / 25e4; the momentum moves the other
    way. Call `step()` after each optimizer step."""

    def __init__(
        self, optimizer: Optimizer, max_lr: float, total_steps: int, warmup: float = 0.25
    ) -> None:
        self.optimizer, self.max_lr, self.total_steps = optimizer, max_lr, total_steps
        self.warmup_end = float(warmup * total_steps) - 1  # the step at which lr peaks
        self.last_epoch = 0  # torch's name for the steps taken
        self._apply()

    def _apply(self) -> None:
        start, peak = self.max_lr / DIV_FACTOR, self.max_lr
        end = start / FINAL_DIV_FACTOR
        step = self.last_epoch
        # (Runs of a few steps, where torch divides by zero, skip the warm-up.)
        if self.warmup_end > 0 and step <= self.warmup_end:
            pct = step / self.warmup_end
            lr, momentum = _cos(start, peak, pct), _cos(MAX_MOMENTUM, BASE_MOMENTUM, pct)
        else:
            pct = (step - self.warmup_end) / max(self.total_steps - 1 - self.warmup_end, 1.0)
            lr, momentum = _cos(peak, end, pct), _cos(BASE_MOMENTUM, MAX_MOMENTUM, pct)
        self.optimizer.lr, self.optimizer.momentum = lr, momentum

    def step(self) -> None:
        self.last_epoch += 1
        if self.last_epoch > self.total_steps:
            raise ValueError(f"stepped {self.last_epoch} times, past {self.total_steps} steps")
        self._apply()

    def state_dict(self) -> dict[str, Any]:
        return {"last_epoch": self.last_epoch}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.last_epoch = state["last_epoch"]
        self._apply()


class Cosine:
    """torch's CosineAnnealingLR down to 0 over `total_steps`, in its recursive form (each rate
    from the previous one, as torch computes it). Call `step()` after each optimizer step."""

    def __init__(self, optimizer: Optimizer, total_steps: int) -> None:
        self.optimizer, self.total_steps = optimizer, total_steps
        self.last_epoch = 0

    def step(self) -> None:
        self.last_epoch += 1
        k, t = self.last_epoch, self.total_steps
        if k > t:
            raise ValueError(f"stepped {k} times, past {t} steps")
        ratio = (1 + math.cos(math.pi * k / t)) / (1 + math.cos(math.pi * (k - 1) / t))
        self.optimizer.lr *= ratio

    def state_dict(self) -> dict[str, Any]:
        return {"last_epoch": self.last_epoch}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.last_epoch = state["last_epoch"]  # the rate itself comes with the optimizer's state


Schedule = OneCycle | Cosine


def _cos(start: float, end: float, pct: float) -> float:
    """Cosine from `start` (pct 0) to `end` (pct 1), as torch's OneCycleLR computes it."""
    return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)
