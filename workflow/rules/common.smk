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
    from grood.data import SOURCES as DATA_SOURCES
    from grood.detectors import METHODS

    errors = []
    for name, spec in DATASETS.items():
        if spec["source"] not in DATA_SOURCES:
            errors.append(f"datasets.{name}.source: unknown source {spec['source']!r}; "
                          f"choose one of {sorted(DATA_SOURCES)}")
    for b, spec in BENCH.items():
        if spec["id"] not in DATASETS:
            errors.append(f"benchmarks.{b}.id: {spec['id']!r} is not a dataset; add it under datasets:")
        for ood in spec["ood"]:
            if ood not in DATASETS:
                errors.append(f"benchmarks.{b}.ood.{ood}: not a dataset; add it under datasets:")
            if ood == spec["id"]:
                errors.append(f"benchmarks.{b}.ood.{ood}: the ID dataset cannot also be an OOD set")
    for d, spec in DETECTORS.items():
        if spec["method"] not in METHODS:
            errors.append(f"detectors.{d}.method: unknown method {spec['method']!r}; "
                          f"choose one of {sorted(METHODS)}")
            continue
        try:
            detector_object(d)
        except ValueError as e:
            errors.append(f"detectors.{d}: {e}")
    ood_val = config["prototypes"]["ood_val_dataset"]
    if ood_val is not None and ood_val not in DATASETS:
        errors.append(f"prototypes.ood_val_dataset: {ood_val!r} is not a dataset; add it under datasets:")
    if errors:
        raise ValueError("invalid grood config:\n  - " + "\n  - ".join(errors))


def detector_object(name):
    from grood.detectors import make_detector

    spec = DETECTORS[name]
    return make_detector(spec["method"], detector_params(name))


def detector_params(name):
    return {k: v for k, v in DETECTORS[name].items() if k != "method"}


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


def uses_gradients(detector):
    return "gradients" in (detector_object(detector).requires + detector_object(detector).fit_requires)


def gradient_space(detector):
    """Where a gradient detector's gradients live: <prototype source>_<wrt>_T<temperature>."""
    p = detector_object(detector).get_params()
    return f"{p['prototype']}_{p['wrt']}_T{float(p['temperature']):g}"


def detector_stores(wc, part):
    """The Zarr stores a detector reads for one part: features, plus gradients where it needs them."""
    stores = [f"{run_dir(wc.bench, wc.seed)}/features/{part}.zarr"]
    if uses_gradients(wc.detector):
        stores.append(f"{run_dir(wc.bench, wc.seed)}/gradients/{gradient_space(wc.detector)}/{part}.zarr")
    return stores


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
    return [path for bench in BENCH for path in evaluate_outputs(bench).values()]


def print_results_summary():
    print("\ngrood finished. Results:")
    for bench in BENCH:
        out = evaluate_outputs(bench)
        print(f"  {bench}: table {out['table_md']}, metrics {out['metrics_csv']}, "
              f"figures {Path(out['hist']).parent}/")
