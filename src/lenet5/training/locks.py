"""One writer per directory: an advisory lock that the kernel drops when its process ends.

`flock` on `DIR/.lock`: a second process asking for the same directory is refused at once, and a
process killed by any signal (kill -9 included) leaves nothing stale behind, since the lock
belongs to its open file, which the kernel closes. The file itself stays; it names the last
holder, so that the refusal can say who holds the directory.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from lenet5.errors import Lenet5Error

LOCK_FILE = ".lock"


class DirectoryBusy(Lenet5Error):
    """Another process is writing to the directory."""


@contextlib.contextmanager
def hold(directory: Path) -> Iterator[None]:
    """Hold `directory` (created if missing) for this process, or raise DirectoryBusy."""
    directory.mkdir(parents=True, exist_ok=True)
    fd = os.open(directory / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = ""
        for _ in range(5):  # the holder writes its name just after taking the lock
            holder = os.pread(fd, 500, 0).decode(errors="replace").strip()
            if holder:
                break
            time.sleep(0.02)
        os.close(fd)
        raise DirectoryBusy(
            f"{directory} is in use by {holder or 'another process'}; wait for it to end or "
            "choose another directory"
        ) from None
    try:
        with contextlib.suppress(OSError):  # a full disk: the lock holds all the same
            os.ftruncate(fd, 0)
            os.write(fd, f"process {os.getpid()} ({_command()})\n".encode())
        yield
    finally:
        os.close(fd)  # releases the lock


def check_free(directory: Path) -> None:
    """Raise DirectoryBusy if another process holds `directory`."""
    if (directory / LOCK_FILE).is_file():
        with hold(directory):
            pass


def _command() -> str:
    program = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "python"
    words = ["lenet5" if program == "__main__.py" else program, *sys.argv[1:]]
    command = " ".join(" ".join(words).split())  # one line, whatever the arguments hold
    return command if len(command) <= 120 else command[:117] + "..."
