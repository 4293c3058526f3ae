from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from lenet5.config import RECIPES, TrainConfig
from lenet5.data import mnist as data
from lenet5.inference.checkpoint import LAST, load_checkpoint
from lenet5.training import loop as train_module
from lenet5.training.loop import fit
from lenet5.training.runs import read_metrics
from lenet5.training.setup import TrainingError

from conftest import write_dataset

SMALL = TrainConfig(epochs=3, batch_size=32, seed=5)


def _fit(tiny_data: Path, run_dir: Path, config: TrainConfig = SMALL, **kwargs: object) -> dict:
    return fit(config, data.load_splits(data_dir=tiny_data), run_dir, echo=lambda _: None, **kwargs)  # type: ignore[arg-type]


def _without_time(records: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "seconds"} for r in records]


def test_learns_the_synthetic_digits(tiny_data: Path, tmp_path: Path) -> None:
    summary = _fit(tiny_data, tmp_path / "run")
    assert summary["test_accuracy"] > 0.8 and summary["test_accuracy_before_training"] < 0.3
    assert summary["parameters"] == 61_706 and summary["epochs"] == 3
    records = read_metrics(tmp_path / "run")
    assert [r["epoch"] for r in records] == [1, 2, 3]
    assert all(0 <= r[k] <= 1 for r in records for k in ("val_accuracy", "test_accuracy"))
    assert records[-1]["train_loss"] < records[0]["train_loss"]
    assert json.loads((tmp_path / "run" / "config.json").read_text()) == SMALL.to_dict()


def test_same_seed_same_metrics(tiny_data: Path, tmp_path: Path) -> None:
    config = TrainConfig(epochs=2, batch_size=32, seed=1, dropout=0.25)
    _fit(tiny_data, tmp_path / "a", config)
    _fit(tiny_data, tmp_path / "b", config)
    assert _without_time(read_metrics(tmp_path / "a")) == _without_time(
        read_metrics(tmp_path / "b")
    )
    _fit(tiny_data, tmp_path / "c", TrainConfig(epochs=2, batch_size=32, seed=2, dropout=0.25))
    assert _without_time(read_metrics(tmp_path / "a")) != _without_time(
        read_metrics(tmp_path / "c")
    )


@pytest.mark.parametrize("recipe", sorted(RECIPES))
def test_resume_in_process_matches_an_uninterrupted_run(
    tiny_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, recipe: str
) -> None:
    """Dropout, augmentation and a learning-rate schedule all resume exactly."""
    # Fewer generated digits than the robust recipe's 12,520: the same code paths, in seconds.
    generated = {"fonts": 1, "strokes": 20} if RECIPES[recipe].get("strokes") else {}
    config = TrainConfig(
        **{
            **RECIPES[recipe],
            **generated,
            "epochs": 4,
            "batch_size": 32,
            "seed": 3,
            "dropout": 0.25,
        }
    )
    _fit(tiny_data, tmp_path / "full", config)

    def interrupt_after_epoch_2(model: object, split: data.Split, batch_size: int) -> dict:
        if len(read_metrics(tmp_path / "part")) == 2 and len(split) == 200:  # epoch 3, test
            raise KeyboardInterrupt
        return real_evaluate(model, split, batch_size)  # type: ignore[arg-type]

    real_evaluate = train_module.evaluate
    monkeypatch.setattr(train_module, "evaluate", interrupt_after_epoch_2)
    with pytest.raises(KeyboardInterrupt):
        _fit(tiny_data, tmp_path / "part", config)
    monkeypatch.undo()
    assert load_checkpoint(tmp_path / "part" / LAST)["epoch"] == 2
    _fit(tiny_data, tmp_path / "part", config, resume=True)
    full = load_checkpoint(tmp_path / "full" / LAST)
    part = load_checkpoint(tmp_path / "part" / LAST)
    for name, tensor in full["model"].items():
        assert torch.equal(tensor, part["model"][name]), name
    assert _without_time(read_metrics(tmp_path / "full")) == _without_time(
        read_metrics(tmp_path / "part")
    )


