"""Checks of a whole grood config that its JSON schema cannot express, torch-free.

The workflow validates the config against ``workflow/schemas/config.schema.yaml`` (types, defaults)
and then calls :func:`check`, so a bad config fails while the Snakefile is read, before any job,
with every problem at once.  Each message names the config key and what to do.  Datasets are
checked by :mod:`grood.data`, detectors by :mod:`grood.detectors`; what is checked here is how the
sections refer to each other.
"""

from __future__ import annotations

import copy

from grood.data import REGISTRY, aux_overlap, check_spec, same_images
from grood.detectors import GradientStoreDetector, check_detector, make_detector
from grood.evaluation import tuning
from grood.net.source import train_problems
from grood.net.train_config import GREG_OPTIONS, GREG_PLUS_OPTIONS, TrainConfig
from grood.method.vocab import PROTOTYPE_KEYS, PROTOTYPE_OVERRIDES


class ConfigError(ValueError):
    """A config the workflow cannot run; the message lists every problem."""


#: the key of a config's ``detectors:`` that names a suite (config/suites.yaml)
SUITE = "suite"


def load_suites(path) -> dict[str, dict]:
    """The named detector suites of a suites file (``config/suites.yaml``): name → detectors."""
    import yaml

    with open(path) as f:
        suites = yaml.safe_load(f) or {}
    problems = [f"{path}: suite {name!r} must map detector names to {{method: ..., params...}}"
                for name, dets in suites.items()
                if not isinstance(dets, dict) or not all(isinstance(d, dict) and "method" in d for d in dets.values())]
    if problems:
        raise ConfigError("invalid detector suites:\n  - " + "\n  - ".join(problems))
    return suites


def expand_suites(config: dict, suites: dict[str, dict]) -> dict:
    """``config`` with ``detectors: {suite: NAME, ...}`` replaced, in place, by the suite's detectors
    (in its order) followed by the other entries (a name in both: the config's entry wins, in the
    suite's place); returned too.  ``suite: [NAME, ...]`` takes several suites, in that order (a
    detector named in two of them is an error).  An unknown suite is a :class:`ConfigError` naming
    the key."""
    detectors = config["detectors"]
    if SUITE not in detectors:
        return config
    names = detectors[SUITE]
    names = [names] if isinstance(names, str) else list(names)
    unknown = [n for n in names if n not in suites]
    if unknown:
        raise ConfigError(f"invalid grood config:\n  - detectors.{SUITE}: unknown suite {unknown[0]!r}; choose one "
                          f"of {sorted(suites)} (config/suites.yaml), or list the detectors themselves")
    taken: dict = {}
    for name in names:
        twice = sorted(set(taken) & set(suites[name]))
        if twice:
            raise ConfigError(f"invalid grood config:\n  - detectors.{SUITE}: suites {names} both name {twice}; "
                              f"take each detector from one suite")
        taken.update(copy.deepcopy(suites[name]))
    own = {k: v for k, v in detectors.items() if k != SUITE}
    config["detectors"] = {**{k: own.get(k, v) for k, v in taken.items()}, **own}
    return config


def check(config: dict) -> None:
    """Raise :class:`ConfigError` listing every problem :func:`validate` finds."""
    problems = validate(config)
    if problems:
        raise ConfigError("invalid grood config:\n  - " + "\n  - ".join(problems))


def validate(config: dict) -> list[str]:
    """Every cross-field problem of a schema-valid ``config``, each naming the key and the fix."""
    problems, resolved = _datasets(config)
    problems += _benchmarks(config)
    problems += _detectors(config)
    problems += _ood_val(config, resolved)
    problems += _training(config)
    problems += _index_shards(config)
    problems += _tuning(config)
    return problems


def detector_params(spec: dict) -> dict:
    """A detector's params: its config entry without ``method`` (and a swept one's ``sweep``)."""
    return {k: v for k, v in spec.items() if k not in ("method", tuning.SWEEP)}


