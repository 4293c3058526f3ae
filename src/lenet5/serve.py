"""`lenet5 serve`: a page to draw digits on, and a JSON API, over the one inference path."""

from __future__ import annotations

import asyncio
import gc
import json
import subprocess
import time
from collections.abc import AsyncGenerator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import torch
from fastapi import FastAPI, Request, Response
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from PIL import Image
from pydantic import BaseModel, Field, ValidationError
from torch import nn

from lenet5.checkpoint import BUNDLED, BUNDLED_NAME, LAST, bundled_card, resolve_checkpoint
from lenet5.config import TrainConfig
from lenet5.models import count_parameters
from lenet5.predict import Prediction, predict_inputs
from lenet5.preprocess import SIZE, ImageError, load_image, preprocess
from lenet5.summary import layer_table

MAX_BODY_BYTES = 5 * 2**20  # larger requests get 413
STATIC = Path(__file__).parent / "static"
IMAGE_TYPES = ("image/png", "image/jpeg", "image/bmp", "image/gif", "image/webp", "image/tiff")


class Pixels(BaseModel):
    """A 28x28 image as numbers in [0, 1]: 0 is the background (white digit on black, like
    MNIST) or, if most pixels are light, the paper (dark digit on white)."""

    pixels: list[list[float]] = Field(
        min_length=SIZE,
        max_length=SIZE,
        json_schema_extra={
            "items": {
                "type": "array",
                "minItems": SIZE,
                "maxItems": SIZE,
                "items": {"type": "number", "minimum": 0, "maximum": 1},
            }
        },
    )


class PredictResponse(BaseModel):
    digit: int = Field(ge=0, le=9)
    probabilities: list[float] = Field(min_length=10, max_length=10)
    preprocessed: list[list[int]] = Field(description="the 28x28 input the model saw, 0-255")


class ErrorResponse(BaseModel):
    detail: str


class ModelInfo(BaseModel):
    name: str = Field(description=f"'{BUNDLED_NAME} (bundled)' or the checkpoint's path")
    bundled: bool = Field(description="whether this is the model shipped inside the package")
    architecture: str
    parameters: int
    layers: list[dict[str, Any]]
    test_accuracy: float | None
    checkpoint: str
    training_config: dict[str, Any]


class ApiError(Exception):
    def __init__(self, status: int, detail: str) -> None:
        self.status, self.detail = status, detail


_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse} for code in (400, 413, 415, 422)
}
_PREDICT_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {"file": {"type": "string", "format": "binary"}},
                }
            },
            **{t: {"schema": {"type": "string", "format": "binary"}} for t in IMAGE_TYPES},
            "application/json": {"schema": {"$ref": "#/components/schemas/Pixels"}},
        },
    }
}


class Batcher:
    """Runs the model on the inputs of concurrent requests as one batch, in a worker thread.

    While the worker computes one batch (torch releases the GIL, so the event loop goes on
    reading and preprocessing requests on the other core), the next batch gathers. Measured
    here with one thread: 316 us for one image, 1.29 ms for 16; under 32 concurrent clients
    this took the server from 812 to 1,276 requests/s and p99 from 59 to 36 ms.
    """

    MAX_BATCH = 64

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self.pending: list[tuple[np.ndarray, asyncio.Future[Prediction]]] = []
        self.executor = ThreadPoolExecutor(1, thread_name_prefix="lenet5-model")
        self.task: asyncio.Task[None] | None = None

    async def predict(self, x: np.ndarray) -> Prediction:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Prediction] = loop.create_future()
        self.pending.append((x, future))
        # A test client may run each request in a new event loop: a drain task of another
        # loop does not count.
        if self.task is None or self.task.done() or self.task.get_loop() is not loop:
            self.task = loop.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        while self.pending:
            batch = self.pending[: self.MAX_BATCH]
            del self.pending[: self.MAX_BATCH]
            inputs = [x for x, _ in batch]
            try:
                results = await loop.run_in_executor(
                    self.executor, predict_inputs, self.model, inputs
                )
            except Exception as exc:  # handed to every waiting request
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (_, future), result in zip(batch, results, strict=True):
                if not future.done():  # the client may have gone
                    future.set_result(result)


def _recorded_test_accuracy(checkpoint: Path) -> float | None:
    """The test accuracy the run (or the bundled model's card) recorded, when `checkpoint` is
    its final one."""
    if checkpoint == BUNDLED:
        return float(bundled_card()["test_accuracy"])
    summary = checkpoint.parent.parent / "summary.json"
    if checkpoint.name != LAST.name or not summary.is_file():
        return None
    try:
        return float(json.loads(summary.read_text())["test_accuracy"])
    except (ValueError, KeyError, TypeError):
        return None


