"""Group a number's pieces of ink into digits: the grouping of least cost over the pieces in reading order.

A piece is a connected component of the ink or a slice of one (`vision.numbers` cuts
a component wide enough to be a touching pair at its thinnest columns). A digit is a
run of consecutive pieces. Each possible run costs what makes it unlike a digit:

- shorter than the number's digits (the bar of a 5 alone, half of a broken 4);
- wider than a digit is tall (two digits as one), or with empty columns inside (more than MAX_GAP of the
  height, and the pieces are not one digit at all: a point standing apart is its own);
- read without confidence, when a classifier is given (-log of its top probability);
- cut from the slice beside it (more when the cut crosses more than one stroke);

and neighbouring runs cost their horizontal overlap (two digits side by side
overlap little; the halves of one digit a lot). Dynamic programming over the runs finds the
cheapest grouping; there are at most MAX_RUN runs ending at each piece, so the work
is linear in the pieces.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

MAX_RUN = 8  # pieces in one digit, at most
MAX_WIDTH = 1.6  # of the digit height; wider runs of several pieces are not considered
MAX_GAP = 0.35  # of the digit height; runs whose pieces leave a wider empty stretch between them are not considered
SHORT = 0.65  # of the digit height; a shorter digit pays up to SHORT_COST, in proportion to its shortfall
SHORT_COST = 6.0
WIDE = 1.0  # of the digit height; a wider digit pays WIDE_COST a digit height beyond it
WIDE_COST = 4.0
GAP_COST = 6.0  # a digit height of empty columns inside one digit
OVERLAP_COST = 2.0  # neighbouring digits overlapping by the whole width of the narrower
CONFIDENCE_COST = 1.0  # per unit of -log(top probability)
CUT_COST = 0.5  # a cut through a component between two digits (touching digits meet in one stroke)
CUT_STROKE_COST = 1.0  # and for each further stroke it crosses (a cut through a wide 0 crosses two)


@dataclass(frozen=True)
class Piece:
    """One piece of a number's ink: its number in the piece map (0-based), the component it is (a slice of), box
    (top, left, bottom, right) in work pixels, ink (sum of strength), centre column, and the strokes crossed by the
    cut at its left edge (0: not cut there)."""

    number: int
    component: int
    box: tuple[int, int, int, int]
    ink: float
    centre: float
    cut: int = 0
    point: bool = False  # a point standing apart between digits: a digit of its own, never part of another


def candidate_runs(pieces: list[Piece], height: float) -> list[tuple[int, ...]]:
    """The runs of consecutive pieces (indices into `pieces`, in reading order) that may be one digit: each piece
    alone, and up to MAX_RUN together when no wider than MAX_WIDTH digit heights and with no empty stretch wider
    than MAX_GAP digit heights between their pieces (a point or a mark standing apart is no part of a digit), and
    with no piece that is a point (`Piece.point`)."""
    runs = []
    for start in range(len(pieces)):
        for end in range(start + 1, min(start + MAX_RUN, len(pieces)) + 1):
            run = tuple(range(start, end))
            left, right = _span(pieces, run)
            if end > start + 1 and (right - left > MAX_WIDTH * height or any(pieces[k].point for k in run)):
                break
            if _widest_gap(pieces, run) <= MAX_GAP * height:
                runs.append(run)
    return runs


def _widest_gap(pieces: list[Piece], run: tuple[int, ...]) -> int:
    """The widest stretch of columns between a run's pieces that none of them covers."""
    widest, reach = 0, None
    for left, right in sorted((pieces[k].box[1], pieces[k].box[3]) for k in run):
        if reach is not None:
            widest = max(widest, left - reach)
        reach = right if reach is None else max(reach, right)
    return widest


def best_grouping(pieces: list[Piece], runs: list[tuple[int, ...]], height: float,
                  scores: np.ndarray | None = None) -> list[int]:
    """The runs (indices into `runs`) that cover every piece once, left to right, at the least total cost;
    `scores` (len(runs), classes) are a classifier's probabilities for each run's crop, if any."""
    costs = [_run_cost(pieces, run, height, None if scores is None else scores[index])
             for index, run in enumerate(runs)]
    spans = [_span(pieces, run) for run in runs]
    ending: dict[int, list[int]] = {}  # runs by the piece after their last
    for index, run in enumerate(runs):
        ending.setdefault(run[-1] + 1, []).append(index)
    best = [math.inf] * len(runs)
    before = [-1] * len(runs)
    for index, run in enumerate(runs):  # runs are listed by their first piece, so every predecessor is done
        if run[0] == 0:
            best[index] = costs[index]
            continue
        for previous in ending.get(run[0], []):
            total = best[previous] + _overlap(spans[previous], spans[index]) + costs[index]
            if total < best[index]:
                best[index], before[index] = total, previous
    last = min(ending.get(len(pieces), []), key=lambda index: best[index])
    chosen = [last]
    while before[chosen[-1]] >= 0:
        chosen.append(before[chosen[-1]])
    return chosen[::-1]


def _span(pieces: list[Piece], run: tuple[int, ...]) -> tuple[int, int]:
    return min(pieces[k].box[1] for k in run), max(pieces[k].box[3] for k in run)


def _run_cost(pieces: list[Piece], run: tuple[int, ...], height: float, probabilities: np.ndarray | None) -> float:
    """What makes a run unlike one digit (see the module's docstring)."""
    top, bottom = min(pieces[k].box[0] for k in run), max(pieces[k].box[2] for k in run)
    left, right = _span(pieces, run)
    covered = np.zeros(right - left, dtype=bool)
    for k in run:
        covered[pieces[k].box[1] - left:pieces[k].box[3] - left] = True
    cost = SHORT_COST * max(0.0, SHORT - (bottom - top) / height) / SHORT
    cost += WIDE_COST * max(0.0, (right - left) / height - WIDE)
    cost += GAP_COST * np.count_nonzero(~covered) / height
    members = [pieces[k] for k in run]
    for piece in members:  # a cut at its left edge, the slice left of it in another digit
        joined = any(other.component == piece.component and other.box[3] == piece.box[1] for other in members)
        if piece.cut and not joined:
            cost += CUT_COST + CUT_STROKE_COST * (piece.cut - 1)
    if probabilities is not None:
        cost -= CONFIDENCE_COST * math.log(max(float(np.max(probabilities)), 1e-9))
    return cost


def _overlap(first: tuple[int, int], second: tuple[int, int]) -> float:
    """OVERLAP_COST times the share of the narrower of two neighbouring digits that the other overlaps."""
    shared = min(first[1], second[1]) - max(first[0], second[0])
    return OVERLAP_COST * max(0.0, shared) / max(1, min(first[1] - first[0], second[1] - second[0]))
