"""The cost model of a config: every stage and every pass over the data, in GPU-hours, CPU
core-hours, disk and memory per job — for config/imagenet.yaml by default — and the same model held
against a real run on this machine.

    python -m benchmarks.costmodel [--config config/imagenet.yaml] [--json out.json] [--threads N]
    python -m benchmarks.costmodel --check RUN_DIR --config RUN_DIR/config.yaml   # predicted vs measured

Costs are measured **here** per image, per row and per vector (:func:`measure`, a few minutes on a
busy 2-core machine), then scaled to the config's sizes with a handful of **assumptions** that are
named, with their source, in the output: the GPU's datasheet throughput and the share of it real
kernels reach, memory a CUDA context or a decoding worker holds.  Every number says which it rests
on (M = measured here, A = assumption, C = the config), so a reader can redo the arithmetic with
their cluster's numbers (:func:`stage_costs` takes all three).

What the config decides is read from it (:func:`workload`): the sets and their roles, the network
(its FLOPs and the mix-up's early stage are counted on the network itself), ``n_mix``, every
detector (GROOD's exact and IVF indexes, kNN's k, ODIN's passes, Mahalanobis), the index-quality
sweep, threads, decoding workers and whether the k-NN searches run on a GPU.  Set sizes come from
the prepared datasets, or for ImageNet-1k from :data:`IMAGENET_SIZES` (OpenOOD v1.5's lists).
:func:`rule_memory` gives each rule's peak host memory — what ``profiles/slurm-imagenet`` asks for
(tests/unit/test_profiles.py holds the profile to it) — and :func:`cpu_predictions` the wall time of
each rule of a CPU-only run on this machine, which ``--check`` compares with a finished run's log.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
GB = 1e9

#: the sets of config/imagenet.yaml, by dataset name: OpenOOD v1.5's ImageNet-1k lists
IMAGENET_SIZES: dict[str, dict[str, int]] = {
    "imagenet": {"train": 1_281_167, "test": 45_000},  # train_imagenet.txt, test_imagenet.txt
    "ssb_hard": {"test": 49_000}, "ninco": {"test": 5_879},  # near
    "inaturalist": {"test": 10_000}, "textures": {"test": 5_160}, "openimage_o": {"test": 15_869},  # far
}

#: the index serialisation's copies (peak RSS beyond the interpreter, in index sizes), measured by
#: :func:`measure_index_copies` on a 200,000 × 512 flat index (410 MB) on 2026-12-02: the fit job holds
#: the index, faiss's growing byte buffer and its numpy copy; the score job the .npz entry, faiss's
#: reading buffer and the index
INDEX_COPIES = {"fit": 3.05, "score": 3.01}


# ------------------------------------------------------------------------------------ workload


@dataclass
class Workload:
    """What a config runs, at given set sizes (C: read from the config and its network)."""

    arch: str
    image: int  # network input side
    width: int  # D: penultimate feature width
    classes: int  # C
    forward_gflop: float  # per image, counted on the network
    early_layer: str | None  # the mix-up's stage (None: no mix-up)
    early_gflop: float  # per image, the stages up to early_layer
    early_values: int  # values of one image's activation after early_layer
    train: int
    test: int
    ood: dict[str, int]
    n_mix: int
    detectors: dict[str, dict]  # name -> {method, k, index, ...}
    iq_sample: int
    iq_nprobe: list[int]
    threads: int
    workers: int
    seeds: int
    search_gpu: bool
    device: str

    @property
    def queries(self) -> int:
        """Rows scored per detector and seed: the ID test split and every OOD set."""
        return self.test + sum(self.ood.values())

    @property
    def images(self) -> int:
        return self.train + self.queries

    def knn(self) -> list[tuple[str, dict]]:
        return [(n, d) for n, d in self.detectors.items() if d["method"] in ("grood", "knn")]

    def gradient_spaces(self) -> int:
        spaces = {(d.get("prototype", "mixup"), d.get("wrt", "ood"), float(d.get("temperature", 1.0)))
                  for d in self.detectors.values() if d["method"].startswith("grood")}
        return len(spaces)


def network_of(config: dict, bench: str) -> str:
    """The torchvision architecture of a benchmark's adopted network (``pretrained``/``checkpoint``)."""
    train = config["benchmarks"][bench]["train"]
    if "pretrained" in train:
        return train["pretrained"].split("/", 1)[1].split(":")[0]
    return train.get("arch", "resnet50")


