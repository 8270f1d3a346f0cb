"""MNIST-style rendering of glyphs from font files: letters A-J (a notMNIST-like "letters-fonts"
test set) and, for GReg's auxiliary outliers, capitals K-Z, punctuation and maths symbols
(:data:`grood.data.outliers.AUX_GLYPHS`).

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
                     rng: np.random.Generator, chars: str = LETTERS) -> np.ndarray:
    """One seeded small variation of ``chars[letter]``: rotation +-12 degrees, glyph box 16-20 px."""
    ink = _render(font, chars[letter], angle=float(rng.uniform(-12, 12)))
    return mnist_style(ink, box=int(rng.integers(16, BOX + 1)))


def named_glyphs(data: bytes, chars: str) -> set[str]:
    """The ``chars`` the font maps, in its Unicode cmap, to a glyph named for that very character
    (Adobe Glyph List: ``K``, ``K.alt``, ``uni004B``). A symbol or dingbat font maps ``K`` to
    Kappa or to an ornament and drops out this way; unnamed glyphs are not trusted either."""
    from fontTools.agl import toUnicode
    from fontTools.ttLib import TTFont

    try:
        cmap = TTFont(io.BytesIO(data), fontNumber=0, lazy=True).getBestCmap() or {}
    except Exception as e:  # fontTools raises many types for fonts it cannot parse
        log.info("fontTools cannot read a font's cmap (%s): none of its glyphs is used", e)
        return set()
    return {ch for ch in chars if ord(ch) in cmap and toUnicode(cmap[ord(ch)]) == ch}


def load_glyphs(data: bytes, name: str, chars: str
                ) -> tuple[ImageFont.FreeTypeFont, dict[str, np.ndarray], list[np.ndarray]] | None:
    """(face, {char: cropped ink}, the face's own A-J inks) for the ``chars`` it really draws, or
    None if it draws none of them.

    A character counts when the face names its glyph for it (:func:`named_glyphs`), draws some
    ink (at least 16 px), and the ink is neither the .notdef box, nor identical to the face's own
    drawing of a letter A-J (so no test letter enters under another code point), nor to a
    character already taken from this face (one fallback glyph behind several code points).
    """
    try:
        font = ImageFont.truetype(io.BytesIO(data), RENDER_PX)
        letters = [g for g in (_render(font, ch) for ch in LETTERS) if g is not None]
        banned = [g for g in [_render(font, _MISSING), *letters] if g is not None]
        named = named_glyphs(data, chars)
        taken: dict[str, np.ndarray] = {}
        for ch in chars:
            ink = _render(font, ch) if ch in named else None
            if ink is None or ink.size < 16:
                continue
            if any(ink.shape == g.shape and np.array_equal(ink, g) for g in [*banned, *taken.values()]):
                continue
            taken[ch] = ink
    except (OSError, ValueError) as e:
        log.info("skipping font %s: %s", name, e)
        return None
    if not taken:
        log.info("skipping font %s: it draws none of the auxiliary glyphs", name)
        return None
    return font, taken, letters
