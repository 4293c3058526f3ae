"""Writing files so that a crash or a full disk never leaves one half-written."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Any

from lenet5.errors import write_error

_UMASK = os.umask(0)
os.umask(_UMASK)


def atomic_write(path: Path, write: Any) -> None:
    """Call `write(file_object)` on a temporary file beside `path`, then rename it over `path`.

    Any failure (a full disk, a read-only folder) leaves `path` as it was and raises WriteError."""
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp creates 0600; give the usual permissions
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        if tmp is not None:
            with contextlib.suppress(OSError):
                Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise write_error(path, exc) from None
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda f: f.write(text.encode()))


def append_line(path: Path, line: str) -> None:
    """Append one line durably; on failure the file is cut back to its earlier lines."""
    try:
        with open(path, "ab", buffering=0) as f:
            start = f.tell()
            try:
                data = memoryview(line.encode())
                while data:  # an unbuffered write may take only part of it
                    data = data[f.write(data) :]
                os.fsync(f.fileno())
            except OSError:
                with contextlib.suppress(OSError):
                    f.truncate(start)
                raise
    except OSError as exc:
        raise write_error(path, exc) from None