def count_network(arch: str, classes: int, layer: str | None, image: int = 224) -> dict:
    """FLOPs per image of the whole forward pass and of the stages up to ``layer``, the feature width
    and the size of the activation after ``layer``, counted on the randomly initialised network."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from grood.net.models import torchvision_net

    with torch.device("meta"):  # shapes only: no weights to initialise, nothing computed
        model = torchvision_net(arch, classes).eval()
        x = torch.zeros(1, 3, image, image)
    with torch.no_grad():
        with FlopCounterMode(display=False) as whole:
            h = model.features(x)
        early, values = 0.0, 0
        if layer:
            with FlopCounterMode(display=False) as part:
                e = model.forward_to(x, layer)
            early, values = part.get_total_flops() / 1e9, int(e[0].numel())
    return {"forward_gflop": whole.get_total_flops() / 1e9, "early_gflop": early, "early_values": values,
            "width": int(h.shape[1])}


#: :func:`count_network` of torchvision's ResNet-50 (1,000 classes) with the mix-up at layer1
RESNET50_LAYER1 = {"forward_gflop": 8.174272512, "early_gflop": 1.571913728, "early_values": 802_816, "width": 2048}


def workload(config: dict, sizes: dict[str, dict[str, int]], bench: str | None = None,
             network: dict | None = None) -> Workload:
    """The :class:`Workload` of ``config``'s benchmark ``bench`` (default: its only one) with the
    datasets' ``sizes`` ({dataset: {split: rows}}); ``network``: :func:`count_network`'s answer when
    known (else it is counted)."""
    import grood.config

    bench = bench or next(iter(config["benchmarks"]))
    spec = config["benchmarks"][bench]
    detectors = dict(config["detectors"])
    if "suite" in detectors:
        grood.config.expand_suites(config, grood.config.load_suites(REPO / "config" / "suites.yaml"))
        detectors = dict(config["detectors"])
    mixup = any(d.get("method", "").startswith("grood") and d.get("prototype", "mixup") == "mixup"
                for d in detectors.values())
    layer = config.get("prototypes", {}).get("layer", "layer1") if mixup else None
    id_sizes = sizes[spec["id"]]
    classes = int(sizes.get("_classes", 1000))
    arch = network_of(config, bench)
    net = network or count_network(arch, classes, layer)
    iq = config.get("index_quality") or {}
    return Workload(
        arch=arch, image=224, width=net["width"], classes=classes, forward_gflop=net["forward_gflop"],
        early_layer=layer, early_gflop=net["early_gflop"], early_values=net["early_values"],
        train=int(id_sizes["train"]), test=int(id_sizes["test"]),
        ood={name: int(sizes[name]["test"]) for name in spec["ood"]},
        n_mix=int(config.get("prototypes", {}).get("n_mix", 2000)) if mixup else 0,
        detectors=detectors, iq_sample=int(iq.get("sample", 1000)), iq_nprobe=list(iq.get("nprobe", [])),
        threads=int(config.get("threads", 2)), workers=int((config.get("loader") or {}).get("workers", 0)),
        seeds=len(config.get("seeds", [0])), search_gpu=bool((config.get("search") or {}).get("gpu", False)),
        device=str(config.get("device", "auto")))


def imagenet_workload(config_path: Path = REPO / "config" / "imagenet.yaml", counted: bool = False) -> Workload:
    """config/imagenet.yaml at OpenOOD v1.5's sizes; ``counted``: count the network's FLOPs again
    instead of :data:`RESNET50_LAYER1`."""
    import yaml

    config = yaml.safe_load(Path(config_path).read_text())
    return workload(config, {**IMAGENET_SIZES, "_classes": 1000}, network=None if counted else RESNET50_LAYER1)


# ------------------------------------------------------------------------------------ measuring


@dataclass
class Measured:
    """Per-unit costs measured on this machine's CPU (M); see :func:`measure`."""

    threads: int
    load_average: float  # 1-minute load average when the measurement started (a shared machine)
    decode_s_per_image: float  # CPU s: JPEG 500×375 → shorter side 256, centre crop 224, normalised tensor (grood's loader)
    jpeg_kb: float
    forward_s_per_image: float  # wall s per image of the network's fp32 forward on `threads` threads (batch 8)
    forward_s_per_image_1: float  # the same on 1 thread
    early_s_per_image: float  # wall s per image of the stages up to the early layer, `threads` threads
    forward_rss_gb: float  # peak RSS of a fresh process running that forward pass
    gemm_gflops: float  # float32 GEMM on `threads` threads
    flat_search_fraction: float  # exact faiss search / a GEMM of the same shapes, at width D
    rerank_ns_per_value: float  # the canonical float64 re-ranking, per (query, candidate, dimension), 1 thread
    gradients_s_per_row: float  # closed-form GROOD gradients streamed to Zarr, at D and C (a child process)
    gradients_rss_gb: float
    mahalanobis_s_per_row: float  # the float64 scatter at D
    zarr_read_gb_s: float  # reading a store block by block (page cache: an upper bound)
    zarr_bytes_per_row: dict = field(default_factory=dict)  # features / gradients stores, on disk
    index_copies: dict = field(default_factory=lambda: dict(INDEX_COPIES))
    stat_s_per_file: float = 5e-6  # os.stat of one listed image (local disk; a parallel file system is slower)
    when: str = ""


@dataclass
class Assumptions:
    """What a CPU-only machine cannot measure, with the source of each number (A)."""

    gpu: str = "NVIDIA A100 (40 GB)"
    gpu_fp32_tflops: float = 19.5
    conv_efficiency: float = 0.5
    search_efficiency: float = 0.7
    ivf_efficiency: float = 0.3
    gpu_memory_gb: float = 40.0
    index_correct_share: float = 1.0
    kmeans_iterations: int = 25
    odin_forward_equivalents: float = 4.0
    cuda_context_gb: float = 2.5
    worker_gb: float = 0.6
    sources: dict = field(default_factory=lambda: {
        "gpu_fp32_tflops": "NVIDIA A100 datasheet: FP32 19.5 TFLOPS (non-tensor; TF32 is off in grood's scoring passes)",
        "conv_efficiency": "assumption: cuDNN fp32 convolutions reach about half of peak",
        "search_efficiency": "assumption: faiss's GPU flat search (cuBLAS SGEMM + k-selection) reaches 70% of peak",
        "ivf_efficiency": "assumption: faiss's GPU IVF-Flat reaches 30% of the flat search's rate per visited "
                          "vector (ours on the CPU: 31%, benchmarks.bench case 8)",
        "gpu_memory_gb": "NVIDIA A100 datasheet: 40 or 80 GB",
        "index_correct_share": "upper bound: every training row in GROOD's index (it keeps the correctly classified)",
        "kmeans_iterations": "faiss's default k-means iterations (grood does not change them)",
        "odin_forward_equivalents": "ODIN: a forward pass, its backward to the input (≈ 2 forwards), the perturbed forward",
        "cuda_context_gb": "assumption: host memory of a process holding a CUDA context and cuDNN",
        "worker_gb": "assumption: host memory of one decoding worker (torch + PIL + one batch)",
    })


