"""`lenet5 serve`: a page to draw digits on, and a JSON API, over the one inference path."""

from __future__ import annotations

import asyncio
import functools
import gc
import json
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import torch
from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field
from torch import nn

from lenet5.config import BUNDLED_NAME, ServeLimits, TrainConfig
from lenet5.data.feedback import FeedbackStore
from lenet5.errors import Lenet5Error
from lenet5.inference.bundled import BUNDLED, bundled_card
from lenet5.inference.checkpoint import LAST, resolve_checkpoint
from lenet5.inference.engines import Model, OnnxModel
from lenet5.inference.explain import explain as explain_digit
from lenet5.inference.export import to_onnx
from lenet5.inference.predict import Prediction, load_inference_model, predict_inputs
from lenet5.models import count_parameters
from lenet5.serving.connections import BoundedProtocol, usable_connections
from lenet5.serving.feedback import default_store_path, feedback_router
from lenet5.serving.learn import Learner, learn_router
from lenet5.serving.rows import NumberResponse, read_row
from lenet5.serving.uploads import (
    IMAGE_TYPES,
    ApiError,
    Pixels,
    model_input,
    read_upload,
)
from lenet5.summary import layer_table

STATIC = Path(__file__).parent / "static"


class Inside(BaseModel):
    layers: dict[str, list[list[list[float]]]] = Field(
        description="conv1 (6 maps 28x28), pool1 (6 x 14x14), conv2 (16 x 10x10), pool2 "
        "(16 x 5x5): each layer's output after ReLU"
    )
    saliency: list[list[float]] = Field(
        description="28x28 integrated gradients of the digit's logit from a black image"
    )
    delta: float = Field(description="saliency sum minus the logit difference it explains")
    kernels: list[list[list[float]]] = Field(
        description="conv1's six learned 5x5 kernels, one per conv1 map"
    )


class PredictResponse(BaseModel):
    digit: int | None = Field(
        ge=0, le=9, description="the digit read, or null: not a digit (see reason and closest)"
    )
    reason: str | None = Field(None, description="why there is no digit: 'not a digit'")
    closest: int | None = Field(None, ge=0, le=9, description="with no digit: the closest one")
    probabilities: list[float] = Field(min_length=10, max_length=10)
    preprocessed: list[list[int]] = Field(description="the 28x28 input the model saw, 0-255")
    explain: Inside | None = Field(None, description="with ?explain=true: inside the network")


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
    engine: str = Field(description="what runs the model: onnxruntime or torch")
    training_config: dict[str, Any]


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

    def __init__(self, model: Model) -> None:
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


def describe(model: nn.Module, config: TrainConfig, checkpoint: Path, engine: str) -> ModelInfo:
    """What GET /api/model says of a served model."""
    return ModelInfo(
        name=f"{BUNDLED_NAME} (bundled)" if checkpoint == BUNDLED else str(checkpoint),
        bundled=checkpoint == BUNDLED,
        architecture=config.model,
        parameters=count_parameters(model),
        layers=[{**r, "output_shape": list(r["output_shape"])} for r in layer_table(model)],
        test_accuracy=_recorded_test_accuracy(checkpoint),
        checkpoint=str(checkpoint),
        engine=engine,
        training_config=config.to_dict(),
    )


def serving_model(model: nn.Module, checkpoint: Path, engine: str) -> tuple[Model, str]:
    """What runs `model` in the server, and a note when onnxruntime was wanted but cannot run
    it. engine "onnx" or "auto": onnxruntime (the bundled model's shipped ONNX file, any other
    exported in memory), "auto" falling back to PyTorch; "torch": PyTorch."""
    if engine == "torch":
        return model, ""
    try:
        if checkpoint == BUNDLED:
            return load_inference_model(None, "onnx")[0], ""
        return to_onnx(model), ""
    except Lenet5Error as exc:
        if engine == "onnx":
            raise
        return model, f"{exc}; serving on PyTorch"


def create_app(
    model: nn.Module,
    config: TrainConfig,
    checkpoint: str | Path | None,
    feedback: FeedbackStore | None = None,
    learning: bool | str = True,
    data_dir: str | Path | None = None,
    engine: str = "torch",
) -> FastAPI:
    """The web app around a loaded model (checkpoint None: the bundled one). With a feedback
    store, the routes that keep corrections and learn from them too; `learning` is True, or
    why POST /api/learn is refused; `data_dir` holds MNIST for the fine-tuning; `engine` says
    what runs the model (`serving_model`)."""
    batcher = Batcher(model)
    served: dict[str, Any] = {}  # info: ModelInfo; model: the PyTorch model (for explain)

    def use(new_model: nn.Module, new_config: TrainConfig, path: Path) -> None:
        runner, note = serving_model(new_model, path, engine)
        if note:
            print(f"lenet5: {note}", flush=True)
        batcher.model = runner
        kind = "onnxruntime" if isinstance(runner, OnnxModel) else "torch"
        served["info"] = describe(new_model, new_config, path, kind)
        served["model"] = new_model

    use(model, config, resolve_checkpoint(checkpoint))
    app = FastAPI(title="lenet5", version="1", description="Read handwritten digits with LeNet-5.")
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    def swap(new_model: nn.Module, new_config: TrainConfig, run_dir: str) -> None:
        """Serve `new_model` from the next batch on (requests in flight finish on the old)."""
        use(new_model, new_config, resolve_checkpoint(run_dir))

    if feedback is not None:
        app.include_router(feedback_router(feedback, batcher.predict, lambda: served["info"].name))
        learner = Learner(
            feedback,
            lambda: None if served["info"].bundled else served["info"].checkpoint,
            swap,
            data_dir,
        )
        app.include_router(
            learn_router(learner, learning is True, learning if isinstance(learning, str) else "")
        )

    @app.exception_handler(ApiError)
    async def api_error(_request: Request, exc: ApiError) -> JSONResponse:
        # A body refused unread (too large, or stalled) leaves the connection unusable.
        close = {"Connection": "close"} if exc.status in (408, 413) else None
        return JSONResponse({"detail": exc.detail}, status_code=exc.status, headers=close)

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    app.include_router(_reading_router(batcher, served))
    _add_pixels_schema(app)
    return app


