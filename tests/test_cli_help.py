"""Every command's --help, compared with the text kept in tests/help/ (a change shows as a diff).

After a deliberate change to a flag or its help, rewrite the files with:
    LENET5_WRITE_HELP=1 pytest tests/test_cli_help.py
"""

from __future__ import annotations

import contextlib
import io
import os
from pathlib import Path

import pytest

from lenet5.cli import main

HELP = Path(__file__).parent / "help"
COMMANDS = [
    [],
    ["train"],
    ["evaluate"],
    ["predict"],
    ["export"],
    ["experiments"],
    ["serve"],
    ["finetune"],
    ["feedback"],
    ["feedback", "stats"],
    ["feedback", "export"],
    ["summary"],
]


def _help(command: list[str]) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main([*command, "--help"]) == 0
    return out.getvalue()


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "lenet5")
def test_help_is_unchanged(command: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "100")  # argparse wraps to the terminal's width
    path = HELP / f"{'-'.join(command) or 'lenet5'}.txt"
    text = _help(command)
    if os.environ.get("LENET5_WRITE_HELP"):
        path.write_text(text)
    assert text == path.read_text()