def _time(fn, repeats: int = 3) -> float:
    """Seconds of ``fn`` after a warm-up: the fastest of ``repeats`` runs — on a shared machine the one
    other jobs disturbed least, i.e. the cost on a free core."""
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.min(times))


def measure_forward(arch: str, classes: int, layer: str | None, threads: int, batch: int = 8) -> tuple:
    """(wall s/image on ``threads``, on 1 thread, wall s/image of the early stages) of the network."""
    import torch

    from grood.net.models import torchvision_net

    model = torchvision_net(arch, classes).eval()
    x = torch.randn(batch, 3, 224, 224)
    before = torch.get_num_threads()
    out = []
    with torch.no_grad():
        for t in (threads, 1):
            torch.set_num_threads(t)
            out.append(_time(lambda: model(x), repeats=2) / batch)
        torch.set_num_threads(threads)
        early = _time(lambda: model.forward_to(x, layer), repeats=2) / batch if layer else 0.0
    torch.set_num_threads(before)
    return out[0], out[1], early


def measure_decode(n: int = 48) -> tuple[float, float]:
    """(CPU s per image, mean JPEG KB) through grood's own loader, in the calling process."""
    from benchmarks.throughput import decode_rate, write_jpegs

    with tempfile.TemporaryDirectory() as tmp:
        paths = write_jpegs(Path(tmp) / "jpegs", n)
        kb = float(np.mean([p.stat().st_size for p in paths]) / 1024)
        _, cpu = decode_rate(paths, workers=0, batch_size=16, repeats=2)
    return cpu, kb


def measure_gemm(d: int, n: int = 1024) -> float:
    a = np.random.default_rng(0).standard_normal((n, d), dtype=np.float32)
    b = np.random.default_rng(1).standard_normal((4 * n, d), dtype=np.float32)
    return 2.0 * n * 4 * n * d / _time(lambda: a @ b.T) / 1e9


def measure_flat_search(d: int, n: int = 20_000, nq: int = 512) -> float:
    """faiss's exact search (the candidates of grood's canonical search) / a numpy GEMM, same shapes."""
    from benchmarks.bench_scale import gemm_floor
    from grood.search import build_index, search

    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, d), dtype=np.float32)
    q = rng.standard_normal((nq, d), dtype=np.float32)
    index = build_index(x)
    return _time(lambda: gemm_floor(q, x), repeats=2) / _time(lambda: search(index, q, 1, use_gpu=False), repeats=2)


def measure_rerank(d: int, nq: int = 256, cand: int = 64) -> float:
    """ns per (query, candidate, dimension) of :func:`grood.search.exact.canonical_distances`, 1 thread."""
    from grood.search.exact import canonical_distances

    rng = np.random.default_rng(0)
    x = rng.standard_normal((20_000, d), dtype=np.float32)
    q = rng.standard_normal((nq, d), dtype=np.float32)
    ids = rng.integers(0, len(x), (nq, cand))
    return _time(lambda: canonical_distances(q, x, ids, threads=1), repeats=2) / (nq * cand * d) * 1e9


def measure_gradients(workdir: Path, d: int, c: int, rows: int = 8192) -> tuple[float, float]:
    from benchmarks.bench_scale import run_child, write_feature_store

    store = workdir / "features.zarr"
    write_feature_store(store, rows, d, c, seed=0)
    r = run_child("gradients", features=str(store), prototypes=str(store.with_suffix(".protos.npz")),
                  out=str(workdir / "gradients.zarr"), streamed=True, batch_size=4096)
    return r["seconds"] / rows, r["peak_rss"] / 2**30


def measure_mahalanobis(d: int, rows: int = 4096) -> float:
    h = np.random.default_rng(0).standard_normal((rows, d))
    return _time(lambda: h.T @ h, repeats=2) * 2 / rows  # two streamed passes; the scatter dominates


def measure_zarr(workdir: Path, d: int, c: int, rows: int = 4096) -> tuple[dict, float]:
    """(bytes per row on disk of a feature and a gradient store, GB/s reading one block by block)."""
    from grood.storage import write_zarr
    from grood.storage.chunks import iter_blocks, open_array

    rng = np.random.default_rng(0)
    kinds = {"features": {"features": np.abs(rng.standard_normal((rows, d), dtype=np.float32)),
                          "logits": rng.standard_normal((rows, c), dtype=np.float32), "labels": rng.integers(0, c, rows)},
             "gradients": {"gradients": rng.standard_normal((rows, d), dtype=np.float32),
                           "proto_dist": rng.random(rows, dtype=np.float32), "pi_ood": rng.random(rows, dtype=np.float32)}}
    out = {}
    for name, arrays in kinds.items():
        path = workdir / f"{name}.zarr"
        write_zarr(path, arrays, chunk_rows=1024)
        out[name] = sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / rows
    grads = open_array(workdir / "gradients.zarr", "gradients")
    seconds = _time(lambda: [b.sum() for _, b in iter_blocks(grads, 1024)], repeats=2)
    return out, grads.nbytes / seconds / GB


