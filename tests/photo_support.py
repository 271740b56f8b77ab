"""Photos of blank sheets for tests of the photo rules: a sheet beside the desk, with its edge, grain and shade."""

import numpy as np
from hypothesis import strategies as st


def sheet_on_a_desk(side: str, share: float, tilt: float, desk: float, paper: float, shade: bool,
                    seed: int = 0) -> np.ndarray:
    """A 600x800 photo of a blank sheet (gray `paper`, sensor noise) with the desk beyond its edge along `side`:
    `share` of the frame at the edge's middle, the edge tilted `tilt` degrees, the desk `desk` gray with a grain;
    with `shade`, the sheet darkens softly toward the edge by up to 10%, as where it curls."""
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[0:600, 0:800].astype(np.float32)
    along, across = {"left": (rows / 600, cols / 800), "right": (rows / 600, 1 - cols / 800),
                     "top": (cols / 800, rows / 600), "bottom": (cols / 800, 1 - rows / 600)}[side]
    beyond = share + np.tan(np.radians(tilt)) * (along - 0.5) - across  # > 0 on the desk
    grain = 12 * np.sin(across * 400 + 3 * np.sin(along * 20))  # a wood-like grain along the edge
    sheet = paper * (1 - (0.1 * np.exp(beyond / 0.03) if shade else 0) * (beyond < 0))
    values = np.where(beyond > 0, desk + grain, sheet) + rng.normal(0, 3, rows.shape)
    return np.clip(values, 0, 255).astype(np.uint8)


DESK_CASES = dict(side=st.sampled_from(["left", "right", "top", "bottom"]), share=st.floats(0.04, 0.3),
                  tilt=st.floats(-8, 8), desk=st.floats(30, 120), paper=st.floats(170, 235), shade=st.booleans())


def shadow_on_a_sheet(centre: tuple[float, float], radius: float, depth: float, soft: float, paper: float,
                      seed: int = 0) -> np.ndarray:
    """A 600x800 photo of a blank sheet (gray `paper`, light falling off by 15% across it, sensor noise) with a soft
    round shadow: at `centre` (row, column, shares of the frame), `radius` of the frame's height, darkening the paper
    by `depth` inside and fading to nothing over `soft` of the height, as a hand's or a phone's does."""
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[0:600, 0:800].astype(np.float32)
    distance = np.hypot(rows / 600 - centre[0], (cols - 800 * centre[1]) / 600) - radius
    shade = depth / (1 + np.exp(np.minimum(distance / soft, 50)))  # logistic: `depth` inside, 0 outside
    values = paper * (1 - 0.15 * cols / 800) * (1 - shade) + rng.normal(0, 3, rows.shape)
    return np.clip(values, 0, 255).astype(np.uint8)


SHADOW_CASES = dict(centre=st.tuples(st.floats(0.0, 1.0), st.floats(0.0, 1.0)), radius=st.floats(0.05, 0.4),
                    depth=st.floats(0.15, 0.6), soft=st.floats(0.01, 0.08), paper=st.floats(170, 235))
