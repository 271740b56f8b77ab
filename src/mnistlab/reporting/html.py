"""Render the report's sections as one self-contained `report.html`: figures embedded as base64, no network needed.

Headline numbers carry a `data-metric` attribute naming the metrics.json value
they show (e.g. `models.cnn.test_accuracy`), so a test can check them.
"""

from __future__ import annotations

import base64
import html
import re
from pathlib import Path

from mnistlab.common.errors import MnistlabError
from mnistlab.reporting.document import FigureRef, Section, Table

STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em; color: #222; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
th { background: #f2f2f2; }
td[data-metric] { font-weight: bold; }
img { max-width: 100%; display: block; margin: 0.8em 0; }
code { font-size: 0.85em; }
"""


def inline(text: str) -> str:
    """Escape text, then turn Markdown's **bold** and `code` into HTML."""
    escaped = html.escape(text)
    escaped = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", escaped)
    return re.sub(r"`(.+?)`", r"<code>\1</code>", escaped)


def embedded_image(path: Path, alt: str) -> str:
    """An <img> whose PNG bytes are inside the page."""
    try:
        data = base64.b64encode(path.read_bytes()).decode("ascii")
    except OSError as error:
        raise MnistlabError(f"{path}: cannot embed figure ({error.strerror}); rerun mnistlab report") from None
    return f'<img src="data:image/png;base64,{data}" alt="{html.escape(alt)}">'


def render_table(table: Table) -> str:
    """A <table>; headline cells get their data-metric attribute."""
    head = "".join(f"<th>{inline(cell)}</th>" for cell in table.header)
    rows = []
    for row in table.rows:
        cells = []
        for cell in row:
            if isinstance(cell, tuple):
                cells.append(f'<td data-metric="{html.escape(cell[1])}">{inline(cell[0])}</td>')
            else:
                cells.append(f"<td>{inline(cell)}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def render_html(title: str, sections: list[Section], run_dir: Path) -> str:
    """The whole report as one HTML page; figures are read from `run_dir` and embedded."""
    parts = [f"<h1>{inline(title)}</h1>"]
    for section in sections:
        parts.append(f"<h2>{inline(section.title)}</h2>")
        items: list[str] = []
        for block in section.blocks:
            if isinstance(block, str) and block.startswith(("- ", "  - ")):
                items.append(f"<li>{inline(block.lstrip()[2:])}</li>")
                continue
            if items:
                parts.append("<ul>" + "".join(items) + "</ul>")
                items = []
            if isinstance(block, Table):
                parts.append(render_table(block))
            elif isinstance(block, FigureRef):
                parts.append(embedded_image(run_dir / block.file, block.alt))
            else:
                parts.append(f"<p>{inline(block)}</p>")
        if items:
            parts.append("<ul>" + "".join(items) + "</ul>")
    body = "\n".join(parts)
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>{html.escape(title)}</title>\n'
            f"<style>{STYLE}</style>\n</head>\n<body>\n{body}\n</body>\n</html>\n")
