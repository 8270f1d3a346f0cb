# Everything that is not a rule: config validation, names, paths, input functions, code digests.
import functools
import re
import sys
from pathlib import Path

from snakemake.utils import validate

import grood.config
from grood import layout
from grood.codeversion import code_digest
from grood.figures import catalog
from grood.evaluation.tuning import ID_VAL
from grood.method.vocab import (GAIA_ARRAYS, GRADIENT_STORE_ARRAYS, HEAD_ARRAYS, OOD_DATA_SOURCES, PROTOTYPE_KEYS,
                                PROTOTYPE_SOURCES, prototype_name)


validate(config, workflow.source_path("../schemas/config.schema.yaml"))
# `detectors: {suite: standard, ...}`: the named suite of config/suites.yaml, whatever --configfile says
grood.config.expand_suites(config, grood.config.load_suites(Path(workflow.basedir) / "config" / "suites.yaml"))
grood.config.check(config)  # every cross-field problem at once, each naming the key and the fix
# a benchmark's `id_val`: its ID set's training side and held-out side become datasets of their own
grood.config.expand_holdouts(config)

if config["search"]["gpu"]:
    # the score jobs of GROOD and kNN will search with faiss-gpu: say now if this environment lacks it
    # (a login node has no GPU, but a GPU build of faiss is visible without one)
    import faiss as _faiss

    if not hasattr(_faiss, "StandardGpuResources"):
        print("grood: search.gpu is true but this environment's faiss has no GPU build: GROOD's and kNN's score "
              "jobs will fail at their start unless the GPU nodes' environment has faiss-gpu "
              "(docs/cluster.md); set search.gpu: false to search on the CPU", file=sys.stderr)

R = config["results_dir"]
RES = config["resources_dir"]
RAW = config["raw_dir"] or f"{RES}/raw"
BENCH = config["benchmarks"]
DATASETS = config["datasets"]
SEEDS = config["seeds"]
#: the detectors of the results table, in order (a swept detector once: its chosen grid point)
TABLE = list(config["detectors"])
#: swept detector → its grid points' names, in grid order (grood.evaluation.tuning)
TUNED = {name: [p.name for p in points] for name, points in grood.config.sweeps(config).items()}
#: every detector a fit_detector / score job acts on: the table's, a swept one's grid points instead of it
DETECTORS = grood.config.fitted_detectors(config)


def stage_code(rule):
    """The rule's ``code`` param: a digest of every grood file its stage module
    (grood/stages/<rule>.py) reaches through imports, read from the source — editing any of them
    re-runs the rule (params trigger) and what reads its outputs."""
    return code_digest(f"grood.stages.{rule}", workflow.basedir)


@functools.lru_cache(maxsize=None)
def detector_object(name):
    """The detector ``name`` (a table detector or a grid point); a swept detector's first point
    stands for it where only its class matters (flags, the arrays it reads)."""
    from grood.detectors import make_detector

    if name in TUNED:
        name = TUNED[name][0]
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
    """A user's own data files (a source npz, an image list and its training list) as inputs: new
    contents rebuild the dataset."""
    from grood.data.pixels import user_path

    spec = DATASETS[wc.dataset]
    paths = [_user_path(wc.dataset)]
    if spec.get("train"):  # imglist: the training split's list
        paths.append(Path(user_path(spec["train"], spec["source"], "train")))
    return [str(p) for p in paths if p is not None and p.is_file()]


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
    return [out("model", bench=init, seed=wc.seed)] if init else []


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
                          **({"aux": grood.config.aux_sets(spec)} if spec.get("aux") else {}),
                          **({"id_val": spec["id_val_dataset"]} if spec.get("id_val_dataset") else {}),
                          **({"ood_val": grood.config.ood_val_sets(spec)} if spec.get("ood_val") else {})}
                      for b, spec in BENCH.items()})


#: OOD-prototype file name (a source, or a source with a detector's own settings: grood.method.vocab.
#: prototype_name) → its source and the settings that build it; the prototypes rule looks them up here
PROTOTYPES = {
    **{source: {"source": source, "params": prototype_params(source)} for source in PROTOTYPE_SOURCES},
    **{prototype_name(det.prototype, det.prototype_overrides):
       {"source": det.prototype, "params": {**prototype_params(det.prototype), **det.prototype_overrides}}
       for det in grood.config.gradient_detectors(config).values()},
}

