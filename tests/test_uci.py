"""scikit-learn's UCI digits as an out-of-MNIST evaluation set, and the font-rendered digits."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from lenet5.cli import main
from lenet5.data import uci
from lenet5.data.fonts import FONT_FILES, font_digits
from lenet5.data.mnist import DataError
from lenet5.data.preprocess import CENTRE, preprocess
from lenet5.data.uci import load_uci_digits, render


def _centre_of_mass(image: np.ndarray) -> tuple[float, float]:
    rows, cols = np.indices(image.shape)
    total = image.sum()
    return (rows * image).sum() / total, (cols * image).sum() / total


def test_render_draws_dark_ink_on_light_paper() -> None:
    cells = np.zeros((8, 8))
    cells[1:7, 3:5] = 16  # a "1": two full columns of cells
    picture = render(cells)
    gray = np.asarray(picture)
    assert picture.mode == "L" and gray.shape == (96, 96)
    assert gray[0, 0] == 255 and gray[48, 48] < 40  # paper, then ink in the stroke
    seen = preprocess(picture)
    rows = np.flatnonzero(seen.any(axis=1))
    assert rows[-1] - rows[0] + 1 == 20  # fitted to MNIST's 20 px box like any photo


def test_loads_all_1797_digits_as_model_inputs() -> None:
    uci = load_uci_digits()
    assert uci.images.shape == (1797, 28, 28) and uci.images.dtype == torch.uint8
    assert torch.bincount(uci.labels, minlength=10).tolist() == [
        178, 182, 177, 183, 181, 182, 181, 179, 174, 180,
    ]  # fmt: skip
    assert bool((uci.images.flatten(1).amax(1) == 255).all())  # every digit inked
    r, c = _centre_of_mass(uci.images[0].numpy().astype(float))
    assert abs(r - CENTRE) <= 1 and abs(c - CENTRE) <= 1
    uci.images[0] = 0  # each call gets its own copy of the (cached) rendering
    assert int(load_uci_digits().images[0].max()) == 255


def test_missing_scikit_learn_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)  # import fails
    uci._rendered.cache_clear()
    with pytest.raises(DataError, match=r"pip install 'lenet5\[uci\]'"):
        load_uci_digits()


def test_cli_evaluates_uci_digits(
    synthetic_run: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    _, run = synthetic_run
    assert main(["evaluate", "--model", str(run), "--dataset", "uci-digits", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["dataset"] == "uci-digits" and report["split"] is None
    assert report["examples"] == 1797
    assert sum(map(sum, report["confusion_matrix"])) == 1797
    assert len(report["per_class"]) == 10
    assert main(["evaluate", "--model", str(run), "--dataset", "uci-digits"]) == 0
    assert capsys.readouterr().out.startswith("uci-digits: 1797 images, accuracy")


def test_font_digits_every_digit_in_every_font() -> None:
    fonts = font_digits()
    count = len(FONT_FILES)
    # Ten digits, a crossed 7 and a 1 without its foot per font (every font here has a foot).
    assert len(fonts) == 12 * count
    expected = [count] * 10
    expected[1] = expected[7] = 2 * count
    assert torch.bincount(fonts.labels, minlength=10).tolist() == expected
    for image in fonts.images.numpy():
        rows = np.flatnonzero(image.any(axis=1))
        cols = np.flatnonzero(image.any(axis=0))
        assert max(rows[-1] - rows[0], cols[-1] - cols[0]) + 1 <= 21  # fitted to 20 px
        r, c = _centre_of_mass(image.astype(float))
        assert abs(r - CENTRE) <= 1 and abs(c - CENTRE) <= 1
    sevens = fonts.images[fonts.labels == 7].view(count, 2, 28, 28)
    # The crossed 7 has more ink than the plain one of the same font.
    assert bool((sevens[:, 1].float().sum((1, 2)) > sevens[:, 0].float().sum((1, 2))).all())
    ones = fonts.images[fonts.labels == 1].view(count, 2, 28, 28).float()
    # Without its foot the 1 has no wide bottom row: its last row of ink is narrower.
    bottom = [(image.sum(1) > 0).nonzero().max() for image in ones.view(-1, 28, 28)]
    widths = torch.stack(
        [image[row].gt(64).sum() for image, row in zip(ones.view(-1, 28, 28), bottom, strict=True)]
    )
    assert bool((widths.view(count, 2)[:, 1] < widths.view(count, 2)[:, 0]).all())
