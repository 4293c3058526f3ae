"""What a run needs before its first step: checked settings, the model, its optimizer and
schedule, and the images it trains on."""

from __future__ import annotations

import math
from pathlib import Path

import torch
from torch import nn

from lenet5.config import OPTIMIZERS, SCHEDULES, TrainConfig
from lenet5.data.mnist import DATASETS, Split
from lenet5.errors import Lenet5Error
from lenet5.inference.checkpoint import load_checkpoint, load_model
from lenet5.models import (
    INIT_NAMES,
    MODEL_NAMES,
    Judged,
    build_model,
    digit_reader,
    set_temperature,
    with_temperature,
)
from lenet5.training.optim import Cosine, OneCycle, Optimizer, Schedule


class TrainingError(Lenet5Error):
    """Training cannot start or cannot go on (bad settings, a non-finite loss...)."""


def check_config(config: TrainConfig) -> None:
    """Refuse settings that cannot train, with a message naming the setting."""
    choices = {
        "model": MODEL_NAMES,
        "optimizer": OPTIMIZERS,
        "init": INIT_NAMES,
        "schedule": SCHEDULES,
        "dataset": tuple(DATASETS),
    }
    for name, allowed in choices.items():
        if getattr(config, name) not in allowed:
            raise TrainingError(
                f"unknown {name} {getattr(config, name)!r} (choose from {', '.join(allowed)})"
            )
    if not (config.lr > 0 and math.isfinite(config.lr)):
        raise TrainingError(f"lr must be a positive number, got {config.lr}")
    for name in ("batch_size", "epochs", "eval_batch_size"):
        if getattr(config, name) <= 0:
            raise TrainingError(f"{name} must be positive, got {getattr(config, name)}")
    for name in (
        "weight_decay",
        "augment",
        "shear",
        "aspect",
        "elastic",
        "stroke",
        "blur",
        "fonts",
        "strokes",
        "outliers",
        "train_subset",
    ):
        if getattr(config, name) < 0:
            raise TrainingError(f"{name} must not be negative, got {getattr(config, name)}")
    if not 0.0 <= config.label_smoothing < 1.0:
        raise TrainingError(f"label_smoothing must be in [0, 1), got {config.label_smoothing}")
    if not 0.0 <= config.feedback_holdout < 1.0:
        raise TrainingError(f"feedback_holdout must be in [0, 1), got {config.feedback_holdout}")
    if config.feedback_repeat < 1:
        raise TrainingError(f"feedback_repeat must be positive, got {config.feedback_repeat}")
    if not 0.0 <= config.blur < 1.0:
        raise TrainingError(f"blur must be in [0, 1), got {config.blur}")
    if not 0.0 <= config.dropout < 1.0:
        raise TrainingError(f"dropout must be in [0, 1), got {config.dropout}")
    if config.dropout and config.model == "softmax":
        raise TrainingError("dropout applies to the lenet5 and judge models only")
    if config.read_scales and config.model == "softmax":
        raise TrainingError("read scales apply to the lenet5 and judge models only")
    if not all(s > 0 and math.isfinite(s) for s in config.read_scales):
        raise TrainingError(f"read scales must be positive numbers, got {config.read_scales}")
    if not 0.0 <= config.distill <= 1.0:
        raise TrainingError(f"distill must be in [0, 1], got {config.distill}")
    if not (config.temperature > 0 and math.isfinite(config.temperature)):
        raise TrainingError(f"temperature must be a positive number, got {config.temperature}")


def make_optimizer(config: TrainConfig, model: nn.Module) -> Optimizer:
    return Optimizer(config.optimizer, model.parameters(), config.lr, config.weight_decay)


def make_scheduler(
    config: TrainConfig, optimizer: Optimizer, steps_per_epoch: int
) -> Schedule | None:
    """A learning-rate schedule stepped after every batch (None: constant)."""
    total = config.epochs * steps_per_epoch
    if config.schedule == "onecycle":
        return OneCycle(optimizer, config.lr, total)
    if config.schedule == "cosine":
        return Cosine(optimizer, total)
    return None


