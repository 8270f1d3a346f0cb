"""Auxiliary outlier sources for GReg / GReg+ training, narrow on purpose.

* ``font_glyphs``: Latin capitals K-Z, punctuation and maths symbols rendered MNIST-style from the
  same pinned Debian font packages as ``letters_fonts`` -- whose test letters are A-J, never drawn
  here (:func:`grood.data.letters.load_glyphs`);
* ``scrambled_train``: the *training* images of a base source (never its test split), patch-shuffled
  or elastically warped beyond recognition (:mod:`grood.data.scramble`).

No other writing systems, no photographs, no textures: whatever else a benchmark tests on stays an
unseen kind of OOD, so a reader can still judge generalisation.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from . import pins
from .errors import DataError
from .fonts import font_files
from .scramble import PATCH, SCRAMBLE_KINDS, WARP_ALPHA, WARP_SIGMA, scramble
from .subset import stratified_indices

#: GReg's auxiliary glyphs: Latin capitals K-Z (the letters test set uses A-J), then
#: punctuation and maths symbols. Left out: marks that become a bar, a dot or a blob once fitted
#: into 20x20 px and then look like a 1 or a 0 (| / \ ( ) ! ' " , . : ; - _ `), shapes close to a
#: digit or to A-J (partial differential ~ 6, integral ~ long s, turned A, reversed E), and every
#: other script (no Greek letters: the n-ary sum and product are the maths operators U+2211/220F).
AUX_LETTERS = "KLMNOPQRSTUVWXYZ"
AUX_PUNCTUATION = "#$%&*?@[]{}^~"
AUX_MATHS = ("+<=>\u00b1\u00d7\u00f7\u221a\u2211\u220f\u221e"  # + < = > ± × ÷ √ ∑ ∏ ∞
             "\u2248\u2260\u2264\u2265\u2207\u2208\u2229\u222a\u2282")  # ≈ ≠ ≤ ≥ ∇ ∈ ∩ ∪ ⊂
AUX_GLYPHS = AUX_LETTERS + AUX_PUNCTUATION + AUX_MATHS

#: the data card's role of these sets (and of any dataset a benchmark names under ``aux:``)
AUX_ROLE = "auxiliary outliers (training only)"


# --------------------------------------------------------------------------------------------
# font_glyphs
# --------------------------------------------------------------------------------------------
def check_font_glyphs(p: dict, source: str) -> None:
    packages = p["packages"]
    if packages is None:
        return
    if not isinstance(packages, (list, tuple)) or not packages:
        raise DataError(f"param 'packages' of source {source!r} must be a non-empty list of font "
                        f"packages (or left out for all), got {packages!r}")
    unknown = sorted(set(packages) - set(pins.FONT_PACKAGES))
    if unknown:
        raise DataError(f"param 'packages' of source {source!r}: {unknown[0]!r} is not a pinned font "
                        f"package; choose from {', '.join(sorted(pins.FONT_PACKAGES))}")
    p["packages"] = sorted(set(packages))


def build_font_glyphs(p: dict, raw_dir: Path) -> dict[str, Any]:
    from .letters import load_glyphs, mnist_style, render_augmented

    files, upstream, licences = font_files(raw_dir, p["packages"])
    faces, skipped = [], []  # (label, font, {char: ink})
    for label, data in files:
        face = load_glyphs(data, label, AUX_GLYPHS)
        if face is None:
            skipped.append(label)
        else:
            faces.append((label, *face))
    # what letters_fonts could draw (A-J of every face, MNIST-style): never an auxiliary image
    test_letters = {mnist_style(ink).tobytes() for _, _, _, letters in faces for ink in letters}
    pairs, images, lookalikes = [], [], 0
    for f, (_, _, inks, _) in enumerate(faces):
        for ch, ink in inks.items():
            img = mnist_style(ink)
            if img.tobytes() in test_letters:  # e.g. one box font's U drawn like another's C
                lookalikes += 1
                continue
            pairs.append((f, AUX_GLYPHS.index(ch)))
            images.append(img)
    if not pairs:
        raise DataError("source 'font_glyphs': no font draws any auxiliary glyph; check the font "
                        "packages (param 'packages')")
    x = np.stack(images)
    y = np.array([c for _, c in pairs], np.int64)
    n = len(x) if p["n"] is None else p["n"]
    augmented = 0
    if n > len(x):  # seeded small variations of the (face, glyph) pairs, cycling in order
        rng = np.random.default_rng([p["seed"], 2])
        extra = [render_augmented(faces[f][1], c, rng, AUX_GLYPHS)
                 for f, c in (pairs[i % len(pairs)] for i in range(n - len(x)))]
        x = np.concatenate([x, np.stack(extra)])
        y = np.concatenate([y, np.array([pairs[i % len(pairs)][1] for i in range(len(extra))], np.int64)])
        augmented = len(extra)
    elif n < len(x):
        keep = stratified_indices(y, n, p["seed"], "test")
        x, y = x[keep], y[keep]
    return {
        "x_test": x, "y_test": y,
        "meta": {"upstream": upstream, "licences": sorted(licences), "faces": len(faces),
                 "faces_skipped": skipped, "augmented": augmented, "characters": AUX_GLYPHS,
                 "dropped_as_test_letters": lookalikes,
                 "notes": "one image per (face, character) a face really draws (its cmap names the "
                          "glyph for the character; not .notdef, not identical to its A-J or to "
                          "another character; its image not identical to any face's A-J image), "
                          "faces sorted by package and path, characters in the order of "
                          "`characters` (label = position); glyph fitted in 20x20, centre of mass "
                          "at (14, 14) of 28x28 as letters_fonts; images beyond that (param n) are "
                          "rotations (+-12 deg) and 16-20 px boxes, seeded. Never A-J "
                          "(letters_fonts), digits or other scripts."},
    }


# --------------------------------------------------------------------------------------------
# scrambled_train
# --------------------------------------------------------------------------------------------
def check_scramble_options(p: dict, source: str) -> None:
    """``kinds``, ``patch`` and the warp of a ``scrambled_train`` source (its ``base`` is checked
    against the registry by :mod:`grood.data.sources`)."""
    kinds = p["kinds"]
    if (not isinstance(kinds, (list, tuple)) or not kinds or len(set(kinds)) != len(kinds)
            or any(k not in SCRAMBLE_KINDS for k in kinds)):
        raise DataError(f"param 'kinds' of source {source!r} must be a non-empty list of distinct "
                        f"kinds from {', '.join(SCRAMBLE_KINDS)}, got {kinds!r}")
    p["kinds"] = list(kinds)
    if isinstance(p["patch"], bool) or not isinstance(p["patch"], int) or p["patch"] < 2:
        raise DataError(f"param 'patch' of source {source!r} must be an integer >= 2, got {p['patch']!r}")
    for name in ("warp_alpha", "warp_sigma"):
        v = p[name]
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0:
            raise DataError(f"param {name!r} of source {source!r} must be a number > 0, got {v!r}")
        p[name] = float(v)


def build_scrambled_train(p: dict, raw_dir: Path, base: dict) -> dict[str, Any]:
    """``base``: the base source's arrays (:func:`grood.data.build.build_dataset` of ``p["base"]``)."""
    if "x_train" not in base or len(base["x_train"]) == 0:
        raise DataError(f"source 'scrambled_train': base {p['base']!r} with params "
                        f"{p['base_params']} has no training images to scramble")
    x, src, kind = scramble(base["x_train"], p["n"], p["kinds"], p["seed"], p["patch"],
                            p["warp_alpha"], p["warp_sigma"])
    bm = base["meta"]
    return {
        "x_test": x, "y_test": np.full(len(x), -1, np.int64),
        "meta": {"upstream": bm.get("upstream", []),
                 "licence": f"{bm['licence']} (the base source {p['base']!r}'s)",
                 "base": {"source": p["base"], "params": p["base_params"], "licence": bm["licence"],
                          "n_train": int(len(base["x_train"]))},
                 "kind_counts": {k: int((kind == i).sum()) for i, k in enumerate(p["kinds"])},
                 "distinct_sources": int(len(np.unique(src))),
                 "notes": f"training split of {p['base']!r} only (its test split is never read): a "
                          f"seeded permutation of its {len(base['x_train'])} images, each "
                          f"destroyed by one of {p['kinds']} in equal shares: patch_shuffle = "
                          f"{p['patch']}x{p['patch']} px tiles in random order; warp = elastic "
                          f"displacement (uniform noise, Gaussian sigma {p['warp_sigma']} px, "
                          f"x {p['warp_alpha']} px, bilinear, black outside). Unlabelled."},
    }


FONT_GLYPHS_PARAMS = {"n": None, "packages": None}
SCRAMBLED_PARAMS = {"base_params": {}, "n": 30000, "kinds": list(SCRAMBLE_KINDS),
                    "patch": PATCH, "warp_alpha": WARP_ALPHA, "warp_sigma": WARP_SIGMA}
