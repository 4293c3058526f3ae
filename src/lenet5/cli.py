"""The `lenet5` command line: a thin layer over the package's API."""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from lenet5 import __version__
from lenet5.config import (
    BUNDLED_NAME,
    DATASET_NAMES,
    ELASTIC_SIGMA,
    ENGINES,
    EXPERIMENTS,
    INIT_NAMES,
    MODEL_NAMES,
    OPTIMIZERS,
    QUICK_TRAIN_IMAGES,
    RECIPES,
    SCHEDULES,
    UCI_DIGITS,
    FinetuneSettings,
    ServeLimits,
    TrainConfig,
)
from lenet5.errors import Lenet5Error

if TYPE_CHECKING:
    import torch

    from lenet5.inference.predict import Model, Prediction

DEFAULTS = TrainConfig()
LIMITS = ServeLimits()
FINETUNE = FinetuneSettings()
RUNS_ROOT = Path("runs")


def _number(
    kind: Callable[[str], float], accept: Callable[[float], bool], requirement: str
) -> Callable[[str], float]:
    """An argparse type: parse with `kind`, then refuse values that `accept` rejects."""

    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not (math.isfinite(value) and accept(value)):
            raise argparse.ArgumentTypeError(f"{requirement}, got {text}")
        return value

    return parse


_positive_float = _number(float, lambda v: v > 0, "must be positive")
_positive_int = _number(int, lambda v: v > 0, "must be positive")
_non_negative = _number(float, lambda v: v >= 0, "must not be negative")
_non_negative_int = _number(int, lambda v: v >= 0, "must not be negative")
_probability = _number(float, lambda v: 0.0 <= v < 1.0, "must be in [0, 1)")
_share = _number(float, lambda v: 0.0 <= v <= 1.0, "must be in [0, 1]")


def _add_data_args(
    p: argparse.ArgumentParser,
    dataset_default: str = DEFAULTS.dataset,
    extra: tuple[str, ...] = (),
) -> None:

    uci = (
        f"; {UCI_DIGITS} is scikit-learn's 1,797 UCI handwritten digits, drawn as ink on paper "
        "and read through predict's preprocessing"
        if UCI_DIGITS in extra
        else ""
    )
    p.add_argument(
        "--dataset",
        choices=(*DATASET_NAMES, *extra),
        help=f"dataset to use (default: {dataset_default}){uci}",
    )
    p.add_argument(
        "--data-dir",
        type=Path,
        help="folder with the four IDX files (default: $LENET5_DATA, then the user "
        "cache folder, downloading there when missing)",
    )


def _add_checkpoint_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--model",
        dest="checkpoint",
        type=Path,
        metavar="CKPT_OR_RUN_DIR",
        help="a checkpoint file, or a run directory (its last checkpoint) "
        f"(default: the bundled model, {BUNDLED_NAME})",
    )


def _add_device_arg(p: argparse.ArgumentParser, default: str = "auto") -> None:
    p.add_argument(
        "--device",
        choices=("auto", "cpu", "cuda"),
        default=default,
        help="where to run; auto picks cuda when available (default: %(default)s)",
    )


def _add_engine_arg(
    p: argparse.ArgumentParser,
    auto: str = "onnx for the bundled model when onnxruntime is installed, torch otherwise",
) -> None:
    p.add_argument(
        "--engine",
        choices=ENGINES,
        default="auto",
        help="what runs the model: onnxruntime (onnx; a checkpoint you name is exported in "
        f"memory first) or PyTorch (torch); auto is {auto} (default: %(default)s)",
    )


