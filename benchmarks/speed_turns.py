"""One image read, by the command line, in process and through the server, against an earlier
revision of lenet5, taking turns.

The revision is checked out into a temporary git worktree; each measurement runs in a fresh
process with PYTHONPATH pointing at one tree's `src`, the two trees taking turns round by round,
so that a slow moment of the machine hits both alike. Three measurements:
- `lenet5 predict docs/examples/seven.jpg`, wall time of the whole process;
- `predict_image` on the page's drawing (benchmarks/page-drawing.png), in process, the bundled
  model on its default engine: the median of 300 calls;
- `POST /api/predict` of that drawing through the app (FastAPI's test client, ONNX engine):
  the median of 300 requests.

    python benchmarks/speed_turns.py 17a9e18 [--rounds 5]
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

ROOT = Path(__file__).resolve().parent.parent
SEVEN = ROOT / "docs" / "examples" / "seven.jpg"
DRAWING = ROOT / "benchmarks" / "page-drawing.png"

# Runs inside the measured tree: its modules moved between revisions, so both paths are tried.
IN_PROCESS = """
import statistics, sys, time
try:
    from lenet5.inference.predict import load_inference_model, predict_image
    from lenet5.data.preprocess import load_image
except ImportError:
    from lenet5.predict import load_inference_model, predict_image
    from lenet5.preprocess import load_image
model, _, _ = load_inference_model(None, "auto")
raw = open(sys.argv[1], "rb").read()
times = []
for _ in range(300):
    t0 = time.perf_counter()
    predict_image(model, load_image(raw))
    times.append(time.perf_counter() - t0)
print(statistics.median(times))
"""
SERVER = """
import statistics, sys, time
from fastapi.testclient import TestClient
try:
    from lenet5.serving.app import create_app
    from lenet5.inference.checkpoint import load_model
except ImportError:
    from lenet5.serve import create_app
    from lenet5.checkpoint import load_model
model, config = load_model()
client = TestClient(create_app(model, config, None, engine="onnx"))
body = open(sys.argv[1], "rb").read()
times = []
for _ in range(300):
    t0 = time.perf_counter()
    answer = client.post("/api/predict", content=body, headers={"Content-Type": "image/png"})
    assert answer.status_code == 200
    times.append(time.perf_counter() - t0)
print(statistics.median(times))
"""


def run(src: Path, command: list[str]) -> str:
    env = {**os.environ, "PYTHONPATH": str(src)}
    out = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    return out.stdout


def measure(src: Path) -> dict[str, float]:
    t0 = time.perf_counter()
    run(src, [sys.executable, "-m", "lenet5", "predict", str(SEVEN)])
    return {
        "cli_s": time.perf_counter() - t0,
        "in_process_ms": 1000 * float(run(src, [sys.executable, "-c", IN_PROCESS, str(DRAWING)])),
        "server_ms": 1000 * float(run(src, [sys.executable, "-c", SERVER, str(DRAWING)])),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("revision", help="the earlier revision (a commit, a tag)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="lenet5-turns-") as tmp:
        tree = Path(tmp) / "tree"
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "add", "-q", "--detach", str(tree), args.revision],
            check=True,
        )
        try:
            trees = {args.revision: tree / "src", "working tree": ROOT / "src"}
            rounds: dict[str, list[dict[str, float]]] = {name: [] for name in trees}
            for k in range(args.rounds):
                for name, src in trees.items():
                    rounds[name].append(measure(src))
                    print(f"round {k + 1} {name}: {rounds[name][-1]}", flush=True)
        finally:
            subprocess.run(
                ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)], check=False
            )
    medians = {
        name: {key: statistics.median(r[key] for r in rows) for key in rows[0]}
        for name, rows in rounds.items()
    }
    old, new = medians[args.revision], medians["working tree"]
    result = {
        "command": " ".join(["python", "benchmarks/speed_turns.py", *sys.argv[1:]]),
        "medians": medians,
        "ratios": {key: new[key] / old[key] for key in old},
    }
    print(json.dumps(result, indent=2))
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
