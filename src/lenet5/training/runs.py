"""Run directories: their names, creation without overwriting, and the files they hold."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from lenet5.config import TrainConfig
from lenet5.training.locks import LOCK_FILE, check_free
from lenet5.training.setup import TrainingError

CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.jsonl"
SUMMARY_FILE = "summary.json"


def next_run_dir(root: Path, config: TrainConfig) -> Path:
    """`root/<model>-<optimizer>-NN` with the next free number."""
    return next_numbered_dir(root, config.name)


def next_numbered_dir(root: Path, name: str) -> Path:
    """`root/<name>-NN` with the next free number."""
    prefix = f"{name}-"
    taken = [
        int(m.group(1))
        for p in root.glob(prefix + "*")
        if (m := re.fullmatch(re.escape(prefix) + r"(\d+)", p.name))
    ]
    return root / f"{prefix}{max(taken, default=0) + 1:02d}"


def is_run_dir(path: Path) -> bool:
    return (path / CONFIG_FILE).is_file()


def prepare_new_run_dir(path: Path) -> None:
    """Create a run directory, refusing to overwrite anything."""
    if path.exists():
        if not path.is_dir():
            raise TrainingError(f"{path} exists and is not a directory")
        check_free(path)
        if is_run_dir(path):
            raise TrainingError(f"{path} already holds a run; continue it with --resume {path}")
        if any(p.name != LOCK_FILE for p in path.iterdir()):
            raise TrainingError(f"{path} exists, is not empty and is not a run directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise TrainingError(f"cannot create run directory {path}: {exc.strerror}") from None


def read_run_config(run_dir: Path) -> TrainConfig:
    """The config of an existing run directory."""
    if not is_run_dir(run_dir):
        raise TrainingError(f"{run_dir} is not a run directory (no {CONFIG_FILE})")
    try:
        return TrainConfig.from_dict(json.loads((run_dir / CONFIG_FILE).read_text()))
    except (ValueError, TypeError) as exc:
        raise TrainingError(f"{run_dir / CONFIG_FILE}: unreadable ({exc})") from None


def read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    """The complete lines of metrics.jsonl (a line cut short by a crash is dropped)."""
    path = run_dir / METRICS_FILE
    records = []
    if path.is_file():
        for line in path.read_text().splitlines():
            try:
                records.append(json.loads(line))
            except ValueError:
                break
    return records


def dump_json(obj: Any) -> str:
    """Pretty JSON with a final newline, as the run's config and summary are written."""
    return json.dumps(obj, indent=2) + "\n"