def sweeps(config: dict) -> dict[str, list[tuning.Point]]:
    """Each swept detector (``sweep:`` in its entry) → its grid points, in grid order
    (:func:`grood.evaluation.tuning.points`); only detectors whose sweep is valid.  A point's prototype
    setting equal to the config's ``prototypes:`` value is unset (None) in its params, so the point
    shares the config's prototypes and gradient stores (its name keeps the value)."""
    shared = config.get("prototypes") or {}
    out = {}
    for name, spec in config["detectors"].items():
        if tuning.is_swept(spec) and not tuning.sweep_problems(name, spec):
            out[name] = [tuning.Point(p.name, {k: None if k in PROTOTYPE_OVERRIDES and k in shared and v == shared[k]
                                               else v for k, v in p.params.items()}, p.values)
                         for p in tuning.points(name, spec)]
    return out


def fitted_detectors(config: dict) -> dict[str, dict]:
    """Every detector a ``fit_detector`` job fits, by name → ``{method, params...}``: each detector
    that is not swept, and in a swept one's place each point of its grid."""
    swept = sweeps(config)
    out = {}
    for name, spec in config["detectors"].items():
        if tuning.is_swept(spec):
            out.update({p.name: {"method": spec["method"], **p.params} for p in swept.get(name, [])})
        else:
            out[name] = spec
    return out


def gradient_detectors(config: dict) -> dict[str, GradientStoreDetector]:
    """The valid detectors of ``config`` (grid points included) that read a gradient store, by name."""
    found = {}
    for name, spec in fitted_detectors(config).items():
        if spec.get("method") and not check_detector(spec["method"], detector_params(spec), ""):
            det = make_detector(spec["method"], detector_params(spec))
            if isinstance(det, GradientStoreDetector):
                found[name] = det
    return found


def _index_shards(config: dict) -> list[str]:
    """``shards.index`` > 1 merges exact searches: refused with score shards or an approximate index."""
    from grood.detectors import IndexedDetector

    shards = config.get("shards") or {}
    n = int(shards.get("index", 1))
    if n == 1:
        return []
    problems = []
    if int(shards.get("score", 1)) > 1:
        problems.append(f"shards.index: {n} with shards.score: {shards['score']}: a part is either scored in row "
                        f"shards or searched in index shards, not both; set one of them to 1")
    for name, spec in fitted_detectors(config).items():
        if spec.get("method") and not check_detector(spec["method"], detector_params(spec), ""):
            det = make_detector(spec["method"], detector_params(spec))
            if isinstance(det, IndexedDetector) and not det.index_spec.exact:
                problems.append(f"detectors.{name}.index: {det.index_spec.kind} with shards.index: {n}: index shards "
                                f"are merged exactly, and index_quality rates one approximate index; use "
                                f"index: {{kind: flat}} or shards.index: 1")
    return problems


def _datasets(config: dict) -> tuple[list[str], dict[str, dict]]:
    problems, resolved = [], {}
    for name, spec in config["datasets"].items():
        params, found = check_spec(spec, f"datasets.{name}")
        problems += found
        if params is not None:
            resolved[name] = params
    return problems, resolved


def _benchmarks(config: dict) -> list[str]:
    datasets, problems = config["datasets"], []
    for b, spec in config["benchmarks"].items():
        id_set = spec["id"]
        if id_set not in datasets:
            problems.append(f"benchmarks.{b}.id: {id_set!r} is not a dataset; add it under datasets:")
        elif datasets[id_set]["source"] in REGISTRY and not REGISTRY[datasets[id_set]["source"]].labelled:
            problems.append(f"benchmarks.{b}.id: {id_set!r} (source {datasets[id_set]['source']!r}) has no "
                            f"labels, so no network can be trained on it; choose a labelled dataset "
                            f"with a train split as the ID set")
        train = spec.get("train") or {}
        problems += train_problems(train, f"benchmarks.{b}.train")
        if (id_set in datasets and datasets[id_set].get("store") == "files"
                and not (train.get("pretrained") or train.get("checkpoint"))):
            problems.append(f"benchmarks.{b}.train: training from scratch holds the ID training images "
                            f"in memory, but datasets.{id_set} is a file list (store: files). Fix: set "
                            f"store: npz for it, or adopt a network (train.pretrained / train.checkpoint)")
        for ood in spec["ood"]:
            if ood not in datasets:
                problems.append(f"benchmarks.{b}.ood.{ood}: not a dataset; add it under datasets:")
            if ood == id_set:
                problems.append(f"benchmarks.{b}.ood.{ood}: the ID dataset cannot also be an OOD set")
    return problems


