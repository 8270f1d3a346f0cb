"""MNIST-style rendering of letters A-J from font files (a notMNIST-like "letters-fonts" set).

Each glyph is rendered large with FreeType (PIL), cropped to its ink, scaled (aspect kept, LANCZOS)
so that its longer side is 20 px, and pasted into a 28x28 canvas translated (by whole pixels) so
that its intensity centre of mass lies at index (14, 14) -- the convention of MNIST itself, whose
test images have mean centre of mass (13.99, 14.01) in index coordinates.
"""
from __future__ import annotations

import io
import logging

import numpy as np
from PIL import Image, ImageDraw, ImageFont

log = logging.getLogger("grood.data")

LETTERS = "ABCDEFGHIJ"
RENDER_PX = 96
BOX, CANVAS, CENTRE = 20, 28, 14.0
_MISSING = "\U000F0000"  # a private-use code point no text font maps: renders as .notdef


def centre_of_mass(img: np.ndarray) -> tuple[float, float]:
    a = img.astype(np.float64)
    total = a.sum()
    ys, xs = np.indices(a.shape)
    return float((a * ys).sum() / total), float((a * xs).sum() / total)


def _render(font: ImageFont.FreeTypeFont, ch: str, angle: float = 0.0) -> np.ndarray | None:
    """Ink of one glyph, cropped to its bounding box (uint8), or None when it draws nothing."""
    left, top, right, bottom = font.getbbox(ch)
    w, h = right - left, bottom - top
    if w <= 0 or h <= 0 or w > 20 * RENDER_PX or h > 20 * RENDER_PX:
        return None
    img = Image.new("L", (w + 8, h + 8), 0)
    ImageDraw.Draw(img).text((4 - left, 4 - top), ch, fill=255, font=font)
    if angle:
        img = img.rotate(angle, resample=Image.Resampling.BILINEAR, expand=True)
    a = np.asarray(img)
    rows, cols = np.flatnonzero(a.max(1)), np.flatnonzero(a.max(0))
    if len(rows) == 0:
        return None
    return a[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]


def mnist_style(ink: np.ndarray, box: int = BOX) -> np.ndarray:
    """Fit cropped ink into a ``box``-px square (aspect kept), centre by mass in 28x28 uint8."""
    h, w = ink.shape
    scale = box / max(h, w)
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    small = np.asarray(Image.fromarray(ink).resize((nw, nh), Image.Resampling.LANCZOS))
    out = np.zeros((CANVAS, CANVAS), np.uint8)
    if small.max() == 0:
        return out
    cy, cx = centre_of_mass(small)
    oy = min(max(round(CENTRE - cy), 0), CANVAS - nh)
    ox = min(max(round(CENTRE - cx), 0), CANVAS - nw)
    out[oy:oy + nh, ox:ox + nw] = small
    return out


def load_face(data: bytes, name: str
              ) -> tuple[ImageFont.FreeTypeFont, list[np.ndarray]] | None:
    """(face, cropped ink of A-J) if the face is usable: opens, and draws a distinct,
    non-empty glyph for every letter A-J that is not its .notdef box; else None."""
    try:
        font = ImageFont.truetype(io.BytesIO(data), RENDER_PX)
        glyphs = [_render(font, ch) for ch in LETTERS]
        notdef = _render(font, _MISSING)
    except (OSError, ValueError) as e:
        log.info("skipping font %s: %s", name, e)
        return None
    if any(g is None or g.size < 16 for g in glyphs):
        log.info("skipping font %s: a letter A-J draws nothing", name)
        return None
    seen = set()
    for g in glyphs:
        key = (g.shape, g.tobytes())
        if key in seen or (notdef is not None and g.shape == notdef.shape
                           and np.array_equal(g, notdef)):
            log.info("skipping font %s: letters A-J missing or not distinct", name)
            return None
        seen.add(key)
    return font, glyphs


def render_augmented(font: ImageFont.FreeTypeFont, letter: int,
                     rng: np.random.Generator) -> np.ndarray:
    """One seeded small variation: rotation +-12 degrees, glyph box 16-20 px."""
    ink = _render(font, LETTERS[letter], angle=float(rng.uniform(-12, 12)))
    return mnist_style(ink, box=int(rng.integers(16, BOX + 1)))
