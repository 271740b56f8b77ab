"""The report as a document: sections of paragraphs, tables and figures, rendered by `report` and `html_report`.

Both renderers import these types from here, so neither needs the other.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Table:
    """A table; a cell is text, or (text, metric path) for a headline number the HTML report marks."""

    header: list[str]
    rows: list[list] = field(default_factory=list)


@dataclass
class FigureRef:
    """A figure file in the run folder."""

    file: str
    alt: str


@dataclass
class Section:
    """A titled part of the report: paragraphs (str), tables and figures, in order."""

    title: str
    blocks: list = field(default_factory=list)


def cell_text(cell) -> str:
    """The text of a table cell (a headline cell is a (text, metric path) pair)."""
    return cell[0] if isinstance(cell, tuple) else cell