def _detectors(config: dict) -> list[str]:
    problems = []
    for name, spec in config["detectors"].items():
        if tuning.is_swept(spec):
            problems += tuning.sweep_problems(name, spec)
        else:
            problems += check_detector(spec["method"], detector_params(spec), f"detectors.{name}")
    ood_val = config.get("prototypes", {}).get("ood_val_dataset")
    spaces: dict[str, tuple[str, tuple]] = {}
    for name, det in gradient_detectors(config).items():
        if "ood_val_dataset" in PROTOTYPE_KEYS[det.prototype] and ood_val is None:
            problems.append(f"detectors.{name}.prototype: {det.prototype!r} needs OOD validation images; "
                            f"set prototypes.ood_val_dataset to a dataset that no benchmark tests on")
        values = (det.prototype, det.wrt, det.temperature)
        other, other_values = spaces.setdefault(det.gradient_space, (name, values))
        if other_values != values:
            problems.append(f"detectors.{name}.temperature: {det.temperature!r} and detectors.{other}'s "
                            f"{other_values[2]!r} print alike with 6 significant digits, so both would "
                            f"use the gradient store {det.gradient_space!r}; use one value for both, or "
                            f"values that differ within their first 6 digits")
    return problems


def _ood_val(config: dict, resolved: dict[str, dict]) -> list[str]:
    """The OOD-validation images must be a dataset, and must not be (or share images with) any set
    a benchmark tests on."""
    datasets = config["datasets"]
    ood_val = config.get("prototypes", {}).get("ood_val_dataset")
    if ood_val is None:
        return []
    if ood_val not in datasets:
        return [f"prototypes.ood_val_dataset: {ood_val!r} is not a dataset; add it under datasets:"]
    problems = []
    for b, spec in config["benchmarks"].items():
        for role, other in [("ID", spec["id"]), *(("OOD test", o) for o in spec["ood"])]:
            if other not in datasets:
                continue
            if other == ood_val:
                why = "is"
            elif ood_val in resolved and other in resolved and same_images(
                    datasets[ood_val]["source"], resolved[ood_val], datasets[other]["source"], resolved[other]):
                why = f"takes its images from the same data (source {datasets[ood_val]['source']!r}) as {other!r},"
            else:
                continue
            problems.append(f"prototypes.ood_val_dataset: {ood_val!r} {why} an {role} set of benchmarks.{b}: "
                            f"the OOD prototype would be built from images the benchmark evaluates on. "
                            f"Fix: choose an OOD-validation dataset that no benchmark uses (another "
                            f"source, path or noise seed)")
    return problems


# ------------------------------------------------------------- training methods (GReg, GReg+)

def aux_sets(bench_spec: dict) -> list[str]:
    """A benchmark's auxiliary outlier datasets (``aux:`` is one name or a list; none for CE)."""
    aux = bench_spec.get("aux") or []
    return [aux] if isinstance(aux, str) else list(aux)


def train_settings(train: dict) -> dict:
    """The training options a benchmark's method reads: a CE benchmark's settings stay what they
    were before GReg existed (no ``method``, ``init`` or GReg keys from the schema's defaults), so
    its train params, and its runs, are unchanged; ``greg`` drops the GReg+-only options."""
    defaults = TrainConfig()
    method = train.get("method", "ce")
    unread = {"ce": GREG_OPTIONS + GREG_PLUS_OPTIONS, "greg": GREG_PLUS_OPTIONS, "greg_plus": ()}
    drop = set(unread.get(method, ()))
    drop |= {k for k in ("method", "init") if train.get(k, getattr(defaults, k)) == getattr(defaults, k)}
    return {k: v for k, v in train.items() if k not in drop}


