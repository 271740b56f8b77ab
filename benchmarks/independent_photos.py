"""An independent generator of "phone photo of a handwritten digit on paper" images (issue 13).

Written by a separate agent who had not seen `mnistlab.evaluation.photo_eval` or
`mnistlab.vision.preprocess`, so that the preprocessing is scored on photos its
authors did not design (docs/preprocessing.md). Score a set with
`python -m benchmarks.photo_accuracy CHECKPOINT DIR`.

Each image shows ONE MNIST test digit (indices 5000..9999 only), redrawn as a
pen / pencil / felt-tip stroke on a sheet of paper (plain, ruled, squared,
dotted), seen by a phone camera: sheet perspective, table at a border,
uneven light, hand/phone shadow, white balance, blur, sensor noise, rescaling
and JPEG.  Everything is driven by one seed.

    python -m benchmarks.independent_photos --seed 2027 --count 600 --out photos-2027

Reads the MNIST test set through mnistlab ($MNISTLAB_DATA_DIR first). Writes
DIR with the images, labels.csv (file,label,mnist_index,conditions) and params.jsonl (numeric parameters and
the digit's bounding box in the frame, one JSON object per image).
"""
import argparse
import csv
import io
import json
import math
import os
import time

import numpy as np
from PIL import Image, ImageDraw, ImageFilter
from scipy import ndimage
from skimage.morphology import skeletonize

from mnistlab.data.datasets import load_dataset

INDEX_LO, INDEX_HI = 5000, 10000  # test indices used: 5000..9999
SKEL_LOST_MAX = 0.04  # max fraction of the MNIST shape a skeleton redraw may miss

BICUBIC = Image.Resampling.BICUBIC
BILINEAR = Image.Resampling.BILINEAR


def load_mnist_test():
    """The MNIST test images and labels, read and checksum-verified by mnistlab ($MNISTLAB_DATA_DIR first)."""
    test = load_dataset("mnist", progress=False)
    return test.test_images, test.test_labels


# ----------------------------------------------------------------------------
# small helpers
# ----------------------------------------------------------------------------
def smooth_noise(rng, h, w, cell_y, cell_x=None):
    """Zero-mean, unit-std smooth noise field of shape (h, w); feature size ~cell."""
    cell_x = cell_y if cell_x is None else cell_x
    gh = max(2, int(math.ceil(h / max(cell_y, 1.0)))) + 3
    gw = max(2, int(math.ceil(w / max(cell_x, 1.0)))) + 3
    g = rng.standard_normal((gh, gw)).astype(np.float32)
    im = Image.fromarray(g, "F").resize((w, h), BICUBIC, box=(1.0, 1.0, gw - 2.0, gh - 2.0))
    a = np.asarray(im, dtype=np.float32)
    s = a.std()
    return (a - a.mean()) / (s if s > 1e-6 else 1.0)


def resize_f(a, w, h, resample=BILINEAR):
    return np.asarray(Image.fromarray(a.astype(np.float32), "F").resize((w, h), resample), dtype=np.float32)


def homography(src, dst):
    """3x3 H with dst ~ H @ src for 4 point pairs."""
    A, b = [], []
    for (x, y), (u, v) in zip(src, dst):
        A.append([x, y, 1, 0, 0, 0, -u * x, -u * y]); b.append(u)
        A.append([0, 0, 0, x, y, 1, -v * x, -v * y]); b.append(v)
    h = np.linalg.solve(np.array(A, float), np.array(b, float))
    return np.append(h, 1.0).reshape(3, 3)


def apply_h(H, pts):
    pts = np.asarray(pts, float)
    p = np.c_[pts, np.ones(len(pts))] @ H.T
    return p[:, :2] / p[:, 2:3]


def lum(rgb):
    rgb = np.asarray(rgb, float)
    return 0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]


def darkness(color01, alpha):
    """Fraction by which a multiplicative mark darkens white paper (luma)."""
    c = 1.0 - alpha * (1.0 - np.asarray(color01, float))
    return 1.0 - lum(c)


def to_u8(a):
    return np.clip(a * 255.0 + 0.5, 0, 255).astype(np.uint8)


# ----------------------------------------------------------------------------
# ink, paper, table definitions
# ----------------------------------------------------------------------------
INKS = {
    # name: (rgb 0..255 of full-strength ink, peak alpha range, width range as
    #        fraction of digit height, probability weight)
    "black_pen": ((28, 28, 34), (0.88, 1.0), (0.045, 0.085), 0.20),
    "dark_blue_pen": ((25, 35, 95), (0.85, 1.0), (0.045, 0.085), 0.14),
    "blue_ballpoint": ((45, 75, 185), (0.75, 0.97), (0.035, 0.065), 0.20),
    "pencil": ((78, 80, 88), (0.55, 0.85), (0.03, 0.055), 0.16),
    "felt_black": ((22, 22, 26), (0.9, 1.0), (0.08, 0.14), 0.12),
    "felt_blue": ((25, 55, 150), (0.9, 1.0), (0.08, 0.14), 0.08),
    "felt_green": ((25, 95, 55), (0.9, 1.0), (0.08, 0.14), 0.05),
    "felt_red": ((185, 35, 40), (0.9, 1.0), (0.08, 0.14), 0.05),
}

PAPERS = {
    "white": ((250, 250, 250), 0.30),
    "offwhite": ((246, 243, 234), 0.25),
    "cream": ((247, 238, 212), 0.17),
    "recycled_grey": ((222, 219, 210), 0.14),
    "yellow_pad": ((250, 242, 178), 0.06),
    "cool_white": ((240, 244, 250), 0.08),
}

RULINGS = {"plain": 0.30, "ruled": 0.22, "ruled_margin": 0.13, "squared": 0.20,
           "engineering": 0.05, "dot_grid": 0.10}


def pick(rng, table):
    names = list(table)
    w = np.array([table[n][-1] if isinstance(table[n], tuple) else table[n] for n in names], float)
    return names[rng.choice(len(names), p=w / w.sum())]


