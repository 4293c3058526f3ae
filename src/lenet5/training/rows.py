"""Training the row reader (`lenet5.models.RowReader`) on rows of digits made here.

Rows of 1-7 digits from MNIST's training split and the font-rendered and stroke-drawn digits
(the bundled model's sources), each distorted as the robust recipe distorts its digits and
half of them through one low resolution drawn for the run, set apart or touching
(`lenet5.data.rows`), with now and then a letter, a shape or a scribble in a digit's place
(the class GARBAGE: "not a digit"). Each row is found on its paper and scaled as
`read_number` does; the rows are made once, and each epoch restyles the strokes of some of
them. The reader (from a LeNet-5's layers if as wide) learns with CTC (Graves et al. 2006):
it is told a row's digits, never where. Rows of MNIST validation digits measure it.
"""

from __future__ import annotations

import dataclasses
import io
import itertools
import multiprocessing
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from lenet5.data.mnist import Split, to_float
from lenet5.data.preprocess import ink_region, to_gray
from lenet5.data.rows import (
    INPUT_HEIGHT,
    INPUT_PAD,
    batch_inputs,
    ink_crop,
    make_row,
    row_input,
    thinned,
)
from lenet5.data.segment import digit_height
from lenet5.files import atomic_write
from lenet5.inference.sweep import ROW_READER_FORMAT, greedy_runs
from lenet5.models import (
    BLANK,
    GARBAGE,
    ROW_CONV1,
    ROW_CONV2,
    ROW_FEATURES,
    ROW_STEP,
    RowReader,
    row_steps,
)

VISIBLE_INK = 60  # a distorted digit with no pixel above this (of 255) has left its frame
KINDS = ("letter", "shape", "scribble")  # non-digits in rows; not "pair": two digits are two


@dataclass
class RowTrainConfig:
    rows: int = 100_000  # training rows, made once per run
    epochs: int = 12
    batch_size: int = 64  # rows per step
    lr: float = 2e-3  # the one-cycle schedule's peak (Adam)
    touching: float = 0.6  # share of the rows whose neighbours touch
    overlap: float = 0.08  # touching neighbours overlap by up to this times the height
    stretch: float = 0.0  # each row drawn out across by 1 to 1 + this (uniform)
    garbage: float = 0.05  # chance that a place in a row holds a non-digit
    max_digits: int = 7  # a row holds 1 to this many
    affine: float = 1.0  # each digit's distortion, as the robust recipe's
    aspect: float = 0.25
    # Half the digits pass through one lower resolution, drawn once a run from (1 - blur) x 28
    # pixels up (all the digits are distorted as one batch): with the defaults, 26 pixels
    # (seed 0), 15 (seed 1).
    blur: float = 0.7
    copies: int = 1  # distorted copies of each source digit that rows draw from
    restyle: float = 0.5  # share of rows whose strokes are thickened or thinned, anew each epoch
    aligned: float = 0.0  # weight of the loss that tells the reader where each digit lies
    fonts: int = 10  # copies of the font-rendered digits
    strokes: int = 2000  # stroke-drawn digits per class
    val_rows: int = 500  # rows of MNIST validation digits measured after each epoch
    fresh: bool = False  # make each epoch's rows anew (in CHUNK-row pieces) instead of once
    seed: int = 0
    conv1: int = ROW_CONV1  # the reader's widths (LeNet-5's: 6, 16, 120)
    conv2: int = ROW_CONV2
    features: int = ROW_FEATURES


CHUNK = 2_000  # rows made at a time (by one worker) when each epoch's rows are made anew

# Reader inputs (28, W), their labels, and the step nearest each label's centre.
Rows = tuple[list[np.ndarray], list[list[int]], list[list[int]]]
# Digits' ink crops, their labels, and non-digits' ink crops.
Sources = tuple[list[np.ndarray], np.ndarray, list[np.ndarray]]


