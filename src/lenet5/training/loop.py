"""Training: `train_one_epoch`, then `fit` runs epochs, logs, checkpoints and resumes."""

from __future__ import annotations

import contextlib
import json
import math
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from lenet5.config import TrainConfig
from lenet5.data.augment import Distortion
from lenet5.data.mnist import Split, Splits, batches, to_float
from lenet5.data.shapes import NOT_A_DIGIT
from lenet5.errors import WriteError
from lenet5.files import append_line, atomic_write_text
from lenet5.inference.calibration import fit_temperature
from lenet5.inference.checkpoint import BEST, LAST, save_checkpoint
from lenet5.inference.evaluate import evaluate
from lenet5.models import count_parameters, set_temperature
from lenet5.training.distill import TeacherError, Teachers, load_teachers
from lenet5.training.distributed import rank_and_world, seed_rank
from lenet5.training.locks import hold
from lenet5.training.logger import RunLogger
from lenet5.training.losses import batch_loss
from lenet5.training.optim import Optimizer, Schedule
from lenet5.training.runs import CONFIG_FILE, METRICS_FILE, SUMMARY_FILE, dump_json, read_metrics
from lenet5.training.setup import (
    TrainingError,
    check_config,
    epoch_generator,
    init_model,
    make_optimizer,
    make_scheduler,
    restore,
    steps_per_epoch,
    training_split,
)


@torch.inference_mode()
def calibrate(model: nn.Module, val: Split) -> float:
    """Fit `model`'s temperature to its logits on `val` (as it answers in eval mode, its read
    scales included) and set it; returns it."""
    model.eval()
    set_temperature(model, 1.0)
    logits = torch.cat([model(x) for x, _ in batches(val, 1000)])  # (N, 10)
    temperature = fit_temperature(logits.cpu().numpy(), val.labels.cpu().numpy())
    set_temperature(model, temperature)
    return temperature


def train_one_epoch(
    model: nn.Module,
    split: Split,
    optimizer: Optimizer,
    batch_size: int,
    generator: torch.Generator,
    on_step: Callable[[float, float], None] | None = None,
    scheduler: Schedule | None = None,
    augment: Distortion | None = None,
    label_smoothing: float = 0.0,
    shard: tuple[int, int] = (0, 1),
    teachers: Teachers | None = None,
) -> dict[str, float]:
    """One shuffled pass over `split` (this rank's shard of it); returns mean loss and accuracy
    (on the digits as trained, augmented or not). `on_step(loss, accuracy)` follows each batch.
    With `teachers`, the loss blends in their predictions on the same (augmented) inputs."""
    model.train()
    loss_sum, correct, seen, digits_seen = 0.0, 0, 0, 0
    for step, (x, y) in enumerate(batches(split, batch_size, generator, shard)):
        if augment:
            x = augment(x)
        logits = model(x)
        loss = batch_loss(logits, y, x, label_smoothing, teachers)
        loss_value = loss.item()
        if not math.isfinite(loss_value):
            raise TrainingError(f"the loss became {loss_value} at step {step + 1}")
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        batch_correct = int((logits.argmax(dim=1) == y).sum())  # never right on NOT_A_DIGIT
        batch_digits = len(y) - int((y == NOT_A_DIGIT).sum())
        loss_sum += loss_value * len(y)
        correct += batch_correct
        seen += len(y)
        digits_seen += batch_digits
        if on_step is not None:
            on_step(loss_value, batch_correct / max(batch_digits, 1))
    return {"loss": loss_sum / seen, "accuracy": correct / max(digits_seen, 1)}


def fit(
    config: TrainConfig,
    splits: Splits,
    run_dir: str | Path,
    device: torch.device | str = "cpu",
    resume: bool = False,
    progress: bool = False,
    echo: Callable[[str], None] = print,
    report: Callable[[dict[str, int]], None] | None = None,
) -> dict[str, Any]:
    """Train `config` in `run_dir` (from its last checkpoint if `resume`); returns the summary.

    Per epoch: a line of metrics.jsonl is written, then checkpoints/best.pt (when validation
    accuracy improves) and checkpoints/last.pt. A run killed at any moment resumes to the same
    final weights. In a distributed run (see `init_distributed`) every rank trains on its shard
    of each global batch, and rank 0 alone evaluates, logs and writes; the others return {}.
    The writing process holds the run directory (`lenet5.training.locks`): a second one is refused.
    """
    check_config(config)
    run_dir, device = Path(run_dir), torch.device(device)
    if rank_and_world()[0] != 0:
        return _fit(config, splits, run_dir, device, resume, progress, echo, report)
    with hold(run_dir):
        return _fit(config, splits, run_dir, device, resume, progress, echo, report)


