"""Fine-tuning on the user's corrections, mixed with MNIST so that MNIST accuracy holds.

`finetune` writes a normal run directory (config, metrics, TensorBoard, checkpoints): its config
names the model it started from and the feedback store, up to the last correction it read, so
the run rebuilds (and resumes) from its directory alone. A share of each label's corrections is
kept apart, and the corrections' and MNIST validation accuracy are measured before and after.
A judged model's judge learns the same corrections, in the run's `judge` folder, and the run's
checkpoints carry it: a drawing it refused and a user taught as a digit is read afterwards.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lenet5.config import FinetuneSettings, TrainConfig
from lenet5.data.feedback import FeedbackError, correction_splits, open_existing
from lenet5.data.mnist import Split, Splits
from lenet5.data.shapes import NOT_A_DIGIT
from lenet5.files import atomic_write_text
from lenet5.inference.bundled import BUNDLED
from lenet5.inference.calibration import refused
from lenet5.inference.checkpoint import (
    BEST,
    LAST,
    add_judge,
    judge_entry,
    load_checkpoint,
    load_model,
    resolve_checkpoint,
)
from lenet5.inference.evaluate import evaluate
from lenet5.inference.predict import probabilities
from lenet5.models import Judged
from lenet5.training.loop import fit

FINETUNE_FILE = "finetune.json"
# Non-digits kept in view while fine-tuning a model that learned them: none forgets how to
# refuse (the bundled model: 75% of non-digits -> 44%), all 30,000 drown the corrections.
FINETUNE_OUTLIERS = 5000
MAX_VAL_DROP = 0.005  # a fine-tuned model that loses more MNIST validation accuracy is refused


def finetune(
    base: str | Path | None,
    feedback: str | Path,
    splits: Splits,
    run_dir: str | Path,
    settings: FinetuneSettings | None = None,
    device: torch.device | str = "cpu",
    echo: Callable[[str], None] = print,
    progress: bool = False,
    report: Callable[[dict[str, int]], None] | None = None,
) -> dict[str, Any]:
    """Fine-tune `base` (None: the bundled model) on the corrections of `feedback`; returns the
    before/after figures, also written to run_dir/finetune.json."""
    settings = settings or FinetuneSettings()
    base_path = resolve_checkpoint(base)
    before_model, base_config = load_model(base, device)
    with open_existing(feedback) as store:
        total, last_id = store.count(), store.last_id()
    if total == 0:
        raise FeedbackError(f"{feedback} holds no corrections to learn from")
    config = _tuned(base_config, base_path, Path(feedback), last_id, settings)
    learn, held = correction_splits(config)
    if len(learn) == 0:
        raise FeedbackError(f"{feedback}: every correction was kept apart; add more first")
    val = splits.val.to(device)

    def measure(model: torch.nn.Module) -> dict[str, float | None]:
        return {
            "corrections_accuracy": answered_as_labelled(model, held) if len(held) else None,
            "val_accuracy": evaluate(model, val)["accuracy"],
        }

    before = measure(before_model)
    echo(
        f"fine-tuning {base_path} on {len(learn)} corrections (x{settings.repeat}) mixed with "
        f"{len(splits.train):,} MNIST images; {len(held)} kept apart to measure"
    )
    judged = isinstance(before_model, Judged)
    first = _phase(report, 0, 2) if judged else report
    fit(config, splits, run_dir, device, progress=progress, echo=echo, report=first)
    if judged:
        echo("fine-tuning its judge on the same corrections")
        judge = load_checkpoint(base_path)["judge"]
        judge_dir = Path(run_dir) / "judge"
        judge_config = _tuned(
            TrainConfig.from_dict(judge["config"]), base_path, Path(feedback), last_id, settings
        )
        second = _phase(report, 1, 2)
        fit(judge_config, splits, judge_dir, device, progress=progress, echo=echo, report=second)
        _give_judge(Path(run_dir), judge_entry(judge_dir, judge["below"]))
    after_model, _ = load_model(run_dir, device)
    after = measure(after_model)
    result = {
        "base": str(base_path),
        "feedback": config.feedback,
        "corrections": total,
        "learned_from": len(learn),
        "kept_apart": len(held),
        "before": before,
        "after": after,
        "val_drop": before["val_accuracy"] - after["val_accuracy"],  # type: ignore[operator]
    }
    atomic_write_text(Path(run_dir) / FINETUNE_FILE, json.dumps(result, indent=2) + "\n")
    return result


def _tuned(
    config: TrainConfig, base: Path, feedback: Path, last_id: int, settings: FinetuneSettings
) -> TrainConfig:
    """`config` (the base model's, or its judge's) as a fine-tuning of `base` trains it."""
    return dataclasses.replace(
        config,
        init_from="bundled" if base == BUNDLED else str(base.resolve()),
        feedback=str(feedback.resolve()),
        feedback_until=last_id,
        feedback_repeat=settings.repeat,
        feedback_holdout=settings.holdout,
        epochs=settings.epochs,
        lr=settings.lr,
        schedule="constant",
        seed=settings.seed,
        fonts=0,
        strokes=0,
        outliers=min(config.outliers, FINETUNE_OUTLIERS),
        train_subset=0,
        teachers=[],  # corrections and MNIST only: the base's teachers need not exist here
    )


def _phase(
    report: Callable[[dict[str, int]], None] | None, done: int, phases: int
) -> Callable[[dict[str, int]], None] | None:
    """`report` for one of `phases` fits of equal length, `done` of them before it: its epochs
    counted on from theirs, so that progress runs once from 0 to 1 over all of them."""
    if report is None:
        return None
    return lambda event: report(
        {
            **event,
            "epoch": event["epoch"] + done * event["epochs"],
            "epochs": phases * event["epochs"],
        }
    )


def _give_judge(run_dir: Path, judge: dict[str, Any]) -> None:
    """The run's checkpoints become judged models, with the judge fine-tuned beside them."""
    for checkpoint in (LAST, BEST):
        if (run_dir / checkpoint).is_file():
            add_judge(run_dir / checkpoint, judge)


def answered_as_labelled(model: torch.nn.Module, corrections: Split) -> float:
    """The share of corrections a reader now answers as the user labelled them: the digit, or
    "not a digit" (a digit answered "not a digit" counts as wrong)."""
    probs = probabilities(model, corrections.images.cpu().numpy())
    said = np.where(refused(probs), NOT_A_DIGIT, probs.argmax(axis=1))
    return float((said == corrections.labels.cpu().numpy()).mean())


def format_result(result: dict[str, Any]) -> str:
    def pct(value: float | None) -> str:
        return "-" if value is None else f"{value:.2%}"

    b, a = result["before"], result["after"]
    return (
        f"kept-apart corrections ({result['kept_apart']}): "
        f"{pct(b['corrections_accuracy'])} -> {pct(a['corrections_accuracy'])}\n"
        f"MNIST validation: {pct(b['val_accuracy'])} -> {pct(a['val_accuracy'])}"
    )