def init_model(config: TrainConfig, device: torch.device) -> nn.Module:
    """The model before training: a pure function of the config (the seed included), or the
    weights of the checkpoint that `init_from` names (of a judged model, its judge for a judge
    model, else its reader)."""
    torch.manual_seed(config.seed)
    model = build_model(config.model, config.dropout, config.init, config.read_scales).to(device)
    if config.init_from:
        base, base_config = load_model(None if config.init_from == "bundled" else config.init_from)
        name = base_config.model
        if isinstance(base, Judged) and config.model == "judge":
            base, name = base.judge, "judge"
        else:
            base = digit_reader(base)
        if name != config.model:
            raise TrainingError(f"{config.init_from} holds a {name} model, not {config.model}")
        model.load_state_dict(base.state_dict())
        set_temperature(model, 1.0)  # training sees the logits as they are; fit calibrates
    if device.type == "cpu":
        # oneDNN's convolutions and max-pooling run 15-25% faster on channels-last activations;
        # the weights' layout decides the activations' (their values are unchanged).
        model = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    return model


def training_split(config: TrainConfig, train: Split) -> Split:
    """The images a run trains on: MNIST's training split (or its first `train_subset`), then
    `fonts` copies of the font-rendered digits, `strokes` stroke-drawn digits per class,
    `outliers` images that are not digits, and the corrections of a feedback store."""
    parts = [train.subset(config.train_subset) if config.train_subset else train]
    if config.fonts:
        from lenet5.data.fonts import font_digits

        fonts = font_digits()
        parts.append(
            Split(fonts.images.repeat(config.fonts, 1, 1), fonts.labels.repeat(config.fonts))
        )
    if config.strokes:
        from lenet5.data.strokes import stroke_digits

        parts.append(stroke_digits(config.strokes, seed=config.seed))
    if config.outliers:
        from lenet5.data.shapes import BROAD_KINDS, KINDS, non_digits

        kinds = BROAD_KINDS if config.broad_outliers else KINDS
        parts.append(non_digits(config.outliers, train, seed=config.seed, kinds=kinds))
    if config.feedback:
        from lenet5.data.feedback import correction_splits

        learn, _ = correction_splits(config)
        parts.append(
            Split(
                learn.images.repeat(config.feedback_repeat, 1, 1),
                learn.labels.repeat(config.feedback_repeat),
            )
        )
    if len(parts) == 1:
        return parts[0]
    return Split(torch.cat([p.images for p in parts]), torch.cat([p.labels for p in parts]))


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    """Each epoch's shuffle depends on (seed, epoch) only, so a resumed run reshuffles alike."""
    return torch.Generator().manual_seed(seed * 100_003 + epoch)


def steps_per_epoch(images: int, batch_size: int, world: int) -> int:
    """Batches per epoch: every image once, or, across ranks, whole global batches only."""
    if world == 1:
        return math.ceil(images / batch_size)
    steps = images // (batch_size * world)
    if steps == 0:
        raise TrainingError(
            f"{images} training images cannot fill one global batch of {batch_size} x {world} ranks"
        )
    return steps


def restore(
    path: Path,
    model: nn.Module,
    optimizer: Optimizer,
    scheduler: Schedule | None,
    device: torch.device,
) -> tuple[int, float]:
    """Load the weights, optimizer, schedule and RNG state of a checkpoint; returns its epoch
    and best validation accuracy."""
    state = load_checkpoint(path, map_location=device)
    model.load_state_dict(with_temperature(state["model"]))
    set_temperature(model, 1.0)  # a finished run's calibration is fitted again at its end
    optimizer.load_state_dict(state["optimizer"])
    if scheduler is not None:
        scheduler.load_state_dict(state["scheduler"])
    torch.set_rng_state(state["rng_state"].cpu())
    if "cuda_rng_state" in state and device.type == "cuda":
        torch.cuda.set_rng_state_all(state["cuda_rng_state"])
    return state["epoch"], state["best_val_accuracy"]