def _fit(
    config: TrainConfig,
    splits: Splits,
    run_dir: Path,
    device: torch.device,
    resume: bool,
    progress: bool,
    echo: Callable[[str], None],
    report: Callable[[dict[str, int]], None] | None,
) -> dict[str, Any]:
    rank, world = rank_and_world()
    model = init_model(config, device)
    optimizer = make_optimizer(config, model)
    try:
        teachers = load_teachers(
            config.teachers, config.distill, config.temperature, config.dataset, device
        )
    except TeacherError as exc:
        raise TrainingError(str(exc)) from None
    train = training_split(config, splits.train).to(device)
    steps = steps_per_epoch(len(train), config.batch_size, world)
    scheduler = make_scheduler(config, optimizer, steps)
    start_epoch, best_val = 0, -1.0
    if resume and (run_dir / LAST).is_file():
        start_epoch, best_val = restore(run_dir / LAST, model, optimizer, scheduler, device)
    elif rank == 0:
        atomic_write_text(run_dir / CONFIG_FILE, dump_json(config.to_dict()))
    # DDP averages gradients across ranks, and starts by copying rank 0's weights to the others.
    trained = DistributedDataParallel(model) if world > 1 else model
    distortion = Distortion.of(config)

    def one_epoch(epoch: int, on_step: Callable[[float, float], None] | None) -> dict[str, float]:
        if world > 1:
            seed_rank(config.seed, epoch, rank)
        return train_one_epoch(
            trained,
            train,
            optimizer,
            config.batch_size,
            epoch_generator(config.seed, epoch),
            on_step,
            scheduler,
            distortion,
            config.label_smoothing,
            (rank, world),
            teachers,
        )

    if rank != 0:  # train this rank's shards, then wait while rank 0 evaluates and writes
        for epoch in range(start_epoch + 1, config.epochs + 1):
            one_epoch(epoch, None)
            dist.barrier()
        return {}
    run = _MainRank(config, run_dir, model, optimizer, scheduler, splits, device, echo)
    run.forget_after(start_epoch)
    logger = RunLogger(run_dir, start_epoch * steps if start_epoch else None, progress, report)
    return run.epochs(one_epoch, start_epoch, best_val, steps, logger)


