"""Each corruption against its defining property, on small synthetic images."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from mnistlab.evaluation import corruptions, geometry
from mnistlab.common.errors import ConfigError

from synthetic_digits import blobs

SEEDLESS = {"scale", "brightness", "stripe", "edges-only"}  # deterministic by definition


def one_image(setter) -> np.ndarray:
    image = np.zeros((1, 28, 28), dtype=np.uint8)
    setter(image[0])
    return image


def centre_of_mass(images: np.ndarray) -> np.ndarray:
    return np.array([ndimage.center_of_mass(image.astype(float)) for image in images])


def ink_angle(image: np.ndarray) -> float:
    """Angle in degrees of the ink's principal axis from horizontal, counter-clockwise as displayed."""
    rows, columns = np.nonzero(image > 64)
    covariance = np.cov(np.stack([columns, -rows]))  # x right, y up
    values, vectors = np.linalg.eigh(covariance)
    x, y = vectors[:, -1]
    return float(np.degrees(np.arctan(y / x)))


IMAGES = blobs()


@pytest.mark.parametrize("name", corruptions.CORRUPTIONS)
def test_shape_dtype_and_input_preserved(name):
    original = IMAGES.copy()
    out = corruptions.corrupt(IMAGES, name, seed=0)
    assert out.dtype == np.uint8 and out.shape == IMAGES.shape
    np.testing.assert_array_equal(IMAGES, original)  # the input is never modified
    assert (out != IMAGES).any()


@pytest.mark.parametrize("name", corruptions.CORRUPTIONS)
def test_same_seed_same_result_other_seed_other_result(name):
    first = corruptions.corrupt(IMAGES, name, seed=1)
    np.testing.assert_array_equal(first, corruptions.corrupt(IMAGES, name, seed=1))
    other = corruptions.corrupt(IMAGES, name, seed=2)
    if name in SEEDLESS:
        np.testing.assert_array_equal(first, other)
    else:
        assert (first != other).any()


def test_unknown_corruption_and_bad_images_are_named():
    with pytest.raises(ConfigError, match="unknown corruption 'snow'; choose one of: shot-noise"):
        corruptions.corrupt(IMAGES, "snow")
    with pytest.raises(ValueError, match="uint8 images of shape \\(N, 28, 28\\)"):
        corruptions.corrupt(IMAGES.astype(np.float32), "fog")
    with pytest.raises(ValueError, match="uint8 images of shape"):
        geometry.rotate(IMAGES[0], 10)


def test_shot_noise_is_poisson_in_photons():
    grey = np.full((200, 28, 28), 51, dtype=np.uint8)  # intensity 0.2: 0.6 photons expected per pixel
    out = corruptions.shot_noise(grey, seed=0).astype(float)
    photons = corruptions.SHOT_PHOTONS * 0.2
    assert set(np.unique(out)) <= {0.0, 85.0, 170.0, 255.0}  # whole photon counts of 1/3 white
    assert out.mean() == pytest.approx(51, abs=1.5)  # unbiased (clipping at 3 photons costs 0.3%)
    assert out.std() == pytest.approx(255 * np.sqrt(photons) / corruptions.SHOT_PHOTONS, rel=0.03)
    assert (corruptions.shot_noise(IMAGES, seed=0)[IMAGES == 0] == 0).all()  # no light, no noise


def test_impulse_noise_sets_its_share_of_pixels_to_black_or_white():
    grey = np.full((200, 28, 28), 128, dtype=np.uint8)
    out = corruptions.impulse_noise(grey, seed=0)
    changed = out != 128
    assert changed.mean() == pytest.approx(corruptions.IMPULSE_FRACTION, abs=0.005)
    assert set(np.unique(out[changed])) == {0, 255}
    assert (out == 255).mean() == pytest.approx(corruptions.IMPULSE_FRACTION / 2, abs=0.005)


def test_glass_blur_keeps_the_ink_where_it_was_but_frosts_it():
    out = corruptions.glass_blur(IMAGES, seed=0)
    assert out.astype(float).sum() == pytest.approx(IMAGES.astype(float).sum(), rel=0.02)  # moved, never added
    assert np.abs(centre_of_mass(out) - centre_of_mass(IMAGES)).max() < 0.5  # swaps are local

    def edge_energy(images):
        return (np.diff(images.astype(float), axis=2) ** 2).mean()

    assert edge_energy(out) < 0.5 * edge_energy(IMAGES)


