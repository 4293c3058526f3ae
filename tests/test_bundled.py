"""The pretrained model shipped inside the package: its card, its figures, every command."""

from __future__ import annotations

import hashlib
import importlib
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient
from PIL import Image

from lenet5.cli import main
from lenet5.config import RECIPES, TrainConfig
from lenet5.data import mnist as data
from lenet5.data.preprocess import load_image, preprocess
from lenet5.data.uci import load_uci_digits
from lenet5.inference import bundled as bundled_files
from lenet5.inference import checkpoint
from lenet5.inference.bundled import BUNDLED, BUNDLED_CARD, BUNDLED_ONNX, bundled_card
from lenet5.inference.checkpoint import CheckpointError, load_model, save_checkpoint
from lenet5.inference.evaluate import evaluate
from lenet5.inference.export import ATOL, RTOL
from lenet5.inference.predict import (
    OnnxModel,
    load_inference_model,
    predict,
    predict_image,
    predict_inputs,
    probabilities,
)
from lenet5.models import Judged, build_model, count_parameters
from lenet5.serving.app import create_app
from photos import render_photo
from strokes import STYLES, european_digits

from conftest import REAL_DATA, requires_real_data

ROOT = Path(__file__).parent.parent
MODEL_CARD = ROOT / "docs" / "model-card.md"
SEVEN = ROOT / "docs" / "examples" / "seven.jpg"
PAGE_DRAWING = ROOT / "benchmarks" / "page-drawing.png"


@pytest.fixture(scope="module")
def bundled() -> torch.nn.Module:
    return load_model()[0]


def test_card_matches_the_weights_file() -> None:
    card = bundled_card()
    assert card["sha256"] == hashlib.sha256(BUNDLED.read_bytes()).hexdigest()
    assert card["onnx_sha256"] == hashlib.sha256(BUNDLED_ONNX.read_bytes()).hexdigest()
    assert BUNDLED.stat().st_size < 1_000_000  # weights only (the reader's and the judge's)


def test_card_gives_the_commands_that_train_the_model_and_its_teachers() -> None:
    """Two stages (docs/robustness.md): the robust recipe distilled from three plain robust runs,
    then that model, as a file, taught "not a digit" while it keeps its own answers, and read at
    three scales."""
    card = bundled_card()
    config = TrainConfig.from_dict(card["config"])
    (teacher,) = card["teachers"]
    base_file, base = teacher["file"], teacher["card"]
    stage = {"epochs": 6, "lr": 0.001, "outliers": 30000, "distill": 1.0, "temperature": 1.0}
    stage |= {"teachers": [base_file], "init_from": base_file, "read_scales": [1.0, 0.85, 1.15]}
    assert config == TrainConfig(**{**RECIPES["robust"], **stage}, seed=card["seed"])
    assert card["command"] == (
        f"lenet5 train --recipe robust --seed {card['seed']} --epochs 6 --lr 0.001 "
        "--outliers 30000 --read-scale 1 --read-scale 0.85 --read-scale 1.15 "
        f"--distill 1.0 --temperature 1.0 --teacher {base_file} "
        f"--init-from {base_file}"
    )
    # The first stage, as lenet5 0.1.0 shipped it.
    first = TrainConfig.from_dict(base["config"])
    runs = [f"runs/robust-s{seed}" for seed in range(3)]
    distilled = {"epochs": 60, "teachers": runs, "distill": 1.0, "temperature": 1.0}
    assert first == TrainConfig(**{**RECIPES["robust"], **distilled}, seed=0)
    assert [t["command"] for t in base["teachers"]] == [
        f"lenet5 train --recipe robust --seed {seed} --run-dir runs/robust-s{seed}"
        for seed in range(3)
    ]
    for command in (card["command"], base["command"]):
        assert command in MODEL_CARD.read_text()


