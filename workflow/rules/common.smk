# Everything that is not a rule: config validation, names, paths and input functions.
import hashlib
from pathlib import Path

from snakemake.utils import validate


validate(config, workflow.source_path("../schemas/config.schema.yaml"))

R = config["results_dir"]
RES = config["resources_dir"]
RAW = config["raw_dir"] or f"{RES}/raw"
BENCH = config["benchmarks"]
DATASETS = config["datasets"]
DETECTORS = config["detectors"]
SEEDS = config["seeds"]


def _check_config():
    """Cross-field checks the schema cannot express; each error names the key and the fix."""
    import inspect

    from grood.data import SOURCES as DATA_SOURCES
    from grood.data import DataError
    from grood.data import sources as data_sources
    from grood.data.sources import resolve_params
    from grood.detectors import METHODS

    def _same_images(a, b, resolved):
        """Whether datasets ``a`` and ``b`` can share test images: the same source and, for on-disk
        sources, the same path; noise only when kind, seed, size and channels all agree."""
        import os

        sa, sb = DATASETS[a]["source"], DATASETS[b]["source"]
        if sa != sb or a not in resolved or b not in resolved:
            return False
        pa, pb = resolved[a], resolved[b]
        if sa == "noise":
            return all(pa[k] == pb[k] for k in ("kind", "seed", "size", "channels"))
        if "path" in pa:
            return os.path.realpath(str(pa["path"])) == os.path.realpath(str(pb["path"]))
        return True

    errors = []
    resolved = {}  # dataset name -> its resolved source params (for the overlap check below)
    for name, spec in DATASETS.items():
        if spec["source"] not in DATA_SOURCES:
            errors.append(f"datasets.{name}.source: unknown source {spec['source']!r}; "
                          f"choose one of {sorted(DATA_SOURCES)}")
            continue
        params = {k: v for k, v in spec.items() if k != "source"}
        try:
            resolved[name] = resolve_params(spec["source"], params)
        except DataError as e:
            required = getattr(data_sources, "_REQUIRED", None)
            missing = [k for k, v in data_sources.REGISTRY[spec["source"]].params.items()
                       if v is required and k not in params]
            fix = (f" Fix: add `{missing[0]}: ...` under datasets.{name}" if missing else "")
            errors.append(f"datasets.{name}: {str(e).rstrip('.')}.{fix}")
    for b, spec in BENCH.items():
        if spec["id"] not in DATASETS:
            errors.append(f"benchmarks.{b}.id: {spec['id']!r} is not a dataset; add it under datasets:")
        elif DATASETS[spec["id"]]["source"] in data_sources.REGISTRY and \
                not data_sources.REGISTRY[DATASETS[spec["id"]]["source"]].labelled:
            errors.append(f"benchmarks.{b}.id: {spec['id']!r} (source {DATASETS[spec['id']]['source']!r}) "
                          f"has no labels, so no network can be trained on it; choose a labelled "
                          f"dataset with a train split as the ID set")
        for ood in spec["ood"]:
            if ood not in DATASETS:
                errors.append(f"benchmarks.{b}.ood.{ood}: not a dataset; add it under datasets:")
            if ood == spec["id"]:
                errors.append(f"benchmarks.{b}.ood.{ood}: the ID dataset cannot also be an OOD set")
    # the values the prototypes/gradients wildcards accept (grood.prototypes.SOURCES,
    # grood.gradients.WRT; not imported here: they pull in torch)
    proto_sources, wrt_values = ("mixup", "noise", "proto_mean", "ood_val"), ("ood", "pred", "all")
    ood_val = config["prototypes"]["ood_val_dataset"]
    for d, spec in DETECTORS.items():
        if spec["method"] not in METHODS:
            errors.append(f"detectors.{d}.method: unknown method {spec['method']!r}; "
                          f"choose one of {sorted(METHODS)}")
            continue
        init = METHODS[spec["method"]].__init__
        sig = {} if init is object.__init__ else inspect.signature(init).parameters
        allowed = {k: p.default for k, p in sig.items() if k != "self"
                   and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
        bad = False
        for k, v in detector_params(d).items():
            if k not in allowed:
                if not any(p.kind == p.VAR_KEYWORD for p in sig.values()):
                    choose = (f"remove it or use one of {sorted(allowed)}" if allowed
                              else "it takes no params: remove it")
                    errors.append(f"detectors.{d}.{k}: unknown param for method {spec['method']!r}; {choose}")
                    bad = True
                continue
            default = allowed[k]
            if isinstance(default, bool):
                ok, kind = isinstance(v, bool), "true or false"
            elif isinstance(default, int):
                ok, kind = isinstance(v, int) and not isinstance(v, bool), "an integer"
            elif isinstance(default, float):
                ok, kind = isinstance(v, (int, float)) and not isinstance(v, bool), "a number"
            elif isinstance(default, str):
                ok, kind = isinstance(v, str), "a string"
            else:
                ok, kind = True, ""
            if not ok:
                errors.append(f"detectors.{d}.{k}: must be {kind} (default {default!r}), got {v!r}")
                bad = True
        if bad:
            continue
        try:
            obj = detector_object(d)
        except ValueError as e:
            errors.append(f"detectors.{d}: {e}")
            continue
        p = obj.get_params()
        if "prototype" in p and p["prototype"] not in proto_sources:
            errors.append(f"detectors.{d}.prototype: unknown OOD-prototype source {p['prototype']!r}; "
                          f"choose one of {list(proto_sources)}")
        if "wrt" in p and p["wrt"] not in wrt_values:
            errors.append(f"detectors.{d}.wrt: {p['wrt']!r} is not one of {list(wrt_values)}")
        if "temperature" in p and not float(p["temperature"]) > 0:
            errors.append(f"detectors.{d}.temperature: must be > 0, got {p['temperature']!r}")
        if p.get("prototype") == "ood_val" and ood_val is None:
            errors.append(f"detectors.{d}.prototype: 'ood_val' needs OOD validation images; set "
                          f"prototypes.ood_val_dataset to a dataset that no benchmark tests on")
    if ood_val is not None and ood_val not in DATASETS:
        errors.append(f"prototypes.ood_val_dataset: {ood_val!r} is not a dataset; add it under datasets:")
    elif ood_val is not None:
        # the OOD-validation images must not be (or share images with) any set a benchmark tests on
        for b, spec in BENCH.items():
            for role, other in [("ID", spec["id"]), *(("OOD test", o) for o in spec["ood"])]:
                if other not in DATASETS:
                    continue
                if other == ood_val:
                    why = "is"
                elif _same_images(ood_val, other, resolved):
                    why = (f"takes its images from the same data (source "
                           f"{DATASETS[ood_val]['source']!r}) as {other!r},")
                else:
                    continue
                errors.append(f"prototypes.ood_val_dataset: {ood_val!r} {why} an {role} set "
                              f"of benchmarks.{b}: the OOD prototype would be built from images the "
                              f"benchmark evaluates on. Fix: choose an OOD-validation dataset "
                              f"that no benchmark uses (another source, path or noise seed)")
    if errors:
        raise ValueError("invalid grood config:\n  - " + "\n  - ".join(errors))


def detector_object(name):
    from grood.detectors import make_detector

    spec = DETECTORS[name]
    return make_detector(spec["method"], detector_params(name))


def detector_params(name):
    return canonical({k: v for k, v in DETECTORS[name].items() if k != "method"})


def canonical(obj):
    """``obj`` with every mapping's keys sorted: rule params compare by their text, so the same
    config written in another key order must give the same params (and re-run nothing)."""
    if isinstance(obj, dict):
        return {k: canonical(obj[k]) for k in sorted(obj)}
    if isinstance(obj, list):
        return [canonical(v) for v in obj]
    return obj


def dataset_spec(name):
    return canonical(DATASETS[name])


def _user_path(name):
    from grood.data.pixels import user_path

    spec = DATASETS[name]
    return Path(user_path(spec["path"], spec["source"])) if spec.get("path") else None


def user_data_file(wc):
    """A user's own data file (e.g. source npz) as an input: new contents rebuild the dataset."""
    path = _user_path(wc.dataset)
    return [str(path)] if path is not None and path.is_file() else []


def user_folder_manifest(wc):
    """For an ``image_folder`` dataset, a digest of every file's relative path, size and mtime
    (a folder cannot be a Snakemake input): adding, removing or editing an image rebuilds it."""
    path = _user_path(wc.dataset)
    if path is None or DATASETS[wc.dataset]["source"] != "image_folder" or not path.is_dir():
        return ""
    h = hashlib.sha256()
    for f in sorted(p for p in path.rglob("*") if p.is_file()):
        st = f.stat()
        h.update(f"{f.relative_to(path).as_posix()}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


def train_params(bench):
    return canonical(BENCH[bench]["train"])


PROTOTYPE_KEYS = {
    "mixup": ("layer", "lam", "n_mix"),
    "noise": ("noise_n", "noise_keep"),
    "proto_mean": (),
    "ood_val": ("n_mix", "ood_val_dataset"),
}


def prototype_params(source):
    """Only the prototype settings ``source`` uses: changing the mix-up λ leaves the noise prototype."""
    return {k: config["prototypes"][k] for k in sorted(PROTOTYPE_KEYS[source])}


def benchmark_roles():
    """Each benchmark's ID set and OOD roles, without its training settings (for the data card)."""
    return canonical({b: {"id": spec["id"], "ood": spec["ood"]} for b, spec in BENCH.items()})


_check_config()


wildcard_constraints:
    bench="|".join(BENCH),
    dataset="|".join(DATASETS),
    detector="|".join(DETECTORS),
    seed=r"\d+",
    part="|".join(["train", "test", *DATASETS]),
    source="mixup|noise|proto_mean|ood_val",
    wrt="ood|pred|all",
    temp=r"[0-9.]+",


def local_gpu_visible():
    """Whether a local job can see an NVIDIA GPU (device node present, not hidden), without torch."""
    import glob
    import os

    if config["device"] == "cpu":
        return False
    if config["device"].startswith("cuda"):
        return True
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None and visible.strip() in ("", "-1"):
        return False
    return bool(glob.glob("/dev/nvidia[0-9]*"))


def job_gpus(wc=None):
    """GPUs a network job asks for: one per job on a cluster (profiles/slurm) or where a local GPU is
    visible, none on a CPU-only machine — where a `gpu` resource would only serialise CPU jobs.
    Evaluated per job, once the executor is known."""
    return 1 if (not workflow.local_exec or local_gpu_visible()) else 0


def code_version(*modules):
    """Digest of the grood modules a stage runs: editing them re-runs that stage (params trigger)."""
    h = hashlib.sha256()
    root = Path(workflow.basedir) / "grood"
    for m in modules:
        path = root / m
        files = sorted(path.rglob("*.py")) if path.is_dir() else [path]
        for f in files:
            h.update(f.relative_to(root).as_posix().encode())
            h.update(f.read_bytes())
    return h.hexdigest()[:16]


# --------------------------------------------------------------------------------------- paths

def dataset_npz(name):
    return f"{RES}/data/{name}.npz"


def run_dir(bench, seed):
    return f"{R}/{bench}/seed{seed}"


def part_dataset(bench, part):
    """The dataset behind a part: the ID set for train/test, else the OOD set itself."""
    return BENCH[bench]["id"] if part in ("train", "test") else part


def part_split(part):
    return "train" if part == "train" else "test"


def gradient_space(detector):
    """Where a gradient detector's gradients live: <prototype source>_<wrt>_T<temperature>."""
    p = detector_object(detector).get_params()
    return f"{p['prototype']}_{p['wrt']}_T{float(p['temperature']):g}"


def ood_val_input(wc):
    if wc.source != "ood_val":
        return []
    name = config["prototypes"]["ood_val_dataset"]
    if name is None:
        raise ValueError("a detector uses prototype: ood_val but prototypes.ood_val_dataset is not set")
    return [dataset_npz(name)]


def score_parts(bench):
    return ["test", *BENCH[bench]["ood"]]


def score_files(bench):
    return [
        f"{run_dir(bench, seed)}/scores/{det}/{part}.npy"
        for seed in SEEDS
        for det in DETECTORS
        for part in score_parts(bench)
    ]


def score_layout(bench):
    """What evaluate needs to know about each score file, in the order of score_files()."""
    return [
        {"seed": seed, "detector": det, "part": part, "path": f"{run_dir(bench, seed)}/scores/{det}/{part}.npy"}
        for seed in SEEDS
        for det in DETECTORS
        for part in score_parts(bench)
    ]


def ncp_inputs(bench):
    """Per seed, the ID test features and the class prototypes of the first GROOD-family detector
    (for GROOD's nearest-prototype accuracy); nothing when the benchmark runs no GROOD detector."""
    sources = [detector_object(d).get_params()["prototype"] for d in DETECTORS
               if "prototype" in detector_object(d).get_params()]
    if not sources:
        return {}
    return {seed: [f"{run_dir(bench, seed)}/features/test.zarr",
                   f"{run_dir(bench, seed)}/prototypes/{sources[0]}.npz"] for seed in SEEDS}


def detector_flags():
    flags = {}
    for d in DETECTORS:
        obj = detector_object(d)
        p = obj.get_params()
        flags[d] = {
            "reconstruction": bool(obj.reconstruction),
            "uses_ood_data": bool(obj.uses_ood_data or p.get("prototype") == "ood_val"),
        }
    return flags


def evaluate_outputs(bench):
    return {
        "metrics_csv": f"{R}/{bench}/metrics.csv",
        "summary_csv": f"{R}/{bench}/summary.csv",
        "table_md": f"{R}/{bench}/results.md",
        "table_tex": f"{R}/{bench}/results.tex",
        "hist": f"{R}/{bench}/figures/score_histograms.png",
        "roc": f"{R}/{bench}/figures/roc_curves.png",
    }


def final_outputs():
    return [path for bench in BENCH for path in evaluate_outputs(bench).values()] + list(datacard_outputs().values())


def print_results_summary():
    print("\ngrood finished. Results:")
    for bench in BENCH:
        out = evaluate_outputs(bench)
        print(f"  {bench}: table {out['table_md']}, metrics {out['metrics_csv']}, "
              f"figures {Path(out['hist']).parent}/")


# ------------------------------------------------------------------ detector inputs (per stage)

GRADIENT_STORE_ARRAYS = ("gradients", "proto_dist", "pi_ood")


def detector_array_stores(wc, part, names):
    """The Zarr stores holding the arrays ``names`` for one part: the feature store for features,
    logits and labels, the detector's gradient store for gradients, proto_dist and pi_ood."""
    names = set(names)
    stores = []
    if names - set(GRADIENT_STORE_ARRAYS):
        stores.append(f"{run_dir(wc.bench, wc.seed)}/features/{part}.zarr")
    if names & set(GRADIENT_STORE_ARRAYS):
        stores.append(f"{run_dir(wc.bench, wc.seed)}/gradients/{gradient_space(wc.detector)}/{part}.zarr")
    return stores


def fit_stores(wc):
    return detector_array_stores(wc, "train", detector_object(wc.detector).fit_requires)


def score_stores(wc):
    return detector_array_stores(wc, wc.part, detector_object(wc.detector).requires)


def needs_network(detector):
    return bool(detector_object(detector).needs_network)


def network_model(wc):
    """The checkpoint, for detectors that run the network at scoring time (ODIN); else nothing."""
    return [f"{run_dir(wc.bench, wc.seed)}/model.pt"] if needs_network(wc.detector) else []


def network_data(wc):
    """The part's dataset, for detectors that run the network at scoring time (ODIN); else nothing."""
    return [dataset_npz(part_dataset(wc.bench, wc.part))] if needs_network(wc.detector) else []


# -------------------------------------------------------------------------------- data card

def datacard_datasets():
    """Datasets with a role: each benchmark's ID and OOD sets, and the ood_val prototype set."""
    names = [n for spec in BENCH.values() for n in (spec["id"], *spec["ood"])]
    if config["prototypes"]["ood_val_dataset"]:
        names.append(config["prototypes"]["ood_val_dataset"])
    return list(dict.fromkeys(names))


def datacard_outputs():
    return {"md": f"{R}/datacard.md", "csv": f"{R}/datacard.csv", "png": f"{R}/datacard.png"}
