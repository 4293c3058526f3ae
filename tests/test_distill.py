from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lenet5.cli import main
from lenet5.config import TrainConfig
from lenet5.data import mnist as data
from lenet5.inference.checkpoint import load_model
from lenet5.models import build_model
from lenet5.training.distill import Teachers
from lenet5.training.loop import fit, train_one_epoch
from lenet5.training.setup import TrainingError


class Shifted(nn.Module):
    """A teacher that answers `model`'s digit plus one (mod 10): learnable, and not the labels."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.roll(self.model(x), shifts=1, dims=1)


@pytest.mark.parametrize("weight, temperature", [(0.0, 1.0), (0.7, 1.0), (1.0, 3.0)])
def test_the_loss_is_the_blend_of_label_and_teacher_cross_entropies(
    weight: float, temperature: float
) -> None:
    torch.manual_seed(0)
    teachers = [build_model("lenet5", init="pytorch") for _ in range(2)]
    x, y = torch.rand(8, 1, 28, 28), torch.randint(0, 10, (8,))
    logits = torch.randn(8, 10)
    label_loss = F.cross_entropy(logits, y)
    loss = Teachers(teachers, weight, temperature).loss(label_loss, x, logits)
    # A second implementation: KL divergence plus the teachers' entropy is the cross-entropy.
    with torch.no_grad():
        p = torch.stack([F.softmax(t(x) / temperature, 1) for t in teachers]).mean(0)
    log_q = F.log_softmax(logits / temperature, 1)
    kl = F.kl_div(log_q, p, reduction="batchmean")
    entropy = -(p * p.log()).sum(1).mean()
    expected = (1 - weight) * label_loss + weight * (kl + entropy) * temperature**2
    torch.testing.assert_close(loss, expected, rtol=1e-5, atol=1e-6)
    if weight == 0:
        assert loss.item() == label_loss.item()


def test_a_student_learns_its_teachers_answers_over_the_labels(
    synthetic_run: tuple[Path, Path],
) -> None:
    directory, run = synthetic_run
    splits = data.load_splits(data_dir=directory)
    teacher, _ = load_model(run)
    torch.manual_seed(0)
    student = build_model("lenet5", init="pytorch")
    optimizer = torch.optim.Adam(student.parameters(), lr=0.003)
    for epoch in range(3):
        train_one_epoch(
            student,
            splits.train,
            optimizer,
            32,
            torch.Generator().manual_seed(epoch),
            teachers=Teachers([Shifted(teacher)], weight=1.0, temperature=1.0),
        )
    student.eval()
    with torch.no_grad():
        x = data.to_float(splits.test.images)
        told = Shifted(teacher)(x).argmax(1)
        learned = student(x).argmax(1)
    assert (learned == told).float().mean() > 0.8  # the teacher's answers...
    assert (learned == splits.test.labels).float().mean() < 0.2  # ...not the labels


def test_a_run_with_teachers_records_them_and_resumes_alike(
    synthetic_run: tuple[Path, Path], tmp_path: Path
) -> None:
    directory, teacher_run = synthetic_run
    splits = data.load_splits(data_dir=directory)
    config = TrainConfig(epochs=2, batch_size=32, teachers=[str(teacher_run)], distill=0.5)
    fit(config, splits, tmp_path / "whole", echo=lambda _: None)
    stored = json.loads((tmp_path / "whole" / "config.json").read_text())
    assert stored["teachers"] == [str(teacher_run)] and stored["distill"] == 0.5
    # One epoch, then resumed: the same weights as the uninterrupted run.
    fit(
        TrainConfig(**{**config.to_dict(), "epochs": 1}),
        splits,
        tmp_path / "cut",
        echo=lambda _: None,
    )
    fit(config, splits, tmp_path / "cut", resume=True, echo=lambda _: None)
    whole, cut = load_model(tmp_path / "whole")[0], load_model(tmp_path / "cut")[0]
    for a, b in zip(whole.state_dict().values(), cut.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    # Distillation changed what was learned.
    plain = tmp_path / "plain"
    fit(TrainConfig(epochs=2, batch_size=32), splits, plain, echo=lambda _: None)
    assert not torch.equal(
        load_model(plain)[0].state_dict()["fc3.weight"], whole.state_dict()["fc3.weight"]
    )


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--teacher", "nowhere/run"], "teacher nowhere/run:"),
        (["--distill", "1.5"], "argument --distill: must be in [0, 1]"),
        (["--temperature", "0"], "argument --temperature: must be positive"),
    ],
)
def test_bad_teachers_are_refused_in_one_line(
    tiny_data: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    flags: list[str],
    message: str,
) -> None:
    run = tmp_path / "run"
    code = main(["train", "--data-dir", str(tiny_data), "--run-dir", str(run), *flags])
    err = capsys.readouterr().err.strip()
    assert code != 0 and "Traceback" not in err
    assert message in err.splitlines()[-1]


def test_a_teacher_of_another_data_set_is_refused(
    synthetic_run: tuple[Path, Path], tmp_path: Path
) -> None:
    directory, teacher_run = synthetic_run
    config = TrainConfig(epochs=1, dataset="fashion-mnist", teachers=[str(teacher_run)])
    with pytest.raises(TrainingError, match="was trained on mnist, not fashion-mnist"):
        fit(config, data.load_splits(data_dir=directory), tmp_path / "run", echo=lambda _: None)


def test_a_teacher_that_is_not_a_checkpoint_is_refused(
    tiny_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    args = ["train", "--data-dir", str(tiny_data), "--run-dir", str(tmp_path / "run")]
    assert main([*args, "--teacher", str(junk)]) == 1
    err = capsys.readouterr().err.strip()
    assert f"teacher {junk}: " in err and "not a readable lenet5 checkpoint" in err
    assert len(err.splitlines()) == 1