def build_parser() -> argparse.ArgumentParser:

    parser = argparse.ArgumentParser(
        prog="lenet5", description="Train, study and serve LeNet-5 on handwritten digits."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    # Training flags default to None so that --resume can tell which ones were given;
    # the help shows the TrainConfig default that applies otherwise.
    t = sub.add_parser(
        "train",
        help="train a model, writing a run directory",
        description="Train a model; each run writes its own directory.",
    )
    t.add_argument("--model", choices=MODEL_NAMES, help=f"model (default: {DEFAULTS.model})")
    t.add_argument(
        "--optimizer",
        choices=OPTIMIZERS,
        help=f"optimizer; sgd is plain gradient descent (default: {DEFAULTS.optimizer})",
    )
    t.add_argument("--lr", type=_positive_float, help=f"learning rate (default: {DEFAULTS.lr})")
    t.add_argument(
        "--batch-size",
        type=_positive_int,
        help=f"training batch size (default: {DEFAULTS.batch_size})",
    )
    t.add_argument(
        "--epochs", type=_positive_int, help=f"number of epochs (default: {DEFAULTS.epochs})"
    )
    t.add_argument(
        "--dropout",
        type=_probability,
        help="probability of dropping an input of the first fully connected layer; "
        f"0.25 is the tutorial's keep_prob 0.75 (default: {DEFAULTS.dropout})",
    )
    t.add_argument(
        "--init",
        choices=INIT_NAMES,
        help="weight initialisation: the tutorial's truncated normal (std 0.1) or "
        f"PyTorch's default (default: {DEFAULTS.init})",
    )
    t.add_argument("--seed", type=int, help=f"random seed (default: {DEFAULTS.seed})")
    t.add_argument(
        "--weight-decay",
        type=_non_negative,
        help=f"weight decay (default: {DEFAULTS.weight_decay})",
    )
    t.add_argument(
        "--schedule",
        choices=SCHEDULES,
        help=f"learning-rate schedule, stepped per batch (default: {DEFAULTS.schedule})",
    )
    t.add_argument(
        "--label-smoothing",
        type=_probability,
        help=f"label smoothing of the loss (default: {DEFAULTS.label_smoothing})",
    )
    t.add_argument(
        "--augment",
        type=_non_negative,
        help="strength of random affine distortions of training images; 1 means up to 10 "
        f"degrees, 2 pixels and 10%% scale (default: {DEFAULTS.augment})",
    )
    t.add_argument(
        "--shear",
        type=_non_negative,
        help="random slant of training images, up to this tangent of the slant angle "
        f"(default: {DEFAULTS.shear})",
    )
    t.add_argument(
        "--aspect",
        type=_non_negative,
        help="random change of the width of training images against their height, up to this "
        f"share (default: {DEFAULTS.aspect})",
    )
    t.add_argument(
        "--elastic",
        type=_non_negative,
        help="elastic distortion of training images (Simard et al. 2003): displacement scale "
        f"in pixels, smoothed over {ELASTIC_SIGMA:g} pixels (default: {DEFAULTS.elastic})",
    )
    t.add_argument(
        "--stroke",
        type=_non_negative,
        help="random thickening or thinning of strokes, up to this share of a 3x3 dilation or "
        f"erosion (default: {DEFAULTS.stroke})",
    )
    t.add_argument(
        "--blur",
        type=_probability,
        help="half of each batch of training images passes through a lower resolution, down to "
        f"(1 - BLUR) x 28 pixels, and back (default: {DEFAULTS.blur})",
    )
    t.add_argument(
        "--fonts",
        type=_non_negative_int,
        metavar="N",
        help="add N copies of each digit rendered from matplotlib's fonts (with flagged 1s and "
        f"crossed 7s) to the training images (default: {DEFAULTS.fonts})",
    )
    t.add_argument(
        "--strokes",
        type=_non_negative_int,
        metavar="N",
        help="add N digits per class that lenet5 draws with pen strokes, in styles MNIST lacks "
        f"(flagged 1s, crossed 7s, open 4s, curled 9s) (default: {DEFAULTS.strokes})",
    )
    t.add_argument(
        "--train-subset",
        type=_non_negative_int,
        metavar="N",
        help="train on the first N training images only; 0 means all (default: 0)",
    )
    t.add_argument(
        "--teacher",
        dest="teachers",
        action="append",
        metavar="MODEL",
        help="a trained model (checkpoint, run directory or 'bundled') whose predictions on "
        "each distorted training image are learned beside its label (knowledge distillation); "
        "repeat for several, their predictions are averaged (default: none)",
    )
    t.add_argument(
        "--distill",
        type=_share,
        help="weight of the teachers' predictions in the loss, the labels taking the rest "
        f"(default: {DEFAULTS.distill})",
    )
    t.add_argument(
        "--temperature",
        type=_positive_float,
        help="temperature that softens the teachers' and the model's predictions alike "
        f"(default: {DEFAULTS.temperature})",
    )
    t.add_argument(
        "--recipe",
        choices=tuple(RECIPES),
        help="named settings that the other flags then override; 'best' beats the 1998 "
        "paper, 'fast' reaches 99%% in two epochs, 'robust' reads handwriting from outside "
        "MNIST best (default: tutorial)",
    )
    _add_data_args(t)
    t.add_argument(
        "--run-dir",
        type=Path,
        help=f"run directory (default: {RUNS_ROOT}/<model>-<optimizer>-NN, next free NN)",
    )
    t.add_argument(
        "--resume",
        type=Path,
        metavar="RUN_DIR",
        help="continue the run in RUN_DIR from its last checkpoint",
    )
    _add_device_arg(t)
    t.add_argument(
        "--no-progress",
        action="store_true",
        help="no progress bar (it is shown only when stderr is a terminal)",
    )

    e = sub.add_parser(
        "evaluate",
        help="accuracy, per-class metrics and confusion matrix of a trained model",
        description="Evaluate a trained model (the bundled one unless --model names another) on a "
        "split of its data set, or on scikit-learn's UCI digits (--dataset uci-digits).",
    )
    _add_checkpoint_arg(e)
    e.add_argument(
        "--split",
        choices=("test", "val", "train"),
        default="test",
        help="split to evaluate (default: %(default)s; uci-digits has one set of 1,797)",
    )
    e.add_argument("--json", action="store_true", help="print one JSON object")
    e.add_argument(
        "--plots",
        type=Path,
        metavar="DIR",
        help="write the confusion matrix and the most confidently wrong images as PNG",
    )
    _add_data_args(e, dataset_default="the one the model was trained on", extra=(UCI_DIGITS,))
    _add_engine_arg(e)
    _add_device_arg(e)

    p = sub.add_parser(
        "predict",
        help="read digits in image files",
        description="Read the digit in each image (PNG, JPEG, BMP, GIF, WebP, TIFF); images are "
        "preprocessed as MNIST was (white on black, fitted to 20x20, centred by mass in 28x28). "
        "Uses the bundled model unless --model names another.",
    )
    _add_checkpoint_arg(p)
    p.add_argument(
        "images",
        nargs="+",
        metavar="IMAGE",
        help="image files, folders of them, or - for one image on standard input",
    )
    p.add_argument(
        "--json",
        action="store_true",
        help="one JSON object per image per line: path, digit, probabilities",
    )
    p.add_argument(
        "--multi",
        action="store_true",
        help="each image holds a row of digits (a year, a house number): read them all",
    )
    p.add_argument(
        "--save-preprocessed",
        type=Path,
        metavar="DIR",
        help="write the 28x28 images the model saw to DIR",
    )
    p.add_argument(
        "--explain",
        type=Path,
        metavar="DIR",
        help="write one PNG per image to DIR: the input, the maps of conv1, pool1, conv2 and "
        "pool2, and the saliency of the answer (integrated gradients) over the input",
    )
    _add_engine_arg(p)
    _add_device_arg(p, default="cpu")

    x = sub.add_parser(
        "export",
        help="export a trained model (ONNX)",
        description="Export to ONNX: input (N, 1, 28, 28) float in [0, 1], "
        "output logits (N, 10), dynamic batch size. Exports the bundled model unless --model "
        "names another.",
    )
    _add_checkpoint_arg(x)
    x.add_argument(
        "--format", choices=("onnx",), default="onnx", help="export format (default: %(default)s)"
    )
    x.add_argument("-o", "--output", type=Path, required=True, metavar="FILE", help="output file")
    x.add_argument(
        "--verify",
        action="store_true",
        help="compare with PyTorch on the whole test split using onnxruntime",
    )
    _add_data_args(x, dataset_default="the one the model was trained on")

    ex = sub.add_parser(
        "experiments",
        help="reproduce the tutorial's study: train, compare, plot, profile",
        description="Train the tutorial's configurations (softmax-gd, lenet5-sgd, lenet5-adam, "
        "lenet5-adam-dropout) and the best recipe; write results.md, results.csv, plots, an "
        "inference trace and report.md. Finished runs are reused, interrupted ones resumed. One "
        "study writes to a folder at a time: a second one on the same --out is refused.",
    )
    ex.add_argument(
        "--out",
        type=Path,
        default=Path("experiments"),
        help="output folder, one run directory per configuration and seed (default: %(default)s)",
    )
    ex.add_argument(
        "--seeds",
        type=_positive_int,
        default=1,
        help="seeds per configuration; results give mean and std (default: 1)",
    )
    ex.add_argument(
        "--quick",
        action="store_true",
        help=f"1 epoch on {QUICK_TRAIN_IMAGES:,} training images per configuration (a smoke test)",
    )
    ex.add_argument(
        "--jobs",
        type=_positive_int,
        default=1,
        help="worker processes training runs side by side, sharing the CPU threads (default: 1)",
    )
    ex.add_argument(
        "--threads",
        type=_positive_int,
        help="CPU threads per run (default: the machine's threads divided among the jobs); "
        "results are identical for the same threads per run, whatever --jobs",
    )
    ex.add_argument(
        "--only",
        nargs="+",
        choices=[e.name for e in EXPERIMENTS],
        metavar="NAME",
        help="run only these configurations: "
        + ", ".join(e.name for e in EXPERIMENTS)
        + " (default: all)",
    )
    _add_data_args(ex)
    _add_device_arg(ex)

    sv = sub.add_parser(
        "serve",
        help="web page to draw digits on, and a JSON API",
        description="Serve a page to draw digits on (GET /) and a JSON API (POST /api/predict, "
        "GET /api/health, GET /api/model, POST and GET /api/feedback for corrections, POST and "
        "GET /api/learn to fine-tune on them; OpenAPI docs at /docs) with the bundled model "
        "unless --model names another. Ctrl-C or SIGTERM stops it.",
    )
    _add_checkpoint_arg(sv)
    _add_engine_arg(sv, auto="onnx when the onnx extra is installed, torch otherwise")
    sv.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to bind; 0.0.0.0 exposes it to the network (default: %(default)s)",
    )
    sv.add_argument("--port", type=int, default=8000, help="port (default: %(default)s)")
    sv.add_argument(
        "--feedback",
        type=Path,
        metavar="FILE",
        help="SQLite file that keeps the corrections made on the page (default: feedback.sqlite "
        "in the user data folder, ~/.local/share/lenet5 on Linux)",
    )
    sv.add_argument(
        "--allow-learning",
        action="store_true",
        help="let clients start fine-tuning (POST /api/learn) on a server bound to another "
        "address than loopback (on loopback it is always allowed)",
    )
    sv.add_argument(
        "--read-timeout",
        type=_positive_float,
        default=LIMITS.read_timeout,
        metavar="SECONDS",
        help="answer 408 and close a connection whose request sends no byte for this long "
        "(default: %(default)s)",
    )
    sv.add_argument(
        "--max-connections",
        type=_positive_int,
        default=LIMITS.max_connections,
        metavar="N",
        help="open connections at most; more are answered 503 and closed (default: %(default)s)",
    )
    sv.add_argument(
        "--keep-alive",
        type=_positive_float,
        default=LIMITS.keep_alive,
        metavar="SECONDS",
        help="close an idle keep-alive connection after this long (default: %(default)s)",
    )

    ft = sub.add_parser(
        "finetune",
        help="teach a model the corrections collected by the page",
        description="Fine-tune a model on the corrections of a feedback store, mixed with "
        "MNIST's training images so that MNIST accuracy holds. A share of each digit's "
        "corrections is kept apart; accuracy on them and on MNIST validation is printed before "
        "and after. Writes a normal run directory.",
    )
    ft.add_argument(
        "--feedback", type=Path, required=True, metavar="FILE", help="feedback store (SQLite)"
    )
    _add_checkpoint_arg(ft)
    ft.add_argument(
        "--run-dir",
        type=Path,
        help=f"run directory (default: {RUNS_ROOT}/finetune-NN, next free NN)",
    )
    ft.add_argument(
        "--epochs",
        type=_positive_int,
        default=FINETUNE.epochs,
        help="passes over MNIST's training images (default: %(default)s)",
    )
    ft.add_argument(
        "--lr",
        type=_positive_float,
        default=FINETUNE.lr,
        help="learning rate (default: %(default)s)",
    )
    ft.add_argument(
        "--repeat",
        type=_positive_int,
        default=FINETUNE.repeat,
        help="copies of each correction per epoch (default: %(default)s)",
    )
    ft.add_argument(
        "--holdout",
        type=_probability,
        default=FINETUNE.holdout,
        help="share of each digit's corrections kept apart to measure (default: %(default)s)",
    )
    ft.add_argument("--seed", type=int, default=FINETUNE.seed, help="random seed (default: 0)")
    ft.add_argument(
        "--threads", type=_positive_int, help="CPU threads to use (default: PyTorch's choice)"
    )
    ft.add_argument(
        "--progress",
        action="store_true",
        help="show the progress bar even when stderr is not a terminal",
    )
    _add_data_args(ft)
    _add_device_arg(ft)

    fb = sub.add_parser(
        "feedback",
        help="corrections collected by the page: counts, or export as PNG files",
        description="Read a feedback store (the SQLite file of `lenet5 serve --feedback`).",
    )
    fb_sub = fb.add_subparsers(dest="action", required=True, metavar="ACTION")
    st = fb_sub.add_parser("stats", help="counts per label and per (predicted, label) pair")
    st.add_argument("file", type=Path, metavar="FILE", help="feedback store")
    st.add_argument("--json", action="store_true", help="print one JSON object")
    fe = fb_sub.add_parser(
        "export",
        help="write one PNG per correction, <id>_<label>.png",
        description="Write the 28x28 input the model saw for each correction as DIR/<id>_<label>"
        ".png (white on black, readable by `lenet5 predict`).",
    )
    fe.add_argument("file", type=Path, metavar="FILE", help="feedback store")
    fe.add_argument("directory", type=Path, metavar="DIR", help="output folder")

    s = sub.add_parser("summary", help="print the per-layer parameter table of a model")
    s.add_argument(
        "--model", choices=MODEL_NAMES, default="lenet5", help="model (default: %(default)s)"
    )
    return parser


