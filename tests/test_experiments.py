from __future__ import annotations

import contextlib
import csv
import io
import json
from pathlib import Path

import pytest

from lenet5.cli import main
from lenet5.data import mnist as data
from lenet5.training.experiments import EXPERIMENTS
from lenet5.training.runs import read_metrics

from conftest import write_dataset


def _experiments(*args: str | Path) -> str:
    """Run `lenet5 experiments ARGS` in-process; its standard output (it must succeed)."""
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        code = main(["experiments", *map(str, args)])
    assert code == 0, buffer.getvalue()
    return buffer.getvalue()


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    """(data, output folder, printed output) of `experiments --quick --seeds 2`."""
    root = tmp_path_factory.mktemp("study")
    directory = write_dataset(root / "data", n_train=data.VALIDATION_SIZE + 300, n_test=200)
    out = root / "out"
    printed = _experiments("--quick", "--seeds", "2", "--out", out, "--data-dir", directory)
    return directory, out, printed


def test_every_configuration_is_a_normal_run(study: tuple[Path, Path, str]) -> None:
    _, out, printed = study
    for experiment in EXPERIMENTS:
        for seed in (0, 1):
            run = out / experiment.name / f"seed-{seed}"
            config = json.loads((run / "config.json").read_text())
            assert config["seed"] == seed and config["epochs"] == 1
            assert (run / "checkpoints" / "last.pt").is_file()
            assert json.loads((run / "summary.json").read_text())["epochs"] == 1
    assert "training" in printed and "report:" in printed


def test_results_csv_and_markdown(study: tuple[Path, Path, str]) -> None:
    _, out, _ = study
    with (out / "results.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [r["configuration"] for r in rows] == [e.name for e in EXPERIMENTS]
    for row in rows:
        assert 0.0 <= float(row["test_accuracy"]) <= 1.0
        assert float(row["test_accuracy_std"]) >= 0.0 and row["seeds"] == "2"
        assert float(row["train_seconds"]) > 0 and float(row["seconds_per_epoch"]) > 0
    assert {r["configuration"]: int(r["parameters"]) for r in rows}["softmax-gd"] == 7_850
    assert rows[2]["reference_accuracy"] == "0.99" and rows[2]["reference_seconds"] == "806"
    table = (out / "results.md").read_text().splitlines()
    assert table[0].startswith("| configuration |") and len(table) == 2 + len(EXPERIMENTS)
    assert all(line.count("|") == table[0].count("|") for line in table)


def test_plots_trace_and_report(study: tuple[Path, Path, str]) -> None:
    _, out, _ = study
    for name in ("accuracy", "loss", "time"):
        assert (out / f"{name}.png").read_bytes()[:4] == b"\x89PNG"
        assert b"<svg" in (out / f"{name}.svg").read_bytes()[:500]
    trace = json.loads((out / "inference_trace.json").read_text())
    assert any(e.get("name") == "aten::conv2d" for e in trace["traceEvents"])
    report = (out / "report.md").read_text()
    assert "Quick mode" in report
    assert "![validation and test accuracy per epoch](accuracy.png)" in report
    assert "| `aten::" in report  # the top-ops table


def test_running_twice_trains_nothing(study: tuple[Path, Path, str]) -> None:
    directory, out, _ = study
    checkpoints = sorted(out.glob("*/seed-*/checkpoints/last.pt"))
    before = [p.stat().st_mtime_ns for p in checkpoints]
    printed = _experiments("--quick", "--seeds", "2", "--out", out, "--data-dir", directory)
    assert [p.stat().st_mtime_ns for p in checkpoints] == before
    assert printed.count("reused") == 2 * len(EXPERIMENTS)
    assert not [line for line in printed.splitlines() if line.endswith(": training")]


def test_interrupted_run_is_resumed(study: tuple[Path, Path, str]) -> None:
    directory, out, _ = study
    run = out / "lenet5-adam" / "seed-1"
    (run / "summary.json").unlink()  # as if killed before the end
    printed = _experiments("--quick", "--seeds", "2", "--out", out, "--data-dir", directory)
    assert f"{run}: resuming" in printed
    assert (run / "summary.json").is_file()


def test_other_settings_in_the_same_folder_are_refused(
    study: tuple[Path, Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    directory, out, _ = study
    assert main(["experiments", "--out", str(out), "--data-dir", str(directory)]) == 1
    assert "holds a run with other settings" in capsys.readouterr().err


def test_only_some_configurations(study: tuple[Path, Path, str], tmp_path: Path) -> None:
    directory, _, _ = study
    out = tmp_path / "only"
    _experiments(
        "--quick", "--only", "softmax-gd", "lenet5-best", "--out", out, "--data-dir", directory
    )
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == ["lenet5-best", "softmax-gd"]
    assert "--only softmax-gd lenet5-best" in (out / "report.md").read_text()


def _results(out: Path) -> dict[str, list[dict]]:
    return {
        str(run.relative_to(out)): [
            {k: v for k, v in r.items() if k != "seconds"} for r in read_metrics(run)
        ]
        for run in sorted(out.glob("*/seed-*"))
    }


def test_parallel_jobs_give_the_sequential_results(
    study: tuple[Path, Path, str], tmp_path: Path
) -> None:
    """Float results depend on the threads per run, so the sequential reference uses 1 thread,
    as each of 2 jobs does on this 2-core machine."""
    directory, _, _ = study
    printed = {
        jobs: _experiments(
            "--quick",
            "--only",
            "lenet5-adam-dropout",
            "lenet5-best",
            "--seeds",
            "2",
            "--jobs",
            jobs,
            "--threads",
            "1",
            "--out",
            tmp_path / jobs,
            "--data-dir",
            directory,
        )
        for jobs in ("1", "2")
    }
    assert "4 runs in 2 worker processes, 1 thread(s) each" in printed["2"]
    assert "[4/4]" in printed["2"]
    assert _results(tmp_path / "2") == _results(tmp_path / "1")
