"""Corrections of the model's answers, kept in one SQLite file (WAL, versioned schema, capped).

Each row holds what is needed to learn from it and to audit it later: the label the user gave
(a digit, or NOT_A_DIGIT: the drawing is no digit at all),
the digit and probabilities the model answered, the 28x28 input the model saw, the uploaded
image's bytes (when under MAX_IMAGE_BYTES) and the model that answered. A row is committed with
synchronous=FULL before `add` returns, so a correction that was acknowledged survives a crash
of the process (or of the machine) at any later moment.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lenet5.config import TrainConfig
from lenet5.data.mnist import Split
from lenet5.data.shapes import NOT_A_DIGIT
from lenet5.errors import Lenet5Error

SCHEMA_VERSION = 2  # 2: labels may be NOT_A_DIGIT (10); version 1 files are upgraded
MAX_ROWS = 100_000  # the store refuses corrections beyond this many
MAX_IMAGE_BYTES = 1 << 20  # larger uploads keep only their 28x28 input
BUSY_TIMEOUT_MS = 5_000  # how long a writer waits for another one
SIZE = 28

_SCHEMA = """
CREATE TABLE {table} (
    id INTEGER PRIMARY KEY,
    created TEXT NOT NULL,                          -- UTC, ISO 8601
    label INTEGER NOT NULL CHECK (label BETWEEN 0 AND 10), -- 10: not a digit
    predicted INTEGER NOT NULL CHECK (predicted BETWEEN 0 AND 9),
    probabilities TEXT NOT NULL,                    -- JSON list of 10 numbers
    input BLOB NOT NULL CHECK (length(input) = 784), -- the 28x28 uint8 input, row by row
    image BLOB,                                     -- the upload, when under the cap
    model TEXT NOT NULL                             -- which model answered
)
"""


def label_name(label: int) -> str:
    """How a label is written in counts and file names: "7", or "not-a-digit"."""
    return "not-a-digit" if label == NOT_A_DIGIT else str(label)


class FeedbackError(Lenet5Error):
    """A feedback store that cannot be opened, read or written."""


class StoreFull(FeedbackError):
    """The store holds its maximum number of corrections."""


@dataclass
class Correction:
    id: int
    created: str
    label: int
    predicted: int
    probabilities: list[float]
    input: np.ndarray  # (28, 28) uint8
    image: bytes | None
    model: str


class FeedbackStore:
    """One SQLite file of corrections; safe to use from several threads of one process."""

    def __init__(self, path: str | Path, max_rows: int = MAX_ROWS) -> None:
        self.path, self.max_rows = Path(path), max_rows
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(
                self.path,
                timeout=BUSY_TIMEOUT_MS / 1000,
                isolation_level=None,  # explicit transactions below
                check_same_thread=False,
            )
            self._db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise FeedbackError(
                    f"{self.path}: feedback store of schema version {version}, newer than this "
                    f"lenet5 reads ({SCHEMA_VERSION}); upgrade lenet5"
                )
            self._db.execute("PRAGMA journal_mode = WAL")
            self._db.execute("PRAGMA synchronous = FULL")
            if version == 0:
                tables = self._db.execute("SELECT name FROM sqlite_master").fetchall()
                if tables:
                    raise FeedbackError(f"{self.path}: an SQLite file, but not a feedback store")
                self._db.execute("BEGIN IMMEDIATE")
                self._db.execute(_SCHEMA.format(table="corrections"))
                self._db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                self._db.execute("COMMIT")
            elif version == 1:
                self._upgrade_from_1()
        except sqlite3.DatabaseError as exc:
            raise FeedbackError(f"{self.path}: not a usable feedback store ({exc})") from None

    def _upgrade_from_1(self) -> None:
        """Version 1 allowed digit labels only; SQLite cannot change a CHECK in place, so the
        rows move to a table of the new schema, in one transaction (all or nothing)."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            if self._db.execute("PRAGMA user_version").fetchone()[0] == 1:  # not done meanwhile
                self._db.execute(_SCHEMA.format(table="corrections_2"))
                self._db.execute("INSERT INTO corrections_2 SELECT * FROM corrections")
                self._db.execute("DROP TABLE corrections")
                self._db.execute("ALTER TABLE corrections_2 RENAME TO corrections")
                self._db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> FeedbackStore:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def add(
        self,
        label: int,
        predicted: int,
        probabilities: list[float],
        pixels: np.ndarray,
        image: bytes | None,
        model: str,
    ) -> int:
        """Store one correction durably; its id. Raises StoreFull when at the cap."""
        if not 0 <= label <= NOT_A_DIGIT:
            raise FeedbackError(
                f"label must be a digit 0-9 or {NOT_A_DIGIT} (not a digit), got {label}"
            )
        if pixels.shape != (SIZE, SIZE) or pixels.dtype != np.uint8:
            raise FeedbackError(f"the input must be 28x28 uint8, got {pixels.shape}")
        if image is not None and len(image) > MAX_IMAGE_BYTES:
            image = None
        row = (
            datetime.now(UTC).isoformat(timespec="milliseconds"),
            int(label),
            int(predicted),
            json.dumps([float(p) for p in probabilities]),
            pixels.tobytes(),
            image,
            model,
        )
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    (count,) = self._db.execute("SELECT count(*) FROM corrections").fetchone()
                    if count >= self.max_rows:
                        raise StoreFull(
                            f"{self.path} is full ({count:,} corrections, the limit); export "
                            "and start a new file, or raise the limit"
                        )
                    cursor = self._db.execute(
                        "INSERT INTO corrections (created, label, predicted, probabilities, "
                        "input, image, model) VALUES (?, ?, ?, ?, ?, ?, ?)",
                        row,
                    )
                    self._db.execute("COMMIT")
                except BaseException:
                    if self._db.in_transaction:  # SQLite ends it itself on a full disk
                        self._db.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                if getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL:
                    raise StoreFull(f"{self.path}: cannot store the correction ({exc})") from None
                raise FeedbackError(f"{self.path}: cannot store the correction ({exc})") from None
        assert cursor.lastrowid is not None
        return cursor.lastrowid

    def count(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT count(*) FROM corrections").fetchone()[0])

    def last_id(self) -> int:
        """The newest correction's id (0: none)."""
        with self._lock:
            return int(
                self._db.execute("SELECT coalesce(max(id), 0) FROM corrections").fetchone()[0]
            )

    def stats(self) -> dict[str, Any]:
        """total, per label, and per (predicted, label) pair."""
        with self._lock:
            pairs = self._db.execute(
                "SELECT predicted, label, count(*) FROM corrections GROUP BY predicted, label"
            ).fetchall()
        per_label = {label_name(d): 0 for d in range(NOT_A_DIGIT + 1)}
        for _, label, n in pairs:
            per_label[label_name(label)] += n
        return {
            "total": sum(n for _, _, n in pairs),
            "per_label": per_label,
            "pairs": [{"predicted": p, "label": lab, "count": n} for p, lab, n in pairs],
        }

    def corrections(self) -> Iterator[Correction]:
        """Every correction, oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id, created, label, predicted, probabilities, input, image, model "
                "FROM corrections ORDER BY id"
            ).fetchall()
        for id_, created, label, predicted, probabilities, raw, image, model in rows:
            pixels = np.frombuffer(raw, dtype=np.uint8).reshape(SIZE, SIZE).copy()
            yield Correction(
                id_, created, label, predicted, json.loads(probabilities), pixels, image, model
            )


def open_existing(path: str | Path) -> FeedbackStore:
    """Open a store that must already exist (for reading commands)."""
    if not Path(path).is_file():
        raise FeedbackError(f"{path}: no such feedback store")
    return FeedbackStore(path)


def correction_splits(config: TrainConfig) -> tuple[Split, Split]:
    """The corrections of `config.feedback` up to `feedback_until`, cut into (to learn from,
    kept apart to measure): a seeded share `feedback_holdout` of each label is kept apart."""
    with open_existing(config.feedback) as store:
        rows = [
            r
            for r in store.corrections()
            if not config.feedback_until or r.id <= config.feedback_until
        ]
    rng = np.random.default_rng(config.seed)
    learn, held = [], []
    for label in range(NOT_A_DIGIT + 1):
        of_label = [r for r in rows if r.label == label]
        order = rng.permutation(len(of_label))
        kept_apart = round(len(of_label) * config.feedback_holdout)
        held += [of_label[i] for i in order[:kept_apart]]
        learn += [of_label[i] for i in order[kept_apart:]]
    return _split(learn), _split(held)


def _split(rows: list[Correction]) -> Split:
    if not rows:
        return Split(
            torch.zeros(0, SIZE, SIZE, dtype=torch.uint8), torch.zeros(0, dtype=torch.int64)
        )
    return Split(
        torch.from_numpy(np.stack([r.input for r in rows])),
        torch.tensor([r.label for r in rows], dtype=torch.int64),
    )
