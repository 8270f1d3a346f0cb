"""Whether an auxiliary outlier set could share images with another dataset (torch-free).

GReg trains on auxiliary outliers; if they came from the same material as a test OOD set, the
benchmark would measure memory, not detection. :func:`aux_overlap` compares where two configured
datasets take their images from -- the config's ``datasets.<name>`` mappings, ``source`` plus
params -- and says why they may share images, so config validation can refuse the pair and name
both. It is deliberately conservative: the same source, path or noise generator is enough.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

from .errors import DataError

#: sources whose images are glyphs of the pinned fonts, and which characters each can draw
_FONT_SOURCES = ("letters_fonts", "font_glyphs")


@dataclass(frozen=True)
class _Origin:
    """One place a dataset's images come from, and how to say it."""

    kind: str  # "source", "path", "noise" or "fonts"
    key: tuple
    text: str


def _resolved(spec: dict) -> dict:
    """The spec's params with the source's defaults filled in (the raw params if they are invalid:
    validation reports those on its own)."""
    from .sources import COMMON_PARAMS, REGISTRY, resolve_params

    source = spec.get("source")
    params = {k: v for k, v in spec.items() if k != "source"}
    try:
        return resolve_params(source, params)
    except DataError:
        defaults = REGISTRY[source].params if source in REGISTRY else {}
        return {**COMMON_PARAMS, **defaults, **params}


def _origins(spec: dict) -> list[_Origin]:
    """Where ``spec``'s images come from; a ``scrambled_train`` set comes from its base source."""
    from .outliers import AUX_GLYPHS

    source, p = spec.get("source"), _resolved(spec)
    if source in ("scrambled_train", "holdout") and isinstance(p.get("base"), str):
        base = {"source": p["base"], **(p.get("base_params") or {})}
        return [_Origin(o.kind, o.key, f"{o.text} ({source}'s base, training split)")
                for o in _origins(base)]
    if source == "noise":
        return [_Origin("noise", (p.get("kind"), p.get("seed")),
                        f"noise of kind {p.get('kind')!r} with seed {p.get('seed')}")]
    if source in _FONT_SOURCES:
        names = "ABCDEFGHIJ" if source == "letters_fonts" else AUX_GLYPHS
        classes = p.get("classes")
        chars = frozenset(names[c] for c in classes if isinstance(c, int) and 0 <= c < len(names)) \
            if classes else frozenset(names)
        return [_Origin("fonts", (chars,), f"glyphs of the Debian font packages ({source})")]
    if p.get("path") is not None:
        path = os.path.realpath(os.path.expanduser(os.path.expandvars(str(p["path"]))))
        return [_Origin("path", (path,), f"files under {path} (source {source!r})")]
    return [_Origin("source", (source,), f"source {source!r}")]


def _nested(a: str, b: str) -> bool:
    return a == b or a.startswith(b.rstrip(os.sep) + os.sep) or b.startswith(a.rstrip(os.sep) + os.sep)


def _shared(a: _Origin, b: _Origin) -> str | None:
    if a.kind != b.kind:
        return None
    if a.kind == "fonts":
        common = a.key[0] & b.key[0]
        if not common:
            return None
        shown = "".join(sorted(common))
        return (f"both render {len(common)} common character(s) "
                f"({shown[:12]!r}{'...' if len(shown) > 12 else ''}) from the same fonts")
    if a.kind == "path":
        return "their files overlap" if _nested(a.key[0], b.key[0]) else None
    if a.kind == "noise":
        return "the same generator (kind and seed): their first images are identical" \
            if a.key == b.key else None
    return "the same source" if a.key == b.key else None


def aux_overlap(aux_name: str, aux_spec: dict, other_name: str, other_spec: dict,
                role: str = "auxiliary set") -> str | None:
    """Why auxiliary dataset ``aux_name`` may share images with dataset ``other_name``, or None.

    The specs are config mappings (``{"source": ..., params}``). They share when both take images
    from the same source; from overlapping paths (the same file or folder, or one inside the other,
    whatever the source); from the same noise generator (kind and seed); or render a common
    character from the fonts (``font_glyphs`` draws K-Z and symbols, ``letters_fonts`` A-J: these
    two do *not* share, by design). A ``scrambled_train`` set counts as its base source, so call
    this for every test OOD set of the benchmarks that train on ``aux_name``, not for their ID set
    (whose training images ``scrambled_train`` is meant to use).  ``role`` names the first set in
    the message (``OOD-validation set`` for a tuning protocol's validation sets, checked the same way).
    """
    if aux_name == other_name:
        return f"{role} {aux_name!r} is the dataset {other_name!r} itself"
    for a in _origins(aux_spec):
        for b in _origins(other_spec):
            why = _shared(a, b)
            if why:
                return (f"{role} {aux_name!r} ({a.text}) and {other_name!r} ({b.text}) "
                        f"may share images: {why}")
    return None