def test_it_is_the_exact_lenet5_with_a_judge(bundled: torch.nn.Module) -> None:
    """LeNet-5 reads the digit; a judge, LeNet-5 wider, says whether it is a digit at all."""
    assert isinstance(bundled, Judged)
    assert count_parameters(bundled.reader) == 61_706
    assert count_parameters(bundled.judge) == 155_782
    assert load_model()[1] == TrainConfig.from_dict(bundled_card()["config"])
    judge = bundled_card()["judge"]
    assert float(bundled.below) == pytest.approx(judge["below"])
    assert judge["command"] == (
        "lenet5 train --model judge --recipe robust --seed 22 --outliers 60000 "
        "--broad-outliers --read-scale 1 --read-scale 0.85 --read-scale 1.15 "
        "--run-dir runs/judge-s22"
    )
    assert judge["command"] in MODEL_CARD.read_text()


def test_uci_digits_accuracy_is_the_cards(bundled: torch.nn.Module) -> None:
    accuracy = evaluate(bundled, load_uci_digits())["accuracy"]
    assert accuracy == pytest.approx(bundled_card()["uci_digits_accuracy"], abs=1e-9)
    assert accuracy >= 0.98  # the best recipe's model reads 96.33%
    assert f"{accuracy:.2%}" in MODEL_CARD.read_text()


@pytest.mark.data
@requires_real_data
def test_mnist_test_accuracy_is_the_cards(bundled: torch.nn.Module) -> None:
    splits = data.load_splits(data_dir=REAL_DATA, progress=False)
    accuracy = evaluate(bundled, splits.test)["accuracy"]
    assert accuracy == pytest.approx(bundled_card()["test_accuracy"], abs=1e-9)
    # The first stage met the 99.5% goal (99.50%); learning "not a digit" cost it two images
    # (99.48%), which reading at three scales gave back (99.56%). This bounds later changes.
    assert accuracy >= 0.995
    assert f"{accuracy:.2%}" in MODEL_CARD.read_text()


@pytest.mark.data
@requires_real_data
def test_reads_the_readme_photo_test(bundled: torch.nn.Module) -> None:
    """The README's photo test (1,000 MNIST test digits as photos, render seed 2024)."""
    test = data.load_splits(data_dir=REAL_DATA, progress=False).test
    rng = np.random.default_rng(2024)
    chosen = rng.choice(len(test), size=1000, replace=False)
    inputs = [preprocess(load_image(render_photo(test.images[i].numpy(), rng))) for i in chosen]
    guesses = predict(bundled, torch.from_numpy(np.stack(inputs))).argmax(1)
    accuracy = (guesses == test.labels[chosen]).float().mean().item()
    assert accuracy >= 0.99, accuracy


def test_reads_european_digits_drawn_with_strokes(bundled: torch.nn.Module) -> None:
    """Drawings other than the 200 of each style that the model card reports (another seed)."""
    drawings = european_digits(100, seed=7)
    digits = [p.digit for p in predict_inputs(bundled, [preprocess(im) for _, _, im in drawings])]
    right = {
        style: sum(d == label for (s, _, _), d in zip(drawings, digits, strict=True) if s == style)
        for style, (label, _) in STYLES.items()
    }
    assert right == {"flagged 1": 96, "crossed 7": 100}  # measured; the best model: 79 and 100


def test_reads_a_drawing_as_the_page_sends_it(bundled: torch.nn.Module) -> None:
    """benchmarks/page-drawing.png: a 7 drawn with the mouse on the page in chromium, the PNG
    its canvas posts (anti-aliased strokes, an evenly lit background: the table of levels)."""
    image = load_image(PAGE_DRAWING.read_bytes())
    assert (image.mode, image.size) == ("RGBA", (280, 280))
    gray = np.asarray(image.convert("L"))
    assert len(np.unique(gray)) > 100  # anti-aliased, as a browser draws
    answer = predict_inputs(bundled, [preprocess(image)])[0]
    assert answer.digit == 7 and answer.probabilities[7] > 0.9