def source_crops(config: RowTrainConfig, train: Split) -> Sources:
    """The digits rows are made of (ink crops, distorted) with their labels, and non-digits."""
    from lenet5.data.augment import Distortion
    from lenet5.data.fonts import font_digits
    from lenet5.data.shapes import non_digits
    from lenet5.data.strokes import stroke_digits

    fonts, strokes = font_digits(), stroke_digits(config.strokes, seed=config.seed)
    images = torch.cat([train.images, fonts.images.repeat(config.fonts, 1, 1), strokes.images])
    labels = torch.cat([train.labels, fonts.labels.repeat(config.fonts), strokes.labels])
    images, labels = images.repeat(config.copies, 1, 1), labels.repeat(config.copies)
    torch.manual_seed(config.seed)
    distort = Distortion(affine=config.affine, aspect=config.aspect, blur=config.blur)
    # (one batch: one low resolution for the run, as the bundled reader's rows were made)
    images = (distort(to_float(images))[:, 0] * 255).round().clamp(0, 255).to(torch.uint8)
    kept = images.flatten(1).amax(dim=1) > VISIBLE_INK
    others = non_digits(
        max(1, round(config.rows * config.garbage)), train, config.seed, kinds=KINDS
    )
    return (
        [ink_crop(x) for x in images[kept].numpy()],
        labels[kept].numpy(),
        [ink_crop(x) for x in others.images.numpy()],
    )


def training_rows(
    config: RowTrainConfig,
    digits: list[np.ndarray],
    labels: np.ndarray,
    others: list[np.ndarray],
    count: int,
    seed: int | tuple[int, ...],
) -> Rows:
    """`count` rows as reader inputs with their labels (digits, or GARBAGE for a non-digit)
    and the step that sees each one centred."""
    rng = np.random.default_rng(seed)
    seeds = seed if isinstance(seed, tuple) else (seed,)
    stretches = np.random.default_rng([*seeds, 1]).uniform(1.0, 1.0 + config.stretch, count)
    inputs, targets, centres = [], [], []
    for stretch in stretches:
        crops, row_labels = [], []
        for _ in range(int(rng.integers(1, config.max_digits + 1))):
            if others and rng.random() < config.garbage:
                crops.append(others[int(rng.integers(len(others)))])
                row_labels.append(GARBAGE)
            else:
                k = int(rng.integers(len(digits)))
                crops.append(digits[k])
                row_labels.append(int(labels[k]))
        touching = bool(rng.random() < config.touching)
        row = make_row(crops, row_labels, rng, touching, config.overlap)
        ink, (_, left) = ink_region(to_gray(row.image))
        x, scale = row_input(ink, digit_height(ink), float(stretch))
        inputs.append(x)
        targets.append(row_labels)
        centres.append([centre_step(((x0 + x1) / 2 - left) * scale) for x0, _, x1, _ in row.boxes])
    return inputs, targets, centres


def validation_rows(config: RowTrainConfig, val: Split) -> Rows:
    """The `config.val_rows` rows of `val` digits that measure each epoch: no non-digits, and
    set as the defaults set them (overlap, stretch), so that runs' figures compare."""
    defaults = RowTrainConfig()
    plain = dataclasses.replace(
        config, garbage=0.0, overlap=defaults.overlap, stretch=defaults.stretch
    )
    crops = [ink_crop(x) for x in val.images.numpy()]
    return training_rows(plain, crops, val.labels.numpy(), [], config.val_rows, config.seed + 1)


def centre_step(column: float) -> int:
    """The reader's step whose window is centred nearest `column` of the ink (which the input
    sets INPUT_PAD from its left edge): step t sees the input's columns from ROW_STEP * t."""
    return max(0, round((column + INPUT_PAD - INPUT_HEIGHT / 2) / ROW_STEP))


def restyle(x: torch.Tensor, share: float, generator: torch.Generator) -> torch.Tensor:
    """Rows (N, 1, 28, W) with the strokes of a `share` of them thickened (a 3x3 maximum) or
    thinned (halfway to a 3x3 minimum), half each: the rows are made once, and this changes
    them each epoch; pens differ, and other hands' scans (UCI's) are bolder than MNIST's."""
    pick = torch.rand(len(x), generator=generator)[:, None, None, None].to(x.device)
    thick = F.max_pool2d(x, 3, stride=1, padding=1)
    return torch.where(pick < share / 2, thick, torch.where(pick < share, thinned(x), x))


