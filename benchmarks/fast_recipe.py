"""`lenet5 train --recipe fast` against one epoch of a plain PyTorch loop, side by side (issue
15's target 6: wall time <= 2.5x the plain epoch, mean test accuracy >= 99.0% over the seeds).

Each round runs, one after the other so that they never share the cores: one epoch of
benchmarks/peer_pytorch.py (the pytorch/examples-style loop; its epoch's training seconds), then
`lenet5 train --recipe fast --seed S`, timed from process start to exit (start-up, data loading,
evaluation, TensorBoard and checkpoints included). The ratio is the median wall time over the
median plain epoch.

    LENET5_DATA=../shared/data/mnist python benchmarks/fast_recipe.py [--seeds 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
PLAIN_ARGS = ("--max-epochs", "1", "--target", "0", "--seed")
FAST_ARGS = ("--recipe", "fast", "--seed")


def plain_epoch(data_dir: str, seed: int) -> float:
    """Training seconds of the plain loop's first epoch (a fresh process)."""
    out = subprocess.run(
        [sys.executable, str(HERE / "peer_pytorch.py"), data_dir, *PLAIN_ARGS, str(seed)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return float(json.loads(out.strip().splitlines()[-1])["epochs"][0]["seconds"])


def fast_run(seed: int) -> dict[str, float]:
    """Wall seconds of `lenet5 train --recipe fast` from process start, its training seconds
    (the epochs alone) and its test accuracy."""
    with tempfile.TemporaryDirectory(prefix="lenet5-fast-") as tmp:
        run = f"{tmp}/run"
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "lenet5", "train", *FAST_ARGS, str(seed), "--run-dir", run],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        wall = time.perf_counter() - started
        summary = json.loads((Path(run) / "summary.json").read_text())
    return {
        "seed": seed,
        "wall_s": wall,
        "train_s": summary["train_seconds"],
        "test_accuracy": summary["test_accuracy"],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5, help="rounds, seeds 0.. (default: 5)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    data_dir = os.environ.get("LENET5_DATA")
    if not data_dir:
        parser.error("set LENET5_DATA to the folder of the MNIST IDX files")
    epochs, runs = [], []
    for seed in range(args.seeds):
        epochs.append(plain_epoch(data_dir, seed))
        runs.append(fast_run(seed))
        print(
            f"seed {seed}: plain epoch {epochs[-1]:.2f} s; fast recipe {runs[-1]['wall_s']:.2f} s"
            f" ({runs[-1]['train_s']:.2f} s training), test {runs[-1]['test_accuracy']:.2%}",
            flush=True,
        )
    epoch = statistics.median(epochs)
    wall = statistics.median(r["wall_s"] for r in runs)
    accuracy = statistics.mean(r["test_accuracy"] for r in runs)
    print(
        f"median plain epoch {epoch:.2f} s, median fast recipe {wall:.2f} s: {wall / epoch:.2f}x;"
        f" mean test accuracy {accuracy:.2%}"
    )
    if args.json:
        figures = {"plain_epoch_s": epochs, "runs": runs, "ratio": wall / epoch}
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
