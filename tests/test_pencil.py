"""Pencil photos and blank sheets of the independent generator (issue 22): faint, grey, grainy pencil is read, and
blank sheets (rulings, desk edges, shadows, no ink) stay "no digit found". Slow: the generator draws about two
photos a second."""

import sys

import pytest

from conftest import REPO_ROOT

PENCIL = (9103, 80)  # seed, photos: held-out digits (5000-9999), a draw apart from the one reported (9101)
BLANK = (9104, 120)  # seed, sheets
PENCIL_FLOOR = 0.9  # what the pipeline reaches on this draw (docs/preprocessing.md has the figures)
MOST_BLANKS_READ = 1  # of 120; what it reaches on this draw (the cnn plays no part)
PENCIL_TARGET, BLANK_BOUND = 0.95, 0.001  # the issue's targets, not reached yet


@pytest.fixture(scope="module")
def pencil_and_blank(seed_protocol_run, real_data_dir):
    sys.path.insert(0, str(REPO_ROOT))
    try:
        from benchmarks.pencil_accuracy import measure
    finally:
        sys.path.remove(str(REPO_ROOT))
    result = measure(seed_protocol_run / "cnn.pt", "held-out", *PENCIL, *BLANK, data_dir=real_data_dir)
    print(f"\npencil photos (right, photos, no digit found), blank sheets (read as a digit, sheets): {result}")
    return result


@pytest.mark.slow
def test_pencil_is_read_and_blank_sheets_are_no_digit(pencil_and_blank):
    (right, photos, _), (read, sheets) = pencil_and_blank["pencil"], pencil_and_blank["blank"]
    assert photos == PENCIL[1] and sheets == BLANK[1]
    assert read <= MOST_BLANKS_READ, pencil_and_blank
    assert right >= PENCIL_FLOOR * photos, pencil_and_blank


@pytest.mark.slow
@pytest.mark.xfail(raises=AssertionError, strict=False,
                   reason="issue 22 is open: on the held-out draws pencil reads 95.3% and 1 of 1,000 blank sheets is "
                          "read (the targets), but this draw still reads 1 of its 120 blank sheets (the bound allows "
                          "none of 120): docs/preprocessing.md")
def test_pencil_and_blank_sheets_reach_the_issue_targets(pencil_and_blank):
    (right, photos, _), (read, sheets) = pencil_and_blank["pencil"], pencil_and_blank["blank"]
    assert right >= PENCIL_TARGET * photos and read <= BLANK_BOUND * sheets, pencil_and_blank