#: gradient store name (grood.method.vocab.gradient_space) → the values that build it, for every
#: gradient detector: the gradients rule looks its params up here, never parses the name
GRADIENT_SPACES = {
    det.gradient_space: {"source": prototype_name(det.prototype, det.prototype_overrides), "wrt": det.wrt,
                         "temperature": det.temperature}
    for det in grood.config.gradient_detectors(config).values()
}


def one_of(names):
    """A wildcard constraint matching exactly ``names`` (regex-escaped); nothing when there are none."""
    return "|".join(re.escape(str(n)) for n in names) or "(?!)"


wildcard_constraints:
    bench=one_of(BENCH),
    dataset=one_of(DATASETS),
    detector=one_of(DETECTORS),  # fitted ones; the rules of the table's detectors widen it (one_of(TABLE))
    seed=r"\d+",
    part=one_of(["train", "test", ID_VAL, *DATASETS]),
    source=one_of(PROTOTYPES),
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


def per_shard(job, count):
    """A part's job name (``{part}``, for its log and benchmark files); a shard's,
    ``{part}/{shard}-of-<count>``."""
    return f"{job}/{{shard}}-of-{count}" if count > 1 else job


def shard_param(count):
    """A rule's ``shard`` param: ``[i, N]`` from the {shard} wildcard, or None when not sharded."""
    return (lambda wc: [int(wc.shard), count]) if count > 1 else None


# --------------------------------------------------------------------------------------- paths
# Every path comes from the run layout (grood.layout): a rule names its outputs with out(), the
# fields it leaves out are its wildcards; logs and timing files with job_log() / job_benchmark().

ROOTS = {"results": R, "resources": RES}


def out(output, **values):
    """``output``'s path in this run's folders (grood.layout); fields not given stay ``{wildcards}``."""
    fields = layout.fields(layout.OUTPUTS[output])
    return layout.path(output, **{k: v for k, v in ROOTS.items() if k in fields}, **values)


def job_log(rule, scope="run", job=""):
    """A job's log: ``<results>/logs/<scope>/<rule>[/<job>].log`` (grood.layout.job_file)."""
    return layout.job_file("log", rule, scope, job, results=R)


def job_benchmark(rule, scope="run", job=""):
    """A job's timing file: ``<results>/benchmarks/<scope>/<rule>[/<job>].tsv``."""
    return layout.job_file("benchmark", rule, scope, job, results=R)


def dataset_npz(name):
    return out("dataset", dataset=name)


def part_dataset(bench, part):
    """The dataset behind a part: the ID set for train/test (a tuned benchmark: its training side),
    its held-out side for id_val, else the OOD set itself."""
    if part == ID_VAL:
        return BENCH[bench]["id_val_dataset"]
    return BENCH[bench]["id"] if part in ("train", "test") else part


def part_split(part):
    return "train" if part == "train" else "test"


def gradient_space(detector):
    """Where a gradient detector's gradients live (grood.method.vocab.gradient_space)."""
    return detector_object(detector).gradient_space


def gradient_space_param(key):
    """A gradients rule param (source, wrt, temperature) of the {space} wildcard's gradient space."""
    return lambda wc: GRADIENT_SPACES[wc.space][key]


#: a GROOD-family detector builds its OOD prototype by mix-up: the features pass over the ID training
#: part then also accumulates the early prototypes Q (grood.method.early_store)
MIXUP = any(det.prototype == "mixup" for det in grood.config.gradient_detectors(config).values())


def early_layer(wc):
    """The features rule's ``early_layer`` param: the mix-up's stage for the ID training part, else None."""
    return config["prototypes"]["layer"] if MIXUP and wc.part == "train" else None


def early_input(wc):
    """The early prototypes a prototypes job reads (the mix-up's); nothing for the other sources."""
    if PROTOTYPES[wc.source]["source"] != "mixup":
        return []
    return [out("early_prototypes", bench=wc.bench, seed=wc.seed, part="train")]


def ood_val_input(wc):
    if "ood_val_dataset" not in PROTOTYPE_KEYS[PROTOTYPES[wc.source]["source"]]:
        return []
    name = config["prototypes"]["ood_val_dataset"]
    if name is None:
        raise ValueError("a detector uses prototype: ood_val but prototypes.ood_val_dataset is not set")
    return [dataset_npz(name)]


def score_parts(bench):
    return ["test", *BENCH[bench]["ood"]]


def score_table(bench):
    """Every score file evaluate reads, with its seed, detector and part (``path``)."""
    return [{"seed": seed, "detector": det, "part": part,
             "path": out("scores", bench=bench, seed=seed, detector=det, part=part)}
            for seed in SEEDS for det in TABLE for part in score_parts(bench)]