def _config_from_args(args: argparse.Namespace) -> TrainConfig:
    given = {
        f.name: getattr(args, f.name)
        for f in dataclasses.fields(TrainConfig)
        if getattr(args, f.name, None) is not None
    }
    return dataclasses.replace(TrainConfig(**RECIPES[args.recipe or "tutorial"]), **given)


def _train(args: argparse.Namespace) -> int:
    import torch.distributed as dist

    from lenet5.training.loop import (
        init_distributed,
        rank_and_world,
        read_run_config,
        resolve_device,
    )

    if args.resume is not None:
        if args.run_dir is not None:
            raise Lenet5Error("give either --resume RUN_DIR or --run-dir, not both")
        run_dir = args.resume
        config = read_run_config(run_dir)
        changed = [
            f"--{f.name.replace('_', '-')}"
            for f in dataclasses.fields(TrainConfig)
            if f.name != "epochs"
            and getattr(args, f.name, None) is not None
            and getattr(args, f.name) != getattr(config, f.name)
        ]
        if args.recipe is not None:
            changed.append("--recipe")
        if args.epochs not in (None, config.epochs) and config.schedule != "constant":
            changed.append(f"--epochs (the {config.schedule} schedule spans the whole run)")
        if changed:
            raise Lenet5Error(
                f"cannot change {', '.join(changed)} when resuming "
                f"(only --epochs, --data-dir and --device)"
            )
        if args.epochs is not None:
            config = dataclasses.replace(config, epochs=args.epochs)
    else:
        config = _config_from_args(args)
    device = init_distributed(resolve_device(args.device))
    rank, world = rank_and_world()
    try:
        return _train_rank(args, config, device, rank, world)
    except RuntimeError as exc:
        if world == 1:
            raise
        # A collective failed: another rank died or cannot be reached.
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise Lenet5Error(
            f"rank {rank} of {world}: lost contact with the other ranks ({first})"
        ) from None
    finally:
        if world > 1:
            dist.destroy_process_group()


