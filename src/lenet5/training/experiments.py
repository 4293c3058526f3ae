"""The tutorial's study as one command: every configuration trained, compared, plotted, profiled.

Each configuration and seed is a normal run directory under the output folder; finished runs
are reused and interrupted ones resumed, so running the study twice trains nothing new.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import platform
import statistics
import sys
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import Any

import torch

from lenet5.config import EXPERIMENTS, QUICK_TRAIN_IMAGES, Experiment, TrainConfig
from lenet5.data.mnist import Split, Splits, batches
from lenet5.errors import Lenet5Error
from lenet5.files import atomic_write_text
from lenet5.inference.checkpoint import load_model
from lenet5.training.loop import fit
from lenet5.training.runs import (
    SUMMARY_FILE,
    is_run_dir,
    prepare_new_run_dir,
    read_metrics,
    read_run_config,
)


def experiment_config(experiment: Experiment, seed: int, quick: bool, dataset: str) -> TrainConfig:
    config = TrainConfig(**{**experiment.settings, "seed": seed, "dataset": dataset})
    if quick:
        config.epochs, config.train_subset = 1, QUICK_TRAIN_IMAGES
    return config


def run_one(
    config: TrainConfig,
    splits: Splits,
    run_dir: Path,
    device: torch.device,
    echo: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Train one run, or reuse it when finished, or resume it when interrupted."""
    if is_run_dir(run_dir):
        stored = read_run_config(run_dir)
        if stored != config:
            raise Lenet5Error(f"{run_dir} holds a run with other settings; choose another --out")
        if (run_dir / SUMMARY_FILE).is_file():
            echo(f"{run_dir}: finished earlier, reused")
            summary: dict[str, Any] = json.loads((run_dir / SUMMARY_FILE).read_text())
            return summary
        echo(f"{run_dir}: resuming")
        return fit(config, splits, run_dir, device, resume=True, echo=echo)
    prepare_new_run_dir(run_dir)
    echo(f"{run_dir}: training")
    return fit(config, splits, run_dir, device, echo=echo)


