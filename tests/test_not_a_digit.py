"""The "not a digit" answer: what is taught (outlier exposure), and how every reader says it."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from fastapi.testclient import TestClient
from PIL import Image

from lenet5.cli import main
from lenet5.config import TrainConfig
from lenet5.data import mnist as data
from lenet5.data.shapes import BROAD_KINDS, KINDS, NOT_A_DIGIT, non_digits
from lenet5.inference.checkpoint import load_model, save_checkpoint
from lenet5.inference.predict import Prediction, predict_image
from lenet5.models import build_model
from lenet5.serving.app import create_app
from lenet5.training.loop import fit
from lenet5.training.losses import OUTLIER_WEIGHT, batch_loss

from conftest import synthetic_digits, write_dataset


@pytest.fixture(scope="module")
def undecided(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A checkpoint whose last layer is zero: the same probability, 0.1, for every digit."""
    model = build_model("lenet5")
    with torch.no_grad():
        model.get_submodule("fc3").weight.zero_()
        model.get_submodule("fc3").bias.zero_()
    path = tmp_path_factory.mktemp("undecided") / "model.pt"
    save_checkpoint(path, config=TrainConfig(), model=model, epoch=1, best_val_accuracy=0.0)
    return path


@pytest.fixture(scope="module")
def digit_png(tmp_path_factory: pytest.TempPathFactory) -> Path:
    images, _ = synthetic_digits(1, seed=3)
    path = tmp_path_factory.mktemp("png") / "digit.png"
    Image.fromarray(images[0]).save(path)
    return path


def test_an_answer_below_the_threshold_is_not_a_digit() -> None:
    sure = Prediction(7, [0.0] * 7 + [0.9, 0.1, 0.0], np.zeros((28, 28), np.uint8))
    doubtful = Prediction(4, [0.1] * 4 + [0.31] + [0.69 / 5] * 5, np.zeros((28, 28), np.uint8))
    assert not sure.refused and sure.answer() == {"digit": 7, "probabilities": sure.probabilities}
    assert doubtful.refused
    assert doubtful.answer() == {
        "digit": None,
        "reason": "not a digit",
        "closest": 4,
        "probabilities": doubtful.probabilities,
    }


def test_cli_says_not_a_digit(
    undecided: Path, digit_png: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["predict", "--model", str(undecided), str(digit_png), "--json"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["digit"] is None and answer["reason"] == "not a digit"
    assert answer["closest"] in range(10) and len(answer["probabilities"]) == 10
    assert main(["predict", "--model", str(undecided), str(digit_png)]) == 0
    assert capsys.readouterr().out.startswith(f"{digit_png}: not a digit (closest: ")
    assert main(["predict", "--model", str(undecided), str(digit_png), "--multi", "--json"]) == 0
    row = json.loads(capsys.readouterr().out)
    assert row["number"] is None and row["reason"].startswith("not a digit at position 1")
    assert row["digits"][0]["digit"] is None


def test_api_says_not_a_digit(undecided: Path, digit_png: Path) -> None:
    model, config = load_model(undecided)
    client = TestClient(create_app(model, config, undecided))
    answer = client.post(
        "/api/predict", content=digit_png.read_bytes(), headers={"Content-Type": "image/png"}
    ).json()
    expected = predict_image(model, Image.open(io.BytesIO(digit_png.read_bytes())))
    assert answer["digit"] is None and answer["reason"] == "not a digit"
    assert answer["closest"] == expected.digit
    assert answer["probabilities"] == pytest.approx(expected.probabilities, abs=1e-6)
    schema = client.get("/openapi.json").json()["components"]["schemas"]["PredictResponse"]
    assert {"reason", "closest"} <= set(schema["properties"])


def test_non_digits_are_labelled_wide_and_repeatable() -> None:
    train = data.Split(*map(torch.from_numpy, synthetic_digits(50, seed=1)))
    made = non_digits(40, train, seed=5)
    assert made.images.shape == (40, 28, 28) and made.images.dtype == torch.uint8
    assert set(made.labels.tolist()) == {NOT_A_DIGIT}
    assert all(int((im > 127).any(dim=0).sum()) >= 10 for im in made.images)  # no thin 1s
    assert torch.equal(made.images, non_digits(40, train, seed=5).images)
    assert len(KINDS) == 4 and not torch.equal(made.images, non_digits(40, train, seed=6).images)


def test_the_judges_non_digits_are_of_eight_kinds_the_first_four_as_before() -> None:
    """--broad-outliers: the eight kinds in turn, KINDS first; without it, KINDS alone."""
    train = data.Split(*map(torch.from_numpy, synthetic_digits(50, seed=1)))
    broad = non_digits(64, train, seed=5, kinds=BROAD_KINDS)
    assert len(BROAD_KINDS) == 8 and BROAD_KINDS[:4] == KINDS
    assert broad.images.shape == (64, 28, 28) and set(broad.labels.tolist()) == {NOT_A_DIGIT}
    assert all(int(im.count_nonzero()) > 20 for im in broad.images)  # ink in every one
    assert torch.equal(broad.images, non_digits(64, train, seed=5, kinds=BROAD_KINDS).images)
    assert not torch.equal(broad.images, non_digits(64, train, seed=5).images)


def test_the_loss_teaches_equal_probabilities_to_non_digits() -> None:
    torch.manual_seed(0)
    logits = torch.randn(6, 10)
    y = torch.tensor([3, NOT_A_DIGIT, 1, NOT_A_DIGIT, 0, 9])
    digits = y != NOT_A_DIGIT
    expected = (4 / 6) * F.cross_entropy(logits[digits], y[digits]) + (2 / 6) * OUTLIER_WEIGHT * (
        -F.log_softmax(logits[~digits], dim=1).mean(dim=1).mean()
    )
    assert batch_loss(logits, y, torch.zeros(6)) == pytest.approx(float(expected))
    # Without non-digits in the batch, the loss is the plain cross-entropy, bit for bit.
    plain = torch.tensor([3, 2, 1, 0, 0, 9])
    assert torch.equal(batch_loss(logits, plain, torch.zeros(6)), F.cross_entropy(logits, plain))


def test_a_run_with_outliers_learns_to_doubt_them(tmp_path: Path) -> None:
    directory = write_dataset(tmp_path / "data", n_train=data.VALIDATION_SIZE + 600, n_test=200)
    splits = data.load_splits(data_dir=directory)
    config = TrainConfig(epochs=3, batch_size=32, outliers=600, lr=0.003)
    fit(config, splits, tmp_path / "run", echo=lambda _: None)
    model, _ = load_model(tmp_path / "run")
    unseen = non_digits(200, splits.val, seed=99)
    with torch.inference_mode():
        on_digits = torch.softmax(model(data.to_float(splits.test.images)), 1).max(1).values
        on_others = torch.softmax(model(data.to_float(unseen.images)), 1).max(1).values
    assert float(on_others.mean()) < 0.5 < float(on_digits.mean())