def _train_rank(
    args: argparse.Namespace, config: TrainConfig, device: torch.device, rank: int, world: int
) -> int:
    import torch.distributed as dist

    from lenet5.data.mnist import load_splits
    from lenet5.training.loop import fit, next_run_dir, prepare_new_run_dir

    splits = load_splits(config.dataset, args.data_dir, progress=sys.stderr.isatty() and rank == 0)
    run_dir = args.resume
    if rank == 0 and run_dir is None:
        run_dir = args.run_dir if args.run_dir is not None else next_run_dir(RUNS_ROOT, config)
        prepare_new_run_dir(run_dir)
    if world > 1:  # every rank uses rank 0's run directory
        shared = [str(run_dir)]
        dist.broadcast_object_list(shared, src=0)
        run_dir = Path(shared[0])
    if rank == 0:
        ranks = f" x {world} ranks" if world > 1 else ""
        print(
            f"training {config.model} ({config.optimizer}, lr {config.lr}, batch "
            f"{config.batch_size}{ranks}, {config.epochs} epochs) on {config.dataset}, {device}; "
            f"run directory {run_dir}",
            flush=True,
        )
    summary = fit(
        config,
        splits,
        run_dir,
        device,
        resume=args.resume is not None,
        progress=sys.stderr.isatty() and not args.no_progress,
        echo=lambda line: print(line, flush=True),
    )
    if rank == 0:
        print(f"run {run_dir}: test accuracy {summary['test_accuracy']:.4f}")
    return 0


