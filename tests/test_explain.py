"""Inside the network: activations against the model's own layers, saliency against
completeness, the API, the CLI."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient
from PIL import Image

from lenet5.cli import main
from lenet5.config import TrainConfig
from lenet5.data.mnist import to_float
from lenet5.data.preprocess import load_image, preprocess
from lenet5.inference.checkpoint import load_model, save_checkpoint
from lenet5.inference.explain import IG_STEPS, LAYERS, as_given, explain, integrated_gradients
from lenet5.models import Judged, build_model, digit_reader
from lenet5.serving.app import create_app


@pytest.fixture(scope="module")
def model(synthetic_run: tuple[Path, Path]) -> torch.nn.Module:
    return load_model(synthetic_run[1])[0]


def _digit() -> np.ndarray:
    image = np.zeros((28, 28), np.uint8)
    image[5:23, 12:16] = 255  # a 1
    image[5:8, 8:16] = 200
    return image


def test_activations_are_the_layers_outputs(model: torch.nn.Module) -> None:
    """A second implementation: the layers called one by one, ReLU after each."""
    x = to_float(torch.from_numpy(_digit())[None])
    with torch.inference_mode():
        conv1 = model.conv1(x)
        pool1 = model.pool1(conv1)
        conv2 = model.conv2(torch.relu(pool1))
        pool2 = model.pool2(conv2)
        logits = model(x)
    expected = {"conv1": conv1, "pool1": pool1, "conv2": conv2, "pool2": pool2}
    result = explain(model, _digit())
    assert list(result.activations) == list(LAYERS)
    shapes = {name: maps.shape for name, maps in result.activations.items()}
    assert shapes == {
        "conv1": (6, 28, 28),
        "pool1": (6, 14, 14),
        "conv2": (16, 10, 10),
        "pool2": (16, 5, 5),
    }
    for name, maps in result.activations.items():
        assert np.allclose(maps, torch.relu(expected[name])[0].numpy(), atol=1e-6), name
    assert result.digit == int(logits.argmax())
    assert result.probabilities == pytest.approx(torch.softmax(logits, 1)[0].tolist(), abs=1e-6)


def test_saliency_is_complete(model: torch.nn.Module) -> None:
    """Integrated gradients sum to the logit's rise from the black baseline image."""
    for image in (_digit(), np.random.default_rng(0).integers(0, 256, (28, 28), np.uint8)):
        x = to_float(torch.from_numpy(image)[None])
        for target in (None, 3):
            result = explain(model, image, target)
            digit = result.digit if target is None else target
            with torch.inference_mode():
                rise = float(model(x)[0, digit] - model(torch.zeros_like(x))[0, digit])
            assert result.saliency.shape == (28, 28)
            assert abs(result.saliency.sum() - rise) <= 0.05 * abs(rise) + 1e-4
            assert result.delta == pytest.approx(result.saliency.sum() - rise, abs=1e-3)
    # Pixels that are black in the image get nothing: IG scales with (x - baseline).
    assert np.all(result.saliency[np.asarray(image) == 0] == 0)


@pytest.mark.parametrize("which", ["synthetic run", "bundled"])
def test_integrated_gradients_are_captums(model: torch.nn.Module, which: str) -> None:
    """A second implementation: Captum's IntegratedGradients, Gauss-Legendre, same steps; in
    float64 the two agree to 1e-7 of the map's scale (float32 rounding alone: 1e-3). Both
    explain the image as given (the bundled model reads three scales of it), by the network
    that reads the digit (the bundled model's reader, not its judge)."""
    from captum.attr import IntegratedGradients

    model = model if which == "synthetic run" else digit_reader(load_model()[0])
    rng = np.random.default_rng(1)
    seven = preprocess(load_image(Path(__file__).parent.parent / "docs/examples/seven.jpg"))
    for dtype, tolerance in ((torch.float64, 1e-7), (torch.float32, 1e-3)):
        model = model.to(dtype)
        for image in (_digit(), seven, rng.integers(0, 256, (28, 28), np.uint8)):
            x = to_float(torch.from_numpy(image)[None]).to(dtype)
            for target in range(10):
                ours = integrated_gradients(model, x, target)
                theirs = IntegratedGradients(as_given(model)).attribute(
                    x,
                    baselines=torch.zeros_like(x),
                    target=target,
                    n_steps=IG_STEPS,
                    method="gausslegendre",
                    internal_batch_size=IG_STEPS,
                )
                scale = float(theirs.abs().max())
                assert float((ours - theirs).abs().max()) <= tolerance * scale, (dtype, target)