def _training(config: dict) -> list[str]:
    """Each benchmark's training options, its auxiliary outliers (named datasets, needed exactly by
    greg / greg_plus, sharing nothing with any benchmark's OOD test sets) and its ``train.init``."""
    datasets, benches, problems = config["datasets"], config["benchmarks"], []
    tested_by = {}  # OOD test set → the first benchmark that tests on it
    for b, spec in benches.items():
        for o in spec["ood"]:
            tested_by.setdefault(o, b)
    for b, spec in benches.items():
        train = spec.get("train") or {}
        method, aux = train.get("method", "ce"), aux_sets(spec)
        adopted = [k for k in ("pretrained", "checkpoint") if train.get(k)]
        if adopted and method != "ce":
            problems.append(f"benchmarks.{b}.train.method: {method} trains, but train.{adopted[0]} adopts a "
                            f"network without training; remove train.{adopted[0]} (use train.init to "
                            f"fine-tune another benchmark's backbone), or set train.method: ce")
        if not adopted:  # an adopted network's section is checked by grood.net.source
            try:
                TrainConfig.from_dict({k: v for k, v in train.items() if k != "preprocess"} | {"seed": 0})
            except ValueError as e:
                problems.append(f"benchmarks.{b}.{e}" if str(e).startswith("train.") else f"benchmarks.{b}.train: {e}")
        if method != "ce" and not aux:
            problems.append(f"benchmarks.{b}.aux: train.method {method} trains on auxiliary outliers but "
                            f"none are named; add `aux: <dataset>` (e.g. a dataset of source font_glyphs "
                            f"or scrambled_train), or set train.method: ce")
        if method == "ce" and aux:
            problems.append(f"benchmarks.{b}.aux: train.method ce does not use auxiliary outliers; remove "
                            f"aux, or set train.method to greg or greg_plus")
        for a in aux:
            if a not in datasets:
                problems.append(f"benchmarks.{b}.aux: {a!r} is not a dataset; add it under datasets:")
                continue
            if a == spec["id"]:
                problems.append(f"benchmarks.{b}.aux: {a!r} is the benchmark's ID set; auxiliary "
                                f"outliers must be other images (e.g. source scrambled_train with base "
                                f"{datasets[a]['source']!r})")
            for o, ob in tested_by.items():
                why = aux_overlap(a, datasets[a], o, datasets[o]) if o in datasets else None
                if why:
                    problems.append(f"benchmarks.{b}.aux: {why}; {o!r} is an OOD test set of "
                                    f"benchmarks.{ob}. Fix: take the auxiliary outliers from another "
                                    f"source, path, noise generator or characters")
        problems += _init(b, benches)
    return problems


def _init(b: str, benches: dict) -> list[str]:
    """``train.init`` names another benchmark with the same ID set and network, and no cycle."""
    def net(spec):
        t, d = spec.get("train", {}), TrainConfig()
        return t.get("arch", d.arch), t.get("width", d.width)

    init = benches[b].get("train", {}).get("init")
    if init is None:
        return []
    key = f"benchmarks.{b}.train.init"
    if init not in benches:
        return [f"{key}: {init!r} is not a benchmark; name the benchmark whose backbone to fine-tune, "
                f"or remove train.init"]
    if benches[init]["id"] != benches[b]["id"] or net(benches[init]) != net(benches[b]):
        return [f"{key}: benchmark {init!r} trains {net(benches[init])} on {benches[init]['id']!r}, "
                f"this one {net(benches[b])} on {benches[b]['id']!r}; fine-tune only from a benchmark "
                f"with the same ID set, arch and width"]
    seen, cur = [b], init
    while cur is not None and cur in benches:
        if cur in seen:
            return [f"{key}: the chain {' -> '.join([*seen, cur])} is a cycle; let one of them train "
                    f"from scratch (no train.init)"]
        seen.append(cur)
        cur = benches[cur].get("train", {}).get("init")
    return []


# --------------------------------------------------------------------- tuning on validation data

#: the names a benchmark's ID-validation hold-out gives its two sides (grood.data.holdout)
HOLDOUT_FIT, HOLDOUT_VAL = "fit", "idval"


def ood_val_sets(bench_spec: dict) -> list[str]:
    """A benchmark's OOD-validation sets (``ood_val:`` is one name or a list; none without tuning)."""
    val = bench_spec.get("ood_val") or []
    return [val] if isinstance(val, str) else list(val)


