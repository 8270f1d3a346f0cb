"""One look for every figure: rc settings, colour-blind- and greyscale-safe colours, and the writer.

Colours are Okabe & Ito's palette (distinguishable under the common colour-vision deficiencies);
every series also gets its own marker and line style, so a greyscale print still tells them apart.
Continuous values use cividis (monotone in lightness). Every figure is written as PNG and PDF,
each atomically.
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from grood.storage import atomic_path  # noqa: E402

logging.getLogger("fontTools").setLevel(logging.WARNING)  # PDF font subsetting logs every glyph at INFO

#: Okabe & Ito (2008), without black (kept for annotations) and yellow (too light on white)
OKABE_ITO = {"blue": "#0072B2", "orange": "#E69F00", "green": "#009E73", "vermillion": "#D55E00",
             "purple": "#CC79A7", "sky": "#56B4E9", "black": "#000000", "yellow": "#F0E442"}
SERIES_COLOURS = [OKABE_ITO[c] for c in ("blue", "vermillion", "green", "orange", "purple", "sky")]
MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*"]
LINESTYLES = ["-", "--", "-.", ":", (0, (5, 1, 1, 1, 1, 1)), (0, (1, 1))]
ID_COLOUR, OOD_COLOUR = OKABE_ITO["blue"], OKABE_ITO["orange"]  # dark vs light: survives greyscale
GROUP_STYLE = {"near": {"color": OKABE_ITO["vermillion"], "marker": "o"},
               "far": {"color": OKABE_ITO["blue"], "marker": "s"}}
CMAP = "cividis"

RC = {
    "figure.dpi": 100, "savefig.dpi": 150, "savefig.bbox": "tight", "savefig.pad_inches": 0.05,
    "font.size": 9, "axes.titlesize": 10, "axes.labelsize": 9, "xtick.labelsize": 8,
    "ytick.labelsize": 8, "legend.fontsize": 8, "legend.frameon": False, "figure.titlesize": 12,
    "axes.spines.top": False, "axes.spines.right": False, "axes.grid": True, "grid.alpha": 0.25,
    "grid.linewidth": 0.6, "lines.linewidth": 1.6, "lines.markersize": 5, "image.cmap": CMAP,
    "pdf.fonttype": 42,  # TrueType in PDFs: text stays text (searchable, editable)
    "svg.fonttype": "none",
}


def series_style(i: int) -> dict:
    """Colour, marker and line style of the ``i``-th series: three cues, so no one is needed alone."""
    return {"color": SERIES_COLOURS[i % len(SERIES_COLOURS)], "marker": MARKERS[i % len(MARKERS)],
            "linestyle": LINESTYLES[i % len(LINESTYLES)]}


@contextlib.contextmanager
def styled():
    """Draw inside this context to use the house style (without touching the caller's rcParams)."""
    with plt.rc_context(RC):
        yield


def save_figure(fig, stem: str | Path, tight: bool = True) -> list[Path]:
    """Write ``fig`` as ``<stem>.png`` and ``<stem>.pdf`` (each atomically), close it, return both.
    ``tight=False`` keeps the figure's own margins (a laid-out page: saves a layout pass per file)."""
    stem = Path(stem)
    if stem.suffix in (".png", ".pdf"):
        stem = stem.with_suffix("")
    paths = []
    for ext, meta in ((".png", {"Software": None}), (".pdf", {"CreationDate": None, "Producer": None})):
        path = stem.with_name(stem.name + ext)
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=ext[1:], metadata=meta, bbox_inches="tight" if tight else None)
        paths.append(path)
    plt.close(fig)
    return paths


# ------------------------------------------------------------------ AUROC on an error-rate scale

AUROC_FLOOR = 1e-4  # 1 − AUROC below this is drawn as this (10,000 samples cannot resolve more)
AUROC_TICKS = [0.5, 0.9, 0.99, 0.999, 0.9999]


def auroc_to_nines(auroc) -> np.ndarray:
    """``−log10(1 − AUROC)``: 0.9 → 1, 0.99 → 2, … so differences near 1 stay visible."""
    err = np.clip(1.0 - np.asarray(auroc, dtype=np.float64), AUROC_FLOOR, None)
    return -np.log10(err)


def nines_to_auroc(nines) -> np.ndarray:
    return 1.0 - 10.0 ** (-np.asarray(nines, dtype=np.float64))


def auroc_axis(ax, axis: str = "x") -> None:
    """Put AUROC on ``axis`` on the −log10(1 − AUROC) scale, labelled in AUROC."""
    scale = ("function", {"functions": (auroc_to_nines, nines_to_auroc)})
    (ax.set_xscale if axis == "x" else ax.set_yscale)(scale[0], functions=scale[1]["functions"])
    target = ax.xaxis if axis == "x" else ax.yaxis
    target.set_major_locator(matplotlib.ticker.FixedLocator(AUROC_TICKS))
    target.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    target.set_minor_locator(matplotlib.ticker.NullLocator())
