"""lenet5.training.optim against torch.optim (the reference): the same weights, bit for bit."""

from __future__ import annotations

import copy
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

from lenet5.models import build_model
from lenet5.training.optim import Cosine, OneCycle, Optimizer

TORCH_KINDS = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "sgd": torch.optim.SGD}
STEPS = 24


def _batches(n: int = STEPS) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(0)
    return [(torch.rand(8, 1, 28, 28, generator=g), torch.randint(0, 10, (8,), generator=g))] * n


def _step(model: torch.nn.Module, optimizer, x: torch.Tensor, y: torch.Tensor) -> None:  # type: ignore[no-untyped-def]
    optimizer.zero_grad()
    F.cross_entropy(model(x), y).backward()
    optimizer.step()


def _pair(kind: str, schedule: str, lr: float = 0.01, weight_decay: float = 0.01):  # type: ignore[no-untyped-def]
    torch.manual_seed(0)
    theirs = build_model("lenet5", init="pytorch").to(memory_format=torch.channels_last)
    ours = copy.deepcopy(theirs)
    t_opt = TORCH_KINDS[kind](theirs.parameters(), lr=lr, weight_decay=weight_decay, fused=True)
    o_opt = Optimizer(kind, ours.parameters(), lr, weight_decay)
    t_sched, o_sched = None, None
    if schedule == "onecycle":
        t_sched = torch.optim.lr_scheduler.OneCycleLR(
            t_opt, max_lr=lr, total_steps=STEPS, pct_start=0.25
        )
        o_sched = OneCycle(o_opt, lr, STEPS)
    elif schedule == "cosine":
        t_sched = torch.optim.lr_scheduler.CosineAnnealingLR(t_opt, T_max=STEPS)
        o_sched = Cosine(o_opt, STEPS)
    return theirs, t_opt, t_sched, ours, o_opt, o_sched


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    return all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))


@pytest.mark.parametrize(
    ("kind", "schedule"),
    [
        ("adam", "constant"),
        ("adamw", "onecycle"),
        ("adamw", "cosine"),
        ("sgd", "constant"),
        ("sgd", "onecycle"),  # OneCycleLR gives SGD a momentum, cycled like Adam's beta1
    ],
)
def test_updates_equal_torch_optim_bit_for_bit(kind: str, schedule: str) -> None:
    theirs, t_opt, t_sched, ours, o_opt, o_sched = _pair(kind, schedule)
    for x, y in _batches():
        _step(theirs, t_opt, x, y)
        _step(ours, o_opt, x, y)
        for sched in (t_sched, o_sched):
            if sched is not None:
                sched.step()
        assert o_opt.lr == t_opt.param_groups[0]["lr"]
        assert _same_weights(theirs, ours)
    assert not _same_weights(theirs, build_model("lenet5", init="pytorch"))  # it did train


@pytest.mark.parametrize("kind", ["adamw", "sgd"])
def test_resumes_from_its_own_and_from_torch_optims_state(kind: str) -> None:
    theirs, t_opt, t_sched, ours, o_opt, o_sched = _pair(kind, "onecycle")
    batches = _batches()
    for x, y in batches[: STEPS // 2]:
        for model, opt, sched in ((theirs, t_opt, t_sched), (ours, o_opt, o_sched)):
            _step(model, opt, x, y)
            sched.step()  # type: ignore[union-attr]
    # Two fresh copies of ours: one from our state, one from torch.optim's (an earlier version's).
    resumed = []
    for opt_state, sched_state in (
        (o_opt.state_dict(), o_sched.state_dict()),  # type: ignore[union-attr]
        (t_opt.state_dict(), t_sched.state_dict()),  # type: ignore[union-attr]
    ):
        model = copy.deepcopy(ours)
        opt = Optimizer(kind, model.parameters(), 99.0, 0.01)
        opt.load_state_dict(copy.deepcopy(opt_state))
        sched = OneCycle(opt, 0.01, STEPS)
        sched.load_state_dict(sched_state)
        resumed.append((model, opt, sched))
    for x, y in batches[STEPS // 2 :]:
        for model, opt, sched in ((theirs, t_opt, t_sched), *resumed):
            _step(model, opt, x, y)
            sched.step()  # type: ignore[union-attr]
    assert all(_same_weights(theirs, model) for model, _, _ in resumed)


def test_bad_names_and_steps_past_the_schedule_are_refused() -> None:
    model = build_model("lenet5")
    with pytest.raises(ValueError, match="unknown optimizer 'rmsprop'"):
        Optimizer("rmsprop", model.parameters(), 0.1)
    for schedule in (
        OneCycle(Optimizer("adam", model.parameters(), 0.1), 0.1, 4),
        Cosine(Optimizer("adam", model.parameters(), 0.1), 4),
    ):
        for _ in range(4):
            schedule.step()
        with pytest.raises(ValueError, match="past 4 steps"):
            schedule.step()


def test_training_does_not_import_the_compiler() -> None:
    """Why lenet5.training.optim exists: torch.optim's optimizers import torch._dynamo (seconds)."""
    code = (
        "import sys, torch\n"
        "from lenet5.models import build_model\n"
        "from lenet5.training.optim import OneCycle, Optimizer\n"
        "m = build_model('lenet5')\n"
        "o = Optimizer('adamw', m.parameters(), 0.01)\n"
        "s = OneCycle(o, 0.01, 10)\n"
        "m(torch.rand(2, 1, 28, 28)).sum().backward(); o.step(); s.step(); o.zero_grad()\n"
        "print('torch._dynamo' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