def measure_index_copies(workdir: Path, n: int = 200_000, d: int = 512) -> dict:
    """Peak RSS of the fit_detector and score stages beyond the interpreter, in units of the flat
    index they hold (a kNN detector over ``n`` × ``d`` float32), each in a fresh process."""
    from benchmarks.bench_scale import run_child, write_feature_store

    write_feature_store(workdir / "train.zarr", n, d, 100, seed=0)
    write_feature_store(workdir / "q.zarr", 4096, d, 100, seed=1)
    base = run_child("baseline")["peak_rss"]
    fit = run_child("fit_detector", method="knn", params={"k": 50}, stores=[str(workdir / "train.zarr")],
                    out=str(workdir / "det.npz"))["peak_rss"]
    score = run_child("score", detector=str(workdir / "det.npz"), stores=[str(workdir / "q.zarr")],
                      out=str(workdir / "s.npy"), threads=1)["peak_rss"]
    index = n * d * 4
    return {"fit": round((fit - base) / index, 2), "score": round((score - base) / index, 2),
            "baseline_gb": round(base / 2**30, 3), "n": n, "d": d}


def measure_stat(n: int = 2000) -> float:
    """Seconds per ``os.stat`` of a file (preparing a list checks every listed image once)."""
    with tempfile.TemporaryDirectory() as tmp:
        paths = [os.path.join(tmp, f"{i}.jpg") for i in range(n)]
        for p in paths:
            open(p, "wb").close()
        return _time(lambda: [os.stat(p) for p in paths], repeats=2) / n


def _forward_rss(arch: str) -> float:
    import subprocess

    code = (f"import torch; from grood.net.models import torchvision_net; m = torchvision_net({arch!r}).eval()\n"
            "with torch.no_grad(): m(torch.randn(8, 3, 224, 224))\n"
            "from benchmarks.bench_scale import peak_rss_bytes; print(peak_rss_bytes())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO,
                         env={**os.environ, "PYTHONPATH": str(REPO)})
    return int(out.stdout.strip().splitlines()[-1]) / 2**30


def measure(w: Workload, echo=lambda s: None, index_copies: bool = False) -> Measured:
    """Every unit cost of ``w``'s network and widths (a few minutes in all on 2 busy cores);
    ``index_copies``: re-measure the serialisation copies (another minute or two) instead of
    :data:`INDEX_COPIES`."""
    import torch

    threads = torch.get_num_threads()
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="grood-costmodel-") as tmp:
        tmp = Path(tmp)

        def step(what, fn, *args):
            t0 = time.perf_counter()
            out = fn(*args)
            echo(f"{what}: {time.perf_counter() - t0:.0f} s")
            return out

        fwd, fwd1, early = step(f"{w.arch} forward on the CPU", measure_forward, w.arch, w.classes, w.early_layer, threads)
        rss = step("its peak RSS (child process)", _forward_rss, w.arch)
        decode, kb = step("JPEG decode through grood's loader", measure_decode)
        gemm = step("float32 GEMM", measure_gemm, w.width)
        fraction = step(f"exact search vs GEMM at D={w.width}", measure_flat_search, w.width)
        rerank = step("canonical re-ranking", measure_rerank, w.width)
        grad_s, grad_rss = step(f"GROOD gradients at D={w.width}, C={w.classes} (child)", measure_gradients, tmp,
                                w.width, w.classes)
        maha = step("Mahalanobis scatter", measure_mahalanobis, w.width)
        zbytes, read = step("Zarr bytes per row and read speed", measure_zarr, tmp, w.width, w.classes)
        copies = step("index serialisation copies (children)", measure_index_copies, tmp) if index_copies \
            else dict(INDEX_COPIES)
        stat = step("stat per listed file", measure_stat)
    return Measured(threads, round(load, 2), decode, kb, fwd, fwd1, early, rss, gemm, fraction, rerank, grad_s,
                    grad_rss, maha, read, zbytes, copies, stat, datetime.now().isoformat(timespec="minutes"))


# ------------------------------------------------------------------------------------- the model


@dataclass
class StageCost:
    stage: str
    rule: str
    runs_on: str
    jobs: int
    gpu_hours: float
    cpu_core_hours: float
    wall_hours: float  # of the longest job, on its own resources
    disk_gb: float
    host_gb: float  # peak host memory of one job
    gpu_gb: float  # peak GPU memory of one job
    basis: str


def _margin(k: int) -> int:
    from grood.search.exact import default_margin

    return default_margin(k)


