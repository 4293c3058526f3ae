"""Preprocessing against an earlier version of it, taking turns call by call in one process.

Loads `src/lenet5/data/preprocess.py` as it was at a git revision beside the working tree's, then
times `preprocess` on one image with each in turn (a call of one, then a call of the other, so
that both meet the same machine at the same moment), --rounds times --calls calls. Prints the
medians, their ratio, the median of decoding the file, and whether the two give the same input.

    python benchmarks/preprocess_turns.py REV [--image benchmarks/page-drawing.png]
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType

import numpy as np

from lenet5.data import preprocess as current

HERE = Path(__file__).resolve().parent


def module_at(revision: str, folder: Path) -> ModuleType:
    """lenet5.data.preprocess as it was at `revision` (git show), imported under another name."""
    source = subprocess.run(
        ["git", "show", f"{revision}:src/lenet5/data/preprocess.py"],
        cwd=HERE,
        capture_output=True,
        text=True,
    )
    if source.returncode != 0:
        sys.exit(f"cannot read preprocess.py at {revision}: {source.stderr.strip()}")
    path = folder / "preprocess_then.py"
    path.write_text(source.stdout)
    spec = importlib.util.spec_from_file_location("preprocess_then", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("revision", help="the git revision to compare with (a commit, a tag)")
    parser.add_argument("--image", type=Path, default=HERE / "page-drawing.png")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--calls", type=int, default=1000, help="calls of each per round")
    args = parser.parse_args()
    raw = args.image.read_bytes()
    image = current.load_image(raw)
    with tempfile.TemporaryDirectory() as tmp:
        then = module_at(args.revision, Path(tmp))
        same = np.array_equal(then.preprocess(image), current.preprocess(image))
        print(
            f"{args.image.name}: {args.revision} and the working tree give the same input: {same}"
        )
        print("| round | then (ms) | now (ms) | ratio | decoding (ms) |")
        print("|---:|---:|---:|---:|---:|")
        for round_ in range(1, args.rounds + 1):
            times: dict[str, list[float]] = {"then": [], "now": [], "decode": []}
            for _ in range(args.calls):
                for name, run in (
                    ("then", lambda: then.preprocess(image)),
                    ("now", lambda: current.preprocess(image)),
                    ("decode", lambda: current.load_image(raw)),
                ):
                    started = time.perf_counter()
                    run()
                    times[name].append(time.perf_counter() - started)
            ms = {name: statistics.median(t) * 1e3 for name, t in times.items()}
            print(
                f"| {round_} | {ms['then']:.3f} | {ms['now']:.3f} | "
                f"{ms['now'] / ms['then']:.2f}x | {ms['decode']:.3f} |"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