def _reading_router(batcher: Batcher, served: dict[str, Any]) -> APIRouter:
    """GET /api/health, GET /api/model and POST /api/predict, over the batcher and the model
    in service (`served`: its ModelInfo and its PyTorch module)."""
    router = APIRouter()

    @router.get("/api/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/api/model", response_model=ModelInfo)
    def model_info() -> ModelInfo:
        info: ModelInfo = served["info"]
        return info

    @router.post(
        "/api/predict",
        response_model=PredictResponse | NumberResponse,
        responses=_ERRORS,
        openapi_extra=_PREDICT_BODY,
        summary="Read the digit (or, with ?multi=true, the number) in an image file, raw "
        "image bytes or 28x28 pixels",
    )
    async def predict(request: Request, explain: bool = False, multi: bool = False) -> Response:
        upload = await read_upload(request)
        if multi:
            if explain:
                raise ApiError(400, "explain shows one digit: not with multi")
            return await read_row(batcher.executor, batcher.model, upload)
        x = await model_input(upload)
        result = await batcher.predict(x)
        # Built by hand: validating 784 numbers again per request would cost a tenth of the
        # request's time; the shape is PredictResponse's (the fuzz test checks every answer).
        body: dict[str, Any] = {**result.answer(), "preprocessed": result.image.tolist()}
        if explain:
            loop = asyncio.get_running_loop()
            try:
                inside = await loop.run_in_executor(
                    batcher.executor, explain_digit, served["model"], x, result.digit
                )
            except Lenet5Error as exc:  # a softmax-regression model has no layers to show
                raise ApiError(400, str(exc)) from None
            body["explain"] = inside.to_json()
        return Response(json.dumps(body, separators=(",", ":")), media_type="application/json")

    return router


def _add_pixels_schema(app: FastAPI) -> None:
    """Add the Pixels body that POST /api/predict's openapi_extra refers to."""
    original_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        """The generated schema, plus the Pixels body that openapi_extra refers to."""
        schema = original_openapi()
        schema.setdefault("components", {}).setdefault("schemas", {})["Pixels"] = (
            Pixels.model_json_schema()
        )
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def learning_policy(host: str, allow_learning: bool) -> bool | str:
    """True where POST /api/learn may run: on loopback, or elsewhere when allowed; else why not."""
    if allow_learning or host in ("127.0.0.1", "::1", "localhost"):
        return True
    return (
        f"learning from the page is off on {host}: start the server with --allow-learning to "
        "let its clients change the model"
    )


def serve(
    checkpoint: str | Path | None,
    host: str = "127.0.0.1",
    port: int = 8000,
    feedback: str | Path | None = None,
    allow_learning: bool = False,
    limits: ServeLimits | None = None,
    engine: str = "auto",
) -> None:
    """Run the app with uvicorn until Ctrl-C or SIGTERM (checkpoint None: the bundled model;
    feedback None: corrections go to `default_store_path()`). Learning from the page is on
    where the server binds to loopback, elsewhere only with `allow_learning`."""
    import uvicorn

    from lenet5.inference.checkpoint import load_model

    model, config = load_model(checkpoint)
    store = FeedbackStore(feedback or default_store_path())
    # The model sees one image or a small batch at a time: one thread, and PyTorch's own
    # convolution, which takes 180 us per image here against oneDNN's 330 us. (Set only once
    # the model and store are open: a refused one leaves the process as it was.)
    torch.set_num_threads(1)
    torch.backends.mkldnn.enabled = False  # type: ignore[assignment]
    print(f"corrections are kept in {store.path.resolve()}", flush=True)
    app = create_app(
        model, config, checkpoint, store, learning_policy(host, allow_learning), engine=engine
    )
    # The garbage collector need not scan the long-lived objects of torch, FastAPI and the
    # model on every collection; fewer, cheaper collections shorten the latency tail.
    gc.collect()
    gc.freeze()
    # httptools parses HTTP in C; the plain asyncio loop keeps latency even under load (with
    # uvloop, p99 rose from 49 to 230 ms at 32 clients here).
    limits = limits or ServeLimits()
    max_connections = usable_connections(limits.max_connections)
    if max_connections < limits.max_connections:
        print(f"open-file limit: at most {max_connections} connections", flush=True)
    uvicorn.run(
        app,
        host=host,
        port=port,
        access_log=True,
        timeout_graceful_shutdown=5,
        timeout_keep_alive=limits.keep_alive,  # type: ignore[arg-type]
        loop="asyncio",
        http=functools.partial(  # type: ignore[arg-type]
            BoundedProtocol, read_timeout=limits.read_timeout, max_connections=max_connections
        ),
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
