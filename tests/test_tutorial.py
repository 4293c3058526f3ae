"""docs/tutorial.ipynb: stored as scripts/make_tutorial.py writes it, and it runs top to bottom."""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path

import nbformat
import pytest

from conftest import requires_real_data

ROOT = Path(__file__).parent.parent
SPEC = importlib.util.spec_from_file_location(
    "make_tutorial", ROOT / "scripts" / "make_tutorial.py"
)
assert SPEC is not None and SPEC.loader is not None
make_tutorial = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(make_tutorial)


def test_the_stored_notebook_is_the_scripts_with_outputs() -> None:
    stored = nbformat.read(str(make_tutorial.NOTEBOOK), as_version=4)
    nbformat.validate(stored)
    built = make_tutorial.build()
    assert [(c.cell_type, c.source) for c in stored.cells] == [
        (c.cell_type, c.source) for c in built.cells
    ]
    code = [c for c in stored.cells if c.cell_type == "code"]
    assert all(c.execution_count for c in code)  # executed, in order
    assert not any(o.output_type == "error" for c in code for o in c.outputs)
    pictures = sum("image/png" in o.get("data", {}) for c in code for o in c.outputs)
    assert pictures >= 5  # the plots are stored, visible on a code host


def test_cells_are_read_from_their_marks(tmp_path: Path) -> None:
    cells = tmp_path / "cells.md"
    cells.write_text("a note, not a cell\n\n%% md\n# Title\n\ntext\n\n%% code\nx = 1\n\n")
    assert make_tutorial.read_cells(cells) == [("md", "# Title\n\ntext"), ("code", "x = 1")]
    cells.write_text("%% python\nx = 1\n")
    with pytest.raises(ValueError, match=r"cells\.md:1: a cell is 'md' or 'code', not 'python'"):
        make_tutorial.read_cells(cells)


@pytest.mark.data
@requires_real_data
def test_the_notebook_runs_top_to_bottom() -> None:
    """Executes every cell in a fresh kernel; any error fails the test (nbclient raises)."""
    notebook = nbformat.read(str(make_tutorial.NOTEBOOK), as_version=4)
    started = time.perf_counter()
    make_tutorial.execute(notebook)
    print(f"docs/tutorial.ipynb executed in {time.perf_counter() - started:.0f} s")
    outputs = "".join(
        o.get("text", "") for c in notebook.cells if c.cell_type == "code" for o in c.outputs
    )
    assert "61,706 parameters" in outputs
    assert "same digit as PyTorch on 100.0%" in outputs