def holdout_names(id_set: str) -> tuple[str, str]:
    """The datasets a benchmark's ``id_val`` makes of its ID set: the training side, the held-out side."""
    return f"{id_set}{tuning.POINT_SEP}{HOLDOUT_FIT}", f"{id_set}{tuning.POINT_SEP}{HOLDOUT_VAL}"


def _holdout_spec(id_spec: dict, id_val: dict, keep: str) -> dict:
    return {"source": "holdout", "base": id_spec["source"],
            "base_params": {k: v for k, v in id_spec.items() if k != "source"}, **id_val, "keep": keep}


def _tuning(config: dict) -> list[str]:
    """A swept detector needs every benchmark to declare validation data: ``id_val`` (a hold-out of
    the ID training split) and ``ood_val`` (OOD-validation sets).  An OOD-validation set must be a
    dataset that is neither the ID set nor any benchmark's OOD test set, and shares no source, path,
    noise generator or character with one (the auxiliary outliers' check, :func:`grood.data.aux_overlap`)."""
    datasets, benches, problems = config["datasets"], config["benchmarks"], []
    swept = [n for n, spec in config["detectors"].items() if tuning.is_swept(spec)]
    tested_by: dict[str, str] = {}
    for b, spec in benches.items():
        for o in spec["ood"]:
            tested_by.setdefault(o, b)
    holdouts: dict[str, tuple[str, dict]] = {}
    for b, spec in benches.items():
        val, id_val = ood_val_sets(spec), spec.get("id_val")
        if swept and not (val and id_val):
            missing = " and ".join(k for k, v in (("id_val", id_val), ("ood_val", val)) if not v)
            problems.append(f"benchmarks.{b}: detectors {swept} are tuned on validation data, but the benchmark "
                            f"declares no {missing}; add `id_val: {{fraction: 0.1}}` (a hold-out of the ID "
                            f"training split) and `ood_val: [<dataset>]` (OOD-validation sets that no benchmark "
                            f"tests on)")
        if id_val and spec["id"] in datasets:
            other = holdouts.setdefault(spec["id"], (b, id_val))
            if other[1] != id_val:
                problems.append(f"benchmarks.{b}.id_val: {id_val} differs from benchmarks.{other[0]}.id_val "
                                f"{other[1]} for the same ID set {spec['id']!r}; use one hold-out per ID set")
            else:
                _, found = check_spec(_holdout_spec(datasets[spec["id"]], id_val, "fit"), f"benchmarks.{b}.id_val")
                problems += found
        for v in val:
            key = f"benchmarks.{b}.ood_val"
            if v not in datasets:
                problems.append(f"{key}: {v!r} is not a dataset; add it under datasets:")
                continue
            if v == spec["id"]:
                problems.append(f"{key}: {v!r} is the benchmark's ID set; OOD-validation sets must be OOD")
            for o, ob in tested_by.items():
                if o not in datasets:
                    continue
                why = aux_overlap(v, datasets[v], o, datasets[o], role="OOD-validation set")
                if why:
                    problems.append(f"{key}: {why}; {o!r} is an OOD test set of benchmarks.{ob}, so tuning on "
                                    f"{v!r} would look at a test set. Fix: validate on a set of another source, "
                                    f"path, noise generator or characters")
    return problems


def expand_holdouts(config: dict) -> dict:
    """For each benchmark with ``id_val``: two derived datasets (source ``holdout``) of its ID set,
    ``<id>~fit`` (the training split without the held-out rows, which the network trains on) and
    ``<id>~idval`` (the held-out rows), added to ``datasets`` (in place; returned too); the
    benchmark's ``id`` becomes the first and its ``id_val_dataset`` the second.  Call after
    :func:`check`; a benchmark without ``id_val`` is left as it is."""
    for spec in config["benchmarks"].values():
        id_val = spec.get("id_val")
        if not id_val or "id_val_dataset" in spec:
            continue
        fit, val = holdout_names(spec["id"])
        base = config["datasets"][spec["id"]]
        config["datasets"].setdefault(fit, _holdout_spec(base, id_val, "fit"))
        config["datasets"].setdefault(val, _holdout_spec(base, id_val, "val"))
        spec["id"], spec["id_val_dataset"] = fit, val
    return config
