"""Saving a report figure (`plots.save_figure`): drawn once and cropped, it frames the drawing as matplotlib's
tight box does, and nothing a figure draws past its own edges is cut off."""

import io

import numpy as np
import pytest
from matplotlib.figure import Figure
from PIL import Image

from mnistlab.reporting.plots import DPI, PAD_INCHES, save_figure


def drawn_box(pixels: np.ndarray) -> tuple[int, int, int, int]:
    """Rows and columns of the first and last pixel that is not white: top, bottom, left, right."""
    rows, columns = np.nonzero((pixels[..., :3] < 250).any(axis=-1))
    return rows.min(), rows.max(), columns.min(), columns.max()


def saved(figure: Figure, path) -> np.ndarray:
    save_figure(figure, path)
    return np.asarray(Image.open(path).convert("RGBA"))


def tight(figure: Figure) -> np.ndarray:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight", pad_inches=PAD_INCHES)
    return np.asarray(Image.open(buffer).convert("RGBA"))


def labelled_figure(size: tuple[float, float], title: str) -> Figure:
    figure = Figure(figsize=size)
    axes = figure.add_subplot()
    axes.imshow(np.arange(100).reshape(10, 10), cmap="Blues")
    axes.set_title(title)
    axes.set_xlabel("predicted label")
    axes.set_ylabel("true label")
    return figure


@pytest.mark.parametrize("size", [(6.5, 5.5), (3, 2), (10, 4)])
def test_a_figure_is_framed_as_the_tight_box_frames_it(tmp_path, size):
    ours = saved(labelled_figure(size, "a title as wide as the axes, or wider than them"), tmp_path / "f.png")
    reference = tight(labelled_figure(size, "a title as wide as the axes, or wider than them"))
    assert abs(ours.shape[0] - reference.shape[0]) <= 2 and abs(ours.shape[1] - reference.shape[1]) <= 2
    margin = round(PAD_INCHES * DPI)
    top, bottom, left, right = drawn_box(ours)
    for edge in [top, ours.shape[0] - 1 - bottom, left, ours.shape[1] - 1 - right]:
        assert margin - 2 <= edge <= margin + 2  # the pad's white margin on every side, as savefig leaves it
    assert (ours[..., 3] == 255).all()  # opaque: the margin is the figure's background


def test_what_a_figure_draws_past_its_edges_is_kept(tmp_path):
    figure = labelled_figure((4, 3), "inside")
    figure.text(1.3, 0.5, "far right", fontsize=14)  # outside the figure, as a stray legend or label can be
    ours = saved(figure, tmp_path / "f.png")
    assert ours.shape[1] > 4 * DPI + 0.25 * DPI  # widened to take the text in
    _, _, _, right = drawn_box(ours)
    assert ours.shape[1] - 1 - right >= round(PAD_INCHES * DPI) - 2


def test_a_figure_is_written_whole_or_not_at_all(tmp_path):
    path = tmp_path / "f.png"
    path.write_bytes(b"the previous figure")
    figure = labelled_figure((3, 2), "t")
    figure.axes[0].set_title("$\\frac{broken$")  # mathtext that cannot be parsed: drawing fails
    with pytest.raises(ValueError):
        save_figure(figure, path)
    assert path.read_bytes() == b"the previous figure"
    assert [entry.name for entry in tmp_path.iterdir()] == ["f.png"]
