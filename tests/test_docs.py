"""The documents: every relative link resolves (files and #anchors), and the README stays short."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
DOCUMENTS = [ROOT / "README.md", ROOT / "CONTRIBUTING.md", ROOT / "CHANGELOG.md"]
DOCUMENTS += sorted((ROOT / "docs").glob("*.md"))
LINK = re.compile(r"\]\(([^)\s]+)\)|<img [^>]*src=\"([^\"]+)\"")
FENCED = re.compile(r"```.*?```", re.S)
CODE = re.compile(FENCED.pattern + r"|`[^`\n]*`", re.S)  # fenced blocks and inline code


def anchors(path: Path) -> set[str]:
    """GitHub's anchors for the headings of a Markdown file (a heading's inline code counts as
    its text: "Whole numbers (`--multi`)" is #whole-numbers---multi)."""
    found = set()
    for line in FENCED.sub("", path.read_text()).splitlines():
        if line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            found.add(re.sub(r"[^\w\- ]", "", title).replace(" ", "-"))
    return found


def links(path: Path) -> list[str]:
    text = CODE.sub("", path.read_text())  # commands in code are not links
    return [a or b for a, b in LINK.findall(text)]


def test_the_checks_see_links_and_anchors() -> None:
    assert "docs/training.md" in links(ROOT / "README.md")
    assert "measured" in anchors(ROOT / "docs" / "training.md")
    assert "patient-distillation-the-decision-2026-11-30" in anchors(
        ROOT / "docs" / "robustness.md"
    )
    assert "whole-numbers---multi" in anchors(ROOT / "docs" / "predicting.md")


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(document: Path) -> None:
    broken = []
    for link in links(document):
        if re.match(r"[a-z]+:", link):  # https:, mailto:
            continue
        target, _, anchor = link.partition("#")
        path = (document.parent / target).resolve() if target else document
        missing = not path.exists()
        if missing or (anchor and path.suffix == ".md" and anchor not in anchors(path)):
            broken.append(link)
    assert broken == []


def test_the_readme_starts_a_newcomer_in_two_hundred_lines() -> None:
    assert len((ROOT / "README.md").read_text().splitlines()) <= 200
