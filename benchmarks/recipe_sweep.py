"""Variants of the robust recipe over several seeds, trained side by side on one device.

Each variant is the robust recipe with some settings changed. Every (variant, seed) run is a
process of its own (one CPU thread each), --workers at a time, on --device (a GPU holds many),
launched seed by seed so that a sweep cut short by --launch-until or --kill-at still gives every
variant the same seeds. Runs already finished in --runs are kept, not trained again, and runs
stopped part way go on from their last epoch when the sweep is run again (through `lenet5
experiments`' own `run_one`). Then every finished run is measured by benchmarks/robustness.py
(validation, test, UCI digits, photo test and photo val, drawn European digits), and the means
per variant are printed; choose by the validation-side columns (val, UCI, photo val) only.

    LENET5_DATA=../shared/data/mnist python benchmarks/recipe_sweep.py OUT --device cuda \\
        --workers 15 --seeds 6 [--variant ep45:epochs=45 ...]

(Where lenet5 is not installed, as on a lent GPU machine, run it with PYTHONPATH=src.)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

# The variants of the 2026-11-29 sweep (docs/robustness.md): overrides of RECIPES["robust"].
DEFAULT_VARIANTS: dict[str, dict[str, Any]] = {
    "base": {},
    "ep45": {"epochs": 45},
    "wd0": {"weight_decay": 0.0},
    "bs64": {"batch_size": 64},
    "ls0": {"label_smoothing": 0.0},
    "aff075": {"augment": 0.75},
    "lr006": {"lr": 0.006},
    "drop01": {"dropout": 0.1},
}
CHOOSE_BY = ("val_accuracy", "uci_accuracy", "photo_val_accuracy")
ALSO = ("test_accuracy", "photo_accuracy", "flagged 1")


def parse_variant(text: str) -> tuple[str, dict[str, Any]]:
    """'name:key=value,key=value' -> (name, overrides); values parsed as JSON where they can be."""
    name, _, settings = text.partition(":")
    overrides: dict[str, Any] = {}
    for item in filter(None, settings.split(",")):
        key, _, value = item.partition("=")
        try:
            overrides[key] = json.loads(value)
        except json.JSONDecodeError:
            overrides[key] = value
    return name, overrides


def stroke_cache(cache: Path, per_class: int, seed: int) -> Path:
    return cache / f"strokes-{per_class}-{seed}.pt"


def draw_strokes(args: tuple[int, int, Path]) -> None:
    """Draw one seed's stroke digits once: every variant of that seed trains on the same ones
    (lenet5.data.strokes is deterministic given the seed), and drawing them takes 35 s of CPU."""
    import torch

    from lenet5.data.strokes import stroke_digits

    per_class, seed, cache = args
    torch.set_num_threads(1)
    path = stroke_cache(cache, per_class, seed)
    if not path.is_file():
        split = stroke_digits(per_class, seed=seed)
        torch.save({"images": split.images, "labels": split.labels}, path)


def train_one(
    overrides: dict[str, Any], seed: int, run_dir: Path, device: str, cache: Path
) -> None:
    """The worker: one run of the robust recipe with `overrides`, its strokes from the cache."""
    import torch

    import lenet5.data.strokes
    from lenet5.config import RECIPES, TrainConfig
    from lenet5.data.mnist import Split, load_splits
    from lenet5.training.experiments import run_one

    torch.set_num_threads(1)
    config = TrainConfig(**{**RECIPES["robust"], **overrides, "seed": seed})
    cached = stroke_cache(cache, config.strokes, seed)

    def cached_strokes(per_class: int, seed: int = 0) -> Split:
        state = torch.load(cached, weights_only=True)
        return Split(state["images"], state["labels"])

    if config.strokes and cached.is_file():
        lenet5.data.strokes.stroke_digits = cached_strokes  # read when training_split calls it
    # As the study's runs: one stopped at --kill-at resumes from its last epoch when the sweep
    # is run again, and a run directory holding other settings is refused.
    splits = load_splits(progress=False)
    run_one(config, splits, run_dir, torch.device(device), echo=lambda s: print(s, flush=True))


def run_all(
    jobs: list[tuple[str, int]],
    variants: dict[str, dict[str, Any]],
    args: argparse.Namespace,
    start: float,
) -> None:
    """Train `jobs` (variant, seed), `args.workers` processes at a time, until the deadlines."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    running: dict[tuple[str, int], tuple[subprocess.Popen[bytes], float]] = {}
    (args.runs / "logs").mkdir(parents=True, exist_ok=True)
    while jobs or running:
        now = time.time() - start
        for key, (proc, began) in list(running.items()):
            if proc.poll() is not None:
                del running[key]
                print(f"{now:5.0f} s  {key[0]} seed {key[1]}: exit {proc.returncode} after "
                      f"{time.time() - began:.0f} s", flush=True)  # fmt: skip
        if now > args.kill_at:
            for key, (proc, _) in running.items():
                proc.kill()
                print(f"stopped {key[0]} seed {key[1]} at --kill-at", flush=True)
            return
        while jobs and len(running) < args.workers and now < args.launch_until:
            name, seed = jobs.pop(0)
            command = [
                sys.executable, __file__, "--worker", json.dumps(variants[name]), str(seed),
                str(args.runs / f"{name}-s{seed}"), args.device, str(args.runs / "cache"),
            ]  # fmt: skip
            with open(args.runs / "logs" / f"{name}-s{seed}.log", "a") as log:  # the child's copy
                running[(name, seed)] = (
                    subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT),
                    time.time(),
                )
        if not running and (not jobs or now >= args.launch_until):
            return
        time.sleep(1)