# ----------------------------------------------------------------------------
# digit stroke rendering
# ----------------------------------------------------------------------------
def prune_spurs(skel, n):
    """Remove skeleton branches shorter than ~n pixels (end-point erosion + regrowth)."""
    if n < 1:
        return skel
    k = np.ones((3, 3), np.uint8)
    s = skel.copy()
    ends_removed = np.zeros_like(s)
    for _ in range(n):
        nb = ndimage.convolve(s.astype(np.uint8), k, mode="constant") - s
        ends = s & (nb <= 1)
        if not ends.any():
            break
        ends_removed |= ends
        s = s & ~ends
    if s.sum() < 5:
        return skel
    # regrow from the remaining endpoints along the original skeleton
    grown = s.copy()
    for _ in range(n):
        nb = ndimage.convolve(grown.astype(np.uint8), k, mode="constant") - grown
        ends = grown & (nb <= 1)
        front = ndimage.binary_dilation(ends, structure=np.ones((3, 3), bool)) & skel & ~grown
        if not front.any():
            break
        grown |= front
    return grown


def render_digit(rng, img28, h_px, rot_deg, shear, aspect, method, width_frac, pvar, ink):
    """Return (alpha map float32, info).  Digit ink height ~ h_px (before rotation)."""
    a = img28.astype(np.float32) / 255.0
    ys, xs = np.nonzero(a > 0.2)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    pad = 3
    crop = np.pad(a, pad)[y0:y1 + 2 * pad, x0:x1 + 2 * pad]
    z = h_px / float(y1 - y0)
    # upsample in two steps (cheap smoothing of the 28px grid)
    hh, ww = crop.shape
    mid = np.asarray(Image.fromarray(crop, "F").resize((ww * 4, hh * 4), BICUBIC), np.float32)
    mid = ndimage.gaussian_filter(mid, 1.3)
    H = max(8, int(round(hh * z)))
    W = max(8, int(round(ww * z)))
    up = np.asarray(Image.fromarray(mid, "F").resize((W, H), BICUBIC), np.float32)
    up = ndimage.gaussian_filter(up, max(0.5, 0.12 * z))
    up /= max(up.max(), 1e-6)

    # writer variation: rotation + shear + aspect, one affine warp of the smooth field
    th = math.radians(rot_deg)
    # forward map (centred): M = R @ Shear @ Scale
    S = np.array([[aspect, 0], [0, 1.0]])
    Sh = np.array([[1, shear], [0, 1]])
    R = np.array([[math.cos(th), math.sin(th)], [-math.sin(th), math.cos(th)]])
    M = R @ Sh @ S
    corners = np.array([[-W / 2, -H / 2], [W / 2, -H / 2], [W / 2, H / 2], [-W / 2, H / 2]])
    tc = corners @ M.T
    margin = int(math.ceil(width_frac * h_px * 1.5 + 4))
    OW = int(math.ceil(tc[:, 0].max() - tc[:, 0].min())) + 2 * margin
    OH = int(math.ceil(tc[:, 1].max() - tc[:, 1].min())) + 2 * margin
    Minv = np.linalg.inv(M)
    # output (x,y) -> input: in = Minv @ (out - oc) + ic
    oc = np.array([OW / 2, OH / 2]); ic = np.array([W / 2, H / 2])
    off = ic - Minv @ oc
    coeffs = (Minv[0, 0], Minv[0, 1], off[0], Minv[1, 0], Minv[1, 1], off[1])
    f = np.asarray(Image.fromarray(up, "F").transform((OW, OH), Image.Transform.AFFINE, coeffs, BICUBIC),
                   np.float32)

    # local contrast normalisation: faint MNIST connections (light pixels
    # between two strokes) should survive thresholding like the rest
    lm = ndimage.maximum_filter(f, size=max(3, int(0.12 * h_px)))
    f = f / np.maximum(lm, 0.4)

    # pressure field along the digit (low frequency)
    p = smooth_noise(rng, OH, OW, max(6.0, h_px / 2.5))
    p = np.clip(0.5 + 0.5 * p / 1.5, 0, 1)               # 0..1
    pressure = 1.0 - pvar * p                             # 1-pvar .. 1

    info = {}
    if method == "skeleton":
        mask = f > rng.uniform(0.25, 0.38)
        skel = skeletonize(mask)
        base_r = max(0.8, width_frac * h_px / 2.0)
        skel = prune_spurs(skel, int(round(max(2, 0.06 * h_px))))
        if skel.sum() < 5:
            method = "threshold"
        else:
            d, inds = ndimage.distance_transform_edt(~skel, return_indices=True)
            r = base_r * (0.7 + 0.3 * pressure)
            rr = r[inds[0], inds[1]]
            alpha = np.clip(rr - d + 0.5, 0, 1).astype(np.float32)
            info["stroke_px"] = round(2 * base_r, 2)
            # MNIST often has loops that are filled in (small 6/8/9 loops, the
            # loop of a 2): a thin skeleton stroke would collapse them and can
            # change the digit's identity (an 8 turning into a 9).  Measure how
            # much of the MNIST shape a thick redraw of the skeleton misses and
            # fall back to the (faithful) threshold stroke if it is too much.
            em = ndimage.distance_transform_edt(mask)
            med = float(np.median(em[skel]))
            recon = d < med * 1.15 + max(1.0, 0.006 * h_px)
            lost = float((mask & ~recon).sum()) / max(1.0, float(mask.sum()))
            info["skeleton_lost"] = round(lost, 4)
            if lost > SKEL_LOST_MAX:
                method = "threshold"
                info["fallback"] = True
    if method == "threshold":
        t = rng.uniform(0.33, 0.5) if ink.startswith("felt") else rng.uniform(0.36, 0.5)
        t_local = t + 0.1 * (1 - pressure)               # thinner where pressure is lower
        gy, gx = np.gradient(f)
        g = np.sqrt(gx * gx + gy * gy) + 1e-4
        alpha = np.clip((f - t_local) / g + 0.5, 0, 1).astype(np.float32)
        # estimate stroke width: area / skeleton length
        sk = skeletonize(alpha > 0.5)
        info["stroke_px"] = round(float(alpha.sum() / max(sk.sum(), 1)), 2)
        info["thresh"] = round(t, 3)
    info["method"] = method + ("_fallback" if info.get("fallback") else "")

    # ink texture
    peak = rng.uniform(*INKS[ink][1])
    alpha *= peak * (0.75 + 0.25 * pressure) if pvar > 0 else peak
    if ink == "blue_ballpoint" or ink.endswith("_pen"):
        # ballpoint: slight skipping / uneven deposit along the line
        n = smooth_noise(rng, OH, OW, max(2.0, 0.02 * h_px))
        alpha *= np.clip(1.0 - 0.12 * np.maximum(n, 0), 0.7, 1.0)
    if ink.startswith("felt"):
        alpha = ndimage.gaussian_filter(alpha, 0.6 + 0.004 * h_px)   # slight bleed
        alpha = np.clip(alpha * 1.15, 0, peak)
    info["peak_alpha"] = round(peak, 3)
    return alpha, info


