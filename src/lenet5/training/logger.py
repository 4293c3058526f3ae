"""A run's TensorBoard events (`train/loss`, `val/accuracy`, ...) and its live progress bar."""

from __future__ import annotations

import contextlib
import sys
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn

from lenet5.config import TrainConfig
from lenet5.errors import WriteError


class RunLogger:
    """TensorBoard events plus the optional live progress bar; nothing else writes events."""

    def __init__(
        self,
        run_dir: Path,
        purge_step: int | None,
        progress: bool,
        report: Callable[[dict[str, int]], None] | None = None,
    ) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.run_dir = run_dir
        self.writer = SummaryWriter(str(run_dir), purge_step=purge_step)
        self.progress = progress
        self.step = purge_step or 0
        self.bar: Any = None
        # `report` hears of each percent of an epoch done: {epoch, epochs, step, steps}.
        self.report = report
        self.position = {"epoch": 0, "epochs": 0, "step": 0, "steps": 0}

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
        self.position = {"epoch": epoch, "epochs": epochs, "step": 0, "steps": steps}
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
        if self.report is not None:
            done, steps = self.position["step"] + 1, self.position["steps"]
            self.position["step"] = done
            if done == steps or 100 * done // steps > 100 * (done - 1) // steps:
                self.report(dict(self.position))

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
        # TensorBoard takes numbers, strings and booleans only (teachers, read scales: lists).
        values = {
            k: ", ".join(map(str, v)) if isinstance(v, list) else v
            for k, v in config.to_dict().items()
        }
        with self._events():
            for event in hparams(values, metrics):
                self.writer._get_file_writer().add_summary(event)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        with self._events():
            self.writer.close()
