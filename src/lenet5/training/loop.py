"""Training: `train_one_epoch`, then `fit` runs epochs, logs, checkpoints and resumes."""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import signal
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from lenet5.config import OPTIMIZERS, SCHEDULES, TrainConfig
from lenet5.data.augment import Distortion
from lenet5.data.mnist import DATASETS, Split, Splits, batches, to_float
from lenet5.errors import Lenet5Error, WriteError
from lenet5.files import append_line, atomic_write_text
from lenet5.inference.checkpoint import BEST, LAST, load_checkpoint, load_model, save_checkpoint
from lenet5.inference.evaluate import evaluate
from lenet5.models import INIT_NAMES, MODEL_NAMES, build_model, count_parameters
from lenet5.training.distill import TeacherError, Teachers, load_teachers
from lenet5.training.locks import LOCK_FILE, check_free, hold
from lenet5.training.optim import Cosine, OneCycle, Optimizer, Schedule

CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.jsonl"
SUMMARY_FILE = "summary.json"


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
    if config.dropout and config.model != "lenet5":
        raise TrainingError("dropout applies to the lenet5 model only")
    if not 0.0 <= config.distill <= 1.0:
        raise TrainingError(f"distill must be in [0, 1], got {config.distill}")
    if not (config.temperature > 0 and math.isfinite(config.temperature)):
        raise TrainingError(f"temperature must be a positive number, got {config.temperature}")


def resolve_device(name: str = "auto") -> torch.device:
    """`auto` picks CUDA when present, else the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise TrainingError("--device cuda: no CUDA device is available")
    if name not in ("cpu", "cuda"):
        raise TrainingError(f"unknown device {name!r} (choose from auto, cpu, cuda)")
    return torch.device(name)


def init_distributed(device: torch.device) -> torch.device:
    """Join the process group that torchrun describes (WORLD_SIZE > 1): gloo on CPU, nccl on
    CUDA. Returns the device of this rank."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return device
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    dist.init_process_group(
        "nccl" if device.type == "cuda" else "gloo", timeout=timedelta(minutes=5)
    )
    return device


def rank_and_world() -> tuple[int, int]:
    """(rank, world size): (0, 1) outside a distributed run."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


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
    weights of the checkpoint that `init_from` names."""
    torch.manual_seed(config.seed)
    model = build_model(config.model, config.dropout, config.init).to(device)
    if config.init_from:
        base, base_config = load_model(None if config.init_from == "bundled" else config.init_from)
        if base_config.model != config.model:
            raise TrainingError(
                f"{config.init_from} holds a {base_config.model} model, not {config.model}"
            )
        model.load_state_dict(base.state_dict())
    if device.type == "cpu":
        # oneDNN's convolutions and max-pooling run 15-25% faster on channels-last activations;
        # the weights' layout decides the activations' (their values are unchanged).
        model = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    return model


