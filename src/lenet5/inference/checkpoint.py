"""Checkpoints: written atomically, loaded without executing code (torch.load weights_only)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import nn

from lenet5.config import TrainConfig
from lenet5.errors import Lenet5Error
from lenet5.files import atomic_write
from lenet5.inference.bundled import BUNDLED, BundledError, read_bundled
from lenet5.models import Judged, build_model, with_temperature

FORMAT = "lenet5-checkpoint"
VERSION = 1
LAST = Path("checkpoints") / "last.pt"
BEST = Path("checkpoints") / "best.pt"


class CheckpointError(Lenet5Error):
    """A checkpoint that is missing, unreadable or not ours."""


class Stateful(Protocol):
    """What a checkpoint keeps of an optimizer or a learning-rate schedule."""

    def state_dict(self) -> dict[str, Any]: ...


def save_checkpoint(
    path: Path,
    *,
    config: TrainConfig,
    model: nn.Module,
    optimizer: Stateful | None = None,
    scheduler: Stateful | None = None,
    epoch: int,
    best_val_accuracy: float,
    judge: dict[str, Any] | None = None,
) -> None:
    """Everything needed to rebuild the model, or resume training exactly after `epoch`;
    `judge` (`judge_entry`) makes it a judged model."""
    state: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "config": config.to_dict(),
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "epoch": epoch,
        "best_val_accuracy": best_val_accuracy,
        "rng_state": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda_rng_state"] = torch.cuda.get_rng_state_all()
    if judge is not None:
        state["judge"] = judge
    _write(path, state)


def judge_entry(path: str | Path, below: float) -> dict[str, Any]:
    """What a checkpoint keeps of the judge at `path` (a checkpoint or run directory of a
    "judge" model): its config and weights, and the probability under which it doubts."""
    state = load_checkpoint(path)
    config = state.get("config")
    if not isinstance(config, dict) or config.get("model") != "judge":
        raise CheckpointError(f"{resolve_checkpoint(path)}: not a judge model")
    if not 0.0 < below <= 1.0:
        raise CheckpointError(f"a judge's threshold must be in (0, 1], got {below}")
    return {"config": state["config"], "model": state["model"], "below": float(below)}


def add_judge(path: Path, judge: dict[str, Any]) -> None:
    """Give the checkpoint at `path` a judge (`judge_entry`), rewriting it atomically."""
    state = load_checkpoint(path)
    state["judge"] = judge
    _write(path, state)


def _write(path: Path, state: dict[str, Any]) -> None:
    # Serialised in memory first: torch's zip writer reports a full disk as a bare RuntimeError.
    buffer = io.BytesIO()
    torch.save(state, buffer)
    atomic_write(path, lambda f: f.write(buffer.getbuffer()))


def resolve_checkpoint(path: str | Path | None) -> Path:
    """A checkpoint file, or a run directory: its last checkpoint, the model whose test accuracy
    the run reports (checkpoints/best.pt is the best by validation accuracy); None: the bundled
    model."""
    if path is None:
        return BUNDLED
    path = Path(path)
    if path.is_dir():
        path = path / LAST
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint")
    return path


def load_checkpoint(
    path: str | Path | None, map_location: str | torch.device = "cpu"
) -> dict[str, Any]:
    """Load a checkpoint file or run directory safely: tensors and plain data only (None: the
    bundled model, checked against its recorded SHA-256 first)."""
    path = resolve_checkpoint(path)
    try:
        if path == BUNDLED:
            source: Path | io.BytesIO = io.BytesIO(read_bundled(path))
        else:
            source = path
        state = torch.load(source, map_location=map_location, weights_only=True)
    except BundledError as exc:
        raise CheckpointError(str(exc)) from None
    except Exception as exc:  # unpickling refused, truncated zip, not a torch file...
        raise CheckpointError(
            f"{path}: not a readable lenet5 checkpoint ({_first_line(exc)})"
        ) from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a lenet5 checkpoint")
    if state.get("version", 0) > VERSION:
        raise CheckpointError(
            f"{path}: checkpoint version {state['version']} is newer than this lenet5"
        )
    return state


def load_model(
    path: str | Path | None = None, device: str | torch.device = "cpu"
) -> tuple[nn.Module, TrainConfig]:
    """Rebuild a trained model (in eval mode) and its config from a checkpoint or run directory
    (None: the bundled model). A checkpoint with a judge gives a `Judged` model and its
    reader's config."""
    state = load_checkpoint(path, map_location=device)
    path = resolve_checkpoint(path)
    model, config = _rebuild(path, state.get("config"), state.get("model"))
    judge = state.get("judge")
    if judge is not None:
        below = judge.get("below") if isinstance(judge, dict) else None
        if not isinstance(below, float) or not 0.0 < below <= 1.0:
            raise CheckpointError(f"{path}: its judge has no threshold in (0, 1]")
        model = Judged(model, _rebuild(path, judge.get("config"), judge.get("model"))[0], below)
    return model.to(device).eval(), config


def _rebuild(path: Path, config_dict: Any, weights: Any) -> tuple[nn.Module, TrainConfig]:
    try:
        config = TrainConfig.from_dict(config_dict)
        model = build_model(config.model, config.dropout, "pytorch", config.read_scales)
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(
            f"{path}: no model this lenet5 can build ({_first_line(exc)})"
        ) from None
    try:
        model.load_state_dict(with_temperature(weights))
    except (AttributeError, KeyError, RuntimeError, TypeError) as exc:
        raise CheckpointError(
            f"{path}: its weights do not fit a {config.model} model ({_first_line(exc)})"
        ) from None
    return model, config


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