def test_motion_blur_smears_a_dot_into_a_streak_within_45_degrees_of_horizontal():
    dots = np.zeros((50, 28, 28), dtype=np.uint8)
    dots[:, 14, 8] = 255
    out = corruptions.motion_blur(dots, seed=0)
    for streak in out:
        rows, columns = np.nonzero(streak)
        assert columns.min() >= 7 and columns.max() - 8 >= 6  # behind the dot only, about MOTION_LENGTH long
        assert np.ptp(rows) <= np.ptp(columns) + 1  # no steeper than 45 degrees
    assert out.astype(float).sum() == pytest.approx(dots.astype(float).sum(), rel=0.02)  # the weights sum to 1


def test_shear_slants_a_vertical_bar_by_the_factor():
    bar = one_image(lambda image: image.__setitem__((slice(4, 24), slice(13, 15)), 255))
    out = geometry.shear(np.repeat(bar, 8, axis=0), seed=0)
    slopes = set()
    for image in out:
        rows = np.arange(4, 24)
        columns = np.array([ndimage.center_of_mass(image[row].astype(float))[0] for row in rows])
        slope = np.polyfit(rows, columns, 1)[0]
        assert abs(slope) == pytest.approx(geometry.SHEAR_FACTOR, abs=0.02)
        slopes.add(np.sign(slope))
        np.testing.assert_allclose(image.astype(float).sum(axis=1), bar[0].astype(float).sum(axis=1), rtol=0.01)
    assert slopes == {-1.0, 1.0}  # both directions occur


def test_scale_shrinks_the_digit_about_the_centre():
    out = geometry.scale(IMAGES, seed=0)
    offset_before = centre_of_mass(IMAGES) - geometry.CENTRE
    offset_after = centre_of_mass(out) - geometry.CENTRE
    np.testing.assert_allclose(offset_after, geometry.SCALE_FACTOR * offset_before, atol=0.1)  # bilinear aliasing
    ink_ratio = out.astype(float).sum(axis=(1, 2)) / IMAGES.astype(float).sum(axis=(1, 2))
    np.testing.assert_allclose(ink_ratio, geometry.SCALE_FACTOR ** 2, rtol=0.05)  # area scales by the square


def test_random_rotation_turns_a_bar_by_the_set_angle_either_way():
    bar = one_image(lambda image: image.__setitem__((slice(13, 15), slice(4, 24)), 255))
    out = geometry.rotation(np.repeat(bar, 8, axis=0), seed=0)
    angles = np.array([ink_angle(image) for image in out])
    np.testing.assert_allclose(np.abs(angles), geometry.ROTATION_DEGREES, atol=1.5)
    assert (angles > 0).any() and (angles < 0).any()


def test_rotate_sweep_zero_is_identity_and_ninety_is_rot90():
    np.testing.assert_array_equal(geometry.rotate(IMAGES, 0), IMAGES)
    quarter = geometry.rotate(IMAGES, 90).astype(int)
    assert np.abs(quarter - np.rot90(IMAGES, axes=(1, 2))).max() <= 1
    bar = one_image(lambda image: image.__setitem__((slice(13, 15), slice(4, 24)), 255))
    assert ink_angle(geometry.rotate(bar, 30)[0]) == pytest.approx(30, abs=1.5)  # counter-clockwise


def test_brightness_adds_half_of_white_and_clips():
    out = corruptions.brightness(IMAGES, seed=0).astype(float)
    expected = np.minimum(255, IMAGES.astype(float) + 255 * corruptions.BRIGHTNESS_ADDED)
    assert np.abs(out - expected).max() <= 0.5
    assert out.mean() > IMAGES.mean() + 100


def test_translate_moves_the_centre_of_mass_by_the_set_amount():
    out = geometry.translation(IMAGES, seed=0)  # the blobs keep a 4-pixel margin: no ink falls off
    moved = centre_of_mass(out) - centre_of_mass(IMAGES)
    np.testing.assert_allclose(np.abs(moved), geometry.TRANSLATION_PIXELS, atol=1e-9)
    assert len({tuple(np.sign(row)) for row in moved}) == 4  # all four diagonal directions occur


@pytest.mark.parametrize("direction, axis, sign", [("right", 1, 1), ("left", 1, -1), ("down", 0, 1), ("up", 0, -1)])
def test_shift_sweep_moves_by_whole_pixels(direction, axis, sign):
    np.testing.assert_array_equal(geometry.shift(IMAGES, 0, direction), IMAGES)
    moved = centre_of_mass(geometry.shift(IMAGES, 4, direction)) - centre_of_mass(IMAGES)
    np.testing.assert_allclose(moved[:, axis], 4 * sign, atol=1e-9)
    np.testing.assert_allclose(moved[:, 1 - axis], 0, atol=1e-9)
    assert not geometry.shift(IMAGES, 28, direction).any()


