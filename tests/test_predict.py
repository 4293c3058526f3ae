from __future__ import annotations

import io
import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from lenet5.cli import main
from lenet5.data import mnist as data
from lenet5.data.preprocess import load_image, preprocess
from lenet5.inference.checkpoint import load_model
from lenet5.inference.numbers import read_number
from lenet5.inference.predict import predict, predict_image
from photos import naive_input, render_photo
from test_preprocess import _png, _png_header_claiming

from conftest import REAL_DATA, requires_real_data


def _digit_on_paper(digit: np.ndarray, scale: int = 6) -> Image.Image:
    """An MNIST digit drawn dark on white, bigger, as a person would photograph it."""
    height, width = digit.shape
    big = Image.fromarray(digit).resize((width * scale, height * scale), Image.Resampling.BICUBIC)
    return Image.fromarray(255 - np.asarray(big))


@pytest.fixture
def images(tmp_path: Path) -> Path:
    """A folder of good and bad inputs."""
    folder = tmp_path / "images"
    folder.mkdir()
    rng = np.random.default_rng(0)
    digit = np.zeros((28, 28), dtype=np.uint8)
    digit[6:22, 12:16] = 255
    (folder / "a_good.png").write_bytes(_png(_digit_on_paper(digit)))
    (folder / "b_text.png").write_bytes(b"not an image at all")
    good_jpeg = render_photo(digit, rng)
    (folder / "c_truncated.jpg").write_bytes(good_jpeg[: len(good_jpeg) // 3])
    (folder / "d_blank.png").write_bytes(_png(Image.new("L", (50, 50), 255)))
    (folder / "e_bomb.png").write_bytes(_png_header_claiming(100_000, 100_000))
    (folder / "f_photo.jpg").write_bytes(good_jpeg)
    (folder / "notes.txt").write_text("ignored: not an image extension")
    return folder


def _predict(model: str, *args: str) -> int:
    return main(["predict", "--model", model, *args])


def test_bad_inputs_do_not_stop_the_others(
    synthetic_run: tuple[Path, Path], images: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, run = synthetic_run
    assert _predict(str(run), str(images), str(images / "missing.png"), "--json") == 1
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    by_name = {Path(r["path"]).name: r for r in lines}
    assert sorted(by_name) == [
        "a_good.png",
        "b_text.png",
        "c_truncated.jpg",
        "d_blank.png",
        "e_bomb.png",
        "f_photo.jpg",
        "missing.png",
    ]
    for good in ("a_good.png", "f_photo.jpg"):
        assert 0 <= by_name[good]["digit"] <= 9
        assert len(by_name[good]["probabilities"]) == 10
        assert sum(by_name[good]["probabilities"]) == pytest.approx(1.0, abs=1e-5)
    assert "not an image" in by_name["b_text.png"]["error"]
    assert "cannot decode" in by_name["c_truncated.jpg"]["error"]
    assert "no ink found" in by_name["d_blank.png"]["error"]
    assert "image too large" in by_name["e_bomb.png"]["error"]
    assert "cannot read" in by_name["missing.png"]["error"]


def test_text_output_and_errors_on_stderr(
    synthetic_run: tuple[Path, Path], images: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, run = synthetic_run
    assert _predict(str(run), str(images / "a_good.png"), str(images / "d_blank.png")) == 1
    captured = capsys.readouterr()
    out_line = captured.out.strip()
    assert out_line.startswith(f"{images / 'a_good.png'}: ") and out_line.count(": ") == 4  # top 3
    assert (
        captured.err.strip()
        == f"{images / 'd_blank.png'}: error: no ink found (the image is blank)"
    )
    assert "Traceback" not in captured.err


def test_all_good_exits_zero(
    synthetic_run: tuple[Path, Path], images: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, run = synthetic_run
    assert _predict(str(run), str(images / "a_good.png"), str(images / "f_photo.jpg")) == 0


def test_standard_input(
    synthetic_run: tuple[Path, Path],
    images: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, run = synthetic_run
    raw = (images / "a_good.png").read_bytes()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(raw)))
    assert _predict(str(run), "-", "--json") == 0
    from_stdin = json.loads(capsys.readouterr().out)
    assert _predict(str(run), str(images / "a_good.png"), "--json") == 0
    from_file = json.loads(capsys.readouterr().out)
    assert from_stdin["path"] == "-"
    assert from_stdin["probabilities"] == from_file["probabilities"]


def test_save_preprocessed_writes_what_the_model_saw(
    synthetic_run: tuple[Path, Path], images: Path, tmp_path: Path
) -> None:
    _, run = synthetic_run
    out = tmp_path / "seen"
    assert _predict(str(run), str(images / "f_photo.jpg"), "--save-preprocessed", str(out)) == 0
    saved = np.asarray(Image.open(out / "f_photo.png"))
    assert saved.shape == (28, 28)
    assert np.array_equal(saved, preprocess(load_image(images / "f_photo.jpg")))


def test_missing_checkpoint(
    images: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _predict(str(tmp_path / "no.pt"), str(images / "a_good.png")) == 1
    assert (
        capsys.readouterr().err.strip()
        == f"lenet5: error: {tmp_path / 'no.pt'}: no such checkpoint"
    )


def test_empty_folder(
    synthetic_run: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "empty").mkdir()
    assert _predict(str(synthetic_run[1]), str(tmp_path / "empty")) == 1
    assert "folder holds no PNG" in capsys.readouterr().err


def test_predict_matches_the_model_on_tensors(synthetic_run: tuple[Path, Path]) -> None:
    directory, run = synthetic_run
    model, _ = load_model(run)
    test = data.load_splits(data_dir=directory).test
    image = test.images[0].numpy()  # MNIST-style: passes through preprocessing unchanged
    result = predict_image(model, Image.fromarray(image))
    expected = torch.softmax(model(data.to_float(test.images[:1])), 1)[0]
    assert result.probabilities == pytest.approx(expected.tolist(), abs=1e-6)
    assert result.digit == int(expected.argmax())


# --- with a model trained on the real MNIST -------------------------------------------------


@pytest.mark.data
@requires_real_data
def test_reads_real_digits_in_every_format(mnist_run: Path, tmp_path: Path) -> None:
    model, _ = load_model(mnist_run)
    test = data.load_splits(data_dir=REAL_DATA).test
    clean = predict(model, test.images[:200]).argmax(1)
    chosen = [i for i in range(200) if clean[i] == test.labels[i]][:10]  # digits it knows
    for i in chosen:
        paper = _digit_on_paper(test.images[i].numpy())
        label = int(test.labels[i])
        variants = {
            "png": _png(paper),
            "gray16": _png(Image.fromarray(np.asarray(paper, dtype=np.uint16) * 257)),
            "cmyk": _png(paper.convert("CMYK"), format="JPEG", quality=95),
            "webp": _png(paper, format="WEBP"),
            "gif": _png(paper, format="GIF"),
            "bmp": _png(paper, format="BMP"),
            "tiff": _png(paper, format="TIFF"),
            "rgba": _png(paper.convert("RGBA")),
        }
        for kind, raw in variants.items():
            assert predict_image(model, load_image(raw)).digit == label, (i, kind)


@pytest.mark.data
@requires_real_data
def test_reads_a_year_with_multi(
    mnist_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model, _ = load_model(mnist_run)
    test = data.load_splits(data_dir=REAL_DATA).test
    clean = predict(model, test.images[:300]).argmax(1)
    pick = {
        d: next(i for i in range(300) if test.labels[i] == d and clean[i] == d) for d in (2, 0, 4)
    }
    row = np.concatenate([test.images[pick[d]].numpy()[:, 3:25] for d in (2, 0, 2, 4)], axis=1)
    paper = _digit_on_paper(row)
    assert read_number(model, paper).closest == "2024"
    path = tmp_path / "year.png"
    paper.save(path)
    assert main(["predict", "--model", str(mnist_run), str(path), "--multi", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["number"] == "2024"


@pytest.mark.slow
@pytest.mark.data
@requires_real_data
def test_reads_photos_of_handwriting(tmp_path: Path) -> None:
    """1,000 MNIST test digits rendered as photos, read by a model trained by `lenet5 train`
    (defaults; set LENET5_TRAINED_RUN to an existing run directory to skip the training)."""
    run = Path(os.environ.get("LENET5_TRAINED_RUN", tmp_path / "run"))
    if not run.exists():
        assert main(["train", "--run-dir", str(run), "--data-dir", str(REAL_DATA)]) == 0
    model, _ = load_model(run)
    test = data.load_splits(data_dir=REAL_DATA).test
    rng = np.random.default_rng(2024)
    chosen = rng.choice(len(test), size=1000, replace=False)
    labels = test.labels[chosen]
    photos = [render_photo(test.images[i].numpy(), rng) for i in chosen]
    ours = torch.tensor([predict_image(model, load_image(p)).digit for p in photos])
    naive = predict(model, torch.from_numpy(np.stack([naive_input(p) for p in photos])))
    accuracy = (ours == labels).float().mean().item()
    naive_accuracy = (naive.argmax(1) == labels).float().mean().item()
    clean_accuracy = (predict(model, test.images[chosen]).argmax(1) == labels).float().mean().item()
    print(
        f"\nphotos read with preprocessing: {accuracy:.4f}; without: {naive_accuracy:.4f}; "
        f"the same digits clean: {clean_accuracy:.4f}"
    )
    assert accuracy >= 0.985
    assert naive_accuracy < 0.5
