"""Learning from the page: POST /api/learn fine-tunes in the background, then swaps models live.

The fine-tuning is `lenet5 finetune --progress-json` in a child process with one thread at a
lower priority, followed through its JSON lines, so the page keeps answering on the other core.
When it ends, the new model replaces the served one between two batches of the batcher, unless
its MNIST validation accuracy fell by more than MAX_VAL_DROP (mislabelled corrections): then the
old model stays and the reason is reported. The run directory is kept beside the feedback store,
so `lenet5 serve --model` can serve it after a restart.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from torch import nn

from lenet5.config import TrainConfig
from lenet5.data.feedback import FeedbackStore
from lenet5.inference.checkpoint import load_model
from lenet5.serving.uploads import ApiError
from lenet5.training.finetune import FINETUNE_FILE, MAX_VAL_DROP
from lenet5.training.runs import next_numbered_dir


class Learner:
    """One fine-tuning at a time, in a child process; its state for GET /api/learn."""

    def __init__(
        self,
        store: FeedbackStore,
        current_model: Callable[[], str | None],
        swap: Callable[[nn.Module, TrainConfig, str], None],
        data_dir: str | Path | None = None,
    ) -> None:
        self.store, self.current_model, self.swap = store, current_model, swap
        self.data_dir = data_dir
        self.runs = store.path.resolve().parent / "learned"
        self.lock = threading.Lock()
        self.state: dict[str, Any] = {"state": "idle", "progress": 0.0}
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> dict[str, Any]:
        with self.lock:
            if self.state["state"] == "running":
                raise ApiError(409, "a fine-tuning is already running")
            if self.store.count() == 0:
                raise ApiError(409, "no corrections yet: correct some answers first")
            run_dir = next_numbered_dir(self.runs, "finetune")
            command = [
                sys.executable,
                "-m",
                "lenet5",
                "finetune",
                "--feedback",
                str(self.store.path),
                "--run-dir",
                str(run_dir),
                "--progress-json",
                "--threads",
                "1",
            ]
            model = self.current_model()
            if model is not None:
                command += ["--model", model]
            if self.data_dir is not None:
                command += ["--data-dir", str(self.data_dir)]
            self.state = {
                "state": "running",
                "progress": 0.0,
                "run_dir": str(run_dir),
                "started": time.time(),
                "corrections": self.store.count(),
            }
            env = {**os.environ, "OMP_NUM_THREADS": "1"}
            errors = tempfile.TemporaryFile()  # noqa: SIM115  (_follow reads, then closes it)
            self.process = subprocess.Popen(
                command,
                stdout=subprocess.PIPE,
                stderr=errors,
                env=env,
                preexec_fn=lambda: os.nice(10),
            )
            threading.Thread(target=self._follow, args=(self.process, errors), daemon=True).start()
            return dict(self.state)

    def _follow(self, process: subprocess.Popen[bytes], errors: IO[bytes]) -> None:
        """Follow the child's JSON lines (--progress-json), then judge and swap in its model."""
        assert process.stdout is not None
        messages = []
        for line in process.stdout:
            try:
                event = json.loads(line)
            except ValueError:
                continue  # not ours: a library printing on stdout
            if not isinstance(event, dict):
                continue
            if "step" in event:
                done = (event["epoch"] - 1) * event["steps"] + event["step"]
                self.state["progress"] = min(1.0, done / max(event["epochs"] * event["steps"], 1))
            elif "message" in event:
                messages.append(str(event["message"]))
        output = "\n".join(messages)
        code = process.wait()
        run_dir = Path(self.state["run_dir"])
        with self.lock:
            try:
                if code != 0:
                    errors.seek(0)
                    message = errors.read().decode(errors="replace").strip().splitlines()
                    raise RuntimeError(message[-1] if message else f"exit status {code}")
                result = json.loads((run_dir / FINETUNE_FILE).read_text())
                self.state.update(
                    progress=1.0, before=result["before"], after=result["after"], output=output
                )
                if result["val_drop"] > MAX_VAL_DROP:
                    self.state.update(
                        state="refused",
                        reason=f"MNIST validation accuracy fell by "
                        f"{100 * result['val_drop']:.2f} points (the limit is "
                        f"{100 * MAX_VAL_DROP:.1f}): are some corrections mislabelled? "
                        "The model in service is unchanged.",
                    )
                    return
                model, config = load_model(run_dir)
                self.swap(model, config, str(run_dir))
                self.state.update(state="done", model=str(run_dir))
            except Exception as exc:  # anything: keep serving the old model
                self.state.update(state="failed", reason=f"fine-tuning failed: {exc}")
            finally:
                errors.close()
                self.state["seconds"] = time.time() - self.state["started"]


def learn_router(learner: Learner, allowed: bool, why_not: str) -> APIRouter:
    router = APIRouter()

    @router.post("/api/learn", status_code=202, summary="Fine-tune on the corrections, then swap")
    async def start() -> JSONResponse:
        if not allowed:
            raise ApiError(403, why_not)
        state = await asyncio.get_running_loop().run_in_executor(None, learner.start)
        return JSONResponse(state, status_code=202)

    @router.get("/api/learn", summary="State, progress and figures of the latest fine-tuning")
    async def status() -> dict[str, Any]:
        return {**learner.state, "allowed": allowed}

    return router