def test_commands_use_it_when_no_model_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["predict", str(SEVEN), "--json"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["digit"] == 7
    assert answer["digit"] == predict_image(load_model()[0], load_image(SEVEN)).digit
    out = tmp_path / "bundled.onnx"
    assert main(["export", "-o", str(out)]) == 0
    assert out.stat().st_size > 200_000
    assert main(["evaluate", "--dataset", "uci-digits", "--json"]) == 0
    report = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert report["checkpoint"] == str(BUNDLED)
    assert report["accuracy"] == pytest.approx(bundled_card()["uci_digits_accuracy"])


@pytest.mark.parametrize("engine", ["torch", "onnx"])
def test_api_model_says_which_model_is_served(bundled: torch.nn.Module, engine: str) -> None:
    client = TestClient(create_app(bundled, load_model()[1], None, engine=engine))
    info = client.get("/api/model").json()
    assert info["name"] == "lenet5-robust (bundled)" and info["bundled"] is True
    assert info["test_accuracy"] == bundled_card()["test_accuracy"]
    assert info["checkpoint"] == str(BUNDLED)
    assert info["engine"] == {"torch": "torch", "onnx": "onnxruntime"}[engine]
    answer = client.post("/api/predict", content=SEVEN.read_bytes(), headers=JPEG).json()
    expected = predict_image(bundled, load_image(SEVEN)).probabilities
    assert answer["digit"] == 7
    assert answer["probabilities"] == pytest.approx(expected, abs=1e-6)


JPEG = {"Content-Type": "image/jpeg"}


def test_the_engines_agree_on_the_uci_digits(bundled: torch.nn.Module) -> None:
    """The shipped ONNX file is the bundled weights: same digit on every UCI digit, logits
    within the export's tolerance, probabilities within 1e-6."""
    onnx, config, note = load_inference_model(None, "onnx")
    assert isinstance(onnx, OnnxModel) and note == ""
    assert config == load_model()[1]
    inputs = load_uci_digits().images.numpy()
    theirs = probabilities(onnx, inputs)
    ours = probabilities(bundled, inputs)
    assert (theirs.argmax(1) == ours.argmax(1)).all()
    assert np.abs(theirs - ours).max() <= 1e-6
    x = inputs[:, None].astype(np.float32) / 255
    with torch.inference_mode():
        logits = bundled(torch.from_numpy(x)).numpy()
    assert (np.abs(onnx.logits(x) - logits) <= ATOL + RTOL * np.abs(logits)).all()
    assert evaluate(onnx, load_uci_digits())["accuracy"] == pytest.approx(
        bundled_card()["uci_digits_accuracy"], abs=1e-9
    )


def test_predict_answers_without_importing_torch() -> None:
    code = (
        "import sys; from lenet5.cli import main; "
        f"code = main(['predict', {str(SEVEN)!r}]); "
        "print('torch imported' if 'torch' in sys.modules else 'no torch'); sys.exit(code)"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines() == [
        f"{SEVEN}: 7  (7: 1.000  0: 0.000  8: 0.000)",
        "no torch",
    ]
    assert run.stderr == ""


def test_the_readmes_first_command_prints_what_the_readme_shows(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """README's `lenet5 predict` block: the command, run from the repository's root, prints
    the lines the README shows under it (a newcomer's first command)."""
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"```sh\n\$ (lenet5 predict [^\n]*)\n(.*?)```", readme, re.S)
    assert block is not None
    command, shown = block.group(1).split(), block.group(2)
    monkeypatch.chdir(ROOT)
    assert main(command[1:]) == 0
    assert capsys.readouterr().out == shown


def test_without_onnxruntime_predict_runs_on_torch_with_a_note(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # lenet5.inference.predict, the attribute, is the function: the module is in sys.modules
    monkeypatch.setattr(
        importlib.import_module("lenet5.inference.predict"), "onnxruntime_missing", lambda: True
    )
    assert main(["predict", str(SEVEN)]) == 0
    out, err = capsys.readouterr()
    assert out == f"{SEVEN}: 7  (7: 1.000  0: 0.000  8: 0.000)\n"
    assert err == (
        "lenet5: onnxruntime is not installed: running on PyTorch "
        "(pip install 'lenet5[onnx]' (onnx, onnxscript, onnxruntime))\n"
    )


def test_a_damaged_onnx_file_falls_back_or_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _use_bundled_copy(tmp_path, monkeypatch)
    onnx = tmp_path / BUNDLED_ONNX.name
    onnx.write_bytes(onnx.read_bytes()[:1000])  # cut short
    assert main(["predict", str(SEVEN)]) == 0  # auto: PyTorch, with a note
    out, err = capsys.readouterr()
    assert out.startswith(f"{SEVEN}: 7  (7: 1.000")
    assert "the bundled model is damaged" in err and "running on PyTorch" in err
    assert err.count("\n") == 1
    assert main(["predict", "--engine", "onnx", str(SEVEN)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("lenet5: error: ") and "damaged" in err and err.count("\n") == 1


def test_evaluate_names_its_engine(capsys: pytest.CaptureFixture[str]) -> None:
    reports = {}
    for engine in ("onnx", "torch"):
        assert main(["evaluate", "--dataset", "uci-digits", "--json", "--engine", engine]) == 0
        reports[engine] = json.loads(capsys.readouterr().out)
    assert reports["onnx"]["engine"] == "onnxruntime" and reports["torch"]["engine"] == "torch"
    assert reports["onnx"]["confusion_matrix"] == reports["torch"]["confusion_matrix"]
    assert main(["evaluate", "--engine", "onnx", "--device", "cuda"]) == 1
    assert "--engine onnx runs on the CPU" in capsys.readouterr().err


def _use_bundled_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for path in (BUNDLED, BUNDLED_ONNX, BUNDLED_CARD):
        shutil.copy(path, tmp_path / path.name)
    monkeypatch.setattr(checkpoint, "BUNDLED", tmp_path / BUNDLED.name)
    monkeypatch.setattr(bundled_files, "BUNDLED_ONNX", tmp_path / BUNDLED_ONNX.name)
    return tmp_path / BUNDLED.name


def test_a_damaged_bundled_file_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    copy = _use_bundled_copy(tmp_path, monkeypatch)
    load_model()  # the intact copy loads
    raw = bytearray(copy.read_bytes())
    raw[len(raw) // 2] ^= 0xFF  # one flipped byte inside the weights
    copy.write_bytes(bytes(raw))
    with pytest.raises(CheckpointError, match="the bundled model is damaged"):
        load_model()
    assert main(["predict", "--engine", "torch", str(SEVEN)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("lenet5: error: ") and "damaged" in err and err.count("\n") == 1
    copy.write_bytes(b"")  # truncated to nothing
    assert main(["evaluate", "--dataset", "uci-digits", "--engine", "torch"]) == 1
    assert "damaged" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["predict", "evaluate", "export", "serve"])
def test_model_flag_refuses_what_is_not_a_model(
    command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    extra = {"predict": [str(SEVEN)], "export": ["-o", str(tmp_path / "m.onnx")]}
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    foreign = tmp_path / "foreign.pt"
    torch.save({"weight": torch.zeros(3)}, foreign)  # a torch file, not ours
    other = tmp_path / "other.pt"  # our format, but the weights are softmax regression's
    save_checkpoint(
        other,
        config=TrainConfig(),
        model=build_model("softmax"),
        epoch=1,
        best_val_accuracy=0.0,
    )
    for path, message in (
        (tmp_path / "missing.pt", "no such checkpoint"),
        (junk, "not a readable lenet5 checkpoint"),
        (foreign, "not a lenet5 checkpoint"),
        (other, "its weights do not fit a lenet5 model"),
    ):
        assert main([command, "--model", str(path), *extra.get(command, [])]) == 1
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err
    assert not (tmp_path / "m.onnx").exists()


def test_help_names_the_default_model(capsys: pytest.CaptureFixture[str]) -> None:
    for command in ("predict", "evaluate", "export", "serve"):
        assert main([command, "--help"]) == 0
        text = " ".join(capsys.readouterr().out.split())
        assert re.search(r"--model CKPT_OR_RUN_DIR .*default: the bundled model", text), command


def test_predict_with_a_trained_checkpoint_still_works(
    synthetic_run: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, run = synthetic_run
    path = tmp_path / "digit.png"
    digit = np.zeros((28, 28), np.uint8)
    digit[5:23, 12:16] = 255
    Image.fromarray(digit).save(path)
    assert main(["predict", "--model", str(run), str(path), "--json"]) == 0
    answer = json.loads(capsys.readouterr().out)
    model, _ = load_model(run)
    assert answer["digit"] == predict_image(model, load_image(path)).digit
