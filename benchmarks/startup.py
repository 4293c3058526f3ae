"""How long the `lenet5` command takes to answer, against `python -c "import torch"`.

Runs each command --rounds times, taking turns (so that a slow moment of the machine hits all
of them alike), each in a fresh process, and prints the median wall time of each and its ratio
to importing torch.

    python benchmarks/startup.py [--rounds 7]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

SEVEN = Path(__file__).resolve().parent.parent / "docs" / "examples" / "seven.jpg"
COMMANDS = {
    'python -c "import torch"': [sys.executable, "-c", "import torch"],
    "lenet5 --help": [sys.executable, "-m", "lenet5", "--help"],
    "lenet5 train --help": [sys.executable, "-m", "lenet5", "train", "--help"],
    "lenet5 predict IMAGE": [sys.executable, "-m", "lenet5", "predict", str(SEVEN)],
    "lenet5 predict IMAGE --engine torch": [
        *(sys.executable, "-m", "lenet5", "predict", str(SEVEN), "--engine", "torch")
    ],
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--json", type=Path, default=Path("docs/benchmarks/startup.json"))
    args = parser.parse_args()
    times: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for _ in range(args.rounds):
        for name, argv in COMMANDS.items():
            started = time.perf_counter()
            subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
            times[name].append(time.perf_counter() - started)
    torch_s = statistics.median(times['python -c "import torch"'])
    rows = {
        name: {
            "median_s": statistics.median(t),
            "ratio_to_import_torch": statistics.median(t) / torch_s,
        }
        for name, t in times.items()
    }
    for name, row in rows.items():
        print(f"| `{name}` | {row['median_s']:.2f} s | {row['ratio_to_import_torch']:.2f}x |")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"rounds": args.rounds, "commands": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
