# Everything that is not a rule: config validation, names, paths, input functions, code digests.
import re
from pathlib import Path

from snakemake.utils import validate

import grood.config
from grood.codeversion import code_digest
from grood.method.vocab import GRADIENT_STORE_ARRAYS, OOD_DATA_SOURCES, PROTOTYPE_KEYS, PROTOTYPE_SOURCES


validate(config, workflow.source_path("../schemas/config.schema.yaml"))
grood.config.check(config)  # every cross-field problem at once, each naming the key and the fix

R = config["results_dir"]
RES = config["resources_dir"]
RAW = config["raw_dir"] or f"{RES}/raw"
BENCH = config["benchmarks"]
DATASETS = config["datasets"]
DETECTORS = config["detectors"]
SEEDS = config["seeds"]


def stage_code(rule):
    """The rule's ``code`` param: a digest of every grood file its stage module
    (grood/stages/<rule>.py) reaches through imports, read from the source — editing any of them
    re-runs the rule (params trigger) and what reads its outputs."""
    return code_digest(f"grood.stages.{rule}", workflow.basedir)


def detector_object(name):
    from grood.detectors import make_detector

    return make_detector(DETECTORS[name]["method"], detector_params(name))


def detector_params(name):
    return canonical(grood.config.detector_params(DETECTORS[name]))


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
    from grood.data.filelist import folder_manifest

    path = _user_path(wc.dataset)
    if path is None or DATASETS[wc.dataset]["source"] != "image_folder" or not path.is_dir():
        return ""
    return folder_manifest(path)


def train_params(bench):
    """The options the benchmark's training method reads (grood.config.train_settings)."""
    return canonical(grood.config.train_settings(BENCH[bench]["train"]))


def aux_inputs(wc):
    """GReg / GReg+: the prepared auxiliary outlier sets the backbone trains on; CE: none."""
    return [dataset_npz(name) for name in grood.config.aux_sets(BENCH[wc.bench])]


def init_model(wc):
    """train.init: the same seed's checkpoint of the benchmark this one fine-tunes; else none."""
    init = BENCH[wc.bench]["train"].get("init")
    return [f"{run_dir(init, wc.seed)}/model.pt"] if init else []


def train_weights_input(wc):
    """A benchmark's own checkpoint file (train.checkpoint) as an input: new weights re-run train."""
    from grood.net.source import model_source

    source = model_source(BENCH[wc.bench]["train"])
    return [source.checkpoint] if source.checkpoint else []


def prototype_params(source):
    """Only the prototype settings ``source`` uses: changing the mix-up λ leaves the noise prototype."""
    return {k: config["prototypes"][k] for k in sorted(PROTOTYPE_KEYS[source])}


def benchmark_roles():
    """Each benchmark's ID set and OOD roles, without its training settings (for the data card)."""
    return canonical({b: {"id": spec["id"], "ood": spec["ood"],
                          **({"aux": grood.config.aux_sets(spec)} if spec.get("aux") else {})}
                      for b, spec in BENCH.items()})


#: gradient store name (grood.method.vocab.gradient_space) → the values that build it, for every
#: gradient detector: the gradients rule looks its params up here, never parses the name
GRADIENT_SPACES = {
    det.gradient_space: {"source": det.prototype, "wrt": det.wrt, "temperature": det.temperature}
    for det in grood.config.gradient_detectors(config).values()
}


def one_of(names):
    """A wildcard constraint matching exactly ``names`` (regex-escaped); nothing when there are none."""
    return "|".join(re.escape(str(n)) for n in names) or "(?!)"


wildcard_constraints:
    bench=one_of(BENCH),
    dataset=one_of(DATASETS),
    detector=one_of(DETECTORS),
    seed=r"\d+",
    part=one_of(["train", "test", *DATASETS]),
    source=one_of(PROTOTYPE_SOURCES),
    space=one_of(GRADIENT_SPACES),
    shard=r"\d+",


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


def shard_count(stage):
    """How many row shards ``stage`` (features, score, index) splits a part (or, for index, a k-NN
    detector's training index) into; 1: not sharded."""
    return int(config["shards"][stage])  # a digit string from --config too