def _summary(args: argparse.Namespace) -> int:
    from lenet5.models import build_model
    from lenet5.summary import format_table, layer_table

    print(format_table(layer_table(build_model(args.model))))
    return 0


def _inference_model(args: argparse.Namespace, threads: int = 1) -> tuple[Model, TrainConfig]:
    """The model `predict` and `evaluate` run, on the engine and device asked for, and its
    config; a note on stderr when onnxruntime was wanted but PyTorch runs."""
    from lenet5.inference.engines import OnnxModel
    from lenet5.inference.predict import load_inference_model

    engine = args.engine
    if args.device == "cuda":
        if engine == "onnx":
            raise Lenet5Error(
                "--engine onnx runs on the CPU; use --engine torch with --device cuda"
            )
        engine = "torch"
    model, config, note = load_inference_model(args.checkpoint, engine, threads)
    if note:
        print(f"lenet5: {note}", file=sys.stderr)
    if not isinstance(model, OnnxModel):
        from lenet5.training.loop import resolve_device

        model = model.to(resolve_device(args.device))
    return model, config


def _evaluate(args: argparse.Namespace) -> int:
    import numpy as np

    from lenet5.data.mnist import load_splits
    from lenet5.data.uci import load_uci_digits
    from lenet5.inference.checkpoint import resolve_checkpoint
    from lenet5.inference.engines import OnnxModel, default_threads
    from lenet5.inference.evaluate import describe_split, evaluate, format_report, per_class_metrics
    from lenet5.inference.predict import probabilities
    from lenet5.plots import plot_confident_errors, plot_confusion_matrix

    model, config = _inference_model(args, threads=default_threads())
    device = "cpu" if isinstance(model, OnnxModel) else next(model.parameters()).device
    dataset = args.dataset or config.dataset
    if dataset == UCI_DIGITS:
        split, split_name = load_uci_digits().to(device), None
    else:
        splits = load_splits(dataset, args.data_dir, progress=sys.stderr.isatty())
        split, split_name = getattr(splits, args.split).to(device), args.split
    result = evaluate(model, split, config.eval_batch_size)
    report = {
        "checkpoint": str(resolve_checkpoint(args.checkpoint)),
        "engine": "onnxruntime" if isinstance(model, OnnxModel) else "torch",
        "dataset": dataset,
        "split": split_name,
        "examples": len(split),
        "accuracy": result["accuracy"],
        "loss": result["loss"],
        "per_class": per_class_metrics(result["confusion_matrix"]),
        "confusion_matrix": result["confusion_matrix"],
    }
    if args.plots is not None:
        args.plots.mkdir(parents=True, exist_ok=True)
        title = f"{config.model} on {describe_split(report)}: accuracy {result['accuracy']:.4f}"
        plot_confusion_matrix(
            result["confusion_matrix"], args.plots / "confusion_matrix.png", title
        )
        images = split.images.cpu().numpy()
        plot_confident_errors(
            images,
            split.labels.cpu().numpy(),
            np.concatenate(
                [probabilities(model, images[k : k + 1000]) for k in range(0, len(images), 1000)]
            ),
            args.plots / "confident_errors.png",
        )
        report["plots"] = [
            str(args.plots / n) for n in ("confusion_matrix.png", "confident_errors.png")
        ]
    if args.json:
        print(json.dumps(report))
    else:
        print(format_report(report))
        for plot in report.get("plots", []):
            print(f"wrote {plot}")
    return 0


