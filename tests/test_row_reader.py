"""The row reader: LeNet-5 swept along a row (lenet5.models.RowReader), trained with CTC
(lenet5.training.rows), loaded and read (lenet5.inference.sweep). No data needed."""

from __future__ import annotations

import dataclasses
import itertools
import math
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from lenet5.data.rows import INPUT_DIGIT, INPUT_HEIGHT, INPUT_PAD, batch_inputs, row_input
from lenet5.inference.checkpoint import CheckpointError
from lenet5.inference.sweep import (
    BUNDLED_ROW_READERS,
    DIGIT_BONUS,
    LENET_WIDTHS,
    _agreed,
    greedy_runs,
    load_row_reader,
    sweep_digits,
)
from lenet5.models import (
    BLANK,
    GARBAGE,
    LeNet5,
    MaxPool2x2,
    RowReader,
    RowReaders,
    count_parameters,
    row_steps,
)
from lenet5.training.rows import (
    RowTrainConfig,
    _alignment,
    centre_step,
    decode,
    exact,
    restyle,
    row_loss,
    save_row_reader,
)


def test_the_sweep_is_lenet5_on_each_window() -> None:
    """Step t of the sweep gives what LeNet-5's fc1 gives on the 28 columns from 2t (a second
    implementation: the network run window by window; conv1's SAME padding is paper above and
    below, and the row's own pixels left and right, as the sweep sees them). The odd steps
    share the even steps' convolutions."""
    torch.manual_seed(0)
    lenet = LeNet5().eval()
    reader = RowReader(**LENET_WIDTHS).eval()
    reader.load_lenet5(lenet.state_dict())
    row = torch.rand(1, 1, 28, 61)
    padded = torch.nn.functional.pad(row, (2, 2))
    with torch.no_grad():
        swept = reader.sweep(row)[0]  # (120, T)
        assert swept.shape[1] == row_steps(61)
        for t in range(swept.shape[1]):
            x = padded[..., 2 * t : 2 * t + 32]  # the window and 2 columns each side
            x = torch.nn.functional.conv2d(x, lenet.conv1.weight, lenet.conv1.bias, padding=(2, 0))
            x = torch.relu(lenet.pool2(lenet.conv2(torch.relu(lenet.pool1(x)))))
            fc1 = torch.relu(lenet.fc1(x.flatten(1)))[0]
            torch.testing.assert_close(swept[:, t], fc1, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("shape", [(2, 3, 28, 60), (1, 4, 11, 37), (3, 1, 5, 2)])
def test_max_pool_2x2_is_torchs(shape: tuple[int, int, int, int]) -> None:
    x = torch.randn(shape, requires_grad=True)
    mine = MaxPool2x2()(x)
    torch.testing.assert_close(mine, torch.nn.functional.max_pool2d(x, 2), rtol=0, atol=0)
    mine.sum().backward()  # each pooled value's gradient reaches one input (no ties in randn)
    assert x.grad is not None and int(x.grad.sum()) == mine.numel()


@pytest.mark.parametrize("width", [32, 33, 34, 35, 36, 101, 250])
def test_row_steps_counts_the_readers_outputs(width: int) -> None:
    with torch.no_grad():
        logits = RowReader()(torch.zeros(1, 1, 28, width))
    assert logits.shape == (1, row_steps(width), GARBAGE + 2)


def test_the_reader_is_lenet5_widened_and_a_small_gru() -> None:
    gru = 2 * 3 * (120 * 64 + 64 * 64 + 2 * 64)  # two directions, three gates
    lenet = RowReader(**LENET_WIDTHS)
    assert count_parameters(lenet) == 156 + 2416 + 48120 + gru + 128 * 12 + 12
    gru = 2 * 3 * (256 * 64 + 64 * 64 + 2 * 64)
    conv = (25 + 1) * 32 + (32 * 25 + 1) * 64 + (64 * 25 + 1) * 256
    assert count_parameters(RowReader()) == conv + gru + 128 * 12 + 12


def test_only_a_reader_as_wide_as_lenet5_starts_from_its_layers() -> None:
    with pytest.raises(ValueError, match="cannot start from LeNet-5"):
        RowReader().load_lenet5(LeNet5().state_dict())


def test_decode_merges_repeats_and_drops_blanks() -> None:
    best = [BLANK, 3, 3, BLANK, 3, 7, 7, BLANK, GARBAGE, BLANK]
    logits = torch.nn.functional.one_hot(torch.tensor(best), GARBAGE + 2).float()
    assert decode(logits) == [3, 3, 7, GARBAGE]


def test_row_input_sets_digits_mnist_high() -> None:
    ink = np.zeros((80, 300), np.float32)
    ink[10:50, 5:25] = 1.0  # digits 40 pixels high
    ink[30:70, 200:230] = 0.5
    x, scale = row_input(ink, height=40.0)
    assert x.shape[0] == INPUT_HEIGHT and scale == pytest.approx(26 / 80)  # the ink's room
    x, scale = row_input(ink[:, :100], height=40.0)
    assert scale == pytest.approx(26 / 80)
    x, scale = row_input(ink[10:50, 5:], height=40.0)
    assert scale == pytest.approx(INPUT_DIGIT / 40)
    rows, cols = np.flatnonzero(x.any(axis=1)), np.flatnonzero(x.any(axis=0))
    assert rows[-1] - rows[0] + 1 == INPUT_DIGIT and cols[0] == INPUT_PAD
    assert x.max() == 1.0  # the faint digit as dark as the other
    tiny, _ = row_input(np.ones((3, 2), np.float32), height=3.0)
    assert tiny.shape[1] >= 32  # room for both sweeps
    wide, across = row_input(ink[10:50, 5:], height=40.0, stretch=1.3)
    assert across == pytest.approx(1.3 * INPUT_DIGIT / 40)  # columns drawn out, rows as before
    assert np.array_equal(wide.any(axis=1), x.any(axis=1))
    assert wide.shape[1] == round(295 * across) + 2 * INPUT_PAD  # the 295 columns, drawn out
    assert np.flatnonzero(wide.any(axis=0))[0] == INPUT_PAD


def _font_rows(count: int) -> tuple[list[np.ndarray], list[list[int]], list[list[int]]]:
    """Rows of font digits (tests/test_numbers.py's), touching, as reader inputs, with the
    step centred on each digit."""
    from lenet5.data.preprocess import ink_region, to_gray
    from lenet5.data.rows import make_row
    from lenet5.data.segment import digit_height
    from test_numbers import _glyphs

    rng = np.random.default_rng(0)
    inputs, targets, centres = [], [], []
    for _ in range(count):
        digits = [int(d) for d in rng.integers(0, 10, int(rng.integers(2, 5)))]
        row = make_row(_glyphs("".join(map(str, digits))), digits, rng, touching=True)
        ink, (_, left) = ink_region(to_gray(row.image))
        x, scale = row_input(ink, digit_height(ink))
        inputs.append(x)
        targets.append(digits)
        centres.append([centre_step(((a + b) / 2 - left) * scale) for a, _, b, _ in row.boxes])
    return inputs, targets, centres


@pytest.mark.parametrize("aligned", [0.0, 1.0])
def test_training_learns_to_read_a_few_rows(aligned: float) -> None:
    """A tiny batch the reader must overfit: from the bundled LeNet-5's layers, told each row's
    digits, it learns to read all eight rows exactly (about 80 steps). Told where they lie too
    (`aligned`), it reads each digit at the step centred on it."""
    from lenet5.inference.checkpoint import load_checkpoint

    torch.manual_seed(0)
    rows = _font_rows(8)
    model = RowReader(**LENET_WIDTHS)
    model.load_lenet5(load_checkpoint(None)["model"])
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    before = row_loss(model, rows[0], rows[1], centres=rows[2], aligned=aligned).item()
    for step in range(1, 201):
        loss = row_loss(model, rows[0], rows[1], centres=rows[2], aligned=aligned)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % 10 == 0 and exact(model, rows) == 1.0:
            break
    assert exact(model, rows) == 1.0 and loss.item() < before / 10
    assert model.training  # exact() hands the model back as it found it
    if aligned:
        with torch.no_grad():
            for x, centres in zip(rows[0], rows[2], strict=True):
                best = model(batch_inputs([x]))[0].argmax(dim=1).tolist()
                runs = greedy_runs(best)
                assert all(a <= c < b for (_, a, b), c in zip(runs, centres, strict=True))


def test_alignment_puts_labels_at_centres_and_blanks_between() -> None:
    targets, centres = [[3, 3, GARBAGE], [7]], [[2, 6, 7], [40]]
    rows, steps, labels = _alignment(targets, centres, steps=30)
    found = set(zip(rows.tolist(), steps.tolist(), labels.tolist(), strict=True))
    # 2 and 6 have a blank between them (4); 6 and 7 are neighbours; step 40 is past the row
    assert found == {(0, 2, 3), (0, 6, 3), (0, 7, GARBAGE), (0, 4, BLANK)}


def test_restyle_thickens_or_thins_whole_rows() -> None:
    """Against a second implementation: each row is itself, its 3x3 maximum (every pixel the
    brightest of its neighbourhood), or halfway from itself to its 3x3 minimum."""
    x = torch.rand(64, 1, 28, 40, generator=torch.Generator().manual_seed(0))
    padded = np.pad(x.numpy()[:, 0], ((0, 0), (1, 1), (1, 1)), constant_values=np.nan)
    windows = np.lib.stride_tricks.sliding_window_view(padded, (3, 3), axis=(1, 2))
    brightest, darkest = np.nanmax(windows, axis=(3, 4)), np.nanmin(windows, axis=(3, 4))
    out = restyle(x, 0.5, torch.Generator().manual_seed(1)).numpy()[:, 0]
    kinds = []
    for row, before, high, low in zip(out, x.numpy()[:, 0], brightest, darkest, strict=True):
        candidates = {"same": before, "thick": high, "thin": (before + low) / 2}
        kinds += [k for k, c in candidates.items() if np.allclose(row, c, atol=1e-6)]
    assert len(kinds) == 64 and {"same", "thick", "thin"} == set(kinds)
    assert 16 <= kinds.count("same") <= 48  # about half left alone
    assert torch.equal(restyle(x, 0.0, torch.Generator()), x)


def test_fit_keeps_the_epoch_that_read_validation_rows_best() -> None:
    from lenet5.data.mnist import Split
    from lenet5.training.rows import fit, validation_rows

    from conftest import synthetic_digits

    images, labels = synthetic_digits(60, seed=2)
    train = Split(torch.from_numpy(images), torch.from_numpy(labels))
    config = RowTrainConfig(rows=64, epochs=3, val_rows=20, strokes=1, fonts=0, garbage=0.0)
    lines: list[str] = []
    model, metrics = fit(config, train, train, log=lines.append)  # (wider: a fresh start)
    logged = [float(line.split("rows ")[1].split("%")[0]) / 100 for line in lines[1:]]
    assert metrics["epoch"] == 1 + int(np.argmax(logged))
    assert metrics["val_exact"] == pytest.approx(max(logged), abs=5e-4)
    assert not model.training
    # The weights handed back are that epoch's: they read the validation rows as it did.
    assert exact(model, validation_rows(config, train)) == metrics["val_exact"]


def test_copies_distort_each_source_digit_anew() -> None:
    from lenet5.data.mnist import Split
    from lenet5.training.rows import source_crops

    from conftest import synthetic_digits

    images, labels = synthetic_digits(30, seed=3)
    train = Split(torch.from_numpy(images), torch.from_numpy(labels))
    config = RowTrainConfig(rows=20, strokes=1, fonts=0, garbage=0.0, copies=2)
    once, once_labels, _ = source_crops(dataclasses.replace(config, copies=1), train)
    twice, twice_labels, _ = source_crops(config, train)
    assert len(twice) == len(twice_labels) == 2 * len(once)  # (none left its frame here)
    assert sorted(twice_labels) == sorted(np.tile(once_labels, 2))
    n = len(once)
    alike = [
        a.shape == b.shape and np.allclose(a, b) for a, b in zip(twice[:n], twice[n:], strict=True)
    ]
    assert sum(alike) < n // 2  # each copy distorted on its own


def test_a_run_passes_its_source_digits_through_one_low_resolution() -> None:
    """The digits are distorted as one batch, so half of them pass through the one low
    resolution drawn for the run (the bundled reader's rows were made so: 26 pixels with
    seed 0); 600 copies of one digit come out in two ways, as written and at that size."""
    from lenet5.data.mnist import Split
    from lenet5.training.rows import source_crops

    from conftest import synthetic_digits

    images, labels = synthetic_digits(1, seed=3)
    copies = 600
    train = Split(
        torch.from_numpy(images).repeat(copies, 1, 1), torch.from_numpy(labels).repeat(copies)
    )
    config = RowTrainConfig(rows=20, strokes=1, fonts=0, garbage=0.0, affine=0.0, aspect=0.0)
    crops, _, _ = source_crops(config, train)
    ways = [(c.shape, c.tobytes()) for c in crops[:copies]]
    assert len(set(ways)) == 2
    one_way = ways.count(ways[0])
    assert min(one_way, copies - one_way) > 200  # about half each way


def test_overlap_and_stretch_make_rows_tighter_and_wider() -> None:
    """Neighbours overlap by up to `overlap` heights; `stretch` draws whole rows out across."""
    from lenet5.data.rows import make_row
    from lenet5.training.rows import training_rows
    from test_numbers import _glyphs

    def shared(overlap: float) -> list[int]:
        rng = np.random.default_rng(0)
        boxes = [
            make_row(_glyphs("4086"), [4, 0, 8, 6], rng, True, overlap).boxes for _ in range(5)
        ]
        return [a[2] - b[0] for row in boxes for a, b in itertools.pairwise(row)]

    assert max(shared(0.0)) <= 2 < max(shared(0.3))  # columns two neighbours' boxes share
    assert np.mean(shared(0.3)) > np.mean(shared(0.08)) > np.mean(shared(0.0))

    crops = _glyphs("0123456789")
    config = RowTrainConfig(garbage=0.0, touching=1.0, max_digits=4)
    plain = training_rows(config, crops, np.arange(10), [], 20, seed=1)
    wide = training_rows(dataclasses.replace(config, stretch=0.5), crops, np.arange(10), [], 20, 1)
    assert plain[1] == wide[1]  # the same rows...
    ratios = [
        (b.shape[1] - 2 * INPUT_PAD) / (a.shape[1] - 2 * INPUT_PAD)
        for a, b in zip(plain[0], wide[0], strict=True)
    ]
    assert min(ratios) >= 0.98 and max(ratios) <= 1.52 and np.std(ratios) > 0.05  # ...drawn out
    assert all(max(c) < row_steps(x.shape[1]) for x, c in zip(wide[0], wide[2], strict=True))


def test_validation_rows_are_set_as_the_defaults_whatever_trains() -> None:
    """The rows that measure each epoch do not follow --overlap and --stretch: runs compare."""
    from lenet5.data.mnist import Split
    from lenet5.training.rows import validation_rows

    from conftest import synthetic_digits

    images, labels = synthetic_digits(30, seed=4)
    val = Split(torch.from_numpy(images), torch.from_numpy(labels))
    config = RowTrainConfig(val_rows=10)
    plain = validation_rows(config, val)
    other = validation_rows(dataclasses.replace(config, overlap=0.3, stretch=0.5), val)
    assert all(np.array_equal(a, b) for a, b in zip(plain[0], other[0], strict=True))


def test_fresh_rows_are_the_same_made_by_any_number_of_workers() -> None:
    """Each epoch's new rows come in pieces seeded (seed, epoch, piece): made here or by two
    worker processes they are the same rows; the next epoch's are others."""
    import multiprocessing

    from lenet5.training.rows import CHUNK, _start_worker, epoch_rows
    from test_numbers import _glyphs

    crops = _glyphs("0123456789")
    config = RowTrainConfig(rows=CHUNK + 7, garbage=0.1, max_digits=3, fresh=True)
    sources = (crops, np.arange(10), _glyphs("AB"))
    here = epoch_rows(config, sources, 1)()
    with multiprocessing.get_context("fork").Pool(2, _start_worker, (config, sources)) as pool:
        pending = epoch_rows(config, sources, 1, pool)
        there = pending()
    assert len(here[0]) == len(there[0]) == CHUNK + 7
    assert here[1] == there[1] and here[2] == there[2]
    assert all(np.array_equal(a, b) for a, b in zip(here[0], there[0], strict=True))
    assert GARBAGE in {d for t in here[1] for d in t}
    assert epoch_rows(config, sources, 2)()[1] != here[1]


def test_fit_on_fresh_rows_saves_each_new_best(tmp_path: Path) -> None:
    """With --fresh and two workers, training goes on as with rows made once; each new best
    epoch is handed to `on_best`, and the last one handed over is the reader returned."""
    from lenet5.data.mnist import Split
    from lenet5.inference.checkpoint import load_checkpoint
    from lenet5.training.rows import fit, save_row_reader

    from conftest import synthetic_digits

    images, labels = synthetic_digits(60, seed=2)
    train = Split(torch.from_numpy(images), torch.from_numpy(labels))
    small = {"rows": 64, "epochs": 3, "val_rows": 20, "strokes": 1, "fonts": 0, "garbage": 0.0}
    config = RowTrainConfig(**small, fresh=True, **LENET_WIDTHS)  # (as wide: from LeNet-5)
    saved: list[int] = []

    def keep(model: RowReader, best: dict) -> None:
        saved.append(best["epoch"])
        save_row_reader(tmp_path / "rows.pt", model, config, best)

    lines: list[str] = []
    init = load_checkpoint(None)["model"]
    model, metrics = fit(config, train, train, init, lines.append, workers=2, on_best=keep)
    assert len(lines) == 3 and all("of it making rows" in line for line in lines)
    assert saved[0] == 1 and saved[-1] == metrics["epoch"]
    on_disk = load_row_reader(tmp_path / "rows.pt")
    theirs = on_disk.state_dict()
    assert all(torch.equal(v, theirs[k]) for k, v in model.state_dict().items())


def test_saved_readers_load_and_other_files_are_refused(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = RowReader().eval()
    path = tmp_path / "rows.pt"
    save_row_reader(path, model, RowTrainConfig(rows=10), {"loss": 1.0})
    loaded = load_row_reader(path)
    x = batch_inputs([np.random.default_rng(0).random((28, 80), dtype=np.float32)])
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model(x))
    state = torch.load(path, weights_only=True)
    assert state["config"]["rows"] == 10 and state["metrics"] == {"loss": 1.0}
    torch.save({"format": "something else", "model": {}}, tmp_path / "other.pt")
    (tmp_path / "code.pt").write_bytes(pickle.dumps(RowTrainConfig(), protocol=2))  # code
    (tmp_path / "cut.pt").write_bytes(path.read_bytes()[:100])
    torch.save({"format": "lenet5-row-reader", "model": {"x": torch.zeros(1)}}, tmp_path / "w.pt")
    huge = {"format": "lenet5-row-reader", "config": {"conv1": 10**9}, "model": {}}
    torch.save(huge, tmp_path / "huge.pt")
    for name, says in [
        ("huge.pt", "are not sizes"),
        ("other.pt", "not a lenet5 row reader"),
        ("code.pt", "cannot read"),
        ("cut.pt", "cannot read"),
        ("w.pt", "do not fit"),
        ("missing.pt", "cannot read"),
    ]:
        with pytest.raises(CheckpointError, match=says):
            load_row_reader(tmp_path / name)


def test_a_reader_saved_without_its_widths_is_as_wide_as_lenet5(tmp_path: Path) -> None:
    """Files written before readers were wider than LeNet-5 have no widths in their config."""
    model = RowReader(**LENET_WIDTHS)
    state = {"format": "lenet5-row-reader", "config": {"rows": 10}, "model": model.state_dict()}
    torch.save(state, tmp_path / "old.pt")
    loaded = load_row_reader(tmp_path / "old.pt")
    assert count_parameters(loaded) == count_parameters(model)


def test_readings_vote_by_their_summed_likelihood() -> None:
    """Against a second implementation: each reading's probability under each view is the sum
    over every path of steps that collapses to it (4 steps of 4 classes, all 256 paths), and
    each of its digits adds DIGIT_BONUS in each view."""
    import itertools

    classes = 4  # 0, 1, 2 and the blank: renumbered so that the blank is BLANK
    blank = classes - 1
    log_probs = torch.log_softmax(
        torch.randn(5, 4, classes, generator=torch.Generator().manual_seed(32)) * 2, dim=-1
    )
    lengths = [4, 4, 3, 4, 4]
    full = torch.full((5, 4, BLANK + 1), -1e4)
    full[..., :blank], full[..., BLANK] = log_probs[..., :blank], log_probs[..., blank]
    readings = [
        tuple(label for label, _, _ in greedy_runs(p[:n].argmax(dim=1).tolist()))
        for p, n in zip(full, lengths, strict=True)
    ]
    chances: list[dict[tuple[int, ...], float]] = []
    for view, n in zip(log_probs.exp(), lengths, strict=True):
        chance: dict[tuple[int, ...], float] = {}
        for path in itertools.product(range(classes), repeat=n):
            labels = [c for c, _ in itertools.groupby(path) if c != blank]
            p = float(np.prod([view[t, c] for t, c in enumerate(path)]))
            chance[tuple(labels)] = chance.get(tuple(labels), 0.0) + p
        chances.append(chance)
    candidates = set(readings)
    assert len(candidates) > 1  # (the seed gives views that disagree)
    score = {
        r: sum(np.log(c.get(r, 0.0) + 1e-300) + DIGIT_BONUS * len(r) for c in chances)
        for r in candidates
    }
    winner = max(candidates, key=score.__getitem__)
    own = [v for v, r in enumerate(readings) if r == winner]
    assert readings.count(winner) < max(map(readings.count, candidates))  # not a plain vote
    assert _agreed(full, lengths) == (max(own, key=lambda v: chances[v][winner]),) * 2


def test_a_digit_that_one_view_reads_and_another_doubts_is_kept() -> None:
    """View 0 reads 37 (the 7 at 0.7), view 1 reads 3 (the 7 at 0.1): summed, 3 is likelier
    (0.3 * 0.9 against 0.7 * 0.1), but by less than the bonus of a digit in two views."""
    views = torch.full((2, 4, BLANK + 1), -1e4)
    views[:, :, BLANK] = 0.0
    views[:, 0, 3], views[:, 0, BLANK] = 0.0, -1e4  # both: a sure 3 at step 0
    for v, seven in enumerate((0.7, 0.1)):
        views[v, 2, 7], views[v, 2, BLANK] = math.log(seven), math.log(1 - seven)
    assert math.log(0.3 * 0.9) - math.log(0.7 * 0.1) < 2 * DIGIT_BONUS
    assert _agreed(views, [4, 4]) == (0, 0)


def test_the_first_readers_views_place_the_digits_when_they_read_the_winner() -> None:
    """Two views read the same digits, the second surer of them: it places them, unless the
    first view is the first reader's (whose steps sit on the digits' ink)."""
    surer = torch.full((2, 4, BLANK + 1), -1e4)
    surer[:, :, BLANK] = 0.0
    surer[0, 1, 3], surer[0, 1, BLANK] = -0.1, -2.4  # reads 3 at step 1, unsure
    surer[1, 2, 3], surer[1, 2, BLANK] = 0.0, -1e4  # reads 3 at step 2, sure
    assert _agreed(surer, [4, 4]) == (1, 1)
    assert _agreed(surer, [4, 4], first_reader=1) == (1, 0)
    assert _agreed(surer, [4, 4], first_reader=2) == (1, 1)  # (one reader: the surest view)


def test_the_bundled_readers_are_what_their_script_trained() -> None:
    """scripts/train_row_reader.py's files (MNIST's training split and generated digits): the
    one as wide as LeNet-5 started from the bundled model, 14 epochs (rows of MNIST validation
    digits, 86.2% at its best epoch, 13); the wider readers on 150,000 rows for 14 epochs,
    `--seed 2` (90.2%, 14) and `--seed 3` (88.0%, 11)."""
    lenet, wide2, wide3 = (torch.load(path, weights_only=True) for path in BUNDLED_ROW_READERS)
    as_lenet = RowTrainConfig(epochs=14, **LENET_WIDTHS)
    assert RowTrainConfig(**lenet["config"]) == as_lenet
    assert lenet["metrics"]["val_exact"] >= 0.86 and lenet["metrics"]["epoch"] == 13
    longer = {"rows": 150_000, "epochs": 14}
    assert RowTrainConfig(**wide2["config"]) == RowTrainConfig(seed=2, **longer)
    assert wide2["metrics"]["val_exact"] >= 0.90 and wide2["metrics"]["epoch"] == 14
    assert RowTrainConfig(**wide3["config"]) == RowTrainConfig(seed=3, **longer)
    assert wide3["metrics"]["val_exact"] >= 0.88 and wide3["metrics"]["epoch"] == 11
    sizes = [path.stat().st_size for path in BUNDLED_ROW_READERS]
    assert sizes[0] < 600_000 and max(sizes[1:]) < 2_500_000  # weights only


def test_a_vote_of_one_reader_twice_reads_as_that_reader() -> None:
    """Two readers read the views one after the other; a reader voting with itself doubles
    every reading's summed likelihood, so the same digits win, read at the same places."""
    lenet = load_row_reader(BUNDLED_ROW_READERS[0])
    twice = RowReaders([lenet, lenet]).eval()
    x = batch_inputs([np.random.default_rng(1).random((28, 70), dtype=np.float32)])
    with torch.no_grad():
        torch.testing.assert_close(twice(x), torch.cat([lenet(x), lenet(x)]))
    inputs, _, _ = _font_rows(4)
    for row in inputs:
        ink = row[2:26]  # (the input's digits are 20 pixels high)
        one, two = sweep_digits(lenet, ink, 20.0), sweep_digits(twice, ink, 20.0)
        assert [(p.argmax(), c) for p, c in one] == [(p.argmax(), c) for p, c in two]
        assert len(one) >= 2


def test_the_bundled_reader_reads_touching_font_rows() -> None:
    """Font digits are not what it learned from (MNIST and generated strokes, distorted), yet
    it reads most touching font rows; each digit's centre falls in its row order."""
    reader = load_row_reader()
    inputs, targets, _ = _font_rows(20)
    assert exact(reader, (inputs, targets, [])) >= 0.8
    ink = np.zeros((40, 200), np.float32)
    assert sweep_digits(reader, ink, 40.0) == []  # paper: nothing read
