"""The feedback store (SQLite), `lenet5 feedback` and `lenet5 finetune`."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from lenet5.cli import main
from lenet5.config import TrainConfig
from lenet5.data import mnist as data
from lenet5.data.feedback import (
    FeedbackError,
    FeedbackStore,
    StoreFull,
    correction_splits,
)
from lenet5.data.preprocess import load_image, preprocess
from lenet5.data.shapes import NOT_A_DIGIT
from lenet5.inference.checkpoint import judge_entry, load_model, save_checkpoint
from lenet5.models import Judged, build_model
from lenet5.training.finetune import FINETUNE_FILE
from lenet5.training.runs import read_run_config

from conftest import synthetic_digits


def _add(store: FeedbackStore, label: int, predicted: int = 0, value: int = 200) -> int:
    pixels = np.zeros((28, 28), np.uint8)
    pixels[5:23, 10 + label : 14 + label] = value
    return store.add(label, predicted, [0.1] * 10, pixels, b"\x89PNG fake", "model-a")


def test_rows_round_trip_with_everything_the_issue_lists(tmp_path: Path) -> None:
    with FeedbackStore(tmp_path / "fb.sqlite") as store:
        first = _add(store, 7, predicted=1)
        second = _add(store, 3, predicted=3)
        rows = list(store.corrections())
    assert [r.id for r in rows] == [first, second] and first < second
    row = rows[0]
    assert (row.label, row.predicted, row.model, row.image) == (7, 1, "model-a", b"\x89PNG fake")
    assert row.probabilities == [0.1] * 10
    assert row.input.shape == (28, 28) and row.input.dtype == np.uint8 and row.input.max() == 200
    assert row.created.endswith("+00:00")  # UTC
    db = sqlite3.connect(tmp_path / "fb.sqlite")
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA user_version").fetchone()[0] == 2


def test_not_a_digit_is_a_label_and_version_1_files_are_upgraded(tmp_path: Path) -> None:
    """Schema 2 lets a correction say "not a digit" (label 10); a version 1 file (digits only)
    is upgraded in place with its rows, ids and all."""
    old = tmp_path / "v1.sqlite"
    db = sqlite3.connect(old)
    db.execute(
        "CREATE TABLE corrections (id INTEGER PRIMARY KEY, created TEXT NOT NULL, label INTEGER "
        "NOT NULL CHECK (label BETWEEN 0 AND 9), predicted INTEGER NOT NULL CHECK (predicted "
        "BETWEEN 0 AND 9), probabilities TEXT NOT NULL, input BLOB NOT NULL CHECK "
        "(length(input) = 784), image BLOB, model TEXT NOT NULL)"
    )
    db.execute(
        "INSERT INTO corrections VALUES (5, '2026-11-30T00:00:00.000+00:00', 3, 8, ?, ?, NULL, "
        "'m')",
        (json.dumps([0.1] * 10), bytes(784)),
    )
    db.execute("PRAGMA user_version = 1")
    db.commit()
    db.close()
    with FeedbackStore(old) as store:
        (kept,) = store.corrections()
        assert (kept.id, kept.label, kept.predicted) == (5, 3, 8)
        added = _add(store, NOT_A_DIGIT, predicted=4)
        assert [r.label for r in store.corrections()] == [3, NOT_A_DIGIT] and added == 6
        assert store.stats()["per_label"]["not-a-digit"] == 1
        with pytest.raises(FeedbackError, match="not a digit"):
            _add(store, NOT_A_DIGIT + 1)
    assert sqlite3.connect(old).execute("PRAGMA user_version").fetchone()[0] == 2


def test_stats_count_labels_and_pairs(tmp_path: Path) -> None:
    with FeedbackStore(tmp_path / "fb.sqlite") as store:
        for label, predicted in [(1, 7), (1, 7), (1, 1), (4, 9)]:
            _add(store, label, predicted)
        stats = store.stats()
    assert stats["total"] == 4
    expected = {**{str(d): 0 for d in range(10)}, "1": 3, "4": 1, "not-a-digit": 0}
    assert stats["per_label"] == expected
    pairs = {(p["predicted"], p["label"]): p["count"] for p in stats["pairs"]}
    assert pairs == {(7, 1): 2, (1, 1): 1, (9, 4): 1}


def test_bad_rows_are_refused_and_nothing_is_stored(tmp_path: Path) -> None:
    with FeedbackStore(tmp_path / "fb.sqlite", max_rows=2) as store:
        with pytest.raises(FeedbackError, match="label must be a digit"):
            store.add(11, 0, [0.1] * 10, np.zeros((28, 28), np.uint8), None, "m")
        with pytest.raises(FeedbackError, match="label must be a digit"):
            store.add(-1, 0, [0.1] * 10, np.zeros((28, 28), np.uint8), None, "m")
        with pytest.raises(FeedbackError, match="28x28"):
            store.add(1, 0, [0.1] * 10, np.zeros((27, 28), np.uint8), None, "m")
        _add(store, 1)
        _add(store, 2)
        with pytest.raises(StoreFull, match="is full"):
            _add(store, 3)
        assert store.count() == 2
        big = np.zeros((28, 28), np.uint8)
        store.max_rows = 3
        store.add(5, 5, [0.1] * 10, big, b"x" * (2 << 20), "m")  # over the image cap
        assert list(store.corrections())[-1].image is None


def test_newer_schema_and_foreign_files_are_refused(tmp_path: Path) -> None:
    newer = tmp_path / "newer.sqlite"
    FeedbackStore(newer).close()
    db = sqlite3.connect(newer)
    db.execute("PRAGMA user_version = 3")
    db.commit()
    db.close()
    with pytest.raises(FeedbackError, match="schema version 3, newer than this lenet5"):
        FeedbackStore(newer)
    other = tmp_path / "other.sqlite"
    db = sqlite3.connect(other)
    db.execute("CREATE TABLE t (x)")
    db.commit()
    db.close()
    with pytest.raises(FeedbackError, match="not a feedback store"):
        FeedbackStore(other)
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(FeedbackError, match="not a usable feedback store"):
        FeedbackStore(junk)


_WRITER = textwrap.dedent(
    """
    import sys
    import numpy as np
    from lenet5.data.feedback import FeedbackStore
    store = FeedbackStore(sys.argv[1])
    pixels = np.full((28, 28), 9, np.uint8)
    while True:
        row_id = store.add(1, 7, [0.1] * 10, pixels, b"png", "m")
        print(row_id, flush=True)  # acknowledged: committed before add returned
    """
)


def test_kill_9_loses_no_acknowledged_row(tmp_path: Path) -> None:
    path = tmp_path / "fb.sqlite"
    writer = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(path)], stdout=subprocess.PIPE, text=True
    )
    acknowledged = []
    assert writer.stdout is not None
    started = time.monotonic()
    while len(acknowledged) < 200 and time.monotonic() - started < 60:
        acknowledged.append(int(writer.stdout.readline()))
    os.kill(writer.pid, signal.SIGKILL)
    writer.wait()
    acknowledged += [int(line) for line in writer.stdout.read().split()]
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    stored = {row[0] for row in db.execute("SELECT id FROM corrections")}
    assert len(acknowledged) >= 200
    assert set(acknowledged) <= stored


def test_cli_stats_and_export(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "fb.sqlite"
    with FeedbackStore(path) as store:
        ids = [_add(store, label, predicted=label) for label in (1, 1, 4)]
    assert main(["feedback", "stats", str(path), "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["total"] == 3 and stats["per_label"]["1"] == 2
    assert main(["feedback", "stats", str(path)]) == 0
    assert "3 corrections" in capsys.readouterr().out
    out = tmp_path / "png"
    assert main(["feedback", "export", str(path), str(out)]) == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(f"{i}_{label}.png" for i, label in zip(ids, (1, 1, 4), strict=True))
    exported = preprocess(load_image(out / f"{ids[2]}_4.png"))
    assert exported.shape == (28, 28) and exported.max() == 200  # passes through unchanged
    assert main(["feedback", "stats", str(tmp_path / "missing.sqlite")]) == 1
    assert "no such feedback store" in capsys.readouterr().err


def test_holdout_is_per_label_and_seeded(tmp_path: Path) -> None:
    path = tmp_path / "fb.sqlite"
    with FeedbackStore(path) as store:
        for label in range(10):
            for _ in range(10):
                _add(store, label)
    config = TrainConfig(feedback=str(path), feedback_holdout=0.2)
    learn, held = correction_splits(config)
    assert len(learn) == 80 and len(held) == 20
    assert np.bincount(held.labels.numpy(), minlength=10).tolist() == [2] * 10
    again, _ = correction_splits(config)
    assert np.array_equal(learn.images.numpy(), again.images.numpy())
    until, _ = correction_splits(TrainConfig(feedback=str(path), feedback_until=50))
    assert len(until) + round(0.2 * 5) * 10 == 50
    with FeedbackStore(path) as store:  # "not a digit" corrections are cut the same way
        for _ in range(10):
            _add(store, NOT_A_DIGIT)
    learn, held = correction_splits(config)
    assert np.bincount(held.labels.numpy(), minlength=11).tolist() == [2] * 11
    assert int((learn.labels == NOT_A_DIGIT).sum()) == 8


def test_answered_as_labelled_counts_refusals() -> None:
    """A "not a digit" correction is right when the reader refuses; a digit when it reads it."""
    from lenet5.models import build_model
    from lenet5.training.finetune import answered_as_labelled

    undecided = build_model("lenet5")
    with torch.no_grad():
        undecided.get_submodule("fc3").weight.zero_()
        undecided.get_submodule("fc3").bias.zero_()  # 0.1 for every digit: always refused
    images = torch.zeros(4, 28, 28, dtype=torch.uint8)
    labels = torch.tensor([NOT_A_DIGIT, NOT_A_DIGIT, NOT_A_DIGIT, 0])
    assert answered_as_labelled(undecided, data.Split(images, labels)) == 0.75


def test_finetune_learns_a_style_the_model_lacks(
    synthetic_run: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The synthetic digits put digit k's square at place k; the corrections teach that a
    square at place 0 inverted (dark square on light noise) is a 3."""
    directory, base = synthetic_run
    path = tmp_path / "fb.sqlite"
    images, _ = synthetic_digits(60, seed=5)
    with FeedbackStore(path) as store:
        for image in images:
            inverted = 255 - image
            store.add(3, 0, [0.1] * 10, inverted, None, "synthetic")
    run = tmp_path / "tuned"
    code = main(
        [
            "finetune",
            "--feedback",
            str(path),
            "--model",
            str(base),
            "--run-dir",
            str(run),
            "--data-dir",
            str(directory),
            "--epochs",
            "2",
            "--lr",
            "0.003",
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert "kept-apart corrections (12):" in out and "MNIST validation:" in out
    result = json.loads((run / FINETUNE_FILE).read_text())
    assert result["learned_from"] == 48 and result["kept_apart"] == 12
    assert result["after"]["corrections_accuracy"] > result["before"]["corrections_accuracy"]
    assert result["after"]["corrections_accuracy"] >= 0.9
    config = read_run_config(run)
    assert config.init_from == str(base.resolve() / "checkpoints" / "last.pt")
    assert config.feedback == str(path.resolve()) and config.feedback_until == 60
    for name in ("metrics.jsonl", "summary.json", "checkpoints/last.pt"):
        assert (run / name).is_file()
    assert any(run.glob("events.out.tfevents.*"))
    model, _ = load_model(run)  # rebuilds from the path alone
    splits = data.load_splits(data_dir=directory)
    assert model(splits.val.images[:1].unsqueeze(1).float() / 255).shape == (1, 10)


def test_finetune_of_a_distilled_model_needs_none_of_its_teachers(
    synthetic_run: tuple[Path, Path], tmp_path: Path
) -> None:
    """The bundled model learned from teachers that exist only where it was trained."""
    directory, base = synthetic_run
    model, config = load_model(base)
    distilled = tmp_path / "distilled.pt"
    gone = [str(tmp_path / "teacher-run-elsewhere")]
    teachers = dataclasses.replace(config, teachers=gone, distill=1.0)
    save_checkpoint(distilled, config=teachers, model=model, epoch=2, best_val_accuracy=0.0)
    with FeedbackStore(tmp_path / "fb.sqlite") as store:
        for label in range(10):
            _add(store, label)
    run = tmp_path / "tuned"
    args = ["finetune", "--feedback", str(tmp_path / "fb.sqlite"), "--model", str(distilled)]
    assert main([*args, "--data-dir", str(directory), "--run-dir", str(run), "--epochs", "1"]) == 0
    assert read_run_config(run).teachers == []


def test_finetune_teaches_a_judged_models_judge_too(
    synthetic_run: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A judge that doubts every image (untrained: about 0.1 for each digit) makes the model
    refuse the digits a user then teaches as digits; fine-tuned, both learn them."""
    directory, base = synthetic_run
    reader, config = load_model(base)
    torch.manual_seed(0)
    judge = build_model("judge", init="pytorch")
    save_checkpoint(
        tmp_path / "judge.pt",
        config=TrainConfig(model="judge"),
        model=judge,
        epoch=0,
        best_val_accuracy=0.0,
    )
    judged = tmp_path / "judged.pt"
    entry = judge_entry(tmp_path / "judge.pt", below=0.3)
    save_checkpoint(
        judged, config=config, model=reader, epoch=2, best_val_accuracy=0.0, judge=entry
    )
    images, labels = synthetic_digits(60, seed=5)
    with FeedbackStore(tmp_path / "fb.sqlite") as store:
        for image, label in zip(images, labels, strict=True):
            store.add(int(label), int(label), [0.1] * 10, image, None, "synthetic")
    run = tmp_path / "tuned"
    args = ["finetune", "--feedback", str(tmp_path / "fb.sqlite"), "--model", str(judged)]
    args += ["--data-dir", str(directory), "--run-dir", str(run), "--epochs", "2"]
    assert main([*args, "--lr", "0.003", "--progress-json"]) == 0
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert {"message": "fine-tuning its judge on the same corrections"} in events
    # The page's progress runs once from 0 to 1: the judge's two epochs are the third and fourth.
    epochs = [(e["epoch"], e["epochs"]) for e in events if "step" in e]
    assert epochs == sorted(epochs) and {e for e, _ in epochs} == {1, 2, 3, 4}
    assert {n for _, n in epochs} == {4}
    result = json.loads((run / FINETUNE_FILE).read_text())
    assert result["before"]["corrections_accuracy"] == 0.0  # every one refused by the judge
    assert result["after"]["corrections_accuracy"] >= 0.9
    assert read_run_config(run / "judge").model == "judge"
    model, _ = load_model(run)  # the run's checkpoint carries the fine-tuned judge
    assert isinstance(model, Judged) and float(model.below) == pytest.approx(0.3)


def test_finetune_refuses_an_empty_store(
    synthetic_run: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    directory, base = synthetic_run
    FeedbackStore(tmp_path / "fb.sqlite").close()
    args = ["finetune", "--feedback", str(tmp_path / "fb.sqlite"), "--model", str(base)]
    assert main([*args, "--data-dir", str(directory), "--run-dir", str(tmp_path / "r")]) == 1
    assert "holds no corrections" in capsys.readouterr().err


def test_export_of_an_image_is_a_png(tmp_path: Path) -> None:
    path = tmp_path / "fb.sqlite"
    with FeedbackStore(path) as store:
        _add(store, 2)
    assert main(["feedback", "export", str(path), str(tmp_path / "out")]) == 0
    (png,) = (tmp_path / "out").iterdir()
    assert Image.open(png).format == "PNG"
