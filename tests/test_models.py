from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from lenet5.models import (
    JUDGE_WIDTHS,
    Judged,
    LeNet5,
    build_model,
    count_parameters,
    scale_matrix,
)
from lenet5.summary import format_table, layer_table


def test_parameter_counts() -> None:
    assert count_parameters(build_model("lenet5")) == 61_706
    assert count_parameters(build_model("softmax")) == 7_850
    assert count_parameters(build_model("lenet5", dropout=0.25)) == 61_706


def test_layer_table_matches_the_tutorial() -> None:
    rows = [r for r in layer_table(build_model("lenet5")) if r["total"]]
    assert [r["total"] for r in rows] == [156, 2_416, 48_120, 10_164, 850]
    shapes = {r["layer"]: r["output_shape"] for r in layer_table(build_model("lenet5"))}
    assert shapes["pool1"] == (6, 14, 14) and shapes["pool2"] == (16, 5, 5)
    assert shapes["fc3"] == (10,)
    assert format_table(layer_table(build_model("lenet5"))).splitlines()[-1].endswith("61,706")


@pytest.mark.parametrize("name", ["lenet5", "softmax"])
def test_returns_logits_of_shape_n_by_10(name: str) -> None:
    out = build_model(name)(torch.rand(3, 1, 28, 28))
    assert out.shape == (3, 10)
    assert not torch.allclose(out.softmax(1).sum(1), out.sum(1))  # logits, not probabilities


def test_tutorial_initialisation() -> None:
    softmax = build_model("softmax", init="tutorial")
    assert all(torch.count_nonzero(p) == 0 for p in softmax.parameters())
    torch.manual_seed(0)
    lenet = build_model("lenet5", init="tutorial")
    weights = torch.cat([m.weight.flatten() for m in (lenet.conv1, lenet.conv2, lenet.fc1)])
    assert weights.abs().max() <= 0.2  # truncated at two standard deviations
    assert 0.07 < weights.std() < 0.1  # std of N(0, 0.1) truncated at 2 sigma is 0.088
    assert torch.count_nonzero(lenet.fc1.bias) == 0