def stage_costs(w: Workload, m: Measured, a: Assumptions) -> list[StageCost]:
    """Every stage and pass of one seed of ``w`` on GPU nodes (the network and the k-NN searches on the
    GPU when the config says so), from measured unit costs and assumptions."""
    gpu = a.gpu_fp32_tflops * 1e12
    fwd_gpu = w.forward_gflop * 1e9 / (gpu * a.conv_efficiency)  # s per image
    early_gpu = w.early_gflop * 1e9 / (gpu * a.conv_efficiency)
    dec = m.decode_s_per_image
    d, c = w.width, w.classes
    workers = max(1, w.workers)
    net_host = a.cuda_context_gb + m.forward_rss_gb + w.workers * a.worker_gb
    q_gb = c * w.early_values * 4 / GB  # Q, float32
    feat_row, grad_row = m.zarr_bytes_per_row["features"], m.zarr_bytes_per_row["gradients"]
    base = m.index_copies.get("baseline_gb", 0.3)
    rows = []

    def network(stage, rule, n, gpu_s, host, gpu_gb, disk, basis, jobs=1):
        wall = max(n * gpu_s, n * dec / workers)
        rows.append(StageCost(stage, rule, "GPU + decode workers", jobs, n * gpu_s / 3600, n * dec / 3600,
                              wall / 3600, disk, host, gpu_gb, basis))

    n_listed = w.images
    rows.append(StageCost(f"prepare_dataset: {1 + len(w.ood)} image lists ({n_listed:,} files)", "prepare_dataset",
                          "CPU", 1 + len(w.ood), 0.0, n_listed * m.stat_s_per_file / 3600,
                          w.train * m.stat_s_per_file / 3600, n_listed * 100 / GB, 1.0 + w.train * 200 / GB, 0.0,
                          f"M: {m.stat_s_per_file * 1e6:.0f} µs per stat (local disk; a parallel file system is "
                          f"slower); the list: ≈ 100 B per file"))
    bound = "decode-bound" if dec / workers > fwd_gpu + early_gpu else "GPU-bound"
    network(f"features: ID train ({w.train:,}), one pass: features + Q", "features", w.train, fwd_gpu + early_gpu,
            net_host + q_gb, 2 * q_gb + 2.0, w.train * feat_row / GB + q_gb,
            f"M: decode {dec * 1e3:.1f} ms/image/core ({workers} workers: {bound}); C: {w.arch} {w.forward_gflop:.2f} "
            f"GFLOP/image + {w.early_gflop:.2f} for Q's early stages again on a contiguous copy (bit-equal to the former "
            f"second pass); Q = {c}×{w.early_values:,} float32 = {q_gb:.1f} GB (sums in float64 on the GPU: "
            f"{2 * q_gb:.1f} GB)")
    network(f"features: ID test + OOD sets ({w.queries:,})", "features", w.queries, fwd_gpu, net_host, 2.0,
            w.queries * feat_row / GB, f"{1 + len(w.ood)} jobs; the same per-image costs without Q", jobs=1 + len(w.ood))
    network(f"train (adopt: test accuracy, {w.test:,} images)", "train", w.test, fwd_gpu, net_host, 2.0, 0.0,
            "a forward pass over the ID test split for the network's accuracy (a pass of its own)")
    mix_gpu = early_gpu + 2 * (fwd_gpu - early_gpu)
    p_read = w.train * (d + c) * 4 / GB / m.zarr_read_gb_s / 3600
    if w.n_mix:
        rows.append(StageCost(f"prototypes: P + mix-up ({w.n_mix:,} images)", "prototypes", "GPU + decode workers", 1,
                              w.n_mix * mix_gpu / 3600, (w.n_mix * dec) / 3600 + p_read,
                              max(w.n_mix * mix_gpu, w.n_mix * dec / workers) / 3600 + p_read, 0.0,
                              net_host + q_gb, q_gb + 2.0,
                              f"P: one streamed read of the train features (M {m.zarr_read_gb_s:.1f} GB/s); mix-up: "
                              f"early stages + 2 × the rest per image; Q read whole ({q_gb:.1f} GB), on the GPU too"))
    spaces = w.gradient_spaces()
    if spaces:
        rows.append(StageCost(f"gradients (closed form, streamed), {spaces} space(s)", "gradients", "CPU",
                              spaces * (2 + len(w.ood)), 0.0, spaces * w.images * m.gradients_s_per_row * m.threads / 3600,
                              w.train * m.gradients_s_per_row / 3600, spaces * w.images * grad_row / GB,
                              m.gradients_rss_gb, 0.0,
                              f"M: {m.gradients_s_per_row * 1e6:.0f} µs/row on {m.threads} threads, "
                              f"{m.gradients_rss_gb:.2f} GB at any N, {grad_row:,.0f} B/row"))
    gemm_core = m.gemm_gflops * 1e9 / m.threads
    for name, det in w.knn():
        method, k = det["method"], int(det.get("k", 1 if det["method"] == "grood" else 50))
        index = det.get("index") or {"kind": "flat"}
        n_idx = int(w.train * (a.index_correct_share if method == "grood" else 1.0))
        vec_gb = n_idx * d * 4 / GB
        fit_host = base + m.index_copies["fit"] * vec_gb
        if index["kind"] == "flat":
            rows.append(StageCost(f"fit: {name} flat index", "fit_detector", "CPU", 1, 0.0,
                                  vec_gb / m.zarr_read_gb_s / 3600, vec_gb / m.zarr_read_gb_s / 3600, vec_gb,
                                  fit_host, 0.0,
                                  f"{n_idx:,} × {d} float32 = {vec_gb:.1f} GB (A: share indexed "
                                  f"{a.index_correct_share if method == 'grood' else 1.0}); M: × {m.index_copies['fit']} "
                                  f"while it is serialised"))
        else:
            nlist = min(int(index.get("nlist", 1024)), max(1, n_idx // 39))
            train_rows = min(n_idx, int(index.get("train_size") or 64 * nlist))
            km = a.kmeans_iterations * train_rows * nlist * d * 2 + n_idx * nlist * d * 2
            rows.append(StageCost(f"fit: {name} {index['kind']} (nlist {nlist:,}, k-means on {train_rows:,} rows)",
                                  "fit_detector", "CPU", 1, 0.0, km / gemm_core / 3600, km / m.gemm_gflops / 1e9 / 3600,
                                  vec_gb, fit_host + train_rows * d * 4 / GB, 0.0,
                                  f"k-means {a.kmeans_iterations} iterations (A) + assigning every row, at the GEMM "
                                  f"rate (M {m.gemm_gflops:.0f} GFLOP/s on {m.threads} threads)"))
        kk = k + _margin(k)
        pairs = w.queries * n_idx
        rerank_core_s = w.queries * kk * d * m.rerank_ns_per_value * 1e-9
        score_host = base + m.index_copies["score"] * vec_gb + w.queries * k * 16 / GB
        if index["kind"] == "flat":
            flop = pairs * 2 * d
            where = "GPU" if w.search_gpu else "CPU"
            gpu_h = flop / (gpu * a.search_efficiency) / 3600 if w.search_gpu else 0.0
            cpu_search = 0.0 if w.search_gpu else flop / (gemm_core * m.flat_search_fraction)
            rows.append(StageCost(f"score: {name} exact, k={k} ({kk} candidates re-ranked)", "score", where,
                                  1 + len(w.ood), gpu_h, (cpu_search + rerank_core_s) / 3600,
                                  (gpu_h * 3600 + (cpu_search + rerank_core_s) / w.threads) / (1 + len(w.ood)) / 3600,
                                  w.queries * 8 / GB, score_host, vec_gb if w.search_gpu else 0.0,
                                  f"{pairs:.2e} query×vector pairs ({flop:.1e} FLOP); re-ranking M "
                                  f"{m.rerank_ns_per_value:.2f} ns/value on the job's {w.threads} threads; memory: the "
                                  f"index × {m.index_copies['score']} (M) while it is read back"))
        else:
            nlist = min(int(index.get("nlist", 1024)), max(1, n_idx // 39))
            nprobe = min(int(index.get("nprobe", 4)), nlist)
            flop = w.queries * (nlist + n_idx * nprobe / nlist) * 2 * d
            gpu_h = flop / (gpu * a.search_efficiency * a.ivf_efficiency) / 3600 if w.search_gpu else 0.0
            cpu_s = 0.0 if w.search_gpu else flop / (gemm_core * m.flat_search_fraction * a.ivf_efficiency)
            rows.append(StageCost(f"score: {name} {index['kind']} (nprobe {nprobe} of {nlist:,})", "score",
                                  "GPU" if w.search_gpu else "CPU", 1 + len(w.ood), gpu_h, cpu_s / 3600,
                                  gpu_h + cpu_s / w.threads / 3600, w.queries * 8 / GB, score_host,
                                  vec_gb if w.search_gpu else 0.0,
                                  f"visits nprobe/nlist = {nprobe / nlist:.1%} of the vectors; A: IVF efficiency"))
            n_q = 2 * w.iq_sample * len(w.ood)
            exact = n_q * n_idx * 2 * d / (gemm_core * m.flat_search_fraction)
            sweep = len(w.iq_nprobe) * n_q * (nlist + n_idx * max(w.iq_nprobe or [1]) / nlist) * 2 * d / (
                gemm_core * m.flat_search_fraction * a.ivf_efficiency)
            rows.append(StageCost(f"index_quality: {name} ({n_q:,} queries exact, nprobe sweep {w.iq_nprobe})",
                                  "index_quality", "CPU", 1, 0.0, (exact + sweep) / 3600,
                                  (exact + sweep) / w.threads / 3600, 0.0,
                                  base + m.index_copies["score"] * vec_gb + 0.3, 0.0,
                                  "exact side streamed over the training store (CPU, the job's threads); "
                                  "sweep bounded by its largest nprobe"))
    if any(det["method"] == "mahalanobis" for det in w.detectors.values()):
        rows.append(StageCost("fit: mahalanobis (streamed covariance)", "fit_detector", "CPU", 1, 0.0,
                              w.train * m.mahalanobis_s_per_row * m.threads / 3600,
                              w.train * m.mahalanobis_s_per_row / 3600, 0.0, base + 3 * d * d * 8 / GB + 0.2, 0.0,
                              f"M: {m.mahalanobis_s_per_row * 1e6:.0f} µs/row, two float64 passes"))
    rows.append(StageCost(f"score: the other {len(w.detectors) - len(w.knn())} detectors (logits, features; "
                          f"ODIN below)", "score", "CPU", (len(w.detectors) - len(w.knn())) * (1 + len(w.ood)), 0.0,
                          (len(w.detectors) - len(w.knn())) * w.queries * (d + c) * 4 / GB / m.zarr_read_gb_s / 3600,
                          0.0, w.queries * 8 * len(w.detectors) / GB, 1.0 + w.test * (d + c) * 4 / GB, 0.0,
                          "each reads its part's arrays once"))
    rows.append(StageCost("evaluate, figures, datacard", "evaluate", "CPU", 4, 0.0, 0.1, 0.05, 0.1,
                          1.0 + 8 * len(w.detectors) * w.queries * 8 / GB, 0.0,
                          "every score file once; figures sample 2,000 rows per set"))
    if any(det["method"] == "odin" for det in w.detectors.values()):
        odin_gpu = a.odin_forward_equivalents * fwd_gpu
        network(f"score: odin ({w.queries:,} images, forward + backward + forward)", "score", w.queries, odin_gpu,
                net_host, 4.0, w.queries * 8 / GB, f"A: {a.odin_forward_equivalents} forward passes per image",
                jobs=1 + len(w.ood))
    return rows


def total(rows: list[StageCost]) -> dict:
    """GPU-hours, CPU core-hours and disk of one seed (every row: the IVF detector runs beside the exact)."""
    return {"gpu_hours": sum(r.gpu_hours for r in rows), "cpu_core_hours": sum(r.cpu_core_hours for r in rows),
            "disk_gb": sum(r.disk_gb for r in rows)}


def rule_memory(rows: list[StageCost], headroom: float = 1.2) -> dict[str, dict]:
    """Per rule: the largest job's host memory (GB) and the mem_mb to ask for (× ``headroom``, rounded
    up to 4 GB)."""
    out: dict[str, dict] = {}
    for r in rows:
        cur = out.setdefault(r.rule, {"host_gb": 0.0, "from": ""})
        if r.host_gb > cur["host_gb"]:
            cur.update(host_gb=r.host_gb, **{"from": r.stage})
    for cur in out.values():
        cur["mem_mb"] = int(np.ceil(cur["host_gb"] * headroom / 4) * 4000)
    return out


# ------------------------------------------------------------------------------ a CPU run here


def cpu_predictions(w: Workload, m: Measured, grood_share: float = 1.0) -> dict[str, float]:
    """Wall seconds per rule (summed over its jobs) of a CPU-only run of ``w`` on this machine, jobs
    one after another, decoding in the job's process (``loader.workers: 0``); ``grood_share``: the
    share of training rows GROOD indexes (the correctly classified)."""
    dec, d, c = m.decode_s_per_image, w.width, w.classes
    fwd_t, fwd_1, early = m.forward_s_per_image, m.forward_s_per_image_1, m.early_s_per_image
    gemm_core = m.gemm_gflops * 1e9 / m.threads
    gemm_t = gemm_core * min(w.threads, m.threads)
    pred = {"features": w.train * (dec + fwd_t + (early if w.early_layer else 0.0)) + w.queries * (dec + fwd_1),
            "train": w.test * (dec + fwd_t)}
    if w.n_mix:
        share = w.early_gflop / w.forward_gflop
        pred["prototypes"] = (w.n_mix * (dec + fwd_t * (share + 2 * (1 - share)))
                              + w.train * (d + c) * 4 / GB / m.zarr_read_gb_s)
    pred["gradients"] = w.gradient_spaces() * w.images * m.gradients_s_per_row
    fit = score = iq = 0.0
    for _, det in w.knn():
        k = int(det.get("k", 1 if det["method"] == "grood" else 50))
        index = det.get("index") or {"kind": "flat"}
        n_idx = max(1, int(w.train * (grood_share if det["method"] == "grood" else 1.0)))
        fit += n_idx * d * 4 / GB / m.zarr_read_gb_s
        rerank = w.queries * (k + _margin(k)) * d * m.rerank_ns_per_value * 1e-9 / min(w.threads, m.threads)
        if index["kind"] == "flat":
            score += w.queries * n_idx * 2 * d / (gemm_t * m.flat_search_fraction) + rerank
        else:
            nlist = min(int(index.get("nlist", 1024)), max(1, n_idx // 39))
            nprobe = min(int(index.get("nprobe", 4)), nlist)
            rows = min(n_idx, int(index.get("train_size") or 64 * nlist))
            fit += (25 * rows * nlist * d * 2 + n_idx * nlist * d * 2) / m.gemm_gflops / 1e9
            score += w.queries * (nlist + n_idx * nprobe / nlist) * 2 * d / (gemm_core * m.flat_search_fraction * 0.31)
            n_q = 2 * w.iq_sample * len(w.ood)
            iq += n_q * n_idx * 2 * d / (gemm_t * m.flat_search_fraction)
            iq += sum(n_q * (nlist + n_idx * p / nlist) * 2 * d for p in w.iq_nprobe) / (
                gemm_core * m.flat_search_fraction * 0.31)
    if any(det["method"] == "mahalanobis" for det in w.detectors.values()):
        fit += w.train * m.mahalanobis_s_per_row
    if any(det["method"] == "odin" for det in w.detectors.values()):
        score += w.queries * (dec + 4.0 * fwd_1)
    pred["fit_detector"], pred["score"] = fit, score
    if iq:
        pred["index_quality"] = iq
    return pred


def measured_rules(run_dir: Path) -> dict[str, dict]:
    """Per rule of a finished local run: jobs, wall seconds summed over them (start to finish in
    Snakemake's newest log) and the run's span."""
    logs = sorted((Path(run_dir) / ".snakemake" / "log").glob("*.snakemake.log"))
    if not logs:
        raise FileNotFoundError(f"{run_dir} has no .snakemake/log/*.snakemake.log: not a finished local run")
    text = logs[-1].read_text()
    stamp = r"\[(\w{3} \w{3} +\d+ \d\d:\d\d:\d\d \d{4})\]"
    starts, rules, out = {}, {}, {}
    first = last = None
    for m in re.finditer(stamp + r"\n(?:local)?rule (\w+):.*?jobid: (\d+)", text, re.S):
        t = datetime.strptime(m.group(1), "%a %b %d %H:%M:%S %Y")
        starts[m.group(3)], rules[m.group(3)] = t, m.group(2)
        first = t if first is None else min(first, t)
    for m in re.finditer(stamp + r"\nFinished jobid: (\d+) \(Rule: (\w+)\)", text):
        t = datetime.strptime(m.group(1), "%a %b %d %H:%M:%S %Y")
        job = m.group(2)
        if job in starts:
            cur = out.setdefault(rules[job], {"jobs": 0, "seconds": 0.0})
            cur["jobs"] += 1
            cur["seconds"] += (t - starts[job]).total_seconds()
            last = t if last is None else max(last, t)
    out["_span"] = {"seconds": (last - first).total_seconds() if first and last else 0.0}
    return out


# ------------------------------------------------------------------------------------- output


def format_costs(rows: list[StageCost], m: Measured, a: Assumptions, w: Workload) -> str:
    from tabulate import tabulate

    table = [[r.stage, r.runs_on, r.jobs, f"{r.gpu_hours:,.2f}", f"{r.cpu_core_hours:,.1f}", f"{r.wall_hours:,.2f}",
              f"{r.disk_gb:,.1f}", f"{r.host_gb:,.1f}", f"{r.gpu_gb:,.1f}"] for r in rows]
    t = total(rows)
    table.append(["total (one seed)", "", sum(r.jobs for r in rows), f"{t['gpu_hours']:,.2f}",
                  f"{t['cpu_core_hours']:,.1f}", "", f"{t['disk_gb']:,.1f}", "", ""])
    out = [tabulate(table, headers=["stage", "runs on", "jobs", "GPU-h", "CPU core-h", "wall h", "disk GB",
                                    "host GB", "GPU GB"], tablefmt="github", disable_numparse=True), "",
           "Basis (M measured here, A assumption, C the config):"]
    out += [f"  {r.stage}: {r.basis}" for r in rows]
    mem = rule_memory(rows)
    out += ["", "Host memory per rule (the largest job; mem_mb = × 1.2, rounded up to 4 GB):"]
    out += [f"  {rule}: {v['host_gb']:.1f} GB ({v['from']}) → mem_mb {v['mem_mb']}" for rule, v in mem.items()]
    out += ["", f"Measured here ({m.when}, load average {m.load_average}):"]
    out += [f"  {k} = {v}" for k, v in asdict(m).items() if k not in ("when", "load_average")]
    out += ["", f"Assumptions ({a.gpu}):"]
    out += [f"  {k} = {getattr(a, k)} — {src}" for k, src in a.sources.items()]
    return "\n".join(out)


def format_check(pred: dict[str, float], meas: dict[str, dict]) -> str:
    from tabulate import tabulate

    rows = []
    for rule in sorted(set(pred) | {r for r in meas if not r.startswith("_")}):
        p, got = pred.get(rule), meas.get(rule, {})
        s = got.get("seconds")
        rows.append([rule, got.get("jobs", 0), f"{p:,.0f}" if p is not None else "–", f"{s:,.0f}" if s else "–",
                     f"{s / p:.2f}" if p and s else "–"])
    rows.append(["all rules (sum)", "", f"{sum(pred.values()):,.0f}",
                 f"{sum(v['seconds'] for k, v in meas.items() if not k.startswith('_')):,.0f}", ""])
    return tabulate(rows, headers=["rule", "jobs", "predicted s", "measured s", "measured / predicted"],
                    tablefmt="github", disable_numparse=True)


def main(argv: list[str] | None = None) -> int:
    import yaml

    ap = argparse.ArgumentParser(prog="python -m benchmarks.costmodel", description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", default=str(REPO / "config" / "imagenet.yaml"))
    ap.add_argument("--check", metavar="RUN_DIR", help="a finished local CPU run of --config: predicted vs measured")
    ap.add_argument("--json", metavar="OUT.json", help="also write the measurements, assumptions and tables")
    ap.add_argument("--threads", type=int, default=None, help="cap torch, faiss and BLAS threads")
    ap.add_argument("--index-copies", action="store_true", help="re-measure the index serialisation copies")
    args = ap.parse_args(argv)
    if args.threads is not None:
        if args.threads < 1:
            ap.error(f"--threads must be ≥ 1, got {args.threads}")
        import torch
        from threadpoolctl import threadpool_limits

        from grood.search.vectors import faiss

        threadpool_limits(args.threads)
        torch.set_num_threads(args.threads)
        faiss().omp_set_num_threads(args.threads)
    config = yaml.safe_load(Path(args.config).read_text())
    sizes = run_sizes(Path(args.check), config) if args.check else {**IMAGENET_SIZES, "_classes": 1000}
    w = workload(config, sizes)
    t0 = time.perf_counter()
    m = measure(w, echo=lambda s: print(s, file=sys.stderr, flush=True), index_copies=args.index_copies)
    a = Assumptions()
    result = {"workload": asdict(w), "measured": asdict(m), "assumptions": asdict(a)}
    if args.check:
        share = indexed_share(Path(args.check), config)
        pred, meas = cpu_predictions(w, m, share), measured_rules(Path(args.check))
        print(f"{args.config} on this machine's CPU: {w.train:,} train, {w.test:,} test, OOD {w.ood}; measured in "
              f"{time.perf_counter() - t0:.0f} s; the run took {meas['_span']['seconds']:,.0f} s\n")
        print(format_check(pred, meas))
        result.update(predicted=pred, measured_run=meas, grood_share=share)
    else:
        rows = stage_costs(w, m, a)
        print(f"{args.config}: {w.train:,} train, {w.test:,} test, OOD {w.ood}; {w.arch}, D={w.width}, C={w.classes}; "
              f"measured in {time.perf_counter() - t0:.0f} s on {os.cpu_count()} CPUs\n")
        print(format_costs(rows, m, a, w))
        result.update(stages=[asdict(r) for r in rows], total=total(rows), rule_memory=rule_memory(rows))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2, default=str) + "\n")
    return 0


def indexed_share(run_dir: Path, config: dict) -> float:
    """The share of a finished run's training rows its network classifies correctly (GROOD's index)."""
    import zarr

    bench = next(iter(config["benchmarks"]))
    store = run_dir / config.get("results_dir", "results") / bench / "seed0" / "features" / "train.zarr"
    group = zarr.open_group(str(store), mode="r")
    return float((group["logits"][:].argmax(1) == group["labels"][:]).mean())


def run_sizes(run_dir: Path, config: dict) -> dict:
    """The set sizes of a finished run, from its prepared datasets' metadata."""
    from grood.storage import load_npz

    res = Path(config.get("resources_dir", "resources"))
    res = res if res.is_absolute() else run_dir / res
    sizes = {}
    for name in config["datasets"]:
        path = res / "data" / f"{name}.npz"
        if path.exists():
            meta = load_npz(path, [])[1]
            sizes[name] = {k: int(v) for k, v in meta["counts"].items()}
            if "train" in meta["counts"]:
                sizes["_classes"] = len(meta["label_counts"]["train"])
    return sizes


if __name__ == "__main__":
    sys.exit(main())