def ncp_inputs(bench):
    """Per seed, the ID test features and the class prototypes of the first GROOD-family detector
    (for GROOD's nearest-prototype accuracy); nothing when the benchmark runs no GROOD detector."""
    det = first_gradient_detector()
    if det is None:
        return {}
    source = prototype_name(det.prototype, det.prototype_overrides)
    return {seed: [out("features", bench=bench, seed=seed, part="test"),
                   out("prototypes", bench=bench, seed=seed, source=source)] for seed in SEEDS}


def uses_ood_data(obj):
    return bool(obj.uses_ood_data or getattr(obj, "prototype", None) in OOD_DATA_SOURCES)


def detector_flags():
    """Per table detector: ``reconstruction``, ``uses_ood_data`` (a swept one: if any grid point
    does) and, in a config that tunes, ``tuned`` (chosen on validation data)."""
    flags = {}
    for d in TABLE:
        objs = [detector_object(p) for p in TUNED.get(d, [d])]
        flags[d] = {
            "reconstruction": bool(objs[0].reconstruction),
            "uses_ood_data": any(uses_ood_data(o) for o in objs),
            **({"tuned": d in TUNED} if TUNED else {}),
        }
    return flags


def approximate_detectors():
    """Detectors whose faiss index is approximate (ivf_flat, ivf_pq): each gets an index_quality job
    (not a swept detector's grid points, whose test parts only the chosen one scores)."""
    return [d for d in TABLE if d not in TUNED
            and not getattr(getattr(detector_object(d), "index_spec", None), "exact", True)]


def index_quality_table(bench):
    """Every index_quality report evaluate reads, with its seed and detector (``path``)."""
    return [{"seed": seed, "detector": det, "path": out("index_quality", bench=bench, seed=seed, detector=det)}
            for seed in SEEDS for det in approximate_detectors()]


def index_quality_ood_stores(wc):
    """Per OOD set, the stores of the arrays the detector's index holds (index_quality)."""
    names = detector_object(wc.detector).requires
    return {ood: detector_array_stores(wc, ood, names) for ood in BENCH[wc.bench]["ood"]}


def evaluate_outputs(bench):
    """evaluate's outputs, named as grood.layout names them (index_quality.csv: only with an
    approximate index; tuning.csv: only with a swept detector)."""
    names = (["index_quality_csv"] if approximate_detectors() else []) + (["tuning_csv"] if TUNED else [])
    return {name: out(name, bench=bench) for name in [*names, "metrics_csv", "summary_csv", "table_md", "table_tex"]}


def final_outputs():
    """Every benchmark's tables and figures, the data card, and each swept detector's fitted file (its
    chosen point's, per seed: what `grood score` and `grood info` open)."""
    tuned = [out("detector", bench=bench, seed=seed, detector=det) for bench in BENCH for seed in SEEDS for det in TUNED]
    return [path for bench in BENCH for path in [*evaluate_outputs(bench).values(), *figure_files(bench)]] + list(
        datacard_outputs().values()) + tuned


def print_results_summary():
    print("\ngrood finished. Results:")
    for bench in BENCH:
        outputs = evaluate_outputs(bench)
        print(f"  {bench}: table {outputs['table_md']}, metrics {outputs['metrics_csv']}, figures {figures_dir(bench)}/")
    print("  all figures with their captions: snakemake --report report.html (same options as this run)")


# -------------------------------------------------------------------------------------- figures
# Every figure is a row of grood.figures.catalog.FIGURES: the job that draws it (rule
# figures_<job>), its stem, caption (workflow/report/), report section, inputs and params. Each is
# a PNG (bundled by `snakemake --report`) and a PDF. Summary figures follow `evaluate`; the
# per-detector pages and GROOD's method figures show the first seed and are drawn as soon as its
# outputs exist.

FIGURE_SEED = min(SEEDS)


def first_gradient_detector():
    """The GROOD-family detector the method figures show: the config's first that is not swept, else
    the first grid point of the first swept one; None without one."""
    found = grood.config.gradient_detectors(config)
    points = {p for names in TUNED.values() for p in names}
    return next((d for n, d in found.items() if n not in points), next(iter(found.values()), None))


@functools.lru_cache(maxsize=None)
def figure_context(bench):
    """What the figures of ``bench`` are drawn from, by this config (grood.figures.catalog.Context)."""
    det = first_gradient_detector()
    gradient = ({"space": det.gradient_space, "source": prototype_name(det.prototype, det.prototype_overrides),
                 "wrt": det.wrt, "temperature": det.temperature} if det else None)
    return catalog.Context(results=R, bench=bench, seeds=tuple(SEEDS), seed=FIGURE_SEED, groups=BENCH[bench]["ood"],
                           detectors=tuple(TABLE), gradient=gradient,
                           mixup=MIXUP,
                           id_data=dataset_npz(BENCH[bench]["id"]))