def test_shift_rejects_bad_arguments():
    with pytest.raises(ConfigError, match="shift direction 'sideways' is unknown"):
        geometry.shift(IMAGES, 1, "sideways")
    with pytest.raises(ValueError, match="whole number of pixels"):
        geometry.shift(IMAGES, 1.5)


def test_stripe_inverts_exactly_its_columns():
    out = corruptions.stripe(IMAGES, seed=0)
    inverted = np.zeros(28, dtype=bool)
    inverted[:7] = inverted[21:] = True
    np.testing.assert_array_equal(out[:, :, inverted], 255 - IMAGES[:, :, inverted])
    np.testing.assert_array_equal(out[:, :, ~inverted], IMAGES[:, :, ~inverted])
    np.testing.assert_array_equal(corruptions.stripe(out, seed=0), IMAGES)


def test_fog_adds_one_haze_and_the_digit_shows_through_at_reduced_contrast():
    other = blobs(seed=1)  # both sets peak at 255, so they get the same rescaling and, by seed, the same haze
    difference = corruptions.fog(IMAGES, seed=3).astype(float) - corruptions.fog(other, seed=3).astype(float)
    keep = 1 / (1 + corruptions.FOG_STRENGTH)
    assert np.abs(difference - keep * (IMAGES.astype(float) - other.astype(float))).max() <= 1
    out = corruptions.fog(IMAGES, seed=3)
    assert out[IMAGES == 0].mean() > 50  # the background is hazy


def test_spatter_covers_some_pixels_in_grey_mud_and_leaves_the_rest():
    out = corruptions.spatter(IMAGES, seed=0).astype(float)
    changed = out != IMAGES
    assert 0.005 < changed.mean() < 0.5
    grey, opacity = corruptions.SPATTER_GREY, corruptions.SPATTER_OPACITY
    low, high = grey * opacity, 255 * (1 - opacity) + grey * opacity  # mud at least SPATTER_OPACITY opaque
    assert (out[changed] >= np.floor(low)).all() and (out[changed] <= np.ceil(high)).all()


def test_dotted_line_draws_dashes_in_alternate_column_pairs():
    blank = np.zeros((40, 28, 28), dtype=np.uint8)
    out = corruptions.dotted_line(blank, seed=0)
    dash = (np.arange(28) // corruptions.DASH) % 2 == 1  # columns 2-3, 6-7, ...
    assert not out[:, :, ~dash].any()
    assert (out[:, :, dash].max(axis=1) > 128).all()  # every dash column carries the line
    assert (corruptions.dotted_line(IMAGES, seed=0) >= IMAGES).all()  # only adds ink


def test_zigzag_stays_in_a_band_around_its_line_and_crosses_it():
    blank = np.zeros((40, 28, 28), dtype=np.uint8)
    out = corruptions.zigzag(blank, seed=0)
    whole = [image for image in out if not image[[0, -1]].any()]  # teeth not cut off at the top or bottom
    assert len(whole) > 20
    for image in whole:
        rows, columns = np.nonzero(image > 64)
        assert columns.min() >= 2 - corruptions.PEN_WIDTH and columns.max() <= 25 + corruptions.PEN_WIDTH
        line = np.polyfit(columns, rows, 1)  # the zigzag's mid-line
        sideways = rows - np.polyval(line, columns)
        limit = corruptions.ZIGZAG_AMPLITUDE + corruptions.PEN_WIDTH
        assert np.abs(sideways).max() <= limit
        assert sideways.max() > 1.5 and sideways.min() < -1.5  # teeth on both sides
    assert (corruptions.zigzag(IMAGES, seed=0) >= IMAGES).all()


def test_edges_only_keeps_only_the_outline_of_the_ink():
    square = one_image(lambda image: image.__setitem__((slice(8, 20), slice(8, 20)), 255))
    out = corruptions.edges_only(square, seed=0)[0]
    assert set(np.unique(out)) == {0, 255}
    inside = square[0] > 0
    boundary_distance = np.minimum(ndimage.distance_transform_edt(inside), ndimage.distance_transform_edt(~inside))
    assert (boundary_distance[out > 0] <= 1.5).all()  # every edge pixel hugs the boundary
    rows, columns = np.nonzero(out)
    assert {rows.min(), rows.max(), columns.min(), columns.max()} <= {7, 8, 19, 20}  # all four sides found
    assert not corruptions.edges_only(np.zeros((2, 28, 28), dtype=np.uint8), seed=0).any()
