"""The report as a document: sections of paragraphs, tables and figures, rendered by `report` and `html_report`.

Both renderers import these types from here, so neither needs the other; the
modules that build sections share the number formats here too.
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


def percent(value: float | None, digits: int = 2) -> str:
    """A fraction as a percentage with `digits` decimals; a dash for None."""
    return "–" if value is None else f"{100 * value:.{digits}f}"


def format_p(p_value: float) -> str:
    """A p-value to two significant figures; p below double precision shows as < 1e-300."""
    return "< 1e-300" if p_value < 1e-300 else f"{p_value:.2g}"
