"""Write docs/tutorial.ipynb from the cells in scripts/tutorial_cells.md and execute it, so that
it is stored with its outputs (plots visible on a code host).

    LENET5_DATA=../shared/data/mnist python scripts/make_tutorial.py

tests/test_tutorial.py executes the stored notebook again, top to bottom, in CI.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "docs" / "tutorial.ipynb"

CELLS_FILE = Path(__file__).resolve().parent / "tutorial_cells.md"
CELL_MARK = "%% "  # a line "%% md" or "%% code" starts a cell


def read_cells(path: Path = CELLS_FILE) -> list[tuple[str, str]]:
    """The (kind, text) of each cell in `path`: a line "%% md" or "%% code" starts one, and the
    lines before the first are a note, not a cell. Raises ValueError on another kind."""
    cells: list[tuple[str, list[str]]] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.startswith(CELL_MARK):
            kind = line.removeprefix(CELL_MARK).strip()
            if kind not in ("md", "code"):
                raise ValueError(f"{path}:{number}: a cell is 'md' or 'code', not {kind!r}")
            cells.append((kind, []))
        elif cells:
            cells[-1][1].append(line)
    return [(kind, "\n".join(lines).strip("\n")) for kind, lines in cells]


def build() -> nbformat.NotebookNode:
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    notebook.cells = [
        nbformat.v4.new_markdown_cell(text) if kind == "md" else nbformat.v4.new_code_cell(text)
        for kind, text in read_cells()
    ]
    return notebook


def execute(notebook: nbformat.NotebookNode, timeout: int = 600) -> float:
    """Run every cell in a fresh kernel (raises on the first error); returns the seconds."""
    started = time.perf_counter()
    # The kernel runs in docs/: a relative LENET5_DATA means the caller's directory, not that.
    env = dict(os.environ)
    if env.get("LENET5_DATA"):
        env["LENET5_DATA"] = str(Path(env["LENET5_DATA"]).resolve())
    client = NotebookClient(notebook, timeout=timeout, kernel_name="python3")
    client.execute(cwd=str(ROOT / "docs"), env=env)
    return time.perf_counter() - started


def main() -> None:
    notebook = build()
    seconds = execute(notebook)
    nbformat.write(notebook, str(NOTEBOOK))
    print(f"wrote {NOTEBOOK} ({seconds:.0f} s to execute)")


if __name__ == "__main__":
    main()