def means(rows: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Per variant (the run directory's name before '-s<seed>'): runs and mean of each column."""
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        groups[Path(row["model"]).name.rsplit("-s", 1)[0]].append(row)
    return {
        name: {"runs": len(group)}
        | {key: statistics.mean(r[key] for r in group) for key in CHOOSE_BY + ALSO}
        for name, group in groups.items()
    }


def main() -> None:
    if sys.argv[1:2] == ["--worker"]:
        overrides, seed, run_dir, device, cache = sys.argv[2:7]
        from lenet5.errors import Lenet5Error

        try:
            train_one(json.loads(overrides), int(seed), Path(run_dir), device, Path(cache))
        except Lenet5Error as exc:  # e.g. a variant's settings changed under the same name
            sys.exit(f"error: {exc} (here: --runs, or another variant name)")
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="folder for rows.json and means.json")
    parser.add_argument("--device", default="cuda", help="cuda or cpu (default: cuda)")
    parser.add_argument("--workers", type=int, default=15, help="runs at once (default: 15)")
    parser.add_argument("--seeds", type=int, default=6, help="seeds 0..N-1 (default: 6)")
    parser.add_argument(
        "--variant",
        action="append",
        type=parse_variant,
        help="name:key=value,... (repeatable; default: the 2026-11-29 sweep's eight)",
    )
    parser.add_argument(
        "--runs",
        type=Path,
        default=Path("runs/sweep"),
        help="run directories (default: %(default)s)",
    )
    parser.add_argument(
        "--launch-until", type=float, default=300, help="no run starts after these seconds (300)"
    )
    parser.add_argument(
        "--kill-at", type=float, default=440, help="unfinished runs stop at these seconds (440)"
    )
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from robustness import measure

    from lenet5.config import RECIPES

    start = time.time()
    variants = dict(args.variant) if args.variant else DEFAULT_VARIANTS
    (args.runs / "cache").mkdir(parents=True, exist_ok=True)
    args.out.mkdir(parents=True, exist_ok=True)
    per_class = RECIPES["robust"]["strokes"]
    with ProcessPoolExecutor(max(1, min(args.seeds, args.workers))) as pool:
        list(
            pool.map(draw_strokes, [(per_class, s, args.runs / "cache") for s in range(args.seeds)])
        )
    print(f"stroke digits ready after {time.time() - start:.0f} s", flush=True)

    def finished(name: str, seed: int) -> bool:
        return (args.runs / f"{name}-s{seed}" / "summary.json").is_file()

    run_all(
        [(n, s) for s in range(args.seeds) for n in variants if not finished(n, s)],
        variants,
        args,
        start,
    )
    models = [
        str(args.runs / f"{n}-s{s}") for n in variants for s in range(args.seeds) if finished(n, s)
    ]
    rows = measure(models, test=True, photos=True) if models else []
    (args.out / "rows.json").write_text(json.dumps(rows, indent=1) + "\n")
    summary = means(rows)
    (args.out / "means.json").write_text(json.dumps(summary, indent=1) + "\n")
    print("\n| variant | runs | val | UCI | photo val | test | photo test | flagged 1s |")
    for name, m in summary.items():
        print(
            f"| {name} | {m['runs']} | {m['val_accuracy']:.2%} | {m['uci_accuracy']:.2%} | "
            f"{m['photo_val_accuracy']:.2%} | {m['test_accuracy']:.2%} | "
            f"{m['photo_accuracy']:.2%} | {m['flagged 1']:.1f} |"
        )
    print(f"done after {time.time() - start:.0f} s")


if __name__ == "__main__":
    main()