class _MainRank:
    """Rank 0's share of a run: evaluate each epoch, then log and checkpoint it."""

    def __init__(
        self,
        config: TrainConfig,
        run_dir: Path,
        model: nn.Module,
        optimizer: Optimizer,
        scheduler: Schedule | None,
        splits: Splits,
        device: torch.device,
        echo: Callable[[str], None],
    ) -> None:
        self.config, self.run_dir, self.model = config, run_dir, model
        self.optimizer, self.scheduler, self.echo = optimizer, scheduler, echo
        self.val, self.test = splits.val.to(device), splits.test.to(device)
        self.device = device
        self.saved_epoch = 0

    def forget_after(self, start_epoch: int) -> None:
        """Forget any epoch logged after the checkpoint the run continues from."""
        self.records = [r for r in read_metrics(self.run_dir) if r["epoch"] <= start_epoch]
        text = "".join(json.dumps(r) + "\n" for r in self.records)
        atomic_write_text(self.run_dir / METRICS_FILE, text)

    def epochs(
        self,
        one_epoch: Callable[[int, Callable[[float, float], None] | None], dict[str, float]],
        start_epoch: int,
        best_val: float,
        steps: int,
        logger: RunLogger,
    ) -> dict[str, Any]:
        config, run_dir = self.config, self.run_dir
        if start_epoch == 0:
            logger.add_graph(self.model, to_float(self.val.images[:1]))
        elif start_epoch < config.epochs:
            self.echo(f"resuming {run_dir} after epoch {start_epoch}/{config.epochs}")
        epoch = self.saved_epoch = start_epoch
        is_best = False
        try:
            for epoch in range(start_epoch + 1, config.epochs + 1):
                logger.start_epoch(epoch, config.epochs, steps)
                t0 = time.perf_counter()
                record = self._record(epoch, one_epoch(epoch, logger.on_step), t0)
                logger.end_epoch(record)
                is_best = record["val_accuracy"] > best_val
                best_val = max(best_val, record["val_accuracy"])
                with interrupts_deferred():  # Ctrl-C waits until the epoch is on disk
                    append_line(run_dir / METRICS_FILE, json.dumps(record) + "\n")
                    self.records.append(record)
                    self._save(epoch, best_val, is_best)
                if rank_and_world()[1] > 1:
                    dist.barrier()  # the other ranks wait for evaluation and checkpoints
                self.echo(
                    f"epoch {epoch:>3}/{config.epochs}  train loss {record['train_loss']:.4f}  "
                    f"val acc {record['val_accuracy']:.4f}  "
                    f"test acc {record['test_accuracy']:.4f}  {record['seconds']:.1f} s"
                )
            temperature = self._calibrate()
            initial = init_model(config, self.device)
            summary = _summary(config, self.records, initial, self.test, self.model)
            summary["temperature"] = temperature
            atomic_write_text(run_dir / SUMMARY_FILE, dump_json(summary))
            logger.hparams(config, summary)
            logger.close()
            return summary
        except KeyboardInterrupt:
            if self.records and self.records[-1]["epoch"] > self.saved_epoch:
                self._save(self.records[-1]["epoch"], best_val, is_best)  # the save was cut short
            saved = (
                f"the checkpoint of epoch {self.saved_epoch} is in {run_dir / LAST}"
                if self.saved_epoch
                else "no epoch had finished"
            )
            self.echo(
                f"\ninterrupted in epoch {epoch}: {saved}; resume with: "
                f"lenet5 train --resume {run_dir}"
            )
            raise
        except TrainingError as exc:
            raise TrainingError(
                f"epoch {epoch}: {exc}; stopped, {self._kept()}; try a lower --lr"
            ) from None
        except WriteError as exc:
            raise WriteError(
                f"{exc}; stopped, {self._kept()}; once it can be written: "
                f"lenet5 train --resume {run_dir}"
            ) from None
        finally:
            with contextlib.suppress(WriteError):  # already reported above
                logger.close()

    def _record(self, epoch: int, train: dict[str, float], t0: float) -> dict[str, Any]:
        """The line of metrics.jsonl for `epoch`: training figures, then validation and test."""
        seconds = time.perf_counter() - t0
        val = evaluate(self.model, self.val, self.config.eval_batch_size)
        test = evaluate(self.model, self.test, self.config.eval_batch_size)
        return {
            "epoch": epoch,
            "train_loss": train["loss"],
            "train_accuracy": train["accuracy"],
            "val_loss": val["loss"],
            "val_accuracy": val["accuracy"],
            "test_loss": test["loss"],
            "test_accuracy": test["accuracy"],
            "seconds": seconds,
        }

    def _calibrate(self) -> float:
        """Fit the temperature on the validation split and write it into last.pt."""
        temperature = calibrate(self.model, self.val)
        with interrupts_deferred():
            best_val = max(r["val_accuracy"] for r in self.records)
            self._save(self.saved_epoch, best_val, is_best=False)  # last.pt alone
        return temperature

    def _save(self, epoch: int, best_val: float, is_best: bool) -> None:
        """Write best.pt (when `is_best`), then last.pt, with the RNG state after `epoch`."""
        for path in (BEST, LAST) if is_best else (LAST,):
            save_checkpoint(
                self.run_dir / path,
                config=self.config,
                model=self.model,
                optimizer=self.optimizer,
                scheduler=self.scheduler,
                epoch=epoch,
                best_val_accuracy=best_val,
            )
        self.saved_epoch = epoch

    def _kept(self) -> str:
        """What a stopped run left on disk."""
        if self.saved_epoch:
            return f"the last good checkpoint (epoch {self.saved_epoch}) is {self.run_dir / LAST}"
        return "no checkpoint was written"


@contextlib.contextmanager
def interrupts_deferred() -> Iterator[None]:
    """Hold SIGINT (Ctrl-C) until the block ends, then deliver it as it would have been.

    torch.save interrupted half-way raises a RuntimeError from its zip writer instead of
    KeyboardInterrupt; holding the signal keeps every checkpoint whole and Ctrl-C clean."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, _frame: received.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if received:
            signal.raise_signal(signal.SIGINT)  # now handled as before: KeyboardInterrupt


def _summary(
    config: TrainConfig,
    records: list[dict[str, Any]],
    initial_model: nn.Module,
    test: Split,
    model: nn.Module,
) -> dict[str, Any]:
    last = records[-1]
    best = max(records, key=lambda r: r["val_accuracy"])
    return {
        "model": config.model,
        "optimizer": config.optimizer,
        "dataset": config.dataset,
        "parameters": count_parameters(model),
        "epochs": last["epoch"],
        "test_accuracy": last["test_accuracy"],
        "val_accuracy": last["val_accuracy"],
        "train_loss": last["train_loss"],
        "best_epoch": best["epoch"],
        "best_val_accuracy": best["val_accuracy"],
        "test_accuracy_at_best_val": best["test_accuracy"],
        "test_accuracy_before_training": evaluate(initial_model, test, config.eval_batch_size)[
            "accuracy"
        ],
        "train_seconds": sum(r["seconds"] for r in records),
        "seconds_per_epoch": sum(r["seconds"] for r in records) / len(records),
    }
