from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest
import torch

from lenet5.config import TrainConfig
from lenet5.errors import WriteError
from lenet5.inference.checkpoint import (
    LAST,
    CheckpointError,
    add_judge,
    judge_entry,
    load_checkpoint,
    load_model,
    save_checkpoint,
)
from lenet5.models import Judged, build_model


def _save(path: Path, config: TrainConfig) -> torch.nn.Module:
    torch.manual_seed(3)
    model = build_model(config.model, config.dropout, read_scales=config.read_scales)
    optimizer = torch.optim.Adam(model.parameters())
    model(torch.rand(2, 1, 28, 28)).sum().backward()
    optimizer.step()
    save_checkpoint(
        path, config=config, model=model, optimizer=optimizer, epoch=7, best_val_accuracy=0.5
    )
    return model


def test_round_trip_rebuilds_the_model_from_the_path_alone(tmp_path: Path) -> None:
    config = TrainConfig(dropout=0.25, lr=0.003)
    model = _save(tmp_path / "run" / LAST, config)
    loaded, loaded_config = load_model(tmp_path / "run")  # a run directory means its last.pt
    assert loaded_config == config
    assert not loaded.training
    x = torch.rand(5, 1, 28, 28)
    model.eval()
    assert torch.equal(loaded(x), model(x))
    state = load_checkpoint(tmp_path / "run" / LAST)
    assert state["epoch"] == 7 and state["optimizer"]["state"]  # Adam moments kept


def test_read_scales_come_back_from_the_config(tmp_path: Path) -> None:
    config = TrainConfig(read_scales=[1.0, 0.85, 1.15])
    model = _save(tmp_path / LAST, config)
    loaded, loaded_config = load_model(tmp_path / LAST)
    assert loaded_config.read_scales == [1.0, 0.85, 1.15]
    x = torch.rand(5, 1, 28, 28)
    assert torch.equal(loaded(x), model.eval()(x))
    assert not torch.allclose(loaded(x), loaded.logits(x))  # it does read three scales


class _Evil:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (os.system, (f"touch {self.marker}",))


def test_loading_never_executes_code(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    torch.save({"format": "lenet5-checkpoint", "payload": _Evil(marker)}, path)
    with pytest.raises(CheckpointError, match="not a readable lenet5 checkpoint"):
        load_checkpoint(path)
    assert not marker.exists()
    torch.load(path, weights_only=False)  # the file really is malicious: unsafe loading runs it
    assert marker.exists()


@pytest.mark.parametrize("content", [b"", b"hello", b"PK\x03\x04 truncated zip"])
def test_garbage_is_refused(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "bad.pt"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=r"bad\.pt"):
        load_model(path)


def test_truncated_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "c.pt"
    _save(path, TrainConfig())
    path.write_bytes(path.read_bytes()[:5000])
    with pytest.raises(CheckpointError, match="not a readable"):
        load_model(path)


def test_foreign_torch_file(tmp_path: Path) -> None:
    path = tmp_path / "weights.pt"
    torch.save(build_model().state_dict(), path)
    with pytest.raises(CheckpointError, match="not a lenet5 checkpoint"):
        load_model(path)


def test_missing_checkpoint(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        load_model(tmp_path / "nothing.pt")


def _no_space(*_args: object) -> None:
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_a_checkpoint_that_cannot_be_written_leaves_the_previous_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = _save(tmp_path / "last.pt", TrainConfig())
    monkeypatch.setattr(os, "replace", _no_space)
    with pytest.raises(WriteError, match=r"last\.pt: No space left on device"):
        _save(tmp_path / "last.pt", TrainConfig(lr=0.5))
    loaded, config = load_model(tmp_path / "last.pt")
    assert config == TrainConfig()
    assert torch.equal(loaded.state_dict()["fc3.weight"], model.state_dict()["fc3.weight"])


def test_a_judged_model_comes_back_from_its_checkpoint(tmp_path: Path) -> None:
    reader = _save(tmp_path / "reader.pt", TrainConfig())
    judge = _save(tmp_path / "judge" / LAST, TrainConfig(model="judge", read_scales=[1.0, 0.85]))
    entry = judge_entry(tmp_path / "judge", below=0.3)
    save_checkpoint(
        tmp_path / "judged.pt",
        config=TrainConfig(),
        model=reader,
        epoch=7,
        best_val_accuracy=0.5,
        judge=entry,
    )
    loaded, config = load_model(tmp_path / "judged.pt")
    assert isinstance(loaded, Judged) and config == TrainConfig()
    assert float(loaded.below) == pytest.approx(0.3) and not loaded.judge.training
    x = torch.rand(5, 1, 28, 28)
    expected = Judged(reader.eval(), judge.eval(), 0.3)(x)
    assert torch.equal(loaded(x), expected)
    add_judge(tmp_path / "reader.pt", entry)  # the same, given to a checkpoint already written
    assert torch.equal(load_model(tmp_path / "reader.pt")[0](x), expected)


def test_a_bad_judge_is_refused(tmp_path: Path) -> None:
    _save(tmp_path / "reader.pt", TrainConfig())
    with pytest.raises(CheckpointError, match="not a judge model"):
        judge_entry(tmp_path / "reader.pt", below=0.3)
    _save(tmp_path / "judge.pt", TrainConfig(model="judge"))
    with pytest.raises(CheckpointError, match=r"in \(0, 1\]"):
        judge_entry(tmp_path / "judge.pt", below=1.5)
    entry = judge_entry(tmp_path / "judge.pt", below=0.3)
    for broken, message in (
        ({**entry, "below": "0.3"}, "no threshold"),
        ({**entry, "model": {"conv1.weight": torch.zeros(1)}}, "do not fit a judge model"),
        ({**entry, "config": {"model": "resnet"}}, "no model this lenet5 can build"),
    ):
        add_judge(tmp_path / "reader.pt", broken)
        with pytest.raises(CheckpointError, match=message):
            load_model(tmp_path / "reader.pt")