def _numpy_first_stage(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Reference for conv1 (SAME) + ReLU + 2x2 max-pool, written with plain loops."""
    padded = np.pad(x, 2)
    out = np.zeros((w.shape[0], 28, 28))
    for c in range(w.shape[0]):
        for i in range(28):
            for j in range(28):
                out[c, i, j] = (padded[i : i + 5, j : j + 5] * w[c, 0]).sum() + b[c]
    out = np.maximum(out, 0)
    return out.reshape(w.shape[0], 14, 2, 14, 2).max(axis=(2, 4))


def test_first_stage_against_a_loop_reference() -> None:
    torch.manual_seed(0)
    model = LeNet5()
    x = torch.rand(1, 1, 28, 28)
    ours = model.pool1(F.relu(model.conv1(x)))[0].detach().numpy()
    reference = _numpy_first_stage(
        x[0, 0].numpy(), model.conv1.weight.detach().numpy(), model.conv1.bias.detach().numpy()
    )
    np.testing.assert_allclose(ours, reference, atol=1e-5)


def test_dropout_only_while_training() -> None:
    torch.manual_seed(0)
    model = build_model("lenet5", dropout=0.5)
    x = torch.rand(4, 1, 28, 28)
    model.eval()
    assert torch.equal(model(x), model(x))
    model.train()
    assert not torch.equal(model(x), model(x))


@pytest.mark.parametrize("name", ["lenet5", "softmax"])
def test_overfits_a_tiny_batch(name: str) -> None:
    torch.manual_seed(0)
    model = build_model(name)
    x, y = torch.rand(32, 1, 28, 28), torch.randint(0, 10, (32,))
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    for _ in range(150):
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.05
    assert (model(x).argmax(1) == y).all()


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"name": "vgg"}, "unknown model"),
        ({"init": "xavier"}, "unknown init"),
        ({"dropout": 1.0}, "dropout must be in"),
        ({"name": "softmax", "dropout": 0.5}, "lenet5 and the judge only"),
        ({"name": "softmax", "read_scales": (1.0,)}, "lenet5 and the judge only"),
        ({"read_scales": (1.0, 0.0)}, "positive numbers"),
        ({"read_scales": (float("nan"),)}, "positive numbers"),
    ],
)
def test_build_model_rejects_bad_arguments(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build_model(**kwargs)


@pytest.mark.parametrize("scale", [1.0, 0.85, 1.15, 2.0])
def test_scale_matrix_rescales_as_grid_sample_does(scale: float) -> None:
    """A second implementation: grid_sample's bilinear sampling, magnified about the centre."""
    image = torch.rand(1, 1, 28, 28, dtype=torch.float64)
    a = scale_matrix(scale).double()
    theta = torch.tensor([[[1 / scale, 0, 0], [0, 1 / scale, 0]]], dtype=torch.float64)
    grid = F.affine_grid(theta, [1, 1, 28, 28], align_corners=True)
    theirs = F.grid_sample(image, grid, align_corners=True, padding_mode="zeros")
    assert torch.allclose(a @ image @ a.T, theirs, atol=1e-6)
    if scale == 1.0:
        assert torch.equal(scale_matrix(scale), torch.eye(28))


def test_read_scales_average_the_logits_once_trained() -> None:
    """Eval mode: the mean of the network's logits over the rescaled images, over the
    temperature; training mode: the image as given. The weights are those of a plain LeNet-5."""
    torch.manual_seed(0)
    plain = build_model("lenet5", init="pytorch")
    scaled = build_model("lenet5", read_scales=(1.0, 0.8))
    scaled.load_state_dict(plain.state_dict())  # the views are not among the weights
    scaled.get_buffer("temperature").fill_(0.5)
    x = torch.rand(5, 1, 28, 28)
    with torch.no_grad():
        assert torch.allclose(scaled.train()(x), plain(x) * 2)
        small = scale_matrix(0.8) @ x @ scale_matrix(0.8).T
        expected = (plain(x) + plain(small)) / 2 / 0.5
        assert torch.allclose(scaled.eval()(x), expected, atol=1e-5)


class _Fixed(torch.nn.Module):
    """A stand-in network that answers every image with the same logits."""

    def __init__(self, logits: list[float]) -> None:
        super().__init__()
        self.register_buffer("out", torch.tensor(logits))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out.expand(len(x), -1)


def test_the_judge_caps_the_readers_top_probability_where_it_doubts() -> None:
    reader = [4.0, 1.0, 0.5] + [0.0] * 7  # top probability about 0.85, digit 0
    p = torch.softmax(torch.tensor(reader), 0)
    x = torch.rand(2, 1, 28, 28)
    doubtful = [1.0, 0.0] + [0.0] * 8  # the judge's surest digit at about 0.23
    sure = torch.softmax(torch.tensor(doubtful), 0).max()
    out = Judged(_Fixed(reader), _Fixed(doubtful), below=0.3)(x).softmax(1)
    assert out.shape == (2, 10) and torch.allclose(out.sum(1), torch.ones(2))
    assert torch.allclose(out.max(1).values, sure.expand(2))  # the top is the judge's
    assert out.argmax(1).tolist() == [0, 0]  # the reader's digit, its order of digits kept
    # equal probabilities mixed in: each moves towards 0.1 by the same share
    share = (out[0] - 0.1) / (p - 0.1)
    assert torch.allclose(share, share[0].expand(10), atol=1e-5)
    # A judge sure enough, or less doubtful than the reader, changes nothing.
    for judge, below in ((doubtful, 0.2), ([9.0] + [0.0] * 9, 0.3)):
        kept = Judged(_Fixed(reader), _Fixed(judge), below)(x)
        assert torch.allclose(kept, torch.log_softmax(torch.tensor(reader), 0).expand(2, -1))
    unsure_reader = [0.2] + [0.0] * 9  # top about 0.12, under the judge's 0.23
    kept = Judged(_Fixed(unsure_reader), _Fixed(doubtful), 0.3)(x).softmax(1)
    assert torch.allclose(kept[0], torch.softmax(torch.tensor(unsure_reader), 0))
    even = Judged(_Fixed([0.0] * 10), _Fixed([0.0] * 10), 0.3)(x).softmax(1)
    assert torch.allclose(even, torch.full((2, 10), 0.1))  # no division by zero


def test_the_judge_is_lenet5_wider() -> None:
    judge = build_model("judge", read_scales=(1.0, 0.85))
    assert isinstance(judge, LeNet5) and judge.conv1.out_channels == JUDGE_WIDTHS[0]
    assert count_parameters(judge) == 155_782
    assert judge.eval()(torch.rand(3, 1, 28, 28)).shape == (3, 10)