def _job_figures(job, bench):
    return catalog.of_job(job, figure_context(bench))


def _instance(fig, wc):
    return {fig.per: wc[fig.per]} if fig.per else {}


def figure_inputs(job):
    """A figures_<job> rule's named inputs (for unpack): every input of the figures it draws."""
    return lambda wc: catalog.job_inputs(_job_figures(job, wc.bench), figure_context(wc.bench),
                                         {k: wc[k] for k in wc.keys()})


def figure_params(job):
    """A figures_<job> rule's ``figures`` param: each figure it draws → the values its drawing needs."""
    return lambda wc: {name: fig.params(figure_context(wc.bench), _instance(fig, wc))
                       for name, fig in _job_figures(job, wc.bench).items()}


def figure_outputs(job):
    """A figures_<job> rule's outputs: each figure's PNG (in the report, with its caption, section and
    labels) as ``<name>``, its PDF as ``<name>_pdf``; wildcards {bench} (and {detector})."""
    outputs = {}
    for name, fig in catalog.of_job(job, figure_context(next(iter(BENCH)))).items():
        png = out("figure", figure=fig.stem, ext="png")
        outputs[name] = report(png, caption=f"../report/{fig.caption}", category=fig.category,
                               labels={**fig.labels, "benchmark": "{bench}"})
        outputs[f"{name}_pdf"] = out("figure", figure=fig.stem, ext="pdf")
    return outputs


def has_figures(job):
    """Whether this config draws any figure of ``job`` (the method figures need a GROOD detector)."""
    return bool(catalog.of_job(job, figure_context(next(iter(BENCH)))))


def figure_files(bench):
    """Every figure file of a benchmark (PNG and PDF)."""
    ctx = figure_context(bench)
    return [out("figure", bench=bench, figure=fig.stem_of(wc), ext=ext)
            for fig in catalog.FIGURES.values() for wc in fig.instances(ctx) for ext in ("png", "pdf")]


def figures_dir(bench):
    return str(Path(out("figure", bench=bench, figure="x", ext="png")).parent)


# ------------------------------------------------------------------ detector inputs (per stage)

def detector_array_stores(wc, part, names):
    """The Zarr stores holding the arrays ``names`` for one part: the feature store for features,
    logits, labels and GAIA's statistics, the detector's gradient store for gradients, proto_dist and
    pi_ood; none for the classifier head (HEAD_ARRAYS: its own file, rule head: fit_head)."""
    names = set(names) - set(HEAD_ARRAYS)
    stores = []
    if names - set(GRADIENT_STORE_ARRAYS):
        stores.append(out("features", bench=wc.bench, seed=wc.seed, part=part))
    if names & set(GRADIENT_STORE_ARRAYS):
        stores.append(out("gradients", bench=wc.bench, seed=wc.seed, space=gradient_space(wc.detector), part=part))
    return stores


def fit_stores(wc):
    return detector_array_stores(wc, "train", detector_object(wc.detector).fit_requires)


def fit_head(wc):
    """The head's arrays (rule head), for detectors fitted on the classifier head (ReAct, ASH, SCALE,
    DICE, ViM: their fit_requires name HEAD_ARRAYS); else nothing."""
    needs_head = set(detector_object(wc.detector).fit_requires) & set(HEAD_ARRAYS)
    return [out("head", bench=wc.bench, seed=wc.seed)] if needs_head else []


#: whether a detector reads GAIA's statistics: then the features jobs of the parts that are scored
#: (ID test, every OOD set) compute them in their forward pass (the features rule's `gaia` param)
GAIA_FEATURES = any(set(detector_object(d).requires) & set(GAIA_ARRAYS) for d in DETECTORS)


def features_gaia(part):
    """The features rule's ``gaia`` param: GAIA's statistics for a scored part when a detector reads
    them; never for the training part (GAIA fits nothing)."""
    return GAIA_FEATURES and part != "train"


def score_stores(wc):
    return detector_array_stores(wc, wc.part, detector_object(wc.detector).requires)


INDEX_SHARDS = shard_count("index")
INDEX_SHARD = out("index_shard", shards=INDEX_SHARDS)


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


def indexed(detector):
    """Whether ``detector`` scores by a k-NN search in its own faiss index (GROOD, kNN; not index-sharded)."""
    from grood.detectors import IndexedDetector

    return isinstance(detector_object(detector), IndexedDetector) and not index_sharded(detector)


