"""POST /api/feedback and GET /api/feedback through FastAPI's test client."""

from __future__ import annotations

import http.client
import io
import time
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from lenet5.data.feedback import FeedbackStore
from lenet5.inference.checkpoint import load_model
from lenet5.inference.predict import predict_image
from lenet5.serving.app import create_app
from lenet5.serving.uploads import MAX_BODY_BYTES


def _png(array: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(array).save(out, format="PNG")
    return out.getvalue()


def _drawing() -> np.ndarray:
    """A dark 1 on white paper, 100x100."""
    paper = np.full((100, 100), 255, np.uint8)
    paper[15:85, 45:55] = 20
    return paper


@pytest.fixture
def store(tmp_path: Path) -> FeedbackStore:
    return FeedbackStore(tmp_path / "fb.sqlite", max_rows=5)


@pytest.fixture
def client(synthetic_run: tuple[Path, Path], store: FeedbackStore) -> TestClient:
    model, config = load_model(synthetic_run[1])
    return TestClient(create_app(model, config, synthetic_run[1], store))


def test_multipart_correction_is_stored_with_the_models_answer(
    client: TestClient, store: FeedbackStore, synthetic_run: tuple[Path, Path]
) -> None:
    png = _png(_drawing())
    answer = client.post("/api/feedback", files={"file": ("d.png", png)}, data={"label": "1"})
    assert answer.status_code == 201, answer.text
    (row,) = store.corrections()
    assert answer.json() == {"id": row.id}
    model, _ = load_model(synthetic_run[1])
    expected = predict_image(model, Image.open(io.BytesIO(png)))
    assert row.label == 1 and row.predicted == expected.digit
    assert row.probabilities == pytest.approx(expected.probabilities, abs=1e-6)
    assert np.array_equal(row.input, expected.image)
    assert row.image == png
    assert row.model == str(synthetic_run[1] / "checkpoints" / "last.pt")


def test_json_pixels_correction(client: TestClient, store: FeedbackStore) -> None:
    pixels = (_drawing()[::4, ::4][:25, :25] / 255).tolist()
    padded = [[1.0] * 28 for _ in range(28)]
    for r, row in enumerate(pixels):
        padded[r + 1][1 : 1 + len(row)] = row
    answer = client.post("/api/feedback", json={"pixels": padded, "label": 7})
    assert answer.status_code == 201, answer.text
    (row,) = store.corrections()
    assert row.label == 7 and row.image is None


@pytest.mark.parametrize(
    ("data", "status", "detail"),
    [
        ({"label": "10"}, 422, "label"),
        ({"label": "x"}, 422, "label"),
        ({}, 422, "label"),
        ({"label": "-1"}, 422, "label"),
    ],
)
def test_bad_labels_store_nothing(
    client: TestClient, store: FeedbackStore, data: dict, status: int, detail: str
) -> None:
    answer = client.post("/api/feedback", files={"file": ("d.png", _png(_drawing()))}, data=data)
    assert answer.status_code == status and detail in answer.json()["detail"]
    assert store.count() == 0


def test_bad_images_and_bodies_store_nothing(client: TestClient, store: FeedbackStore) -> None:
    blank = _png(np.full((50, 50), 255, np.uint8))
    for files, status, detail in [
        ({"file": ("b.png", blank)}, 422, "no ink"),
        ({"file": ("t.png", b"not an image")}, 422, "not an image"),
    ]:
        answer = client.post("/api/feedback", files=files, data={"label": "3"})
        assert answer.status_code == status and detail in answer.json()["detail"]
    huge = client.post(
        "/api/feedback",
        content=b"\0" * (MAX_BODY_BYTES + 1),
        headers={"Content-Type": "image/png"},
    )
    assert huge.status_code == 413
    json_bad = client.post("/api/feedback", json={"pixels": [[0.5]], "label": 3})
    assert json_bad.status_code == 422
    assert client.post("/api/feedback", json={"pixels": "x", "label": True}).status_code == 422
    assert store.count() == 0


def test_a_full_store_answers_507(client: TestClient, store: FeedbackStore) -> None:
    png = _png(_drawing())
    for _ in range(5):
        assert (
            client.post(
                "/api/feedback", files={"file": ("d", png)}, data={"label": "1"}
            ).status_code
            == 201
        )
    full = client.post("/api/feedback", files={"file": ("d", png)}, data={"label": "1"})
    assert full.status_code == 507 and "is full" in full.json()["detail"]
    assert store.count() == 5


def test_counts_say_where_corrections_are_kept(client: TestClient, store: FeedbackStore) -> None:
    png = _png(_drawing())
    for label in ("1", "1", "4"):
        client.post("/api/feedback", files={"file": ("d.png", png)}, data={"label": label})
    counts = client.get("/api/feedback").json()
    assert counts["file"] == str(store.path.resolve())
    assert counts["total"] == 3 and counts["per_label"]["1"] == 2 and counts["per_label"]["4"] == 1
    answer = client.post(
        "/api/feedback", files={"file": ("d.png", png)}, data={"label": "not-a-digit"}
    )
    assert answer.status_code == 201
    assert client.get("/api/feedback").json()["per_label"]["not-a-digit"] == 1
    assert counts["limit"] == 5


def test_kill_9_of_the_server_loses_no_acknowledged_correction(
    synthetic_run: tuple[Path, Path], tmp_path: Path
) -> None:
    """Four clients send corrections; the server is killed with SIGKILL mid-burst. Every
    correction that got its 201 is in the file, and the file passes integrity_check."""
    import json as json_module
    import signal
    import sqlite3
    import subprocess
    import sys
    import threading
    import urllib.request

    from lenet5.serving.app import wait_until_serving
    from test_serve import _free_port

    port = _free_port()
    store = tmp_path / "fb.sqlite"
    server = subprocess.Popen(
        [
            *(sys.executable, "-m", "lenet5", "serve", "--model", str(synthetic_run[1])),
            *("--port", str(port), "--feedback", str(store)),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    wait_until_serving(url, server, timeout=60)
    pixels = np.ones((28, 28))
    pixels[4:24, 12:16] = 0.1  # a dark 1 on light paper
    payload = json_module.dumps({"pixels": pixels.tolist(), "label": 1})
    acknowledged: list[int] = []

    def client() -> None:
        while True:
            request = urllib.request.Request(
                url + "/api/feedback",
                data=payload.encode(),
                headers={"Content-Type": "application/json"},
            )
            try:
                with urllib.request.urlopen(request, timeout=5) as answer:
                    assert answer.status == 201
                    acknowledged.append(json_module.loads(answer.read())["id"])
            except (OSError, http.client.HTTPException):
                return  # the server is gone (a reply cut short was never acknowledged)

    clients = [threading.Thread(target=client) for _ in range(4)]
    for c in clients:
        c.start()
    while len(acknowledged) < 100:
        time.sleep(0.01)
    server.send_signal(signal.SIGKILL)
    server.wait()
    for c in clients:
        c.join()
    db = sqlite3.connect(store)
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    stored = {row[0] for row in db.execute("SELECT id FROM corrections")}
    assert len(acknowledged) >= 100
    assert set(acknowledged) <= stored