def run_experiments(
    splits: Splits,
    out: Path,
    seeds: int = 1,
    quick: bool = False,
    device: torch.device | str = "cpu",
    dataset: str = "mnist",
    echo: Callable[[str], None] = print,
    only: tuple[str, ...] = (),
    jobs: int = 1,
    data_dir: str | Path | None = None,
    threads: int | None = None,
) -> list[dict[str, Any]]:
    """Train every configuration (or those named in `only`) with `seeds` seeds; write results,
    plots, trace and report. With `jobs` > 1 the runs go to that many worker processes (which
    load the data from `data_dir` themselves). Each run uses `threads` CPU threads (default: the
    machine's threads shared out among the jobs); float results depend on that number, so
    runs with the same threads per run give identical results however many jobs there are."""
    device = torch.device(device)
    threads = threads or max(1, torch.get_num_threads() // jobs)
    experiments = [e for e in EXPERIMENTS if not only or e.name in only]
    runs = [
        (experiment_config(e, seed, quick, dataset), out / e.name / f"seed-{seed}")
        for e in experiments
        for seed in range(seeds)
    ]
    if jobs == 1:
        previous = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            for config, run_dir in runs:
                run_one(config, splits, run_dir, device, echo)
        finally:
            torch.set_num_threads(previous)
    else:
        _run_parallel(runs, jobs, threads, device, dataset, data_dir, echo)
    rows = collect(experiments, out, seeds)
    write_results(rows, out)
    plot_study(rows, out)
    profiled = next((e for e in experiments if e.name == "lenet5-adam"), experiments[0])
    top_ops = profile_inference(out / profiled.name / "seed-0", splits.test, out)
    write_report(rows, top_ops, profiled.name, out, seeds, quick)
    return rows


_worker_splits: Splits | None = None


def _start_worker(dataset: str, data_dir: str | Path | None, threads: int) -> None:
    global _worker_splits
    torch.set_num_threads(threads)
    from lenet5.data.mnist import load_splits

    _worker_splits = load_splits(dataset, data_dir, progress=False)


def _train_job(config: TrainConfig, run_dir: Path, device: str) -> dict[str, Any]:
    assert _worker_splits is not None
    return run_one(config, _worker_splits, run_dir, torch.device(device), echo=lambda _: None)


def _run_parallel(
    runs: list[tuple[TrainConfig, Path]],
    jobs: int,
    threads: int,
    device: torch.device,
    dataset: str,
    data_dir: str | Path | None,
    echo: Callable[[str], None],
) -> None:
    """Run each (config, run directory) in a pool of `jobs` processes, reporting as they end."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    echo(f"{len(runs)} runs in {jobs} worker processes, {threads} thread(s) each")
    with ProcessPoolExecutor(
        max_workers=jobs,
        mp_context=multiprocessing.get_context("spawn"),  # no fork of a process holding torch
        initializer=_start_worker,
        initargs=(dataset, data_dir, threads),
    ) as pool:
        futures = {
            pool.submit(_train_job, config, run_dir, str(device)): run_dir
            for config, run_dir in runs
        }
        for done, future in enumerate(as_completed(futures), start=1):
            summary = future.result()
            echo(
                f"[{done}/{len(runs)}] {futures[future]}: test accuracy "
                f"{summary['test_accuracy']:.4f}, {summary['train_seconds']:.0f} s"
            )


def _mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def collect(experiments: list[Experiment], out: Path, seeds: int) -> list[dict[str, Any]]:
    """One row per configuration: means and standard deviations over the seeds."""
    rows = []
    for experiment in experiments:
        summaries = [
            json.loads((out / experiment.name / f"seed-{s}" / SUMMARY_FILE).read_text())
            for s in range(seeds)
        ]
        test_mean, test_std = _mean_std([s["test_accuracy"] for s in summaries])
        rows.append(
            {
                "configuration": experiment.name,
                "parameters": summaries[0]["parameters"],
                "epochs": summaries[0]["epochs"],
                "seeds": seeds,
                "test_accuracy": test_mean,
                "test_accuracy_std": test_std,
                "val_accuracy": statistics.fmean(s["val_accuracy"] for s in summaries),
                "accuracy_before_training": statistics.fmean(
                    s["test_accuracy_before_training"] for s in summaries
                ),
                "train_seconds": statistics.fmean(s["train_seconds"] for s in summaries),
                "seconds_per_epoch": statistics.fmean(s["seconds_per_epoch"] for s in summaries),
                "reference_accuracy": experiment.tutorial_accuracy,
                "reference_seconds": experiment.tutorial_seconds,
                "reference": experiment.source,
            }
        )
    return rows


def write_results(rows: list[dict[str, Any]], out: Path) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(out / "results.csv", buffer.getvalue())
    atomic_write_text(out / "results.md", results_table(rows) + "\n")


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.2%}"


def results_table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| configuration | parameters | test accuracy | reference | difference | validation "
        "| before training | training time | per epoch | reference time |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        test = _pct(r["test_accuracy"])
        if r["seeds"] > 1:
            test += f" ± {r['test_accuracy_std']:.2%}"
        ref = r["reference_accuracy"]
        diff = "-" if ref is None else f"{(r['test_accuracy'] - ref) * 100:+.2f} pt"
        ref_text = "-" if ref is None else f"{_pct(ref)} ({r['reference']})"
        ref_time = "-" if r["reference_seconds"] is None else f"{r['reference_seconds']:.0f} s"
        lines.append(
            f"| {r['configuration']} | {r['parameters']:,} | {test} | {ref_text} | {diff} | "
            f"{_pct(r['val_accuracy'])} | {_pct(r['accuracy_before_training'])} | "
            f"{r['train_seconds']:.0f} s | {r['seconds_per_epoch']:.2f} s | {ref_time} |"
        )
    return "\n".join(lines)


def plot_study(rows: list[dict[str, Any]], out: Path) -> None:
    """Accuracy and loss per epoch for every configuration (seed 0), and training times."""
    from lenet5.plots import save_figure, study_figures

    curves = {r["configuration"]: read_metrics(out / r["configuration"] / "seed-0") for r in rows}
    times = {r["configuration"]: (r["train_seconds"], r["reference_seconds"]) for r in rows}
    for name, figure in study_figures(curves, times).items():
        save_figure(figure, out / name)


def profile_inference(run_dir: Path, test: Split, out: Path) -> list[dict[str, Any]]:
    """Profile test-set inference (time and memory per op): a Chrome trace and the top ops."""
    from torch.profiler import ProfilerActivity, profile

    model, _ = load_model(run_dir)
    test = test.to("cpu")
    with torch.inference_mode():
        for x, _ in batches(test, 1000):  # warm-up: first calls pay one-off costs
            model(x)
        with (
            _quiet_native_stderr(),
            profile(
                activities=[ProfilerActivity.CPU], record_shapes=True, profile_memory=True
            ) as prof,
        ):
            for x, _ in batches(test, 1000):
                model(x)
    prof.export_chrome_trace(str(out / "inference_trace.json"))
    events = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    total = sum(e.self_cpu_time_total for e in events) or 1.0
    return [
        {
            "op": e.key,
            "calls": e.count,
            "self_ms": e.self_cpu_time_total / 1000,
            "share": e.self_cpu_time_total / total,
            "total_ms": e.cpu_time_total / 1000,
            "self_memory_mb": e.self_cpu_memory_usage / 2**20,
        }
        for e in events[:12]
    ]


@contextlib.contextmanager
def _quiet_native_stderr() -> Iterator[None]:
    """Silence the profiler's C++ status lines (written straight to file descriptor 2)."""
    sys.stderr.flush()
    saved = os.dup(2)
    with open(os.devnull, "w") as devnull:
        os.dup2(devnull.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def write_report(
    rows: list[dict[str, Any]],
    top_ops: list[dict[str, Any]],
    profiled: str,
    out: Path,
    seeds: int,
    quick: bool,
) -> None:
    cpu = _cpu_name()
    command = f"lenet5 experiments --out {out} --seeds {seeds}" + (" --quick" if quick else "")
    if len(rows) < len(EXPERIMENTS):
        command += " --only " + " ".join(r["configuration"] for r in rows)
    deviations = [
        r
        for r in rows
        if r["reference_accuracy"] is not None
        and abs(r["test_accuracy"] - r["reference_accuracy"]) > 0.015
    ]
    ops = [
        "| op | calls | self time | share | total time | self memory |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    ops += [
        f"| `{o['op']}` | {o['calls']} | {o['self_ms']:.1f} ms | {o['share']:.1%} | "
        f"{o['total_ms']:.1f} ms | {o['self_memory_mb']:+.1f} MB |"
        for o in top_ops
    ]
    lines = [
        "# LeNet-5 on MNIST: the tutorial's study, reproduced",
        "",
        f"Made by `{command}` on {date.today().isoformat()}: {cpu}, "
        f"{torch.get_num_threads()} threads, Python {platform.python_version()}, "
        f"torch {torch.__version__}."
        + (
            " **Quick mode: one epoch on 2,000 images; figures are not comparable.**"
            if quick
            else ""
        ),
        "",
        f"Test accuracy is the final epoch's, averaged over {seeds} seed(s); references are the "
        "tutorial's figures (LeCun et al. 1998 for the best recipe: 0.80% error with distorted "
        "training images). Times are training time only (evaluation excluded).",
        "",
        results_table(rows),
        "",
    ]
    if deviations:
        lines += [
            "Configurations more than 1.5 points from their reference: "
            + ", ".join(r["configuration"] for r in deviations)
            + " (see the project's docs/study.md).",
            "",
        ]
    lines += [
        "## Learning curves",
        "",
        "![validation and test accuracy per epoch](accuracy.png)",
        "",
        "![training loss per epoch](loss.png)",
        "",
        "## Training time",
        "",
        "![training time per configuration](time.png)",
        "",
        "## Test-set inference, profiled",
        "",
        f"The tutorial recorded a full trace of one test-set pass. Here: {profiled} (seed 0), "
        "the 10,000 test images in batches of 1,000, PyTorch profiler with memory. "
        "Open `inference_trace.json` in chrome://tracing or https://ui.perfetto.dev.",
        "",
        *ops,
        "",
        "Each run's directory holds its config, per-epoch metrics, TensorBoard events and "
        "checkpoints: `tensorboard --logdir " + str(out) + "`.",
    ]
    atomic_write_text(out / "report.md", "\n".join(lines) + "\n")


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"