# ----------------------------------------------------------------------------
# one image
# ----------------------------------------------------------------------------
def make_image(rng, img28, label, ink=None, blank=False):
    """One photo; `ink` forces the ink (the random draws stay the same), `blank` leaves the sheet unwritten
    (both added for issue 22, to draw pencil-only and blank-sheet sets)."""
    cond = {}
    P = {}
    r = rng.random()
    profile = "mild" if r < 0.25 else ("normal" if r < 0.75 else "strong")
    cond["profile"] = profile
    sev = {"mild": 0.45, "normal": 1.0, "strong": 1.45}[profile]

    def chance(p):
        return rng.random() < min(0.95, p * sev) if profile != "mild" else rng.random() < p * 0.5

    # ---- frame size / orientation ------------------------------------------
    mp = rng.uniform(0.41, 1.98)
    ar = [4 / 3, 3 / 4, 16 / 9, 9 / 16, 1.0, 3 / 2][rng.choice(6, p=[0.32, 0.36, 0.1, 0.12, 0.04, 0.06])]
    W = int(round(math.sqrt(mp * 1e6 * ar) / 2) * 2)
    Hf = int(round(math.sqrt(mp * 1e6 / ar) / 2) * 2)
    cond["orient"] = "landscape" if W > Hf else ("portrait" if Hf > W else "square")
    P["size"] = [W, Hf]

    # ---- ink / stroke ----------------------------------------------------------
    drawn = pick(rng, INKS)  # drawn even when forced, so the rest of the photo is the same
    ink = drawn if ink is None else ink
    cond["ink"] = ink
    ink_rgb = np.array(INKS[ink][0], float) * rng.uniform(0.9, 1.1, 3)
    ink_rgb = np.clip(ink_rgb, 5, 230) / 255.0
    width_frac = rng.uniform(*INKS[ink][2])
    method = "skeleton" if (ink == "pencil" or rng.random() < 0.8) else "threshold"
    pvar = 0.0 if rng.random() < 0.3 else rng.uniform(0.1, 0.45 if ink != "pencil" else 0.35)
    cond["pressure"] = "uniform" if pvar == 0 else "varied"

    # ---- digit geometry --------------------------------------------------------
    hfrac = rng.uniform(0.05, 0.35)
    rot_total = rng.uniform(-15, 15) * (0.5 if profile == "mild" else 1.0)
    sheet_rot = float(np.clip(rng.normal(0, 2.5), -5, 5))
    if abs(rot_total - sheet_rot) > 12:
        sheet_rot = rot_total - math.copysign(12, rot_total - sheet_rot)
    digit_rot = rot_total - sheet_rot
    shear = rng.uniform(-0.18, 0.18)
    aspect = rng.uniform(0.85, 1.15)

    # ---- sheet + perspective ---------------------------------------------------
    table_mode = "none"
    if chance(0.3):
        table_mode = "one_side" if rng.random() < 0.7 else "corner"
    cond["table"] = table_mode
    persp = 0.0 if rng.random() < 0.2 else rng.uniform(0.01, 0.09) * (0.5 if profile == "mild" else 1)
    cond["perspective"] = "none" if persp < 0.02 else ("mild" if persp < 0.05 else "strong")

    SW, SH = int(W * 1.3), int(Hf * 1.3)
    src = [(0, 0), (SW, 0), (SW, SH), (0, SH)]
    scale = rng.uniform(0.98, 1.08)
    for _attempt in range(30):
        c = np.array([W / 2, Hf / 2]) + rng.uniform(-0.04, 0.04, 2) * [W, Hf]
        th = math.radians(sheet_rot)
        Rm = np.array([[math.cos(th), -math.sin(th)], [math.sin(th), math.cos(th)]])
        base = np.array([[-SW / 2, -SH / 2], [SW / 2, -SH / 2], [SW / 2, SH / 2], [-SW / 2, SH / 2]]) * scale
        # keystone: one side of the sheet is farther from the camera
        kside = rng.integers(4)
        dst = base.copy()
        a_ = persp * (SW if kside in (0, 2) else SH) * scale
        if kside == 0:   # top farther
            dst[0, 0] += a_; dst[1, 0] -= a_
        elif kside == 2:  # bottom farther
            dst[3, 0] += a_; dst[2, 0] -= a_
        elif kside == 1:  # right farther
            dst[1, 1] += a_; dst[2, 1] -= a_
        else:
            dst[0, 1] += a_; dst[3, 1] -= a_
        dst += rng.normal(0, 0.008, dst.shape) * [W, Hf]
        dst = dst @ Rm.T + c
        if table_mode != "none":
            sides = [rng.integers(4)]
            if table_mode == "corner":
                sides.append((sides[0] + 1) % 4)
            for s in sides:
                e = rng.uniform(0.03, 0.16)
                if s == 0:    # table visible at left
                    dst[:, 0] += e * W - min(dst[0, 0], dst[3, 0])
                elif s == 1:  # top
                    dst[:, 1] += e * Hf - min(dst[0, 1], dst[1, 1])
                elif s == 2:  # right
                    dst[:, 0] += (1 - e) * W - max(dst[1, 0], dst[2, 0])
                else:         # bottom
                    dst[:, 1] += (1 - e) * Hf - max(dst[2, 1], dst[3, 1])
        Hm = homography(src, dst)
        Hinv = np.linalg.inv(Hm)
        fc = apply_h(Hinv, [(0, 0), (W, 0), (W, Hf), (0, Hf)])
        inside = (fc[:, 0] > 0) & (fc[:, 0] < SW) & (fc[:, 1] > 0) & (fc[:, 1] < SH)
        if table_mode == "none" and inside.all():
            break
        if table_mode != "none" and inside.sum() >= (2 if table_mode == "one_side" else 1):
            break
        scale *= 1.04
    P["sheet_quad"] = np.round(dst, 1).tolist()
    P["sheet_rot"] = round(sheet_rot, 2)

    # ---- render digit alpha and place it ---------------------------------------
    def local_scale(x, y):
        e = 1.0
        p = apply_h(Hm, [(x, y), (x + e, y), (x, y + e)])
        J = np.array([p[1] - p[0], p[2] - p[0]])
        return math.sqrt(abs(np.linalg.det(J)))

    m = 0.025 * min(W, Hf) + 3
    placed = None
    for shrink_round in range(6):
        h_frame = hfrac * W
        h_frame = min(h_frame, 0.8 * Hf)
        s0 = local_scale(SW / 2, SH / 2)
        alpha, dinfo = render_digit(rng, img28, h_frame / s0, digit_rot, shear, aspect,
                                    method, width_frac, pvar, ink)
        ys, xs = np.nonzero(alpha > 0.05)
        ah, aw = alpha.shape
        bx0, bx1, by0, by1 = xs.min(), xs.max() + 1, ys.min(), ys.max() + 1
        for _ in range(60):
            # choose where the digit centre lands in the frame: anywhere, with a
            # mild preference for the middle
            if rng.random() < 0.35:
                u, v = W * rng.uniform(0.35, 0.65), Hf * rng.uniform(0.35, 0.65)
            else:
                u, v = W * rng.uniform(0.0, 1.0), Hf * rng.uniform(0.0, 1.0)
            sx, sy = apply_h(Hinv, [(u, v)])[0]
            ox = int(round(sx - (bx0 + bx1) / 2)); oy = int(round(sy - (by0 + by1) / 2))
            if ox < 0 or oy < 0 or ox + aw > SW or oy + ah > SH:
                continue
            box_s = np.array([(ox + bx0, oy + by0), (ox + bx1, oy + by0), (ox + bx1, oy + by1), (ox + bx0, oy + by1)])
            sm = 0.02 * min(SW, SH)
            if (box_s[:, 0].min() < sm or box_s[:, 1].min() < sm or box_s[:, 0].max() > SW - sm
                    or box_s[:, 1].max() > SH - sm):
                continue
            box_f = apply_h(Hm, box_s)
            if box_f[:, 0].min() < m or box_f[:, 1].min() < m or box_f[:, 0].max() > W - m or box_f[:, 1].max() > Hf - m:
                continue
            placed = (ox, oy, box_s, box_f)
            break
        if placed:
            break
        hfrac *= 0.85
    if placed is None:
        raise RuntimeError("could not place digit")
    ox, oy, box_s, box_f = placed
    fx0, fy0 = box_f.min(0); fx1, fy1 = box_f.max(0)
    P["digit_bbox_frame"] = [round(float(v), 1) for v in (fx0, fy0, fx1, fy1)]
    # digit height in the frame = distance between mapped top-centre and bottom-centre
    # of the unrotated ink box (approximated by the local scale)
    s_here = local_scale(ox + (bx0 + bx1) / 2, oy + (by0 + by1) / 2)
    h_eff = h_frame / s0 * s_here
    P["digit_height_frac_of_width"] = round(h_eff / W, 4)
    cond["size"] = "small" if h_eff / W < 0.13 else ("medium" if h_eff / W < 0.24 else "large")
    cxf, cyf = (fx0 + fx1) / 2 / W, (fy0 + fy1) / 2 / Hf
    dcen = max(abs(cxf - 0.5), abs(cyf - 0.5))
    cond["position"] = "centre" if dcen < 0.12 else ("off_centre" if dcen < 0.28 else "near_edge")
    cond["rotation"] = "0-5" if abs(rot_total) < 5 else ("5-10" if abs(rot_total) < 10 else "10-15")
    cond["stroke"] = dinfo["method"]
    P.update({"rot_total": round(rot_total, 2), "digit_rot": round(digit_rot, 2), "shear": round(shear, 3),
              "aspect": round(aspect, 3), "pressure_var": round(pvar, 3), "width_frac": round(width_frac, 4),
              "ink_rgb": [round(float(v) * 255) for v in ink_rgb]})
    P.update({("stroke_" + k if not k.startswith("stroke") else k): v for k, v in dinfo.items()})

    # ---- paper -------------------------------------------------------------------
    paper = pick(rng, PAPERS)
    cond["paper"] = paper
    prgb = np.array(PAPERS[paper][0], float) * rng.uniform(0.985, 1.0, 3) / 255.0
    # grain: fine (per ~1-2px) + blotchy
    fine_amp = rng.uniform(0.005, 0.016) * (1.4 if paper == "recycled_grey" else 1.0)
    blot_amp = rng.uniform(0.001, 0.006) * (1.4 if paper == "recycled_grey" else 1.0)
    gh, gw = SH // 2 + 1, SW // 2 + 1
    fine = resize_f(rng.standard_normal((gh, gw)).astype(np.float32), SW, SH)
    blot = smooth_noise(rng, SH, SW, rng.uniform(8, 40) * SW / 1000)
    tex = 1.0 + fine_amp * fine + blot_amp * blot
    cond["grain"] = "high" if fine_amp + blot_amp > 0.016 else "low"
    sheet = tex[..., None] * prgb[None, None, :].astype(np.float32)
    sheet = sheet.astype(np.float32)
    if paper == "recycled_grey":
        nsp = int(SW * SH / rng.uniform(8000, 25000))
        yy = rng.integers(0, SH, nsp); xx = rng.integers(0, SW, nsp)
        sheet[yy, xx] *= rng.uniform(0.75, 0.92, (nsp, 1)).astype(np.float32)

    # ---- ruling -------------------------------------------------------------------
    ruling = pick(rng, RULINGS)
    cond["ruling"] = ruling
    ink_dark = float(darkness(ink_rgb, float(dinfo["peak_alpha"]) * (1 - 0.5 * pvar)))
    stroke_px = float(dinfo.get("stroke_px", 3.0))
    h_s = h_frame / s0  # digit height in sheet px
    if ruling != "plain":
        if ruling.startswith("ruled"):
            col = np.array([(150, 180, 225), (165, 175, 190), (140, 170, 215), (175, 200, 225)][rng.integers(4)]) / 255.
            spacing = h_s / rng.uniform(0.7, 2.0)
        elif ruling == "dot_grid":
            col = np.array([(150, 150, 155), (150, 170, 200)][rng.integers(2)]) / 255.
            spacing = h_s / rng.uniform(1.3, 3.0)
        else:
            col = np.array([(160, 185, 220), (170, 175, 180), (160, 200, 175), (190, 190, 195)][rng.integers(4)]) / 255.
            spacing = h_s / rng.uniform(1.3, 3.5)
        spacing = max(spacing, 9.0)
        lw = float(np.clip(spacing / rng.uniform(25, 45), 0.8, 0.7 * stroke_px))
        la = rng.uniform(0.55, 0.95)
        # legibility: rules clearly lighter than the ink
        max_d = 0.5 * ink_dark
        while darkness(col, la) > max_d and la > 0.1:
            la *= 0.9
        # align a line with the digit baseline sometimes
        base_y = oy + by1
        phase = (base_y - rng.uniform(0, 0.15) * spacing) % spacing if rng.random() < 0.6 else rng.uniform(0, spacing)
        yv = np.arange(SH, dtype=np.float32)
        dy = np.abs(((yv - phase + spacing / 2) % spacing) - spacing / 2)
        py = np.clip(lw / 2 + 0.5 - dy, 0, 1)
        if ruling.startswith("ruled"):
            top = rng.uniform(0.03, 0.12) * SH  # header band without lines sometimes
            if rng.random() < 0.5:
                py[: int(top)] = 0
            cover = py[:, None] * np.ones((1, SW), np.float32)
        else:
            xv = np.arange(SW, dtype=np.float32)
            phx = rng.uniform(0, spacing)
            dx = np.abs(((xv - phx + spacing / 2) % spacing) - spacing / 2)
            px = np.clip(lw / 2 + 0.5 - dx, 0, 1)
            if ruling == "dot_grid":
                rdot = max(lw * 0.9, 1.0)
                ddx = np.minimum(dx, 99)[None, :]; ddy = np.minimum(dy, 99)[:, None]
                cover = np.clip(rdot + 0.5 - np.sqrt(ddx * ddx + ddy * ddy), 0, 1)
            else:
                if ruling == "engineering":
                    # every 5th line heavier (still lighter than ink)
                    k5 = (np.round((yv - phase) / spacing) % 5 == 0)
                    py = np.where(k5, np.clip(lw + 0.5 - dy, 0, 1), py * 0.8)
                    k5x = (np.round((xv - phx) / spacing) % 5 == 0)
                    px = np.where(k5x, np.clip(lw + 0.5 - dx, 0, 1), px * 0.8)
                cover = np.maximum(py[:, None], px[None, :])
        # printing is not perfectly even
        cover = cover * np.float32(la)
        sheet *= (1.0 - cover[..., None] * (1.0 - col[None, None, :])).astype(np.float32)
        P["ruling"] = {"spacing": round(spacing, 1), "lw": round(lw, 2), "alpha": round(la, 3),
                       "rgb": [int(round(c * 255)) for c in col]}
        if ruling == "ruled_margin":
            mcol = np.array((228, 110, 120)) / 255.
            ma = rng.uniform(0.55, 0.85)
            while darkness(mcol, ma) > max_d and ma > 0.1:
                ma *= 0.9
            # margin at the left of the sheet, away from the digit when possible
            xm = rng.uniform(0.06, 0.16) * SW
            if ox + bx0 - 5 < xm < ox + bx1 + 5:
                xm = max(8.0, ox + bx0 - rng.uniform(0.5, 2.0) * spacing)
            xv = np.arange(SW, dtype=np.float32)
            mlw = float(np.clip(lw * 1.2, 1.0, 0.8 * stroke_px))
            pm = np.clip(mlw / 2 + 0.5 - np.abs(xv - xm), 0, 1)
            if rng.random() < 0.3:
                pm = np.maximum(pm, np.clip(mlw / 2 + 0.5 - np.abs(xv - xm - 3 * mlw - 2), 0, 1))
            sheet *= (1.0 - (pm * ma)[None, :, None] * (1.0 - mcol[None, None, :])).astype(np.float32)

    # ---- ink onto the sheet ------------------------------------------------------
    region = sheet[oy:oy + ah, ox:ox + aw]
    a = alpha * 0 if blank else alpha
    if ink == "pencil":
        # graphite sits on the paper tooth: grainy, correlated with the paper texture
        tooth = fine[oy:oy + ah, ox:ox + aw]
        hf = rng.standard_normal((ah, aw)).astype(np.float32)
        g = 0.6 * tooth + 0.8 * hf
        a = a * np.clip(0.62 + 0.3 * g, 0.15, 1.0)
    region *= (1.0 - a[..., None] * (1.0 - ink_rgb[None, None, :].astype(np.float32)))
    if ink == "pencil":
        # graphite has a faint sheen: slightly less dark, slightly bluish in strong strokes
        region += (0.02 * a)[..., None] * np.array([0.0, 0.2, 0.6], np.float32)

    # ---- crease / fold -----------------------------------------------------------
    if chance(0.15):
        cond["crease"] = "yes"
        ang = rng.uniform(0, math.pi)
        nx, ny = math.cos(ang), math.sin(ang)
        x0c, y0c = rng.uniform(0.2, 0.8) * SW, rng.uniform(0.2, 0.8) * SH
        # compute on a coarse grid + upsample for the broad part, exact for the ridge
        yy, xx = np.mgrid[0:SH, 0:SW].astype(np.float32)
        d = (xx - x0c) * nx + (yy - y0c) * ny
        del xx, yy
        wbroad = rng.uniform(4, 25) * SW / 1000
        a_side = rng.uniform(0.03, 0.09)
        ridge = rng.uniform(0.05, 0.14)
        hl = rng.uniform(0.02, 0.06)
        lw_c = rng.uniform(0.8, 1.8) * SW / 1000 + 0.6
        fct = (1.0 - a_side / (1.0 + np.exp(np.clip(-d / wbroad, -30, 30))) - ridge * np.exp(-(d / lw_c) ** 2)
               + hl * np.exp(-((d + 3 * lw_c) / (1.5 * lw_c)) ** 2)).astype(np.float32)
        sheet *= fct[..., None]
        del d, fct
        P["crease"] = {"angle": round(math.degrees(ang), 1), "side": round(a_side, 3), "ridge": round(ridge, 3)}
    else:
        cond["crease"] = "no"

    # ---- warp to the frame, table ------------------------------------------------
    sheet_im = Image.fromarray(to_u8(sheet), "RGB")
    del sheet
    coeffs = tuple((Hinv / Hinv[2, 2]).flatten()[:8])
    frame = np.asarray(sheet_im.transform((W, Hf), Image.Transform.PERSPECTIVE, coeffs, BICUBIC,
                                          fillcolor=(0, 0, 0)), np.float32) / 255.0
    if table_mode != "none":
        mask_im = Image.new("L", (SW, SH), 255).transform((W, Hf), Image.Transform.PERSPECTIVE, coeffs,
                                                           BILINEAR, fillcolor=0)
        M = np.asarray(mask_im, np.float32) / 255.0
        ttype = ["wood", "grey_desk", "dark_desk", "white_desk", "fabric"][rng.choice(5, p=[0.35, 0.2, 0.2, 0.15, 0.1])]
        cond["table"] = table_mode + ":" + ttype
        if ttype == "wood":
            base = np.array([(150, 100, 62), (175, 130, 85), (110, 72, 45), (195, 160, 115)][rng.integers(4)]) / 255.
            if rng.random() < 0.5:
                n1 = smooth_noise(rng, Hf, W, Hf / 80, W / 3)
            else:
                n1 = smooth_noise(rng, Hf, W, Hf / 3, W / 80)
            n2 = smooth_noise(rng, Hf, W, min(W, Hf) / 6)
            t = (1 + 0.10 * n1 + 0.06 * n2)[..., None] * base
        else:
            base = {"grey_desk": (135, 135, 135), "dark_desk": (45, 45, 50), "white_desk": (225, 225, 222),
                    "fabric": (70, 85, 120)}[ttype]
            base = np.array(base) / 255. * rng.uniform(0.9, 1.1, 3)
            n2 = smooth_noise(rng, Hf, W, min(W, Hf) / 5)
            t = (1 + 0.04 * n2 + 0.02 * rng.standard_normal((Hf, W)).astype(np.float32))[..., None] * base
        # the sheet casts a small contact shadow on the table
        sh_off = rng.uniform(2, 8) * W / 1000
        Ms = Image.fromarray((M * 255).astype(np.uint8)).transform(
            (W, Hf), Image.Transform.AFFINE, (1, 0, -sh_off, 0, 1, -sh_off), BILINEAR)
        Ms = np.asarray(Ms.filter(ImageFilter.GaussianBlur(3 + 6 * W / 1000)), np.float32) / 255.0
        t = t * (1 - 0.35 * Ms)[..., None]
        frame = frame * M[..., None] + t.astype(np.float32) * (1 - M[..., None])
        del t, M, Ms

    # ---- lighting (computed at low resolution) ------------------------------------
    ls = 8
    lw_, lh_ = W // ls + 1, Hf // ls + 1
    yy, xx = np.mgrid[0:lh_, 0:lw_].astype(np.float32)
    xn = xx / (lw_ - 1); yn = yy / (lh_ - 1)
    illum = np.ones((lh_, lw_), np.float32)
    if chance(0.6):
        g = rng.uniform(0.08, 0.5) * (0.6 if profile == "mild" else 1.0)
        ang = rng.uniform(0, 2 * math.pi)
        proj = (xn - 0.5) * math.cos(ang) + (yn - 0.5) * math.sin(ang)
        proj = (proj - proj.min()) / (proj.max() - proj.min() + 1e-6)
        illum *= 1 - g * proj ** rng.uniform(0.8, 2.0)
        cond["gradient"] = "strong" if g > 0.3 else "mild"
        P["gradient"] = round(g, 3)
    else:
        cond["gradient"] = "no"
    if chance(0.45):
        v = rng.uniform(0.08, 0.35)
        cxv, cyv = 0.5 + rng.uniform(-0.15, 0.15), 0.5 + rng.uniform(-0.15, 0.15)
        r2 = ((xn - cxv) ** 2 * (W / max(W, Hf)) ** 2 + (yn - cyv) ** 2 * (Hf / max(W, Hf)) ** 2) / 0.5
        illum *= 1 - v * np.clip(r2, 0, 1.5) ** 1.3
        cond["vignette"] = "yes"
        P["vignette"] = round(v, 3)
    else:
        cond["vignette"] = "no"
    shadow = np.zeros((lh_, lw_), np.float32)
    if chance(0.3):
        kind = "hand" if rng.random() < 0.5 else "phone"
        cond["shadow"] = kind
        im = Image.new("L", (lw_, lh_), 0)
        dr = ImageDraw.Draw(im)
        side = rng.integers(4)
        Lm = max(lw_, lh_)
        # edge entry point
        t_ = rng.uniform(0.15, 0.85)
        if side == 0:
            ex, ey, dx_, dy_ = t_ * lw_, 0, 0, 1
        elif side == 1:
            ex, ey, dx_, dy_ = lw_, t_ * lh_, -1, 0
        elif side == 2:
            ex, ey, dx_, dy_ = t_ * lw_, lh_, 0, -1
        else:
            ex, ey, dx_, dy_ = 0, t_ * lh_, 1, 0
        depth = rng.uniform(0.2, 0.55) * (lh_ if dy_ else lw_)
        tilt = rng.uniform(-0.5, 0.5)
        ux, uy = dx_ + tilt * dy_, dy_ - tilt * dx_
        nrm = math.hypot(ux, uy); ux, uy = ux / nrm, uy / nrm
        px_, py_ = -uy, ux
        if kind == "phone":
            wph = rng.uniform(0.25, 0.45) * Lm
            tip = (ex + ux * depth, ey + uy * depth)
            back = (ex - ux * Lm, ey - uy * Lm)
            poly = [(tip[0] + px_ * wph / 2, tip[1] + py_ * wph / 2), (tip[0] - px_ * wph / 2, tip[1] - py_ * wph / 2),
                    (back[0] - px_ * wph / 2, back[1] - py_ * wph / 2), (back[0] + px_ * wph / 2, back[1] + py_ * wph / 2)]
            dr.polygon(poly, fill=255)
        else:
            # forearm + palm + fingers
            wa = rng.uniform(0.15, 0.25) * Lm
            palm = (ex + ux * depth * 0.6, ey + uy * depth * 0.6)
            dr.line([(ex - ux * Lm, ey - uy * Lm), palm], fill=255, width=int(wa))
            rp = wa * 0.75
            dr.ellipse([palm[0] - rp, palm[1] - rp, palm[0] + rp, palm[1] + rp], fill=255)
            nf = rng.integers(2, 5)
            for k in range(nf):
                o = (k - (nf - 1) / 2) * wa * 0.32
                fa = rng.uniform(-0.2, 0.2)
                fx, fy = ux + fa * px_, uy + fa * py_
                fl = depth * rng.uniform(0.35, 0.6)
                s0_ = (palm[0] + px_ * o, palm[1] + py_ * o)
                dr.line([s0_, (s0_[0] + fx * fl, s0_[1] + fy * fl)], fill=255, width=max(1, int(wa * 0.22)))
        soft = rng.uniform(0.02, 0.07) * Lm
        im = im.filter(ImageFilter.GaussianBlur(soft))
        s_amt = rng.uniform(0.15, 0.45)
        shadow = np.asarray(im, np.float32) / 255.0 * s_amt
        P["shadow"] = round(s_amt, 3)
    else:
        cond["shadow"] = "no"
    # legibility: never more than ~50% darker than the brightest part
    tot = illum * (1 - shadow)
    lo = 0.5
    if tot.min() < lo * tot.max():
        # compress the range into [lo, 1]
        tmax = tot.max(); tmin = tot.min()
        tot_n = lo + (1 - lo) * (tot - tmin) / (tmax - tmin + 1e-6)
        scale_f = tot_n / np.maximum(tot, 1e-6)
        illum = illum * scale_f
    # shadows are lit by bluish ambient light
    tint = np.array([1.08, 1.0, 0.88], np.float32) * rng.uniform(0.7, 1.0)
    chans = []
    for ci in range(3):
        f_ = illum * (1 - np.clip(shadow * tint[ci], 0, 0.5))
        chans.append(resize_f(f_, W, Hf, BILINEAR))
    light = np.stack(chans, -1)
    del chans
    # glare
    if chance(0.08):
        gx, gy = rng.uniform(0.1, 0.9) * W, rng.uniform(0.1, 0.9) * Hf
        gr = rng.uniform(0.1, 0.3) * max(W, Hf)
        gamt = rng.uniform(0.06, 0.18)
        yyf, xxf = np.mgrid[0:lh_, 0:lw_].astype(np.float32) * ls
        gl = gamt * np.exp(-((xxf - gx) ** 2 + (yyf - gy) ** 2) / (2 * gr * gr))
        glare = resize_f(gl, W, Hf)
        cond["glare"] = "yes"
    else:
        glare = None
        cond["glare"] = "no"

    # ---- white balance / exposure -------------------------------------------------
    wbr = rng.random()
    if wbr < 0.35:
        wb = "neutral"; gains = np.array([1, 1, 1.0]) * rng.uniform(0.98, 1.02, 3)
    elif wbr < 0.7:
        wb = "warm"; k = rng.uniform(0.04, 0.2); gains = np.array([1.0, 1 - 0.45 * k, 1 - k])
    else:
        wb = "cool"; k = rng.uniform(0.03, 0.14); gains = np.array([1 - k, 1 - 0.3 * k, 1.0])
    cond["white_balance"] = wb
    expo = rng.uniform(0.7, 1.04)
    P["exposure"] = round(expo, 3); P["wb_gains"] = [round(float(g), 3) for g in gains]
    img = frame * light * (gains * expo).astype(np.float32)[None, None, :]
    del frame, light
    if glare is not None:
        img += glare[..., None]
    gamma = rng.uniform(0.85, 1.15)
    img = np.clip(img, 0, 1) ** np.float32(gamma)

    # ---- camera: blur --------------------------------------------------------------
    stroke_f = stroke_px * (h_eff / max(h_s, 1))
    br = rng.random()
    if br < (0.35 if profile == "mild" else 0.55):
        cond["blur"] = "none"
        im8 = Image.fromarray(to_u8(img))
    elif br < 0.8:
        sig = rng.uniform(0.5, 2.2) * (0.6 if profile == "mild" else 1.0)
        sig = min(sig, max(0.5, 0.45 * stroke_f), 0.035 * h_eff)
        cond["blur"] = "defocus"
        P["blur_sigma"] = round(sig, 2)
        im8 = Image.fromarray(to_u8(img)).filter(ImageFilter.GaussianBlur(sig))
    else:
        L = rng.uniform(2, 9)
        L = min(L, max(2.0, 1.0 * stroke_f), 0.06 * h_eff)
        ang = rng.uniform(0, math.pi)
        n = max(2, int(round(L)) + 1)
        acc = np.zeros_like(img)
        for k in range(n):
            t_ = (k / (n - 1) - 0.5) * L
            sx, sy = int(round(t_ * math.cos(ang))), int(round(t_ * math.sin(ang)))
            acc += np.roll(img, (sy, sx), axis=(0, 1))
        img = acc / n
        del acc
        cond["blur"] = "motion"
        P["motion_len"] = round(L, 2)
        im8 = Image.fromarray(to_u8(img))
    del img

    # ---- sensor noise ------------------------------------------------------------
    a = np.asarray(im8, np.float32)
    nl = rng.random()
    if nl < 0.3:
        read, shot, chroma = rng.uniform(0.3, 1.2), rng.uniform(0, 0.02), rng.uniform(0, 0.8); cond["noise"] = "low"
    elif nl < 0.75:
        read, shot, chroma = rng.uniform(1, 3), rng.uniform(0.02, 0.06), rng.uniform(0.5, 2.0); cond["noise"] = "medium"
    else:
        read, shot, chroma = rng.uniform(2.5, 5), rng.uniform(0.05, 0.12), rng.uniform(1.5, 4.0); cond["noise"] = "high"
    if profile == "mild":
        read, shot, chroma = read * 0.5, shot * 0.5, chroma * 0.5
    Y = a.mean(-1)
    sig = np.sqrt(read ** 2 + shot * np.maximum(Y, 0))
    nY = rng.standard_normal((Hf, W)).astype(np.float32) * sig
    # chroma noise is blotchy (demosaic + denoise leave low-frequency colour noise)
    cw, chh = W // 3 + 1, Hf // 3 + 1
    nC = np.stack([resize_f(rng.standard_normal((chh, cw)).astype(np.float32), W, Hf) for _ in range(2)], -1) * chroma
    a[..., 0] += nY + nC[..., 0]
    a[..., 1] += nY - 0.5 * (nC[..., 0] + nC[..., 1])
    a[..., 2] += nY + nC[..., 1]
    P["noise"] = {"read": round(read, 2), "shot": round(shot, 3), "chroma": round(chroma, 2)}
    im8 = Image.fromarray(np.clip(a + 0.5, 0, 255).astype(np.uint8))
    del a, nY, nC, Y, sig

    # ---- phone processing: sharpening ------------------------------------------------
    if chance(0.45):
        im8 = im8.filter(ImageFilter.UnsharpMask(radius=rng.uniform(0.8, 2.2), percent=int(rng.uniform(40, 160)),
                                                 threshold=int(rng.integers(0, 4))))
        cond["sharpen"] = "yes"
    else:
        cond["sharpen"] = "no"

    # ---- JPEG, rescale, JPEG -------------------------------------------------------
    def jpeg(im, q):
        buf = io.BytesIO()
        im.save(buf, "JPEG", quality=int(q), subsampling=2 if rng.random() < 0.85 else 0)
        buf.seek(0)
        return Image.open(buf).convert("RGB")

    double = chance(0.35)
    rescale = chance(0.3)
    qs = []
    if double or rescale:
        q1 = int(rng.integers(70, 93)); im8 = jpeg(im8, q1); qs.append(q1)
    if rescale:
        fmin = max(0.3, 30.0 / max(h_eff, 1))
        f = rng.uniform(min(fmin, 0.8), 0.8)
        sw_, sh_ = max(16, int(W * f)), max(16, int(Hf * f))
        im8 = im8.resize((sw_, sh_), [BILINEAR, BICUBIC, Image.Resampling.LANCZOS][rng.integers(3)])
        if rng.random() < 0.5:
            q = int(rng.integers(50, 90)); im8 = jpeg(im8, q); qs.append(q)
        im8 = im8.resize((W, Hf), [BILINEAR, BICUBIC][rng.integers(2)])
        cond["rescale"] = "yes"
        P["rescale_factor"] = round(f, 3)
    else:
        cond["rescale"] = "no"
    qf = int(rng.integers(40, 91))
    qs.append(qf)
    cond["jpeg"] = "%dx" % len(qs)
    cond["jpeg_q"] = "40-59" if qf < 60 else ("60-74" if qf < 75 else "75-90")
    P["jpeg_q"] = qs
    fmt = "png" if rng.random() < 0.15 else "jpg"
    cond["format"] = fmt
    if fmt == "png":
        im8 = jpeg(im8, qf)
    return im8, fmt, qf, cond, P