def search_threads(wc):
    """A score job's threads: search.threads for a k-NN search, on the CPU or a GPU (an exact index's
    scores come from the canonical search: the same bits on any count), else 1 (start-up bound)."""
    return config["search"]["threads"] if indexed(wc.detector) else 1


def searches_on_gpu(detector):
    """Whether a score job searches on a GPU and asks for one: ``search.gpu`` and a k-NN detector."""
    return bool(config["search"]["gpu"]) and indexed(detector)


def needs_network(detector):
    return bool(detector_object(detector).needs_network)


# Jobs that only do arithmetic on cached arrays run inside the Snakemake process (config
# in_process): scoring with a detector that needs neither the network nor a faiss index, and fitting
# one without a faiss index (from the training arrays and the head's arrays, or from nothing). Same
# stage functions, same bytes, no process start-up.
IN_PROCESS = config["in_process"] in (True, "true")
if IN_PROCESS:
    # the in-process jobs compute with one BLAS thread, as the script jobs do (Snakemake gives those
    # OMP_NUM_THREADS=1): another thread count changes float sums in the last bit (Mahalanobis' scores)
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)


def scores_in_process(detector):
    from grood.detectors import scores_from_arrays

    return IN_PROCESS and shard_count("score") == 1 and scores_from_arrays(detector_object(detector))


def fits_in_process(detector):
    from grood.detectors import fits_from_arrays

    return IN_PROCESS and fits_from_arrays(detector_object(detector))


LOCAL_SCORES = [d for d in DETECTORS if scores_in_process(d)]
LOCAL_FITS = [d for d in DETECTORS if fits_in_process(d)]


def network_model(wc):
    """The checkpoint, for detectors that run the network at scoring time (ODIN); else nothing."""
    return [out("model", bench=wc.bench, seed=wc.seed)] if needs_network(wc.detector) else []


def network_data(wc):
    """The part's dataset, for detectors that run the network at scoring time (ODIN); else nothing."""
    return [dataset_npz(part_dataset(wc.bench, wc.part))] if needs_network(wc.detector) else []


# -------------------------------------------------------------------------------- data card

def datacard_datasets():
    """Datasets with a role: each benchmark's ID, OOD and auxiliary outlier sets, its validation sets
    when it tunes, and the ood_val prototype set."""
    names = [n for spec in BENCH.values() for n in (spec["id"], *spec["ood"], *grood.config.aux_sets(spec),
                                                     *([spec["id_val_dataset"]] if spec.get("id_val_dataset") else []),
                                                     *grood.config.ood_val_sets(spec))]
    if config["prototypes"]["ood_val_dataset"]:
        names.append(config["prototypes"]["ood_val_dataset"])
    return list(dict.fromkeys(names))


def datacard_outputs():
    return {kind: out(f"datacard_{kind}") for kind in ("md", "csv", "png")}


# -------------------------------------------------------------------------------------- tuning
# A swept detector (grood.evaluation.tuning): each grid point is a detector of its own (fit_detector,
# score), scored on the benchmark's validation parts only; `tune` (a checkpoint) chooses a point per
# seed, and only that point's test parts are scored, copied to the detector's own paths.


def val_parts(bench):
    """A tuned benchmark's validation parts: the ID-validation split, then its OOD-validation sets."""
    return [ID_VAL, *grood.config.ood_val_sets(BENCH[bench])]


def tune_table(wc):
    """Every validation score file a tune job reads, with its grid point and part (``path``)."""
    return [{"point": p, "part": part, "path": out("scores", bench=wc.bench, seed=wc.seed, detector=p, part=part)}
            for p in TUNED[wc.detector] for part in val_parts(wc.bench)]


def tuning_table(bench):
    """Every tuning.csv evaluate gathers, with its seed and detector (``path``)."""
    return [{"seed": seed, "detector": det, "path": out("tuning", bench=bench, seed=seed, detector=det)}
            for seed in SEEDS for det in TUNED]


def chosen_point(wc):
    """The grid point the seed's tune job chose (read once it has run: a checkpoint)."""
    from grood.stages.tune import chosen_point as read

    return read(checkpoints.tune.get(bench=wc.bench, seed=wc.seed, detector=wc.detector).output.csv)


def chosen(output):
    """An input function: ``output`` (detector, scores) of the chosen grid point."""

    def path(wc):
        values = dict(wc.items())
        values["detector"] = chosen_point(wc)
        return out(output, **values)

    return path
