from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lenet5.cli import main
from lenet5.data import mnist as data
from lenet5.inference.checkpoint import load_model
from lenet5.inference.engines import OnnxModel
from lenet5.inference.export import compare_with_onnx, export_onnx
from lenet5.inference.predict import probabilities
from lenet5.serving.app import serving_model

from conftest import REAL_DATA, requires_real_data


@pytest.fixture(scope="module")
def onnx_file(synthetic_run: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("onnx") / "lenet5.onnx"
    model, _ = load_model(synthetic_run[1])
    export_onnx(model, path)
    return path


def test_onnxruntime_matches_pytorch(synthetic_run: tuple[Path, Path], onnx_file: Path) -> None:
    directory, run = synthetic_run
    model, _ = load_model(run)
    check = compare_with_onnx(model, onnx_file, data.load_splits(data_dir=directory).test)
    assert check["within_tolerance"] and check["agreement"] == 1.0
    t = check["temperature"]  # the bound, in the units of the logits as trained
    assert check["max_abs_diff"] * t <= 1e-5 + 1e-5 * check["max_abs_logit"] * t


@pytest.mark.parametrize("batch", [1, 7, 1000])
def test_dynamic_batch_dimension(onnx_file: Path, batch: int) -> None:
    session = OnnxModel(onnx_file).session
    (input_meta,) = session.get_inputs()
    assert input_meta.name == "input" and input_meta.shape[1:] == [1, 28, 28]
    x = np.random.default_rng(0).random((batch, 1, 28, 28), dtype=np.float32)
    (logits,) = session.run(["logits"], {"input": x})
    assert logits.shape == (batch, 10)


def test_cli_export_and_verify(
    synthetic_run: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    directory, run = synthetic_run
    out = tmp_path / "sub" / "model.onnx"
    code = main(
        [
            "export",
            "--model",
            str(run),
            "--format",
            "onnx",
            "-o",
            str(out),
            "--verify",
            "--data-dir",
            str(directory),
        ]
    )
    assert code == 0
    text = capsys.readouterr().out
    assert f"wrote {out}" in text and "same digit on 100.00%" in text
    assert sorted(p.name for p in out.parent.iterdir()) == ["model.onnx"]  # no temp files left


def test_cli_export_bad_checkpoint(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "junk.pt").write_bytes(b"junk")
    assert (
        main(["export", "--model", str(tmp_path / "junk.pt"), "-o", str(tmp_path / "m.onnx")]) == 1
    )
    assert "not a readable lenet5 checkpoint" in capsys.readouterr().err
    assert not (tmp_path / "m.onnx").exists()


def test_not_an_onnx_file(tmp_path: Path) -> None:
    (tmp_path / "m.onnx").write_bytes(b"nope")
    with pytest.raises(Exception, match="not a loadable ONNX model"):
        OnnxModel(tmp_path / "m.onnx")


@pytest.mark.data
@requires_real_data
def test_whole_mnist_test_split(mnist_run: Path, tmp_path: Path) -> None:
    model, _ = load_model(mnist_run)
    export_onnx(model, tmp_path / "m.onnx")
    check = compare_with_onnx(model, tmp_path / "m.onnx", data.load_splits(data_dir=REAL_DATA).test)
    assert check["images"] == 10_000
    assert check["within_tolerance"] and check["agreement"] == 1.0


def test_a_named_checkpoint_runs_on_onnxruntime_when_asked(
    synthetic_run: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--engine onnx` with a checkpoint exports it in memory: same answers as PyTorch."""
    directory, run = synthetic_run
    images = data.load_splits(data_dir=directory).test.images[:20].numpy()
    paths = []
    for k, image in enumerate(images):
        paths.append(str(tmp_path / f"{k}.png"))
        Image.fromarray(image).save(paths[-1])
    answers = {}
    for engine in ("onnx", "torch"):
        assert main(["predict", "--model", str(run), "--engine", engine, "--json", *paths]) == 0
        out, err = capsys.readouterr()
        assert err == ""
        answers[engine] = [json.loads(line) for line in out.splitlines()]
    assert [a["digit"] for a in answers["onnx"]] == [a["digit"] for a in answers["torch"]]
    assert np.allclose(
        [a["probabilities"] for a in answers["onnx"]],
        [a["probabilities"] for a in answers["torch"]],
        atol=1e-6,
    )


def test_the_server_runs_any_model_on_onnxruntime(synthetic_run: tuple[Path, Path]) -> None:
    model, _ = load_model(synthetic_run[1])
    runner, note = serving_model(model, synthetic_run[1], "auto")
    assert isinstance(runner, OnnxModel) and note == ""
    assert serving_model(model, synthetic_run[1], "torch")[0] is model
    x = np.random.default_rng(0).integers(0, 256, (5, 28, 28), dtype=np.uint8)
    assert np.abs(probabilities(runner, x) - probabilities(model, x)).max() <= 1e-6


@pytest.mark.parametrize("batch", [1, 7])
def test_read_scales_travel_in_the_onnx_file(tmp_path: Path, batch: int) -> None:
    """The bundled model reads at three scales: onnxruntime gives the same averaged logits."""
    import torch

    from lenet5.models import build_model

    torch.manual_seed(0)
    model = build_model("lenet5", init="pytorch", read_scales=(1.0, 0.85, 1.15)).eval()
    export_onnx(model, tmp_path / "m.onnx")
    x = np.random.default_rng(0).random((batch, 1, 28, 28), dtype=np.float32)
    with torch.no_grad():
        ours = model(torch.from_numpy(x)).numpy()
    theirs = OnnxModel(tmp_path / "m.onnx").logits(x)
    assert np.allclose(theirs, ours, atol=1e-5)
    plain = build_model("lenet5", init="pytorch")
    plain.load_state_dict(model.state_dict())
    with torch.no_grad():
        assert not np.allclose(plain.eval()(torch.from_numpy(x)).numpy(), ours, atol=1e-3)


@pytest.mark.parametrize("below", [0.05, 1.0])
def test_a_judged_model_travels_in_the_onnx_file(tmp_path: Path, below: float) -> None:
    """The judge and its threshold are in the file: the same probabilities, where it doubts
    (1.0: wherever the reader is surer than it) and where it does not (0.05: nowhere)."""
    import torch

    from lenet5.models import Judged, build_model

    torch.manual_seed(0)
    reader = build_model("lenet5", init="pytorch", read_scales=(1.0, 0.85, 1.15))
    judge = build_model("judge", init="pytorch", read_scales=(1.0, 0.85, 1.15))
    model = Judged(reader, judge, below).eval()
    export_onnx(model, tmp_path / "m.onnx")
    x = np.random.default_rng(0).random((7, 1, 28, 28), dtype=np.float32)
    with torch.no_grad():
        ours = model(torch.from_numpy(x)).numpy()
        plain = torch.log_softmax(reader.eval()(torch.from_numpy(x)), 1).numpy()
    theirs = OnnxModel(tmp_path / "m.onnx").logits(x)
    assert np.allclose(theirs, ours, atol=1e-5)
    assert np.allclose(ours, plain, atol=1e-6) == (below == 0.05)
