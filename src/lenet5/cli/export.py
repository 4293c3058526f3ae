"""`lenet5 export`: a trained model as ONNX, checked against PyTorch on request."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lenet5.cli.common import Commands, add_checkpoint_arg, add_data_args
from lenet5.errors import Lenet5Error


def add_parser(sub: Commands) -> None:
    p = sub.add_parser(
        "export",
        help="export a trained model (ONNX)",
        description="Export to ONNX: input (N, 1, 28, 28) float in [0, 1], "
        "output logits (N, 10), dynamic batch size. Exports the bundled model unless --model "
        "names another.",
    )
    add_checkpoint_arg(p)
    p.add_argument(
        "--format", choices=("onnx",), default="onnx", help="export format (default: %(default)s)"
    )
    p.add_argument("-o", "--output", type=Path, required=True, metavar="FILE", help="output file")
    p.add_argument(
        "--verify",
        action="store_true",
        help="compare with PyTorch on the whole test split using onnxruntime",
    )
    add_data_args(p, dataset_default="the one the model was trained on")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
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
        splits = load_splits(
            args.dataset or config.dataset, args.data_dir, progress=sys.stderr.isatty()
        )
        check = compare_with_onnx(model, args.output, splits.test)
        print(
            f"onnxruntime vs PyTorch on {check['images']} test images: largest logit difference "
            f"{check['max_abs_diff']:.2e} (largest logit {check['max_abs_logit']:.1f}; "
            f"tolerance ({ATOL:g} + {RTOL:g} x |logit x T|) / T at temperature T = "
            f"{check['temperature']:.3f}: "
            f"{'met' if check['within_tolerance'] else 'NOT met'}), "
            f"same digit on {check['agreement']:.2%}"
        )
        if not check["within_tolerance"] or check["agreement"] < 1.0:
            raise Lenet5Error("the exported model does not match PyTorch")
    return 0
