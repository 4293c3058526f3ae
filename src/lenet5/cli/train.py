"""`lenet5 train`: train a model, writing a run directory (or resume one)."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from lenet5.cli.common import (
    DEFAULTS,
    RUNS_ROOT,
    Commands,
    add_data_args,
    add_device_arg,
    non_negative,
    non_negative_int,
    positive_float,
    positive_int,
    probability,
    share,
)
from lenet5.config import (
    ELASTIC_SIGMA,
    INIT_NAMES,
    MODEL_NAMES,
    OPTIMIZERS,
    RECIPES,
    SCHEDULES,
    TrainConfig,
)
from lenet5.errors import Lenet5Error

if TYPE_CHECKING:
    import torch


def add_parser(sub: Commands) -> None:
    # Training flags default to None so that --resume can tell which ones were given; the help
    # shows the TrainConfig default that applies otherwise.
    p = sub.add_parser(
        "train",
        help="train a model, writing a run directory",
        description="Train a model; each run writes its own directory.",
    )
    _add_model_flags(p)
    _add_augmentation_flags(p)
    _add_teacher_flags(p)
    p.add_argument(
        "--recipe",
        choices=tuple(RECIPES),
        help="named settings that the other flags then override; 'best' beats the 1998 "
        "paper, 'fast' reaches 99%% in two epochs, 'robust' reads handwriting from outside "
        "MNIST best (default: tutorial)",
    )
    add_data_args(p)
    p.add_argument(
        "--run-dir",
        type=Path,
        help=f"run directory (default: {RUNS_ROOT}/<model>-<optimizer>-NN, next free NN)",
    )
    p.add_argument(
        "--resume",
        type=Path,
        metavar="RUN_DIR",
        help="continue the run in RUN_DIR from its last checkpoint",
    )
    add_device_arg(p)
    p.add_argument(
        "--no-progress",
        action="store_true",
        help="no progress bar (it is shown only when stderr is a terminal)",
    )
    p.set_defaults(run=run)


def _add_model_flags(p: argparse.ArgumentParser) -> None:
    """The model, its optimizer and the loss."""
    p.add_argument("--model", choices=MODEL_NAMES, help=f"model (default: {DEFAULTS.model})")
    p.add_argument(
        "--optimizer",
        choices=OPTIMIZERS,
        help=f"optimizer; sgd is plain gradient descent (default: {DEFAULTS.optimizer})",
    )
    p.add_argument("--lr", type=positive_float, help=f"learning rate (default: {DEFAULTS.lr})")
    p.add_argument(
        "--batch-size",
        type=positive_int,
        help=f"training batch size (default: {DEFAULTS.batch_size})",
    )
    p.add_argument(
        "--epochs", type=positive_int, help=f"number of epochs (default: {DEFAULTS.epochs})"
    )
    p.add_argument(
        "--dropout",
        type=probability,
        help="probability of dropping an input of the first fully connected layer; "
        f"0.25 is the tutorial's keep_prob 0.75 (default: {DEFAULTS.dropout})",
    )
    p.add_argument(
        "--read-scale",
        dest="read_scales",
        action="append",
        type=positive_float,
        metavar="S",
        help="once trained, read each image also magnified S times about its centre and "
        "average the logits (test-time augmentation; training sees the image as given); "
        "repeat for several, 1 for the image as given (default: none, as given only)",
    )
    p.add_argument(
        "--init",
        choices=INIT_NAMES,
        help="weight initialisation: the tutorial's truncated normal (std 0.1) or "
        f"PyTorch's default (default: {DEFAULTS.init})",
    )
    p.add_argument("--seed", type=int, help=f"random seed (default: {DEFAULTS.seed})")
    p.add_argument(
        "--weight-decay",
        type=non_negative,
        help=f"weight decay (default: {DEFAULTS.weight_decay})",
    )
    p.add_argument(
        "--schedule",
        choices=SCHEDULES,
        help=f"learning-rate schedule, stepped per batch (default: {DEFAULTS.schedule})",
    )
    p.add_argument(
        "--label-smoothing",
        type=probability,
        help=f"label smoothing of the loss (default: {DEFAULTS.label_smoothing})",
    )


def _add_augmentation_flags(p: argparse.ArgumentParser) -> None:
    """What the training images are: distortions, generated digits, a subset."""
    p.add_argument(
        "--augment",
        type=non_negative,
        help="strength of random affine distortions of training images; 1 means up to 10 "
        f"degrees, 2 pixels and 10%% scale (default: {DEFAULTS.augment})",
    )
    p.add_argument(
        "--shear",
        type=non_negative,
        help="random slant of training images, up to this tangent of the slant angle "
        f"(default: {DEFAULTS.shear})",
    )
    p.add_argument(
        "--aspect",
        type=non_negative,
        help="random change of the width of training images against their height, up to this "
        f"share (default: {DEFAULTS.aspect})",
    )
    p.add_argument(
        "--elastic",
        type=non_negative,
        help="elastic distortion of training images (Simard et al. 2003): displacement scale "
        f"in pixels, smoothed over {ELASTIC_SIGMA:g} pixels (default: {DEFAULTS.elastic})",
    )
    p.add_argument(
        "--stroke",
        type=non_negative,
        help="random thickening or thinning of strokes, up to this share of a 3x3 dilation or "
        f"erosion (default: {DEFAULTS.stroke})",
    )
    p.add_argument(
        "--blur",
        type=probability,
        help="half of each batch of training images passes through a lower resolution, down to "
        f"(1 - BLUR) x 28 pixels, and back (default: {DEFAULTS.blur})",
    )
    p.add_argument(
        "--fonts",
        type=non_negative_int,
        metavar="N",
        help="add N copies of each digit rendered from matplotlib's fonts (with flagged 1s and "
        f"crossed 7s) to the training images (default: {DEFAULTS.fonts})",
    )
    p.add_argument(
        "--strokes",
        type=non_negative_int,
        metavar="N",
        help="add N digits per class that lenet5 draws with pen strokes, in styles MNIST lacks "
        f"(flagged 1s, crossed 7s, open 4s, curled 9s) (default: {DEFAULTS.strokes})",
    )
    p.add_argument(
        "--outliers",
        type=non_negative_int,
        metavar="N",
        help="add N images that are not digits (letters, shapes, scribbles, two digits in one "
        "box), taught as 'not a digit': equal probabilities for every digit "
        f"(default: {DEFAULTS.outliers})",
    )
    p.add_argument(
        "--broad-outliers",
        action="store_true",
        default=None,
        help="make the non-digits of more kinds: polygons, spirograph curves, two non-digits "
        "in one box, letters drawn with a pen (the judge's; default: off)",
    )
    p.add_argument(
        "--train-subset",
        type=non_negative_int,
        metavar="N",
        help="train on the first N training images only; 0 means all (default: 0)",
    )


def _add_teacher_flags(p: argparse.ArgumentParser) -> None:
    """Trained models a run starts from or learns from (knowledge distillation)."""
    p.add_argument(
        "--init-from",
        metavar="MODEL",
        help="start from the weights of a trained model (checkpoint, run directory or "
        "'bundled') instead of random ones (default: none)",
    )
    p.add_argument(
        "--teacher",
        dest="teachers",
        action="append",
        metavar="MODEL",
        help="a trained model (checkpoint, run directory or 'bundled') whose predictions on "
        "each distorted training image are learned beside its label (knowledge distillation); "
        "repeat for several, their predictions are averaged (default: none)",
    )
    p.add_argument(
        "--distill",
        type=share,
        help="weight of the teachers' predictions in the loss, the labels taking the rest "
        f"(default: {DEFAULTS.distill})",
    )
    p.add_argument(
        "--temperature",
        type=positive_float,
        help="temperature that softens the teachers' and the model's predictions alike "
        f"(default: {DEFAULTS.temperature})",
    )


def _config_from_args(args: argparse.Namespace) -> TrainConfig:
    given = {
        f.name: getattr(args, f.name)
        for f in dataclasses.fields(TrainConfig)
        if getattr(args, f.name, None) is not None
    }
    return dataclasses.replace(TrainConfig(**RECIPES[args.recipe or "tutorial"]), **given)


def run(args: argparse.Namespace) -> int:
    import torch.distributed as dist

    from lenet5.inference.engines import resolve_device
    from lenet5.training.distributed import init_distributed, rank_and_world
    from lenet5.training.runs import read_run_config

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
        code = _train_rank(args, config, device, rank, world)
        if world > 1:
            # Leave together: a rank that tears its process group down while another still
            # works can abort that one's gloo threads ("terminate called", seen once in CI).
            dist.barrier()
        return code
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
    from lenet5.training.loop import fit
    from lenet5.training.runs import next_run_dir, prepare_new_run_dir

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