def test_softmax_regression_cannot_be_explained() -> None:
    with pytest.raises(Exception, match="only LeNet-5 models can be explained"):
        explain(build_model("softmax"), _digit())


def test_api_explains_on_request(model: torch.nn.Module, synthetic_run: tuple[Path, Path]) -> None:
    config = load_model(synthetic_run[1])[1]
    client = TestClient(create_app(model, config, synthetic_run[1]))
    pixels = {"pixels": (_digit() / 255).tolist()}  # in [0, 1]
    plain = client.post("/api/predict", json=pixels).json()
    assert "explain" not in plain
    answer = client.post("/api/predict?explain=true", json=pixels).json()
    assert answer["digit"] == plain["digit"]
    inside = answer["explain"]
    seen = np.array(answer["preprocessed"], dtype=np.uint8)
    expected = explain(model, seen, plain["digit"])
    for name in LAYERS:
        assert np.allclose(inside["layers"][name], expected.activations[name], atol=1e-5)
    assert np.allclose(inside["saliency"], expected.saliency, atol=1e-5)
    schema = client.get("/openapi.json").json()
    assert "explain" in schema["components"]["schemas"]["PredictResponse"]["properties"]


def test_api_refuses_to_explain_softmax_regression(tmp_path: Path) -> None:
    path = tmp_path / "softmax.pt"
    softmax = build_model("softmax")
    save_checkpoint(
        path, config=TrainConfig(model="softmax"), model=softmax, epoch=1, best_val_accuracy=0
    )
    client = TestClient(create_app(softmax, TrainConfig(model="softmax"), path))
    answer = client.post("/api/predict?explain=true", json={"pixels": (_digit() / 255).tolist()})
    assert answer.status_code == 400
    assert "only LeNet-5" in answer.json()["detail"]


def test_cli_writes_one_picture_per_image(
    synthetic_run: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    paths = []
    for name in ("a", "b"):
        paths.append(str(tmp_path / f"{name}.png"))
        Image.fromarray(_digit()).save(paths[-1])
    out = tmp_path / "inside"
    assert main(["predict", "--model", str(synthetic_run[1]), "--explain", str(out), *paths]) == 0
    written = sorted(p.name for p in out.iterdir())
    assert written == ["a.png", "b.png"]
    with Image.open(out / "a.png") as picture:
        assert picture.width > 600 and picture.height > 400
    text = capsys.readouterr().out
    assert f"wrote {out / 'a.png'}" in text


def test_a_judged_model_is_explained_by_its_reader() -> None:
    """The bundled model's maps are its LeNet-5's (6 and 16 maps); its answer is the judged one."""
    bundled = load_model()[0]
    assert isinstance(bundled, Judged)
    seven = preprocess(load_image(Path(__file__).parent.parent / "docs/examples/seven.jpg"))
    result = explain(bundled, seven)
    assert result.digit == 7 and result.kernels.shape == (6, 5, 5)
    assert result.activations["pool2"].shape == (16, 5, 5)
    x = to_float(torch.from_numpy(seven)[None])
    with torch.inference_mode():
        assert np.allclose(result.probabilities, torch.softmax(bundled(x)[0], 0), atol=1e-6)