def per_shard(stem, ext, count):
    """A part's log or benchmark path ``<stem><ext>``; a shard's, ``<stem>/{shard}-of-<count><ext>``."""
    return f"{stem}/{{shard}}-of-{count}{ext}" if count > 1 else f"{stem}{ext}"


def shard_param(count):
    """A rule's ``shard`` param: ``[i, N]`` from the {shard} wildcard, or None when not sharded."""
    return (lambda wc: [int(wc.shard), count]) if count > 1 else None


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
    """Where a gradient detector's gradients live (grood.method.vocab.gradient_space)."""
    return detector_object(detector).gradient_space


def gradient_space_param(key):
    """A gradients rule param (source, wrt, temperature) of the {space} wildcard's gradient space."""
    return lambda wc: GRADIENT_SPACES[wc.space][key]


def ood_val_input(wc):
    if "ood_val_dataset" not in PROTOTYPE_KEYS[wc.source]:
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
    sources = [det.prototype for det in grood.config.gradient_detectors(config).values()]
    if not sources:
        return {}
    return {seed: [f"{run_dir(bench, seed)}/features/test.zarr",
                   f"{run_dir(bench, seed)}/prototypes/{sources[0]}.npz"] for seed in SEEDS}


def detector_flags():
    flags = {}
    for d in DETECTORS:
        obj = detector_object(d)
        flags[d] = {
            "reconstruction": bool(obj.reconstruction),
            "uses_ood_data": bool(obj.uses_ood_data or getattr(obj, "prototype", None) in OOD_DATA_SOURCES),
        }
    return flags


def approximate_detectors():
    """Detectors whose faiss index is approximate (ivf_flat, ivf_pq): each gets an index_quality job."""
    return [d for d in DETECTORS if not getattr(getattr(detector_object(d), "index_spec", None), "exact", True)]


def index_quality_files(bench):
    return [f"{run_dir(bench, seed)}/index_quality/{det}.json" for seed in SEEDS for det in approximate_detectors()]


def index_quality_layout(bench):
    """What evaluate needs to know about each index_quality report, in the order of index_quality_files()."""
    return [{"seed": seed, "detector": det, "path": f"{run_dir(bench, seed)}/index_quality/{det}.json"}
            for seed in SEEDS for det in approximate_detectors()]


def evaluate_outputs(bench):
    return {
        **({"index_quality_csv": f"{R}/{bench}/index_quality.csv"} if approximate_detectors() else {}),
        "metrics_csv": f"{R}/{bench}/metrics.csv",
        "summary_csv": f"{R}/{bench}/summary.csv",
        "table_md": f"{R}/{bench}/results.md",
        "table_tex": f"{R}/{bench}/results.tex",
    }


def final_outputs():
    return [path for bench in BENCH for path in [*evaluate_outputs(bench).values(), *figure_files(bench)]] + list(
        datacard_outputs().values())


def print_results_summary():
    print("\ngrood finished. Results:")
    for bench in BENCH:
        out = evaluate_outputs(bench)
        print(f"  {bench}: table {out['table_md']}, metrics {out['metrics_csv']}, figures {figures_dir(bench)}/")
    print("  all figures with their captions: snakemake --report report.html (same options as this run)")


# -------------------------------------------------------------------------------------- figures
# Every figure is a PNG (bundled by `snakemake --report`, with its caption in workflow/report/) and
# a PDF. Summary figures follow `evaluate`; the per-detector pages and GROOD's method figures show
# the first seed and are drawn as soon as its outputs exist.

FIGURE_SEED = min(SEEDS)


def figures_dir(bench):
    return f"{R}/{bench}/figures"


def figure_pair(key, png, caption, category, **labels):
    """A rule's named outputs for one figure: ``key`` the PNG, in the report under ``category`` with
    its caption and labels, and ``<key>_pdf`` the PDF beside it."""
    return {key: report(png, caption=f"../report/{caption}", category=category, labels=labels),
            f"{key}_pdf": png.removesuffix(".png") + ".pdf"}


def first_gradient_detector():
    """The GROOD-family detector the method figures show (the config's first); None without one."""
    return next(iter(grood.config.gradient_detectors(config).values()), None)


def method_figures():
    """The method figures this config can draw: GROOD's gradient space (with a GROOD-family
    detector) and the targeted mix-up (when one uses the mix-up OOD prototype)."""
    detectors = grood.config.gradient_detectors(config).values()
    return [name for name, used in (("gradient_space", bool(detectors)),
                                    ("mixup", any(d.prototype == "mixup" for d in detectors))) if used]