def make_scan(rng, img28):
    """The digit redrawn with a pen (not pencil) as `make_image` draws it, on white paper with no photo effects:
    a scan at 150-600 dpi, sometimes blurred by the scanner; returns a gray PIL image.  (Added for issue 22.)"""
    ink = pick(rng, {name: spec for name, spec in INKS.items() if name != "pencil"})
    h_px = rng.uniform(40, 260)
    alpha, _ = render_digit(rng, img28, h_px, rng.uniform(-8, 8), rng.uniform(-0.15, 0.15), rng.uniform(0.85, 1.15),
                            "skeleton" if rng.random() < 0.8 else "threshold", rng.uniform(*INKS[ink][2]),
                            0.0 if rng.random() < 0.3 else rng.uniform(0.1, 0.45), ink)
    paper = rng.uniform(0.9, 1.0)
    dark = float(darkness(np.array(INKS[ink][0]) / 255.0, 1.0))
    gray = paper * (1.0 - alpha * dark)
    margin = int(rng.uniform(0.1, 0.5) * max(gray.shape)) + 2
    im = Image.fromarray(to_u8(np.pad(gray, margin, constant_values=paper)), "L")
    if rng.random() < 0.5:
        im = im.filter(ImageFilter.GaussianBlur(rng.uniform(0.5, 0.012 * h_px + 0.6)))
    return im


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--count", type=int, default=600)
    ap.add_argument("--out", required=True, help="output folder")
    args = ap.parse_args()
    out = args.out
    os.makedirs(out, exist_ok=True)

    t0 = time.time()
    x, y = load_mnist_test()
    rng = np.random.default_rng(args.seed)
    pool = np.arange(INDEX_LO, INDEX_HI)
    # a permutation of the pool, so that a smaller --count gives a prefix of a larger set
    reps = -(-args.count // len(pool))
    idxs = np.concatenate([rng.permutation(pool) for _ in range(reps)])[: args.count]
    rows, plines = [], []
    for i, mi in enumerate(idxs):
        mi = int(mi)
        assert INDEX_LO <= mi < INDEX_HI
        irng = np.random.default_rng([args.seed, i])   # per-image stream: reproducible per file
        im, fmt, q, cond, P = make_image(irng, x[mi], int(y[mi]))
        name = "img_%04d.%s" % (i, fmt)
        path = os.path.join(out, name)
        if fmt == "jpg":
            im.save(path, "JPEG", quality=q)
        else:
            im.save(path, "PNG", compress_level=3)
        cstr = ";".join("%s=%s" % kv for kv in cond.items())
        rows.append((name, int(y[mi]), mi, cstr))
        plines.append(json.dumps({"file": name, "label": int(y[mi]), "mnist_index": mi, **P}))
        if (i + 1) % 50 == 0:
            print("%d/%d  %.1fs" % (i + 1, args.count, time.time() - t0), flush=True)
    with open(os.path.join(out, "labels.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["file", "label", "mnist_index", "conditions"])
        w.writerows(rows)
    with open(os.path.join(out, "params.jsonl"), "w") as f:
        f.write("\n".join(plines) + "\n")
    print("wrote %d images to %s in %.1fs" % (len(rows), out, time.time() - t0))


if __name__ == "__main__":
    main()