def row_loss(
    model: RowReader,
    inputs: list[np.ndarray],
    targets: list[list[int]],
    restyled: float = 0.0,
    centres: list[list[int]] | None = None,
    aligned: float = 0.0,
) -> torch.Tensor:
    """The mean CTC loss of a batch of rows (each row's loss divided by its length), a
    `restyled` share of them restyled; plus, `aligned` times, the cross-entropy of the steps
    whose windows are centred on a digit (its label) or halfway between two (the blank):
    CTC alone leaves where a digit is read free, and a digit read off its ink gets the wrong
    box, and two alike read at one place merge."""
    device = next(model.parameters()).device
    x = batch_inputs(inputs).to(device)  # (N, 1, 28, W)
    if restyled:
        x = restyle(x, restyled, torch.default_generator)
    log_probs = F.log_softmax(model(x), dim=2)  # (N, T, C)
    loss = F.ctc_loss(
        log_probs.transpose(0, 1),
        torch.tensor([d for t in targets for d in t], device=device),
        torch.tensor([min(row_steps(i.shape[1]), log_probs.shape[1]) for i in inputs]),
        torch.tensor([len(t) for t in targets]),
        blank=BLANK,
        zero_infinity=True,
    )
    if not aligned or centres is None:
        return loss
    rows, steps, labels = _alignment(targets, centres, log_probs.shape[1])
    return loss + aligned * F.nll_loss(log_probs[rows, steps], labels.to(device))