def create_app(model: nn.Module, config: TrainConfig, checkpoint: str | Path | None) -> FastAPI:
    """The web app around a loaded model (checkpoint None: the bundled one)."""
    checkpoint = resolve_checkpoint(checkpoint)
    info = ModelInfo(
        name=f"{BUNDLED_NAME} (bundled)" if checkpoint == BUNDLED else str(checkpoint),
        bundled=checkpoint == BUNDLED,
        architecture=config.model,
        parameters=count_parameters(model),
        layers=[{**r, "output_shape": list(r["output_shape"])} for r in layer_table(model)],
        test_accuracy=_recorded_test_accuracy(checkpoint),
        checkpoint=str(checkpoint),
        training_config=config.to_dict(),
    )
    batcher = Batcher(model)
    app = FastAPI(title="lenet5", version="1", description="Read handwritten digits with LeNet-5.")
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.exception_handler(ApiError)
    async def api_error(_request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse({"detail": exc.detail}, status_code=exc.status)

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    @app.get("/api/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/api/model", response_model=ModelInfo)
    def model_info() -> ModelInfo:
        return info

    @app.post(
        "/api/predict",
        response_model=PredictResponse,
        responses=_ERRORS,
        openapi_extra=_PREDICT_BODY,
        summary="Read the digit in an image file, raw image bytes or 28x28 pixels",
    )
    async def predict(request: Request) -> Response:
        image = await _read_image(request)
        try:
            x = preprocess(image)
        except ImageError as exc:
            raise ApiError(422, str(exc)) from None
        result = await batcher.predict(x)
        # Built by hand: validating 784 numbers again per request would cost a tenth of the
        # request's time; the shape is PredictResponse's (the fuzz test checks every answer).
        body = {
            "digit": result.digit,
            "probabilities": result.probabilities,
            "preprocessed": result.image.tolist(),
        }
        return Response(json.dumps(body, separators=(",", ":")), media_type="application/json")

    original_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        """The generated schema, plus the Pixels body that openapi_extra refers to."""
        schema = original_openapi()
        schema.setdefault("components", {}).setdefault("schemas", {})["Pixels"] = (
            Pixels.model_json_schema()
        )
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


async def _body(request: Request) -> bytes:
    """The request body, refused with 413 as soon as it passes MAX_BODY_BYTES."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise ApiError(413, f"request body over {MAX_BODY_BYTES // 2**20} MiB")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise ApiError(413, f"request body over {MAX_BODY_BYTES // 2**20} MiB")
        chunks.append(chunk)
    return b"".join(chunks)


async def _read_image(request: Request) -> Image.Image:
    """An image from a multipart upload, a raw image body or JSON pixels."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    body = await _body(request)
    if not body:
        raise ApiError(400, 'empty request: send an image file or JSON {"pixels": ...}')
    if content_type == "application/json":
        return _pixels_image(body)
    if content_type == "multipart/form-data":
        raw = await _multipart_file(request, body)
    elif content_type.startswith("image/") or content_type == "application/octet-stream":
        raw = body
    else:
        raise ApiError(
            415,
            f"unsupported content type {content_type or '(none)'!r}: send an "
            "image (multipart file or raw body) or application/json",
        )
    try:
        return load_image(raw)
    except ImageError as exc:
        raise ApiError(422, str(exc)) from None


async def _multipart_file(request: Request, body: bytes) -> bytes:
    from starlette.datastructures import UploadFile
    from starlette.formparsers import MultiPartException, MultiPartParser

    async def replay() -> AsyncGenerator[bytes, None]:
        yield body

    try:
        form = await MultiPartParser(request.headers, replay()).parse()
    except (MultiPartException, ValueError, KeyError) as exc:
        raise ApiError(422, f"malformed multipart body ({exc})") from None
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        raise ApiError(422, "multipart body has no 'file' field")
    return await upload.read()


def _pixels_image(body: bytes) -> Image.Image:
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise ApiError(422, "body is not valid JSON") from None
    try:
        pixels = Pixels.model_validate(payload).pixels
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        raise ApiError(422, f"{where}: {first['msg']}") from None
    if any(len(row) != SIZE for row in pixels):
        raise ApiError(422, f"pixels must be {SIZE} rows of {SIZE} numbers")
    array = np.asarray(pixels, dtype=np.float64)
    if not np.isfinite(array).all() or array.min() < 0 or array.max() > 1:
        raise ApiError(422, "pixels must be finite numbers in [0, 1]")
    return Image.fromarray(np.round(array * 255).astype(np.uint8))


def serve(checkpoint: str | Path | None, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Run the app with uvicorn until Ctrl-C or SIGTERM (checkpoint None: the bundled model)."""
    import uvicorn

    from lenet5.checkpoint import load_model

    # The model sees one image or a small batch at a time: one thread, and PyTorch's own
    # convolution, which takes 180 us per image here against oneDNN's 330 us.
    torch.set_num_threads(1)
    torch.backends.mkldnn.enabled = False  # type: ignore[assignment]
    model, config = load_model(checkpoint)
    app = create_app(model, config, checkpoint)
    # The garbage collector need not scan the long-lived objects of torch, FastAPI and the
    # model on every collection; fewer, cheaper collections shorten the latency tail.
    gc.collect()
    gc.freeze()
    # httptools parses HTTP in C; the plain asyncio loop keeps latency even under load (with
    # uvloop, p99 rose from 49 to 230 ms at 32 clients here).
    uvicorn.run(
        app,
        host=host,
        port=port,
        access_log=True,
        timeout_graceful_shutdown=5,
        loop="asyncio",
        http="httptools",
    )


def wait_until_serving(url: str, server: subprocess.Popen, timeout: float = 60.0) -> float:
    """Poll `url`/api/health until it answers; the seconds it took. Raises RuntimeError if the
    server process exits or `timeout` passes first."""
    import urllib.request

    started = time.monotonic()
    while True:
        try:
            urllib.request.urlopen(url + "/api/health", timeout=1)
            return time.monotonic() - started
        except OSError:
            if server.poll() is not None or time.monotonic() - started > timeout:
                raise RuntimeError(f"the server at {url} did not start") from None
            time.sleep(0.02)
