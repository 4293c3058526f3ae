"""The pretrained model shipped inside the package: its files and its card (no torch here).

`weights/lenet5-robust.pt` holds the weights and config (loaded by `lenet5.inference.checkpoint`),
`lenet5-robust.onnx` the same network for onnxruntime (`lenet5.inference.predict.OnnxModel`), and
`lenet5-robust.json`, the card, records the SHA-256 of both files, checked before every load,
with the command that trains the model and the figures measured on it (docs/model-card.md).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from lenet5.config import BUNDLED_NAME
from lenet5.errors import Lenet5Error

WEIGHTS_DIR = Path(__file__).parents[1] / "weights"  # lenet5/weights
BUNDLED = WEIGHTS_DIR / f"{BUNDLED_NAME}.pt"
BUNDLED_ONNX = BUNDLED.with_suffix(".onnx")
BUNDLED_CARD = BUNDLED.with_suffix(".json")
CARD_KEYS = {".pt": "sha256", ".onnx": "onnx_sha256"}  # the card's digest of each file


class BundledError(Lenet5Error):
    """The bundled model's files are missing or damaged."""


def bundled_card(card: Path | None = None) -> dict[str, Any]:
    """The bundled model's card: digests, source run, recipe, measured accuracies."""
    card = card or BUNDLED_CARD
    try:
        values: dict[str, Any] = json.loads(card.read_text())
    except (OSError, ValueError) as exc:
        raise BundledError(
            f"{card}: the bundled model's card is unreadable ({exc}); reinstall lenet5"
        ) from None
    return values


def read_bundled(path: Path) -> bytes:
    """The bytes of a bundled file, refused unless their SHA-256 is the one recorded in the
    card beside it."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise BundledError(
            f"{path}: the bundled model is missing ({exc.strerror}); reinstall lenet5"
        ) from None
    card = path.with_suffix(".json")
    if hashlib.sha256(data).hexdigest() != bundled_card(card).get(CARD_KEYS[path.suffix]):
        raise BundledError(
            f"{path}: the bundled model is damaged (its SHA-256 differs from the one in "
            f"{card.name}); reinstall lenet5 or name another with --model"
        )
    return data