def _alignment(
    targets: list[list[int]], centres: list[list[int]], steps: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(row, step, class) of each step `row_loss` aligns: each label at its centre, the blank
    halfway between two centres that are more than a step apart."""
    rows, at, classes = [], [], []
    for n, (labels, where) in enumerate(zip(targets, centres, strict=True)):
        between = [((a + b) // 2, BLANK) for a, b in itertools.pairwise(where) if a + 1 < b]
        for step, label in [*zip(where, labels, strict=True), *between]:
            if step < steps:
                rows.append(n)
                at.append(step)
                classes.append(label)
    return torch.tensor(rows), torch.tensor(at), torch.tensor(classes)


def decode(logits: torch.Tensor) -> list[int]:
    """Greedy CTC decoding of one row's logits (T, C): the classes, repeats merged, blanks out."""
    return [label for label, _, _ in greedy_runs(logits.argmax(dim=-1).tolist())]


def exact(model: RowReader, rows: Rows) -> float:
    """The share of rows read exactly (one row at a time, as `read_number` reads)."""
    model.eval()
    device = next(model.parameters()).device
    with torch.inference_mode():
        right = sum(
            decode(model(batch_inputs([x]).to(device))[0]) == t
            for x, t in zip(rows[0], rows[1], strict=True)
        )
    model.train()
    return right / max(1, len(rows[0]))


def train_one_epoch(
    model: RowReader,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    rows: Rows,
    batches: list[np.ndarray],
    restyled: float = 0.0,
    aligned: float = 0.0,
) -> dict[str, float]:
    """One pass over `batches` (index arrays into `rows`), a `restyled` share of each batch's
    rows restyled, the alignment loss weighted `aligned` -> the mean loss."""
    losses = []  # kept on the device: reading each one would wait for it
    for batch in batches:
        inputs = [rows[0][k] for k in batch]
        targets, centres = [rows[1][k] for k in batch], [rows[2][k] for k in batch]
        loss = row_loss(model, inputs, targets, restyled, centres, aligned)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()
        losses.append(loss.detach())
    return {"loss": torch.stack(losses).mean().item() if losses else 0.0}


def fit(
    config: RowTrainConfig,
    train: Split,
    val: Split,
    init: dict[str, torch.Tensor] | None = None,
    log: Callable[[str], None] = print,
    device: str | torch.device = "cpu",
    workers: int = 0,
    on_best: Callable[[RowReader, dict[str, Any]], None] | None = None,
) -> tuple[RowReader, dict[str, Any]]:
    """Make the rows, train a row reader on them (from `init`, a LeNet-5's weights, if as wide)
    on `device` and measure it on rows of `val` after each epoch -> the reader of the epoch that
    read them best (in eval mode, on the CPU) and its metrics; `on_best` is told of each new best.
    With `config.fresh`, `workers` processes make the next epoch's rows while one trains."""
    start = time.perf_counter()
    sources = source_crops(config, train)
    val_rows = validation_rows(config, val)
    pool = None
    if config.fresh and workers > 0:  # forked before any CUDA work: the workers need none
        pool = multiprocessing.get_context("fork").Pool(workers, _start_worker, (config, sources))
    try:
        if config.fresh:
            next_rows = epoch_rows(config, sources, 1, pool)
        else:
            rows = training_rows(config, *sources, config.rows, config.seed)
            batches = _batches(rows, config.batch_size)
            log(f"made {config.rows} training rows ({time.perf_counter() - start:.0f} s)")
        torch.manual_seed(config.seed)
        model = RowReader(config.conv1, config.conv2, config.features)
        if init is not None:
            model.load_lenet5(init)
        model.to(device)
        optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
        steps = -(-config.rows // config.batch_size)  # batches in an epoch
        scheduler = torch.optim.lr_scheduler.OneCycleLR(
            optimizer, config.lr, total_steps=config.epochs * steps, pct_start=0.15
        )
        rng = np.random.default_rng(config.seed)
        best: dict[str, Any] = {"val_exact": -1.0}
        weights = model.state_dict()
        for epoch in range(1, config.epochs + 1):
            began = time.perf_counter()
            if config.fresh:
                rows = next_rows()
                if epoch < config.epochs:
                    next_rows = epoch_rows(config, sources, epoch + 1, pool)
                batches = _batches(rows, config.batch_size)
            waited = time.perf_counter() - began
            rng.shuffle(batches)
            metrics = train_one_epoch(
                model, optimizer, scheduler, rows, batches, config.restyle, config.aligned
            )
            metrics["val_exact"] = exact(model, val_rows)
            log(
                f"epoch {epoch}/{config.epochs}: loss {metrics['loss']:.3f}, MNIST validation "
                f"rows {metrics['val_exact']:.1%} exact ({time.perf_counter() - began:.0f} s"
                + (f", {waited:.0f} s of it making rows)" if config.fresh else ")")
            )
            if metrics["val_exact"] > best["val_exact"]:  # (a copy: training goes on in place)
                weights = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
                best = {**metrics, "epoch": epoch}
                if on_best is not None:
                    on_best(model, best)
    finally:
        if pool is not None:
            pool.terminate()
    model.cpu().load_state_dict(weights)
    return model.eval(), best


def _batches(rows: Rows, size: int) -> list[np.ndarray]:
    """Index arrays of `size` rows of like width (less padding), in order of width."""
    order = np.argsort([x.shape[1] for x in rows[0]], kind="stable")
    return [order[k : k + size] for k in range(0, len(order), size)]


_worker: dict[str, Any] = {}  # a row-making process's config and sources


def _start_worker(config: RowTrainConfig, sources: Sources) -> None:
    torch.set_num_threads(1)  # the workers share the cores
    _worker.update(config=config, sources=sources)


def _worker_rows(task: tuple[tuple[int, ...], int]) -> Rows:
    seed, count = task
    digits, labels, others = _worker["sources"]
    return training_rows(_worker["config"], digits, labels, others, count, seed)


def epoch_rows(
    config: RowTrainConfig, sources: Sources, epoch: int, pool: Any = None
) -> Callable[[], Rows]:
    """Epoch `epoch`'s rows, made anew: CHUNK-row pieces seeded (seed, epoch, piece), so that
    any number of workers make the same rows. `pool`'s workers start on them now (without a
    pool they are made here, when asked for) -> a function that hands them over."""
    tasks = [
        ((config.seed, epoch, k), min(CHUNK, config.rows - first))
        for k, first in enumerate(range(0, config.rows, CHUNK))
    ]
    if pool is None:
        return lambda: _joined([training_rows(config, *sources, n, seed) for seed, n in tasks])
    pending = pool.map_async(_worker_rows, tasks)
    return lambda: _joined(pending.get())


def _joined(pieces: list[Rows]) -> Rows:
    return (
        [x for piece in pieces for x in piece[0]],
        [t for piece in pieces for t in piece[1]],
        [c for piece in pieces for c in piece[2]],
    )


def save_row_reader(
    path: Path, model: RowReader, config: RowTrainConfig, metrics: dict[str, Any]
) -> None:
    """The reader's weights with its config and metrics (plain tensors and numbers: loaded
    with torch.load(weights_only=True))."""
    state = {
        "format": ROW_READER_FORMAT,
        "config": dataclasses.asdict(config),
        "metrics": metrics,
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
    }
    buffer = io.BytesIO()
    torch.save(state, buffer)
    atomic_write(path, lambda f: f.write(buffer.getvalue()))
