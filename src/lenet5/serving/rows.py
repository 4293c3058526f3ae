"""POST /api/predict?multi=true: a row of digits read as a number, each digit with its box."""

from __future__ import annotations

import asyncio
import functools
import json
from concurrent.futures import Executor

from fastapi import Response
from pydantic import BaseModel, Field

from lenet5.data.preprocess import ImageError
from lenet5.inference.engines import Model
from lenet5.inference.numbers import read_number
from lenet5.inference.sweep import load_row_reader
from lenet5.serving.uploads import ApiError, Upload, row_image


class DigitInRow(BaseModel):
    digit: int | None = Field(ge=0, le=9, description="the digit, or null: not a digit")
    reason: str | None = Field(None, description="why there is no digit: 'not a digit'")
    closest: int | None = Field(None, ge=0, le=9, description="with no digit: the closest one")
    probabilities: list[float] = Field(min_length=10, max_length=10)
    box: list[int] = Field(
        min_length=4, max_length=4, description="x0, y0, x1, y1 in the image's pixels"
    )
    preprocessed: list[list[int]] = Field(
        description="the 28x28 input the model read for this digit (0-255, white on black): "
        "the piece to send to /api/feedback as pixels (divided by 255) to correct this digit"
    )


class NumberResponse(BaseModel):
    number: str | None = Field(description="the digits read, or null: not all could be read")
    reason: str | None = Field(None, description="why there is no number")
    closest: str | None = Field(None, description="with no number: the closest reading")
    digits: list[DigitInRow] = Field(description="left to right")


async def read_row(executor: Executor, model: Model, upload: Upload) -> Response:
    """The number in an upload, as `lenet5 predict --multi --json` gives it (without the path,
    with each digit's input), read on `executor`: the thread that runs the model."""
    image = await row_image(upload)
    loop = asyncio.get_running_loop()
    try:
        reading = await loop.run_in_executor(
            executor, lambda: read_number(model, image, _row_reader())
        )
    except ImageError as exc:
        raise ApiError(422, str(exc)) from None
    answer = reading.answer()
    for digit, prediction in zip(answer["digits"], reading.digits, strict=True):
        digit["preprocessed"] = prediction.image.tolist()
    return Response(json.dumps(answer, separators=(",", ":")), media_type="application/json")


_row_reader = functools.cache(load_row_reader)  # the bundled row readers, loaded once