def training_split(config: TrainConfig, train: Split) -> Split:
    """The images a run trains on: MNIST's training split (or its first `train_subset`), then
    `fonts` copies of the font-rendered digits and `strokes` stroke-drawn digits per class."""
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
    (on the inputs as trained, augmented or not). `on_step(loss, accuracy)` follows each batch.
    With `teachers`, the loss blends in their predictions on the same (augmented) inputs."""
    model.train()
    loss_sum, correct, seen = 0.0, 0, 0
    for step, (x, y) in enumerate(batches(split, batch_size, generator, shard)):
        if augment:
            x = augment(x)
        logits = model(x)
        loss = F.cross_entropy(logits, y, label_smoothing=label_smoothing)
        if teachers is not None:
            loss = teachers.loss(loss, x, logits)
        loss_value = loss.item()
        if not math.isfinite(loss_value):
            raise TrainingError(f"the loss became {loss_value} at step {step + 1}")
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        batch_correct = int((logits.argmax(dim=1) == y).sum())
        loss_sum += loss_value * len(y)
        correct += batch_correct
        seen += len(y)
        if on_step is not None:
            on_step(loss_value, batch_correct / len(y))
    return {"loss": loss_sum / seen, "accuracy": correct / seen}


def next_run_dir(root: Path, config: TrainConfig) -> Path:
    """`root/<model>-<optimizer>-NN` with the next free number."""
    return next_numbered_dir(root, config.name)


def next_numbered_dir(root: Path, name: str) -> Path:
    """`root/<name>-NN` with the next free number."""
    prefix = f"{name}-"
    taken = [
        int(m.group(1))
        for p in root.glob(prefix + "*")
        if (m := re.fullmatch(re.escape(prefix) + r"(\d+)", p.name))
    ]
    return root / f"{prefix}{max(taken, default=0) + 1:02d}"


def is_run_dir(path: Path) -> bool:
    return (path / CONFIG_FILE).is_file()


def prepare_new_run_dir(path: Path) -> None:
    """Create a run directory, refusing to overwrite anything."""
    if path.exists():
        if not path.is_dir():
            raise TrainingError(f"{path} exists and is not a directory")
        check_free(path)
        if is_run_dir(path):
            raise TrainingError(f"{path} already holds a run; continue it with --resume {path}")
        if any(p.name != LOCK_FILE for p in path.iterdir()):
            raise TrainingError(f"{path} exists, is not empty and is not a run directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise TrainingError(f"cannot create run directory {path}: {exc.strerror}") from None


def read_run_config(run_dir: Path) -> TrainConfig:
    """The config of an existing run directory."""
    if not is_run_dir(run_dir):
        raise TrainingError(f"{run_dir} is not a run directory (no {CONFIG_FILE})")
    try:
        return TrainConfig.from_dict(json.loads((run_dir / CONFIG_FILE).read_text()))
    except (ValueError, TypeError) as exc:
        raise TrainingError(f"{run_dir / CONFIG_FILE}: unreadable ({exc})") from None


def read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    """The complete lines of metrics.jsonl (a line cut short by a crash is dropped)."""
    path = run_dir / METRICS_FILE
    records = []
    if path.is_file():
        for line in path.read_text().splitlines():
            try:
                records.append(json.loads(line))
            except ValueError:
                break
    return records


def _dump(obj: Any) -> str:
    return json.dumps(obj, indent=2) + "\n"


class _Logger:
    """TensorBoard events plus the optional live progress bar; nothing else writes events."""

    def __init__(self, run_dir: Path, purge_step: int | None, progress: bool) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.run_dir = run_dir
        self.writer = SummaryWriter(str(run_dir), purge_step=purge_step)
        self.progress = progress
        self.step = purge_step or 0
        self.bar: Any = None

    def add_graph(self, model: nn.Module, example: torch.Tensor) -> None:
        """The model's graph, traced in eval mode as SummaryWriter.add_graph traces it. Traced
        here without the trace's self-check, which imports torch.distributed.tensor (1.2 s
        here); add_graph keeps an already traced model as it is."""
        training = model.training
        model.eval()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch.jit.trace's deprecation, "already traced"
            self.writer.add_graph(torch.jit.trace(model, example, check_trace=False), example)
        model.train(training)

    def start_epoch(self, epoch: int, epochs: int, steps: int) -> None:
        if self.progress:
            from tqdm import tqdm

            self.bar = tqdm(
                total=steps,
                desc=f"epoch {epoch}/{epochs}",
                leave=False,
                unit="batch",
                file=sys.stderr,
            )

    @contextlib.contextmanager
    def _events(self) -> Iterator[None]:
        """TensorBoard writes on a thread of its own, and raises its failure (a full disk...)
        as an OSError at the next event: say which files, as every other write does."""
        try:
            yield
        except OSError as exc:
            raise WriteError(
                f"cannot write the TensorBoard events in {self.run_dir}: {exc.strerror or exc}"
            ) from None

    def on_step(self, loss: float, accuracy: float) -> None:
        self.step += 1
        with self._events():
            self.writer.add_scalar("train/loss", loss, self.step)
            self.writer.add_scalar("train/accuracy", accuracy, self.step)
        if self.bar is not None:
            self.bar.set_postfix_str(f"loss {loss:.4f}", refresh=False)
            self.bar.update()

    def end_epoch(self, record: dict[str, Any]) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        with self._events():
            for tag, key in (
                ("val/accuracy", "val_accuracy"),
                ("val/loss", "val_loss"),
                ("test/accuracy", "test_accuracy"),
                ("test/loss", "test_loss"),
                ("epoch/train_loss", "train_loss"),
                ("epoch/seconds", "seconds"),
            ):
                self.writer.add_scalar(tag, record[key], self.step)
            self.writer.flush()

    def hparams(self, config: TrainConfig, summary: dict[str, Any]) -> None:
        from torch.utils.tensorboard.summary import hparams

        metrics = {
            "test/accuracy": summary["test_accuracy"],
            "val/accuracy": summary["val_accuracy"],
        }
        # TensorBoard takes numbers, strings and booleans only (the teachers are a list).
        values = {
            k: ", ".join(v) if isinstance(v, list) else v for k, v in config.to_dict().items()
        }
        with self._events():
            for event in hparams(values, metrics):
                self.writer._get_file_writer().add_summary(event)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        with self._events():
            self.writer.close()


def fit(
    config: TrainConfig,
    splits: Splits,
    run_dir: str | Path,
    device: torch.device | str = "cpu",
    resume: bool = False,
    progress: bool = False,
    echo: Callable[[str], None] = print,
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
        return _fit(config, splits, run_dir, device, resume, progress, echo)
    with hold(run_dir):
        return _fit(config, splits, run_dir, device, resume, progress, echo)


def _fit(
    config: TrainConfig,
    splits: Splits,
    run_dir: Path,
    device: torch.device,
    resume: bool,
    progress: bool,
    echo: Callable[[str], None],
) -> dict[str, Any]:
    rank, world = rank_and_world()
    main = rank == 0
    model = init_model(config, device)
    optimizer = make_optimizer(config, model)
    try:
        teachers = load_teachers(
            config.teachers, config.distill, config.temperature, config.dataset, device
        )
    except TeacherError as exc:
        raise TrainingError(str(exc)) from None
    train = training_split(config, splits.train).to(device)
    val, test = splits.val.to(device), splits.test.to(device)
    if world == 1:
        steps = math.ceil(len(train) / config.batch_size)
    else:
        steps = len(train) // (config.batch_size * world)
        if steps == 0:
            raise TrainingError(
                f"{len(train)} training images cannot fill one global batch of "
                f"{config.batch_size} x {world} ranks"
            )
    scheduler = make_scheduler(config, optimizer, steps)
    start_epoch, best_val = 0, -1.0
    if resume and (run_dir / LAST).is_file():
        state = load_checkpoint(run_dir / LAST, map_location=device)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        if scheduler is not None:
            scheduler.load_state_dict(state["scheduler"])
        start_epoch, best_val = state["epoch"], state["best_val_accuracy"]
        torch.set_rng_state(state["rng_state"].cpu())
        if "cuda_rng_state" in state and device.type == "cuda":
            torch.cuda.set_rng_state_all(state["cuda_rng_state"])
    elif main:
        atomic_write_text(run_dir / CONFIG_FILE, _dump(config.to_dict()))
    # DDP averages gradients across ranks, and starts by copying rank 0's weights to the others.
    trained = DistributedDataParallel(model) if world > 1 else model
    if not main:
        return _follow(
            config, trained, train, optimizer, scheduler, teachers, start_epoch, rank, world
        )
    # Forget any epoch logged after the checkpoint we continue from.
    records = [r for r in read_metrics(run_dir) if r["epoch"] <= start_epoch]
    atomic_write_text(run_dir / METRICS_FILE, "".join(json.dumps(r) + "\n" for r in records))

    logger = _Logger(
        run_dir, purge_step=start_epoch * steps if start_epoch else None, progress=progress
    )
    if start_epoch == 0:
        logger.add_graph(model, to_float(train.images[:1]))
    elif start_epoch < config.epochs:
        echo(f"resuming {run_dir} after epoch {start_epoch}/{config.epochs}")
    epoch = saved_epoch = start_epoch
    try:
        for epoch in range(start_epoch + 1, config.epochs + 1):
            logger.start_epoch(epoch, config.epochs, steps)
            t0 = time.perf_counter()
            if world > 1:
                _seed_rank(config.seed, epoch, rank)
            train_metrics = train_one_epoch(
                trained,
                train,
                optimizer,
                config.batch_size,
                epoch_generator(config.seed, epoch),
                logger.on_step,
                scheduler,
                Distortion.of(config),
                config.label_smoothing,
                (rank, world),
                teachers,
            )
            seconds = time.perf_counter() - t0
            val_metrics = evaluate(model, val, config.eval_batch_size)
            test_metrics = evaluate(model, test, config.eval_batch_size)
            record = {
                "epoch": epoch,
                "train_loss": train_metrics["loss"],
                "train_accuracy": train_metrics["accuracy"],
                "val_loss": val_metrics["loss"],
                "val_accuracy": val_metrics["accuracy"],
                "test_loss": test_metrics["loss"],
                "test_accuracy": test_metrics["accuracy"],
                "seconds": seconds,
            }
            logger.end_epoch(record)
            is_best = record["val_accuracy"] > best_val
            best_val = max(best_val, record["val_accuracy"])
            with interrupts_deferred():  # Ctrl-C waits until the epoch is on disk
                append_line(run_dir / METRICS_FILE, json.dumps(record) + "\n")
                records.append(record)
                _save_epoch(run_dir, config, model, optimizer, scheduler, epoch, best_val, is_best)
                saved_epoch = epoch
            if world > 1:
                dist.barrier()  # the other ranks wait for evaluation and checkpoints
            echo(
                f"epoch {epoch:>3}/{config.epochs}  train loss {record['train_loss']:.4f}  "
                f"val acc {record['val_accuracy']:.4f}  test acc {record['test_accuracy']:.4f}  "
                f"{seconds:.1f} s"
            )
        summary = _summary(config, records, init_model(config, device), test, model)
        atomic_write_text(run_dir / SUMMARY_FILE, _dump(summary))
        logger.hparams(config, summary)
        logger.close()
        return summary
    except KeyboardInterrupt:
        if records and records[-1]["epoch"] > saved_epoch:  # the interrupt cut the save short
            saved_epoch = records[-1]["epoch"]
            _save_epoch(
                run_dir, config, model, optimizer, scheduler, saved_epoch, best_val, is_best
            )
        saved = (
            f"the checkpoint of epoch {saved_epoch} is in {run_dir / LAST}"
            if saved_epoch
            else "no epoch had finished"
        )
        echo(
            f"\ninterrupted in epoch {epoch}: {saved}; resume with: lenet5 train --resume {run_dir}"
        )
        raise
    except TrainingError as exc:
        raise TrainingError(
            f"epoch {epoch}: {exc}; stopped, {_kept(run_dir, saved_epoch)}; try a lower --lr"
        ) from None
    except WriteError as exc:
        raise WriteError(
            f"{exc}; stopped, {_kept(run_dir, saved_epoch)}; once it can be written: "
            f"lenet5 train --resume {run_dir}"
        ) from None
    finally:
        with contextlib.suppress(WriteError):  # already reported above
            logger.close()


def _kept(run_dir: Path, saved_epoch: int) -> str:
    if saved_epoch:
        return f"the last good checkpoint (epoch {saved_epoch}) is {run_dir / LAST}"
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


def _seed_rank(seed: int, epoch: int, rank: int) -> None:
    """Distributed runs draw dropout and augmentation from a stream per (seed, epoch, rank), so
    ranks differ from each other and a resumed run draws the same as an uninterrupted one."""
    torch.manual_seed((seed * 100_003 + epoch) * 1_000 + rank)


def _follow(
    config: TrainConfig,
    trained: nn.Module,
    train: Split,
    optimizer: Optimizer,
    scheduler: Schedule | None,
    teachers: Teachers | None,
    start_epoch: int,
    rank: int,
    world: int,
) -> dict[str, Any]:
    """The epochs of a rank other than 0: train its shards, then wait while rank 0 evaluates."""
    for epoch in range(start_epoch + 1, config.epochs + 1):
        _seed_rank(config.seed, epoch, rank)
        train_one_epoch(
            trained,
            train,
            optimizer,
            config.batch_size,
            epoch_generator(config.seed, epoch),
            None,
            scheduler,
            Distortion.of(config),
            config.label_smoothing,
            (rank, world),
            teachers,
        )
        dist.barrier()
    return {}


def _save_epoch(
    run_dir: Path,
    config: TrainConfig,
    model: nn.Module,
    optimizer: Optimizer,
    scheduler: Schedule | None,
    epoch: int,
    best_val: float,
    is_best: bool,
) -> None:
    """Write best.pt (when `is_best`), then last.pt, with the RNG state as it is after `epoch`."""
    for path in (BEST, LAST) if is_best else (LAST,):
        save_checkpoint(
            run_dir / path,
            config=config,
            model=model,
            optimizer=optimizer,
            scheduler=scheduler,
            epoch=epoch,
            best_val_accuracy=best_val,
        )


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
