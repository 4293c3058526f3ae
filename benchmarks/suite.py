"""The performance suite: lenet5 against its peers, measured in one run on one machine.

    python benchmarks/suite.py [--data-dir DIR] [--max-epochs 15] [--fast-seeds 5]

Runs, one after another (never two timed things at once), each in its own process:
  1. keras: the tutorial's LeNet-5 in Keras 3 / TensorFlow (`model.fit`), from its own
     environment benchmarks/.venv-peers, built here from benchmarks/requirements-peers.txt;
  2. pytorch-example: a plain PyTorch loop in the style of the official MNIST example;
  3. lenet5 (default settings: Adam 0.001, batch 128) for --max-epochs epochs;
  4. `lenet5 train --recipe fast`, once per seed, timed from process start to exit;
then measures lenet5's inference in a fresh process. Peers stop at the first epoch whose test
accuracy reaches 99.0% (or at --max-epochs). Peak memory is each process's maximum RSS.
Writes docs/benchmarks/suite.json (raw figures) and the suite's section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

from suite_report import RAW, TARGET, markdown, write_doc

ROOT = Path(__file__).resolve().parent.parent
PEERS_VENV = ROOT / "benchmarks" / ".venv-peers"
PEERS_REQUIREMENTS = ROOT / "benchmarks" / "requirements-peers.txt"


def peers_python() -> Path:
    """The peer environment's interpreter, (re)built when requirements-peers.txt changed."""
    python = PEERS_VENV / "bin" / "python"
    stamp = PEERS_VENV / ".requirements-sha256"
    wanted = hashlib.sha256(PEERS_REQUIREMENTS.read_bytes()).hexdigest()
    if not python.exists() or not stamp.exists() or stamp.read_text() != wanted:
        print(f"installing the peers into {PEERS_VENV} ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(PEERS_VENV)], check=True)
        subprocess.run(
            [
                str(python),
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "-r",
                str(PEERS_REQUIREMENTS),
            ],
            check=True,
        )
        stamp.write_text(wanted)
    return python


def run_process(command: list[str], echo: bool = True) -> tuple[str, float, float]:
    """Run `command`; its stdout, wall seconds and peak RSS in MB. Stops the suite if it fails."""
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    assert process.stdout is not None
    lines = []
    for line in process.stdout:
        lines.append(line)
        if echo and not line.startswith("{"):
            print("   ", line.rstrip(), flush=True)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        sys.exit(f"benchmark step failed ({process.returncode}): {' '.join(command)}")
    return "".join(lines), seconds, usage.ru_maxrss / 1024  # ru_maxrss is in KiB on Linux


def last_json(output: str) -> dict[str, Any]:
    return dict(json.loads(output.strip().splitlines()[-1]))


def epoch_figures(epochs: list[dict[str, Any]]) -> dict[str, Any]:
    seconds = [e["seconds"] for e in epochs]
    reached = next((e for e in epochs if e["test_accuracy"] >= TARGET), None)
    return {
        "epochs_run": len(epochs),
        "epoch_s_min": min(seconds),
        "epoch_s_median": statistics.median(seconds),
        "epochs_to_target": reached["epoch"] if reached else None,
        "seconds_to_target": (
            sum(s for e, s in zip(epochs, seconds, strict=True) if e["epoch"] <= reached["epoch"])
            if reached
            else None
        ),
        "final_test_accuracy": epochs[-1]["test_accuracy"],
    }


def peer(command: list[str]) -> dict[str, Any]:
    output, wall, rss = run_process(command)
    result = last_json(output)
    return {**result, **epoch_figures(result["epochs"]), "wall_s": wall, "peak_rss_mb": rss}


def lenet5_run(args: list[str], run_dir: Path) -> dict[str, Any]:
    """`lenet5 train` in a fresh process; its epochs, summary, wall time and peak RSS."""
    command = [sys.executable, "-m", "lenet5", "train", *args, "--run-dir", str(run_dir)]
    _, wall, rss = run_process([*command, "--no-progress"])
    epochs = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    summary = json.loads((run_dir / "summary.json").read_text())
    return {
        "epochs": epochs,
        **epoch_figures(epochs),
        "test_accuracy": summary["test_accuracy"],
        "wall_s": wall,
        "peak_rss_mb": rss,
    }


def median_ms(run: Callable[[], object], repeats: int = 500, warm_up: int = 100) -> float:
    """Median milliseconds of `run()` over `repeats` calls, the first `warm_up` not counted."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        run()
        times.append(time.perf_counter() - t0)
    return statistics.median(times[warm_up:]) * 1e3


def best_rate(run_batch: Callable[[int, int], object], n: int, batch: int) -> float:
    """Images per second: the best of 3 passes of `run_batch(start, stop)` over n images."""
    rates = []
    for _ in range(3):
        t0 = time.perf_counter()
        for start in range(0, n, batch):
            run_batch(start, start + batch)
        rates.append(n / (time.perf_counter() - t0))
    return max(rates)


def measure_inference(checkpoint: str, data_dir: str) -> dict[str, Any]:
    """lenet5's inference figures (run in a fresh process: `suite.py --inference CKPT`)."""
    import numpy as np
    import torch
    from PIL import Image

    from lenet5.data.mnist import load_splits
    from lenet5.data.preprocess import load_image
    from lenet5.inference.checkpoint import load_model
    from lenet5.inference.predict import predict, predict_image

    model, _ = load_model(checkpoint)
    images = load_splits("mnist", data_dir, download_missing=False, progress=False).test.images
    n, batch = len(images), 1000
    result: dict[str, Any] = {"batch": batch}

    def png_bytes(image: Image.Image) -> bytes:
        out = io.BytesIO()
        image.save(out, format="PNG")
        return out.getvalue()

    # Latency first: onnxruntime's worker threads keep spinning for a while after a run.
    # As the peers measure it: one preprocessed image through the model.
    result["single_forward_ms"] = median_ms(lambda: predict(model, images[:1]))
    digit = images[0].numpy()
    canvas = Image.fromarray(255 - digit).resize((280, 280), Image.Resampling.BILINEAR)
    for name, png in (
        ("single_image_ms", png_bytes(Image.fromarray(digit))),
        ("single_image_280px_ms", png_bytes(canvas)),
    ):
        result[name] = median_ms(lambda png=png: predict_image(model, load_image(png)))
    # Throughput through the library's batch path (uint8 in, probabilities out).
    result["images_per_s"] = best_rate(lambda a, b: predict(model, images[a:b]), n, batch)
    model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    result["images_per_s_channels_last"] = best_rate(
        lambda a, b: predict(model, images[a:b]), n, batch
    )
    model.to(memory_format=torch.contiguous_format)  # type: ignore[call-overload]
    try:
        from lenet5.inference.engines import OnnxModel
        from lenet5.inference.export import export_onnx

        with tempfile.TemporaryDirectory() as tmp:
            export_onnx(model, Path(tmp) / "m.onnx")
            session = OnnxModel(Path(tmp) / "m.onnx", threads=torch.get_num_threads()).session
            x = images.unsqueeze(1).float().div(255).numpy()
            result["images_per_s_onnxruntime"] = best_rate(
                lambda a, b, run=session.run: run(None, {"input": x[a:b]}), n, batch
            )
            del session  # its threads would spin through the training profile below
    except ImportError:
        result["images_per_s_onnxruntime"] = None

    result["training_profile"] = profile_training(data_dir)
    result["torch_threads"] = torch.get_num_threads()
    result["numpy"] = np.__version__
    return result


def profile_training(data_dir: str, steps: int = 40) -> list[dict[str, Any]]:
    """Where a training step's time goes: the top operators of `steps` steps of lenet5's own
    loop (default settings), by self CPU time."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    from lenet5.config import TrainConfig
    from lenet5.data.mnist import load_splits
    from lenet5.training.loop import train_one_epoch
    from lenet5.training.setup import epoch_generator, init_model, make_optimizer

    config = TrainConfig()
    train = load_splits("mnist", data_dir, download_missing=False, progress=False).train
    model = init_model(config, torch.device("cpu"))
    optimizer = make_optimizer(config, model)
    warm, measured = train.subset(10 * config.batch_size), train.subset(steps * config.batch_size)
    train_one_epoch(model, warm, optimizer, config.batch_size, epoch_generator(0, 1))
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        train_one_epoch(model, measured, optimizer, config.batch_size, epoch_generator(0, 2))
    events = [e for e in prof.key_averages() if e.self_cpu_time_total > 0]
    total = sum(e.self_cpu_time_total for e in events)
    events.sort(key=lambda e: e.self_cpu_time_total, reverse=True)
    return [
        {
            "op": e.key,
            "share": e.self_cpu_time_total / total,
            "ms_per_step": e.self_cpu_time_total / 1e3 / steps,
        }
        for e in events[:8]
    ]


def machine() -> dict[str, Any]:
    import torch

    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    memory_kb = next(
        int(line.split()[1])
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal")
    )
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(memory_kb / 2**20, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "date": date.today().isoformat(),
    }


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data-dir",
        default=os.environ.get("LENET5_DATA"),
        help="MNIST folder (default: $LENET5_DATA)",
    )
    parser.add_argument(
        "--max-epochs", type=int, default=15, help="epoch cap for every system (default: 15)"
    )
    parser.add_argument(
        "--fast-seeds", type=int, default=5, help="runs of --recipe fast (default: 5)"
    )
    parser.add_argument(
        "--device",
        choices=("cpu", "cuda"),
        default="cpu",
        help="where lenet5 and the PyTorch peer train; on cuda the Keras peer (tensorflow-cpu) "
        "is left out (default: cpu)",
    )
    parser.add_argument("--inference", metavar="CKPT", help=argparse.SUPPRESS)
    parser.add_argument(
        "--render", action="store_true", help="only rewrite docs/benchmarks.md from suite.json"
    )
    return parser.parse_args()


def run_systems(args: argparse.Namespace) -> dict[str, Any]:
    """Train and time every system, one after another -> the report's figures."""
    data, epochs = str(Path(args.data_dir).resolve()), str(args.max_epochs)
    systems: dict[str, dict[str, Any]] = {}
    device = ["--device", args.device]
    if args.device == "cpu":
        print("1/5 keras", flush=True)
        systems["keras"] = peer(
            [str(peers_python()), "benchmarks/peer_keras.py", data, "--max-epochs", epochs]
        )
    print("2/5 pytorch-example", flush=True)
    systems["pytorch-example"] = peer(
        [sys.executable, "benchmarks/peer_pytorch.py", data, "--max-epochs", epochs, *device]
    )
    with tempfile.TemporaryDirectory(prefix="lenet5-suite-") as tmp:
        print("3/5 lenet5 (default settings)", flush=True)
        lenet5 = lenet5_run(
            ["--epochs", epochs, "--data-dir", data, *device], Path(tmp) / "default"
        )
        print(f"4/5 lenet5 --recipe fast x {args.fast_seeds} seeds", flush=True)
        fast_runs = [
            lenet5_run(
                ["--recipe", "fast", "--seed", str(seed), "--data-dir", data, *device],
                Path(tmp) / f"fast-{seed}",
            )
            for seed in range(args.fast_seeds)
        ]
        print("5/5 lenet5 inference", flush=True)
        checkpoint = str(Path(tmp) / "fast-0")
        output, _, _ = run_process(
            [sys.executable, __file__, "--data-dir", data, "--inference", checkpoint], echo=False
        )
        inference = last_json(output)
    lenet5["images_per_s"] = inference["images_per_s"]
    lenet5["single_image_ms"] = inference["single_forward_ms"]
    from lenet5.config import RECIPES

    return {
        "max_epochs": args.max_epochs,
        "systems": {"lenet5": lenet5, **systems},
        "fast": {
            "settings": ", ".join(f"{k} {v}" for k, v in RECIPES["fast"].items()),
            "runs": fast_runs,
        },
        "inference": inference,
    }


def main() -> None:
    args = parse_args()
    if args.render:
        write_doc(markdown(json.loads(RAW.read_text())))
        return
    if not args.data_dir or not Path(args.data_dir).is_dir():
        sys.exit("give --data-dir or set LENET5_DATA to the folder of the MNIST IDX files")
    if args.inference:
        print(json.dumps(measure_inference(args.inference, args.data_dir)))
        return
    command = (
        "python benchmarks/suite.py "
        + " ".join(
            f"--{k.replace('_', '-')} {v}"
            for k, v in (("max_epochs", args.max_epochs), ("fast_seeds", args.fast_seeds))
        )
        + (" --device cuda" if args.device == "cuda" else "")
    )
    report = {"command": command, "machine": machine(), **run_systems(args)}
    RAW.parent.mkdir(parents=True, exist_ok=True)
    tmp_raw = RAW.with_suffix(".tmp")
    tmp_raw.write_text(json.dumps(report, indent=1) + "\n")
    tmp_raw.replace(RAW)
    section = markdown(report)
    write_doc(section)
    print(section)


if __name__ == "__main__":
    main()
