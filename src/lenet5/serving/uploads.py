"""Reading what a client sends: an image file (multipart or raw body) or JSON pixels, capped;
then the model's input from it, decoded off the event loop."""

from __future__ import annotations

import asyncio
import io
import json
import os
import warnings
from collections.abc import AsyncGenerator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
from fastapi import Request
from PIL import Image
from pydantic import BaseModel, Field, ValidationError
from starlette.requests import ClientDisconnect

from lenet5.data.preprocess import SIZE, ImageError, load_image, preprocess

T = TypeVar("T")
MAX_BODY_BYTES = 5 * 2**20  # larger requests get 413
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


class ApiError(Exception):
    def __init__(self, status: int, detail: str) -> None:
        self.status, self.detail = status, detail


@dataclass
class Upload:
    raw: bytes | None  # the uploaded file's bytes (None for JSON pixels)
    pixels: Image.Image | None  # the image of JSON pixels (None for a file)
    fields: dict[str, Any]  # the other multipart fields or JSON keys


# Large images are decoded and preprocessed on these threads, off the event loop (Pillow's
# decoders and numpy release the GIL for most of the work), and no more images than threads are
# ever decoded at once: with load_image's early shrinking, each costs at most about 175 MB.
DECODE_THREADS = min(4, os.cpu_count() or 1)
_decoders = ThreadPoolExecutor(DECODE_THREADS, thread_name_prefix="lenet5-decode")
# Smaller ones (the page's drawings, MNIST-style inputs) are read on the event loop in about a
# millisecond: handing them to a thread cost a third of the throughput here (GIL hand-offs).
INLINE_PIXELS = 512 * 512


async def model_input(upload: Upload) -> np.ndarray:
    """The upload as the model's 28x28 input (422 for a file that is not a digit's image)."""
    return await _read(upload, read_digit, preprocess)


async def row_image(upload: Upload) -> Image.Image:
    """The upload as an image of a row of digits, decoded (422 for a file that is no image)."""
    return await _read(upload, load_image, lambda image: image)


async def _read(
    upload: Upload, from_file: Callable[[bytes], T], from_pixels: Callable[[Image.Image], T]
) -> T:
    """`from_file` on the upload's file (on a decoding thread when it is large) or
    `from_pixels` on its JSON pixels; an ImageError becomes a 422."""
    try:
        if upload.raw is None:
            assert upload.pixels is not None
            return from_pixels(upload.pixels)
        if _pixels(upload.raw) <= INLINE_PIXELS:
            return from_file(upload.raw)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(_decoders, from_file, upload.raw)
    except ImageError as exc:
        raise ApiError(422, str(exc)) from None


def _pixels(raw: bytes) -> int:
    """The pixel count in an image file's header (0 when there is none: load_image says why)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(raw)) as image:
                return image.width * image.height
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        return 0


def read_digit(raw: bytes) -> np.ndarray:
    return preprocess(load_image(raw))


async def _body(request: Request) -> bytes:
    """The request body, refused with 413 as soon as it passes MAX_BODY_BYTES."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise ApiError(413, f"request body over {MAX_BODY_BYTES // 2**20} MiB")
    chunks, size = [], 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > MAX_BODY_BYTES:
                raise ApiError(413, f"request body over {MAX_BODY_BYTES // 2**20} MiB")
            chunks.append(chunk)
    except ClientDisconnect:  # gone, or closed by the read timeout: nobody reads the answer
        raise ApiError(408, "the client stopped sending its body") from None
    return b"".join(chunks)


async def read_upload(request: Request) -> Upload:
    """An image from a multipart upload (its 'file' field), a raw image body or JSON pixels,
    with the request's other form fields or JSON keys."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    body = await _body(request)
    if not body:
        raise ApiError(400, 'empty request: send an image file or JSON {"pixels": ...}')
    fields: dict[str, Any] = {}
    if content_type == "application/json":
        image, fields = _pixels_image(body)
        return Upload(None, image, fields)
    if content_type == "multipart/form-data":
        raw, fields = await _multipart(request, body)
    elif content_type.startswith("image/") or content_type == "application/octet-stream":
        raw = body
    else:
        raise ApiError(
            415,
            f"unsupported content type {content_type or '(none)'!r}: send an "
            "image (multipart file or raw body) or application/json",
        )
    return Upload(raw, None, fields)


async def _multipart(request: Request, body: bytes) -> tuple[bytes, dict[str, Any]]:
    """The 'file' field's bytes and the other (text) fields of a multipart body."""
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
    fields = {k: v for k, v in form.items() if isinstance(v, str)}
    return await upload.read(), fields


def _pixels_image(body: bytes) -> tuple[Image.Image, dict[str, Any]]:
    """The image of a JSON {"pixels": ...} body, and the body's other keys."""
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
    fields = {k: v for k, v in payload.items() if k != "pixels"}
    return Image.fromarray(np.round(array * 255).astype(np.uint8)), fields