def figure_ood(bench):
    """The OOD set of the gradient-space figure: the benchmark's first near-OOD set (else its first)."""
    ood = BENCH[bench]["ood"]
    return next((o for o, group in ood.items() if group == "near"), next(iter(ood)))


def method_figure_inputs(wc):
    run = run_dir(wc.bench, FIGURE_SEED)
    inputs = {}
    if "gradient_space" in METHOD_FIGURES:
        det = first_gradient_detector()
        parts = ("train", "test", figure_ood(wc.bench))
        inputs |= {"features": [f"{run}/features/{p}.zarr" for p in parts],
                   "gradients": [f"{run}/gradients/{det.gradient_space}/{p}.zarr" for p in parts],
                   "prototypes": f"{run}/prototypes/{det.prototype}.npz"}
    if "mixup" in METHOD_FIGURES:
        inputs |= {"model": f"{run}/model.pt", "mixup": f"{run}/prototypes/mixup.npz",
                   "data": dataset_npz(BENCH[wc.bench]["id"])}
    return inputs


#: method figure → its caption and report label
METHOD_FIGURE_CAPTIONS = {"gradient_space": ("gradient_space.rst", "GROOD's gradient space"),
                          "mixup": ("mixup.rst", "targeted mix-up")}


def method_figure_outputs():
    """The figures_method rule's outputs: each method figure this config draws (PNG + PDF)."""
    outputs = {}
    for name in METHOD_FIGURES:
        caption, label = METHOD_FIGURE_CAPTIONS[name]
        outputs |= figure_pair(name, f"{R}/{{bench}}/figures/method_{name}.png", caption, "3 Method",
                               figure=label, benchmark="{bench}")
    return outputs


def gradient_figure_params():
    """The gradient space the gradient-space figure shows (its name, wrt and temperature)."""
    det = first_gradient_detector()
    return {"space": det.gradient_space, "wrt": det.wrt, "temperature": det.temperature} if det else {}


def figure_names(bench):
    """The stems of every figure of a benchmark (in figures_dir)."""
    return ["summary_auroc_heatmap", "summary_near_far", "training_curves",
            *(f"detector_{d}" for d in DETECTORS), *(f"method_{m}" for m in METHOD_FIGURES)]


def figure_files(bench):
    return [f"{figures_dir(bench)}/{name}.{ext}" for name in figure_names(bench) for ext in ("png", "pdf")]


METHOD_FIGURES = method_figures()


# ------------------------------------------------------------------ detector inputs (per stage)

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


INDEX_SHARDS = shard_count("index")
INDEX_SHARD = f"{R}/{{bench}}/seed{{seed}}/shards/index/{{detector}}/{{part}}/{{shard}}-of-{INDEX_SHARDS}.npz"


def index_sharded(detector):
    """Whether ``detector``'s k-NN index is searched in shard jobs (shards.index > 1, GROOD and kNN)."""
    from grood.detectors import IndexedDetector

    return INDEX_SHARDS > 1 and isinstance(detector_object(detector), IndexedDetector)


def index_shards_of(detector):
    """The fit_detector ``index_shards`` param: shards.index for a k-NN detector, else 1."""
    return INDEX_SHARDS if index_sharded(detector) else 1


def index_shard_files(wc):
    """A score job's index shard results (search_index_shard), or nothing: the detector has its index."""
    if not index_sharded(wc.detector):
        return []
    return expand(INDEX_SHARD, shard=range(INDEX_SHARDS), bench=wc.bench, seed=wc.seed, detector=wc.detector,
                  part=wc.part)


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
    """Datasets with a role: each benchmark's ID, OOD and auxiliary outlier sets, and the ood_val
    prototype set."""
    names = [n for spec in BENCH.values() for n in (spec["id"], *spec["ood"], *grood.config.aux_sets(spec))]
    if config["prototypes"]["ood_val_dataset"]:
        names.append(config["prototypes"]["ood_val_dataset"])
    return list(dict.fromkeys(names))


def datacard_outputs():
    return {"md": f"{R}/datacard.md", "csv": f"{R}/datacard.csv", "png": f"{R}/datacard.png"}
