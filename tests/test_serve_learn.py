"""POST /api/learn: fine-tuning in a child process, the live swap, and its refusal."""

from __future__ import annotations

import io
import json
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from lenet5.cli import main
from lenet5.data.feedback import FeedbackStore
from lenet5.inference.checkpoint import load_model
from lenet5.serving.app import create_app, learning_policy

from conftest import synthetic_digits


def _png(array: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(array).save(out, format="PNG")
    return out.getvalue()


def _wait(client: TestClient, timeout: float = 120.0) -> dict:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        state = client.get("/api/learn").json()
        if state["state"] != "running":
            return state
        time.sleep(0.2)
    raise AssertionError("the fine-tuning did not end")


def _corrections(
    tmp_path: Path, n: int, seed: int, mislabel: bool = False
) -> tuple[FeedbackStore, np.ndarray]:
    """A store of `n` synthetic digits as corrections (labelled one off when `mislabel`)."""
    store = FeedbackStore(tmp_path / "fb.sqlite")
    images, labels = synthetic_digits(n, seed=seed)
    for image, label in zip(images, labels, strict=True):
        given = (int(label) + 1) % 10 if mislabel else int(label)
        store.add(given, int(label), [0.1] * 10, image, None, "base")
    return store, images


def _app(synthetic_run: tuple[Path, Path], store: FeedbackStore, **kwargs) -> TestClient:  # type: ignore[no-untyped-def]
    directory, run = synthetic_run
    model, config = load_model(run)
    return TestClient(create_app(model, config, run, store, data_dir=directory, **kwargs))


def test_learning_swaps_the_model_without_failing_a_request(
    synthetic_run: tuple[Path, Path], tmp_path: Path
) -> None:
    store, images = _corrections(tmp_path, 40, seed=9)
    client = _app(synthetic_run, store)
    before = client.get("/api/model").json()["name"]
    assert client.get("/api/learn").json() == {"state": "idle", "progress": 0.0, "allowed": True}
    answer = client.post("/api/learn")
    assert answer.status_code == 202 and answer.json()["state"] == "running"
    assert client.post("/api/learn").status_code == 409  # one at a time

    statuses: list[int] = []
    stop = threading.Event()

    def load() -> None:  # predictions keep coming while it learns and swaps
        png = _png(images[0])
        while not stop.is_set():
            statuses.append(
                client.post(
                    "/api/predict", content=png, headers={"Content-Type": "image/png"}
                ).status_code
            )

    worker = threading.Thread(target=load)
    worker.start()
    state = _wait(client)
    time.sleep(0.3)
    stop.set()
    worker.join()
    assert state["state"] == "done", state
    assert state["progress"] == 1.0
    assert set(state["before"]) == {"corrections_accuracy", "val_accuracy"}
    assert state["after"]["val_accuracy"] >= state["before"]["val_accuracy"] - 0.005
    info = client.get("/api/model").json()
    assert info["name"] != before and info["name"] == str(
        Path(state["model"]) / "checkpoints" / "last.pt"
    )
    assert Path(state["model"]).parent == tmp_path / "learned"  # beside the store
    assert len(statuses) > 10 and set(statuses) == {200}
    load_model(state["model"])  # a normal run directory: `serve --model` can name it


def test_mislabelled_corrections_are_refused(
    synthetic_run: tuple[Path, Path], tmp_path: Path
) -> None:
    store, _ = _corrections(tmp_path, 300, seed=10, mislabel=True)
    client = _app(synthetic_run, store)
    before = client.get("/api/model").json()
    assert client.post("/api/learn").status_code == 202
    state = _wait(client)
    assert state["state"] == "refused", state
    assert "MNIST validation accuracy fell by" in state["reason"]
    assert state["after"]["val_accuracy"] < state["before"]["val_accuracy"] - 0.005
    assert client.get("/api/model").json() == before  # still the old model


def test_learning_can_be_off(synthetic_run: tuple[Path, Path], tmp_path: Path) -> None:
    store = FeedbackStore(tmp_path / "fb.sqlite")
    client = _app(synthetic_run, store, learning="off on 0.0.0.0: use --allow-learning")
    answer = client.post("/api/learn")
    assert answer.status_code == 403 and "--allow-learning" in answer.json()["detail"]
    assert client.get("/api/learn").json()["allowed"] is False


def test_nothing_to_learn_is_409(synthetic_run: tuple[Path, Path], tmp_path: Path) -> None:
    client = _app(synthetic_run, FeedbackStore(tmp_path / "fb.sqlite"))
    answer = client.post("/api/learn")
    assert answer.status_code == 409 and "no corrections" in answer.json()["detail"]


def test_learning_is_on_for_loopback_only_unless_allowed() -> None:
    assert learning_policy("127.0.0.1", False) is True
    assert learning_policy("localhost", False) is True
    assert learning_policy("0.0.0.0", True) is True
    refused = learning_policy("0.0.0.0", False)
    assert isinstance(refused, str) and "--allow-learning" in refused


def test_a_failed_fine_tuning_keeps_the_old_model(
    synthetic_run: tuple[Path, Path], tmp_path: Path
) -> None:
    store, _ = _corrections(tmp_path, 5, seed=11)
    _, run = synthetic_run
    model, config = load_model(run)
    empty = tmp_path / "broken-mnist"
    empty.mkdir()
    for name in ("train-images", "train-labels", "t10k-images", "t10k-labels"):
        kind = "idx3" if "images" in name else "idx1"
        (empty / f"{name}-{kind}-ubyte").write_bytes(b"broken")  # no usable MNIST for it
    client = TestClient(create_app(model, config, run, store, data_dir=empty))
    before = client.get("/api/model").json()
    assert client.post("/api/learn").status_code == 202
    state = _wait(client)
    assert state["state"] == "failed" and state["reason"].startswith("fine-tuning failed: ")
    assert client.get("/api/model").json() == before
    assert client.post("/api/learn").status_code == 202  # it can be tried again
    assert _wait(client)["state"] == "failed"


def test_the_child_reports_its_progress_in_json_lines(
    synthetic_run: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """What the Learner follows: `lenet5 finetune --progress-json` writes JSON lines only."""
    directory, run = synthetic_run
    store, _ = _corrections(tmp_path, 40, seed=9)
    run_dir = tmp_path / "ft"
    argv = ["finetune", "--feedback", str(store.path), "--model", str(run)]
    argv += ["--run-dir", str(run_dir), "--data-dir", str(directory), "--progress-json"]
    assert main(argv) == 0
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    steps = [e for e in events if "step" in e]
    positions = [(e["epoch"], e["step"]) for e in steps]
    assert positions == sorted(set(positions))  # forward, never twice the same
    assert steps[-1]["epoch"] == steps[-1]["epochs"] and steps[-1]["step"] == steps[-1]["steps"]
    assert len(steps) <= 100 * steps[-1]["epochs"]  # a line per percent at most
    assert any(e.get("message", "").startswith("fine-tuning ") for e in events)
    assert events[-1] == {
        "result": json.loads((run_dir / "finetune.json").read_text()),
        "run_dir": str(run_dir),
    }