def _image_sources(items: list[str]) -> list[str]:
    """Expand folders into the image files they hold; "-" stands for standard input."""
    from lenet5.data.preprocess import EXTENSIONS

    sources: list[str] = []
    for item in items:
        path = Path(item)
        if item != "-" and path.is_dir():
            found = sorted(p for p in path.iterdir() if p.suffix.lower() in EXTENSIONS)
            sources += [str(p) for p in found] or [item]  # an empty folder reports an error
        else:
            sources.append(item)
    return sources


def _predict(args: argparse.Namespace) -> int:
    from lenet5.data.preprocess import ImageError, load_image
    from lenet5.inference.predict import predict_digits, predict_image

    model, _ = _inference_model(args)
    explained = None  # --explain reads the layers of a PyTorch model, whatever the engine
    if args.explain is not None:
        from lenet5.inference.checkpoint import load_model
        from lenet5.inference.engines import OnnxModel

        explained = load_model(args.checkpoint)[0] if isinstance(model, OnnxModel) else model
    failures = 0
    for source in _image_sources(args.images):
        try:
            if source != "-" and Path(source).is_dir():
                raise ImageError("folder holds no PNG, JPEG, BMP, GIF, WebP or TIFF files")
            image = load_image(sys.stdin.buffer.read() if source == "-" else source)
            predictions = (
                predict_digits(model, image) if args.multi else [predict_image(model, image)]
            )
        except ImageError as exc:
            failures += 1
            if args.json:
                print(json.dumps({"path": source, "error": str(exc)}), flush=True)
            else:
                print(f"{source}: error: {exc}", file=sys.stderr, flush=True)
            continue
        _print_prediction(args, source, predictions)
        stem = "stdin" if source == "-" else Path(source).stem
        _save_pictures(args, stem, predictions, explained)
    return 1 if failures else 0


