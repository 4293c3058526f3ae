"""The server's corrections: POST /api/feedback stores one, GET /api/feedback counts them."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from lenet5.data.feedback import FeedbackError, FeedbackStore, StoreFull
from lenet5.data.shapes import NOT_A_DIGIT
from lenet5.inference.predict import Prediction
from lenet5.serving.uploads import ApiError, model_input, read_upload


def default_store_path() -> Path:
    """Where `lenet5 serve` keeps corrections unless --feedback names a file."""
    import platformdirs

    return Path(platformdirs.user_data_dir("lenet5")) / "feedback.sqlite"


class FeedbackCreated(BaseModel):
    id: int


class FeedbackCounts(BaseModel):
    file: str = Field(description="the SQLite file that keeps the corrections")
    total: int
    per_label: dict[str, int]
    limit: int = Field(description="the store refuses corrections beyond this many")


def _label(fields: dict[str, Any]) -> int:
    """A digit 0-9, or "not-a-digit" (NOT_A_DIGIT, 10) for a drawing that is no digit."""
    value = fields.get("label")
    if isinstance(value, str) and value.strip() in tuple("0123456789"):
        return int(value)
    if isinstance(value, str) and value.strip() == "not-a-digit":
        return NOT_A_DIGIT
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 9:
        return value
    raise ApiError(422, "label: give the right digit, 0-9, or not-a-digit")


def feedback_router(
    store: FeedbackStore,
    predict: Callable[[np.ndarray], Awaitable[Prediction]],
    model_name: Callable[[], str],
) -> APIRouter:
    """Routes that keep corrections in `store`; `predict` is the server's batched model."""
    router = APIRouter()

    @router.post(
        "/api/feedback",
        status_code=201,
        response_model=FeedbackCreated,
        summary="Keep a correction: an image (multipart 'file', or JSON 'pixels') and its label",
    )
    async def add(request: Request) -> JSONResponse:
        upload = await read_upload(request)
        label = _label(upload.fields)
        x = await model_input(upload)
        answer = await predict(x)
        try:
            row_id = await asyncio.get_running_loop().run_in_executor(
                None,
                store.add,
                label,
                answer.digit,
                answer.probabilities,
                answer.image,
                upload.raw,
                model_name(),
            )
        except StoreFull as exc:
            raise ApiError(507, str(exc)) from None
        except FeedbackError as exc:
            raise ApiError(503, str(exc)) from None
        return JSONResponse({"id": row_id}, status_code=201)

    @router.get("/api/feedback", response_model=FeedbackCounts)
    async def counts() -> FeedbackCounts:
        stats = await asyncio.get_running_loop().run_in_executor(None, store.stats)
        return FeedbackCounts(
            file=str(store.path.resolve()),
            total=stats["total"],
            per_label=stats["per_label"],
            limit=store.max_rows,
        )

    return router
