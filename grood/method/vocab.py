"""GROOD's vocabulary, in one torch-free place: the OOD-prototype sources and the config keys each
reads, the ``wrt`` values of the gradient, and the name of a gradient space (its store's folder).

Used by the science (:mod:`grood.method.prototypes`, :mod:`grood.method.gradients`), the detectors that read a
gradient store, config validation (:mod:`grood.config`) and the workflow's rules alike, so a new
source or ``wrt`` value is added here once.
"""

from __future__ import annotations

#: the OOD-prototype sources (docs/methods.md §1.2), each with the ``prototypes:`` config keys it reads
#: (a source's rule sees only its own keys: changing the mix-up λ leaves the noise prototype)
PROTOTYPE_KEYS: dict[str, tuple[str, ...]] = {
    "mixup": ("layer", "lam", "n_mix"),
    "noise": ("noise_n", "noise_keep"),
    "proto_mean": (),
    "ood_val": ("n_mix", "ood_val_dataset"),
}
PROTOTYPE_SOURCES: tuple[str, ...] = tuple(PROTOTYPE_KEYS)

#: prototype settings a GROOD-family detector may set for itself (a tuning grid sweeps them), each
#: with the sources that read it; unset (None), the config's ``prototypes:`` value holds.
#: ``train_share``: the share of the ID training rows (class-stratified, fixed) that the prototypes
#: and GROOD's index are built from; 1 (all of them) when unset
PROTOTYPE_OVERRIDES: dict[str, tuple[str, ...]] = {
    "layer": ("mixup",),
    "lam": ("mixup",),
    "n_mix": ("mixup", "ood_val"),
    "train_share": PROTOTYPE_SOURCES,
}
#: sources built from real OOD images: every result that uses them is flagged
OOD_DATA_SOURCES: tuple[str, ...] = ("ood_val",)

#: what the NCP-loss gradient is taken with respect to (docs/methods.md §1.3, §1.6)
WRT: tuple[str, ...] = ("ood", "pred", "all")

#: arrays of a gradient store (the rest — features, logits, labels — are in the feature store)
GRADIENT_STORE_ARRAYS: tuple[str, ...] = ("gradients", "proto_dist", "pi_ood")
#: the classifier head ``z = W h + b`` as two arrays, ``head_weight`` (C, D) and ``head_bias`` (C,):
#: not row arrays: fit_detector takes them from the checkpoint for the detectors that name them
HEAD_ARRAYS: tuple[str, ...] = ("head_weight", "head_bias")
#: GAIA's per-sample, per-channel statistics (:mod:`grood.net.gaia`), row arrays of the feature store
GAIA_ARRAYS: tuple[str, ...] = ("gaia_a", "gaia_z")
#: a detector's parameters that choose its gradient store
GRADIENT_SPACE_PARAMS: tuple[str, ...] = ("prototype", "wrt", "temperature")


def prototype_overrides(prototype: str, settings: dict) -> dict:
    """The prototype settings among ``settings`` (a detector's params) that ``prototype`` reads and
    that are set (not None; ``train_share`` not 1), in :data:`PROTOTYPE_OVERRIDES` order."""
    out = {}
    for key, sources in PROTOTYPE_OVERRIDES.items():
        value = settings.get(key)
        if prototype in sources and value is not None and not (key == "train_share" and float(value) == 1.0):
            out[key] = value
    return out


def prototype_name(prototype: str, overrides: dict | None = None) -> str:
    """The name of an OOD-prototype file: the source (``mixup``), or with the settings a detector
    sets itself, ``<source>~<key>=<value>,…`` (``mixup~lam=0.3,layer=layer2``): each variant its own
    prototypes, and gradient stores, per point of a tuning grid.  Values print with :func:`value_text`."""
    overrides = overrides or {}
    if not overrides:
        return prototype
    return prototype + "~" + ",".join(f"{k}={value_text(overrides[k])}" for k in PROTOTYPE_OVERRIDES if k in overrides)


def value_text(value) -> str:
    """A parameter value as names show it: numbers with 6 significant digits (``%g``), booleans
    ``true``/``false``, strings as they are."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return f"{value:g}"
    return str(value)


def gradient_space(prototype: str, wrt: str, temperature: float, overrides: dict | None = None) -> str:
    """The name of a gradient store's folder: ``<prototype name>_<wrt>_T<temperature:g>``
    (``mixup_ood_T1``; with a detector's own prototype settings ``mixup~lam=0.3_ood_T1``).

    A readable identity only: the gradients rule gets the values as params, looked up from the
    name, never parsed back from it.
    """
    return f"{prototype_name(prototype, overrides)}_{wrt}_T{float(temperature):g}"


def gradient_space_problems(prototype: str, wrt: str, temperature: float) -> dict[str, str]:
    """What is wrong with a gradient space, per parameter name (empty: one grood can build)."""
    problems = {}
    if prototype not in PROTOTYPE_SOURCES:
        problems["prototype"] = (f"unknown OOD-prototype source {prototype!r}; "
                                 f"choose one of {list(PROTOTYPE_SOURCES)}")
    if wrt not in WRT:
        problems["wrt"] = f"unknown gradient target {wrt!r}; choose one of {list(WRT)}"
    if not float(temperature) > 0:
        problems["temperature"] = f"must be > 0, got {temperature!r}"
    return problems


def check_gradient_space(prototype: str, wrt: str, temperature: float) -> None:
    """ValueError naming each bad parameter of a gradient space."""
    problems = gradient_space_problems(prototype, wrt, temperature)
    if problems:
        raise ValueError("; ".join(f"{k}: {v}" for k, v in problems.items()))