def _default_sigint() -> None:
    """In the child: Ctrl-C as a terminal delivers it, whatever this test process inherited
    or was left with by earlier tests (an ignored or blocked SIGINT passes on to children)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


def _lenet5(*args: str, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "lenet5", "train", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=_default_sigint,
    )


def test_sigkill_then_resume_equals_an_uninterrupted_run(tmp_path: Path) -> None:
    directory = write_dataset(tmp_path / "data", n_train=data.VALIDATION_SIZE + 3000, n_test=500)
    env = {**os.environ, "LENET5_DATA": str(directory), "OMP_NUM_THREADS": "1"}
    flags = ["--epochs", "6", "--batch-size", "32", "--seed", "9", "--dropout", "0.25"]

    full = _lenet5(*flags, "--run-dir", str(tmp_path / "full"), env=env)
    assert full.wait(timeout=300) == 0, full.stdout.read()  # type: ignore[union-attr]

    victim = _lenet5(*flags, "--run-dir", str(tmp_path / "killed"), env=env)
    deadline = time.monotonic() + 120
    while len(read_metrics(tmp_path / "killed")) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    victim.send_signal(signal.SIGKILL)
    assert victim.wait(timeout=30) == -signal.SIGKILL
    assert 2 <= len(read_metrics(tmp_path / "killed")) < 6  # really killed mid-training

    resumed = subprocess.run(
        [sys.executable, "-m", "lenet5", "train", "--resume", str(tmp_path / "killed")],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming" in resumed.stdout
    a, b = load_checkpoint(tmp_path / "full" / LAST), load_checkpoint(tmp_path / "killed" / LAST)
    assert a["epoch"] == b["epoch"] == 6
    for name, tensor in a["model"].items():
        assert torch.equal(tensor, b["model"][name]), name
    assert _without_time(read_metrics(tmp_path / "full")) == _without_time(
        read_metrics(tmp_path / "killed")
    )


def test_ctrl_c_tells_how_to_resume(tmp_path: Path) -> None:
    directory = write_dataset(tmp_path / "data", n_train=data.VALIDATION_SIZE + 3000, n_test=500)
    env = {**os.environ, "LENET5_DATA": str(directory), "OMP_NUM_THREADS": "1"}
    run = tmp_path / "run"
    # 40 short epochs: time enough to interrupt it mid-run even on a loaded machine (with 8,
    # a busy full test run once saw the run end before the signal was sent).
    proc = _lenet5("--epochs", "40", "--batch-size", "32", "--run-dir", str(run), env=env)
    deadline = time.monotonic() + 120
    while not read_metrics(run) and time.monotonic() < deadline:
        time.sleep(0.01)
    parent = (signal.getsignal(signal.SIGINT), signal.pthread_sigmask(signal.SIG_BLOCK, []))
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130, (out, parent)
    assert f"resume with: lenet5 train --resume {run}" in out
    assert "Traceback" not in out
    done = load_checkpoint(run / LAST)["epoch"]
    assert 1 <= done < 40 and len(read_metrics(run)) == done


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(
    tiny_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    steps_per_epoch = 256 // 32
    real_loss = torch.nn.functional.cross_entropy
    calls = {"training": 0}

    def loss_that_breaks_in_epoch_3(logits: torch.Tensor, y: torch.Tensor, **kw: object) -> object:
        if kw.get("reduction") == "sum":  # evaluation
            return real_loss(logits, y, **kw)
        calls["training"] += 1
        loss = real_loss(logits, y, **kw)
        return loss * float("nan") if calls["training"] > 2 * steps_per_epoch + 3 else loss

    monkeypatch.setattr(torch.nn.functional, "cross_entropy", loss_that_breaks_in_epoch_3)
    with pytest.raises(TrainingError, match=r"epoch 3: the loss became nan at step 4.*epoch 2"):
        _fit(tiny_data, tmp_path / "run", TrainConfig(epochs=5, batch_size=32))
    state = load_checkpoint(tmp_path / "run" / LAST)
    assert state["epoch"] == 2 and len(read_metrics(tmp_path / "run")) == 2
    assert all(torch.isfinite(t).all() for t in state["model"].values())


def test_tensorboard_reader_finds_the_scalars(tiny_data: Path, tmp_path: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    _fit(tiny_data, tmp_path / "run", TrainConfig(epochs=2, batch_size=64))
    events = EventAccumulator(str(tmp_path / "run"))
    events.Reload()
    scalars = set(events.Tags()["scalars"])
    assert {
        "train/loss",
        "train/accuracy",
        "val/accuracy",
        "test/accuracy",
        "epoch/seconds",
    } <= scalars
    steps = len(range(0, 256, 64))
    assert len(events.Scalars("train/loss")) == 2 * steps  # one point per step
    assert [e.step for e in events.Scalars("val/accuracy")] == [steps, 2 * steps]
    final = json.loads((tmp_path / "run" / "summary.json").read_text())["test_accuracy"]
    assert events.Scalars("test/accuracy")[-1].value == pytest.approx(final)
    assert events.Graph() is not None
    assert events.PluginTagToContent("hparams")  # hyperparameters with their final metrics


def test_ctrl_c_waits_until_the_epoch_is_on_disk() -> None:
    """A SIGINT inside the block is held until it ends, then raised as KeyboardInterrupt; an
    ignored SIGINT (nohup) stays ignored."""
    from lenet5.training.loop import interrupts_deferred

    finished = []
    # As Python starts a process; the full test run may have left SIGINT ignored.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt), interrupts_deferred():
            signal.raise_signal(signal.SIGINT)
            finished.append("the block ran to its end")
        assert finished == ["the block ran to its end"]
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        with interrupts_deferred():
            signal.raise_signal(signal.SIGINT)
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, previous)