def _print_prediction(args: argparse.Namespace, source: str, predictions: list[Prediction]) -> None:
    number = "".join(str(p.digit) for p in predictions)
    if args.json and args.multi:
        digits = [{"digit": p.digit, "probabilities": p.probabilities} for p in predictions]
        print(json.dumps({"path": source, "number": number, "digits": digits}), flush=True)
    elif args.json:
        pred = predictions[0]
        answer = {"path": source, "digit": pred.digit, "probabilities": pred.probabilities}
        print(json.dumps(answer), flush=True)
    elif args.multi:
        sure = "  ".join(f"{p.digit}: {p.probabilities[p.digit]:.3f}" for p in predictions)
        print(f"{source}: {number}  ({sure})", flush=True)
    else:
        top = "  ".join(f"{d}: {p:.3f}" for d, p in predictions[0].top(3))
        print(f"{source}: {number}  ({top})", flush=True)


def _save_pictures(
    args: argparse.Namespace,
    stem: str,
    predictions: list[Prediction],
    explained: torch.nn.Module | None,
) -> None:
    """--save-preprocessed: the 28x28 inputs; --explain: what `explained` saw of each."""
    if args.save_preprocessed is None and args.explain is None:
        return
    import numpy as np
    from PIL import Image

    from lenet5.files import atomic_write

    for k, pred in enumerate(predictions):
        name = f"{stem}-{k}.png" if args.multi else f"{stem}.png"
        if args.save_preprocessed is not None:
            picture = Image.fromarray(np.ascontiguousarray(pred.image))
            atomic_write(
                args.save_preprocessed / name, lambda f, im=picture: im.save(f, format="PNG")
            )
        if explained is not None:
            from lenet5.inference.explain import explain
            from lenet5.plots import plot_explanation

            inside = explain(explained, pred.image, pred.digit)
            title = f"{stem}: read as {pred.digit} ({pred.probabilities[pred.digit]:.3f})"
            plot_explanation(
                pred.image, inside.activations, inside.saliency, args.explain / name, title
            )
            print(f"wrote {args.explain / name}", flush=True)


def _export(args: argparse.Namespace) -> int:
    from lenet5.data.mnist import load_splits
    from lenet5.inference.checkpoint import load_model
    from lenet5.inference.export import ATOL, RTOL, compare_with_onnx, export_onnx

    model, config = load_model(args.checkpoint)
    export_onnx(model, args.output)
    print(
        f"wrote {args.output} (ONNX; input 'input' (N, 1, 28, 28) float in [0, 1], "
        f"output 'logits' (N, 10))"
    )
    if args.verify:
        from lenet5.data.mnist import load_splits

        splits = load_splits(
            args.dataset or config.dataset, args.data_dir, progress=sys.stderr.isatty()
        )
        check = compare_with_onnx(model, args.output, splits.test)
        print(
            f"onnxruntime vs PyTorch on {check['images']} test images: largest logit difference "
            f"{check['max_abs_diff']:.2e} (largest logit {check['max_abs_logit']:.1f}; "
            f"tolerance {ATOL:g} + {RTOL:g} x |logit|: "
            f"{'met' if check['within_tolerance'] else 'NOT met'}), "
            f"same digit on {check['agreement']:.2%}"
        )
        if not check["within_tolerance"] or check["agreement"] < 1.0:
            raise Lenet5Error("the exported model does not match PyTorch")
    return 0


def _experiments(args: argparse.Namespace) -> int:
    from lenet5.data.mnist import load_splits
    from lenet5.training.experiments import results_table, run_experiments
    from lenet5.training.locks import hold
    from lenet5.training.loop import resolve_device

    dataset = args.dataset or DEFAULTS.dataset
    device = resolve_device(args.device)
    splits = load_splits(dataset, args.data_dir, progress=sys.stderr.isatty())
    with hold(args.out):  # a second study on this folder is refused, not run twice
        rows = run_experiments(
            splits,
            args.out,
            args.seeds,
            args.quick,
            device,
            dataset,
            echo=lambda line: print(line, flush=True),
            only=tuple(args.only or ()),
            jobs=args.jobs,
            data_dir=args.data_dir,
            threads=args.threads,
        )
    print(results_table(rows))
    print(f"report: {args.out / 'report.md'}")
    return 0


def _serve(args: argparse.Namespace) -> int:
    try:
        from lenet5.serving.app import serve
    except ImportError as exc:
        raise Lenet5Error(
            f"serving needs extra packages ({exc.name}): pip install 'lenet5[serve]'"
        ) from None
    limits = ServeLimits(args.read_timeout, args.max_connections, args.keep_alive)
    serve(
        args.checkpoint,
        args.host,
        args.port,
        args.feedback,
        args.allow_learning,
        limits,
        args.engine,
    )
    return 0


def _finetune(args: argparse.Namespace) -> int:
    import torch

    from lenet5.data.mnist import load_splits
    from lenet5.training.finetune import finetune, format_result
    from lenet5.training.loop import next_numbered_dir, prepare_new_run_dir, resolve_device

    if args.threads:
        torch.set_num_threads(args.threads)
    settings = FinetuneSettings(args.epochs, args.lr, args.repeat, args.holdout, args.seed)
    splits = load_splits(args.dataset or DEFAULTS.dataset, args.data_dir, progress=False)
    run_dir = args.run_dir or next_numbered_dir(RUNS_ROOT, "finetune")
    prepare_new_run_dir(run_dir)
    result = finetune(
        args.checkpoint,
        args.feedback,
        splits,
        run_dir,
        settings,
        resolve_device(args.device),
        echo=lambda line: print(line, flush=True),
        progress=args.progress or sys.stderr.isatty(),
    )
    print(format_result(result))
    print(f"run {run_dir}: use it with --model {run_dir}")
    return 0


def _feedback(args: argparse.Namespace) -> int:
    from PIL import Image

    from lenet5.data.feedback import open_existing
    from lenet5.files import atomic_write

    with open_existing(args.file) as store:
        if args.action == "stats":
            stats = store.stats()
            if args.json:
                print(json.dumps(stats))
                return 0
            print(f"{args.file}: {stats['total']} corrections")
            print("label " + "".join(f"{d:>6}" for d in range(10)))
            print("count " + "".join(f"{stats['per_label'][str(d)]:>6}" for d in range(10)))
            for pair in sorted(stats["pairs"], key=lambda p: -p["count"]):
                print(f"read {pair['predicted']} for {pair['label']}: {pair['count']}")
            return 0
        written = 0
        for row in store.corrections():
            path = args.directory / f"{row.id}_{row.label}.png"
            picture = Image.fromarray(row.input)
            try:
                atomic_write(path, lambda f, picture=picture: picture.save(f, format="PNG"))
            except OSError as exc:
                raise Lenet5Error(f"cannot write {path}: {exc.strerror or exc}") from None
            written += 1
        print(f"wrote {written} PNG files to {args.directory}")
    return 0


COMMANDS = {
    "finetune": _finetune,
    "feedback": _feedback,
    "train": _train,
    "evaluate": _evaluate,
    "predict": _predict,
    "export": _export,
    "experiments": _experiments,
    "serve": _serve,
    "summary": _summary,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status (errors print one line to stderr)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a usage error already printed
        return int(exc.code or 0)
    try:
        return COMMANDS[args.command](args)
    except Lenet5Error as exc:
        print(f"lenet5: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # output piped into `head` and the like
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115  (keeps interpreter exit quiet)
        return 141
    except OSError as exc:  # a file the command needed, when no more specific error said so
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"lenet5: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 1
