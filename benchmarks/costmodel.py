"""The ImageNet-1k cost model: GPU-hours, CPU core-hours, disk and peak memory per stage.

    python -m benchmarks.costmodel [--json out.json] [--threads N]

Costs are measured **here** per image, per row and per vector (a few seconds each, on this
machine's CPU), then scaled to ImageNet-1k with a handful of **assumptions** that are named, with
their source, in the output: GPU peak throughput from the vendor's datasheet and the share of it
that real kernels reach.  Every number in the table says which it rests on (M = measured here,
A = assumption), so a reader can redo the arithmetic with their own cluster's numbers
(:func:`imagenet_costs` takes both as arguments).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

# ImageNet-1k with the usual OOD sets (MOS subsets, Huang & Li, CVPR 2021; Textures = DTD)
IMAGENET = {
    "train": 1_281_167, "val": 50_000,
    "ood": {"inaturalist": 10_000, "sun": 10_000, "places": 10_000, "textures": 5_640},
    "classes": 1000, "width": 2048, "image": 224,
}


@dataclass
class Measured:
    """Per-unit costs measured on this machine (CPU); see :func:`measure`."""

    threads: int
    forward_gflop_per_image: float  # ResNet-50 at 224², counted by torch's FlopCounterMode
    forward_cpu_s_per_image: float  # fp32, batch 8, on `threads` CPU threads
    forward_peak_rss_gb: float  # the CPU forward pass's process, batch 8
    decode_s_per_image: float  # JPEG (500×375) decode + resize 256 + centre crop 224, one core
    gemm_gflops: float  # float32 GEMM throughput (numpy) on `threads` threads
    flat_search_fraction: float  # exact faiss search at D=2048 / the GEMM on the same shapes
    gradients_s_per_row: float  # closed-form GROOD gradients, D=2048, C=1000, streamed to Zarr
    gradients_peak_rss_gb: float  # that job's whole-process peak (it does not grow with N)
    mahalanobis_s_per_row: float  # streamed class-centred scatter, D=2048 (float64)
    ivfpq_add_s_per_vector: float  # IVF-PQ add at D=2048 (nlist=256, m=64), per vector
    zarr_read_gb_s: float  # reading a gradient store block by block (page cache: an upper bound)
    zarr_bytes_per_row: dict = field(default_factory=dict)  # on disk, per store kind


@dataclass
class Assumptions:
    """What cannot be measured on a CPU-only machine, with the source of each number."""

    gpu: str = "NVIDIA A100 (40/80 GB)"
    gpu_fp32_tflops: float = 19.5  # A100 datasheet: FP32 19.5 TFLOPS (non-tensor; TF32 is off in grood)
    conv_efficiency: float = 0.5  # share of peak a cuDNN fp32 ResNet-50 forward reaches (assumption)
    search_efficiency: float = 0.7  # share of peak faiss's GPU flat search (cuBLAS SGEMM) reaches (assumption)
    gpu_memory_gb: float = 40.0  # the smaller A100
    index_correct_share: float = 1.0  # GROOD indexes correctly classified training rows; 1.0 = upper bound
    ivf_speedup: float = 10.0  # IVF-Flat vs exact at recall@1 ≥ 0.95 (bench case 8 target; synthetic)
    n_mix: int = 5000  # mix-up images for the OOD prototype (docs/methods.md: a few thousand)
    sources: dict = field(default_factory=lambda: {
        "gpu_fp32_tflops": "NVIDIA A100 datasheet (FP32, non-tensor-core): 19.5 TFLOPS",
        "conv_efficiency": "assumption: cuDNN fp32 convolutions typically reach about half of peak; "
                           "replace with a real run's benchmark/ files",
        "search_efficiency": "assumption: faiss's GPU flat search is a cuBLAS SGEMM plus a k-selection",
        "gpu_memory_gb": "NVIDIA A100 datasheet: 40 or 80 GB HBM2(e)",
        "index_correct_share": "upper bound (every training image indexed); ResNet-50 train accuracy < 1",
        "ivf_speedup": "benchmarks.bench case 8 target on synthetic 1M × 512 vectors; real gradients may differ",
        "n_mix": "docs/methods.md §1.2 default range",
    })


# ------------------------------------------------------------------------------------ measuring


def _time(fn, repeats: int = 3) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def measure_forward(batch: int = 8) -> tuple[float, float]:
    """(GFLOP per image, CPU seconds per image) of a randomly initialised torchvision ResNet-50."""
    import torch
    import torchvision
    from torch.utils.flop_counter import FlopCounterMode

    model = torchvision.models.resnet50(weights=None).eval()
    x = torch.randn(batch, 3, 224, 224)
    with torch.no_grad():
        with FlopCounterMode(display=False) as counter:
            model(x[:1])
        seconds = _time(lambda: model(x), repeats=1)
    return counter.get_total_flops() / 1e9, seconds / batch


def measure_decode(n: int = 40) -> float:
    """Seconds per image to decode a 500×375 JPEG (ImageNet's typical size), resize the short side
    to 256 and centre-crop 224 with PIL, on one core."""
    from PIL import Image

    rng = np.random.default_rng(0)
    smooth = np.cumsum(np.cumsum(rng.normal(size=(375, 500, 3)), 0), 1)  # natural-image-like spectrum
    img = ((smooth - smooth.min()) / np.ptp(smooth) * 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="JPEG", quality=90)
    data = buf.getvalue()

    def decode():
        for _ in range(n):
            im = Image.open(io.BytesIO(data)).convert("RGB")
            w, h = im.size
            s = 256 / min(w, h)
            im = im.resize((round(w * s), round(h * s)), Image.BILINEAR)
            w, h = im.size
            np.asarray(im.crop(((w - 224) // 2, (h - 224) // 2, (w - 224) // 2 + 224, (h - 224) // 2 + 224)))

    return _time(decode, repeats=2) / n


def measure_gemm(n: int = 1024, d: int = 2048) -> float:
    a = np.random.default_rng(0).standard_normal((n, d), dtype=np.float32)
    b = np.random.default_rng(1).standard_normal((4 * n, d), dtype=np.float32)
    return 2.0 * n * 4 * n * d / _time(lambda: a @ b.T) / 1e9


def measure_flat_search(n: int = 20_000, nq: int = 512, d: int = 2048) -> float:
    """Exact faiss search (grood.search) time / a numpy GEMM of the same shapes."""
    from benchmarks.bench_scale import gemm_floor
    from grood.search import build_index, search

    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, d), dtype=np.float32)
    q = rng.standard_normal((nq, d), dtype=np.float32)
    index = build_index(x)
    t_search = _time(lambda: search(index, q, 1, use_gpu=False), repeats=2)
    t_gemm = _time(lambda: gemm_floor(q, x), repeats=2)
    return t_gemm / t_search


def measure_gradients(workdir: Path, rows: int = 8192, d: int = 2048, c: int = 1000) -> tuple[float, float]:
    """(seconds per row, peak RSS GB) of streamed GROOD gradients at ImageNet's D and C, in a child."""
    from benchmarks.bench_scale import run_child, write_feature_store

    store = workdir / "features.zarr"
    write_feature_store(store, rows, d, c, seed=0)
    r = run_child("gradients", features=str(store), prototypes=str(store.with_suffix(".protos.npz")),
                  out=str(workdir / "gradients.zarr"), streamed=True, batch_size=4096)
    return r["seconds"] / rows, r["peak_rss"] / 2**30


def measure_mahalanobis(rows: int = 4096, d: int = 2048) -> float:
    h = np.random.default_rng(0).standard_normal((rows, d))

    def scatter():
        return h.T @ h

    return _time(scatter, repeats=2) / rows


def measure_ivfpq_add(n: int = 10_000, d: int = 2048) -> float:
    """Seconds per vector added to a trained IVF-PQ index (nlist=256, m=64 codes of 8 bits)."""
    from grood.search import IndexSpec, build_index

    x = np.random.default_rng(0).standard_normal((n, d), dtype=np.float32)
    index = build_index(x, IndexSpec(kind="ivf_pq", nlist=256, m=64))
    index.reset()
    t0 = time.perf_counter()
    index.add(x)
    return (time.perf_counter() - t0) / n


def measure_zarr_bytes(workdir: Path, rows: int = 4096) -> tuple[dict, float]:
    """(on-disk bytes per row of each store kind, GB/s reading the gradient store block by block).
    Zarr v3 defaults and random-valued float32: an upper bound on size (real features compress a
    little better); the read comes from the page cache, an upper bound on speed."""
    from grood.storage import write_zarr

    rng = np.random.default_rng(0)
    d, c = IMAGENET["width"], IMAGENET["classes"]
    kinds = {
        "features": {"features": np.abs(rng.standard_normal((rows, d), dtype=np.float32)),
                     "logits": rng.standard_normal((rows, c), dtype=np.float32),
                     "labels": rng.integers(0, c, rows)},
        "gradients": {"gradients": rng.standard_normal((rows, d), dtype=np.float32),
                      "proto_dist": rng.random(rows, dtype=np.float32), "pi_ood": rng.random(rows, dtype=np.float32)},
    }
    out = {}
    for name, arrays in kinds.items():
        path = workdir / f"{name}.zarr"
        write_zarr(path, arrays, chunk_rows=1024)
        out[name] = sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / rows
    from grood.storage.chunks import iter_blocks, open_array

    grads = open_array(workdir / "gradients.zarr", "gradients")
    seconds = _time(lambda: [b.sum() for _, b in iter_blocks(grads, 1024)], repeats=2)
    return out, grads.nbytes / seconds / 1e9


def measure(echo=lambda s: None) -> Measured:
    """Every unit cost, a few seconds each (a few minutes in all on 2 busy cores)."""
    import torch

    from grood.search.vectors import faiss

    with tempfile.TemporaryDirectory(prefix="grood-costmodel-") as tmp:
        tmp = Path(tmp)

        def step(what, fn, *args):
            t0 = time.perf_counter()
            out = fn(*args)
            echo(f"{what}: {time.perf_counter() - t0:.0f} s")
            return out

        gflop, fwd = step("ResNet-50 forward on the CPU", measure_forward)
        forward_rss = step("its peak RSS (child process)", _forward_rss, tmp)
        decode = step("JPEG decode", measure_decode)
        gemm = step("float32 GEMM", measure_gemm)
        fraction = step("exact search vs GEMM at D=2048", measure_flat_search)
        grad_s, grad_rss = step("GROOD gradients at D=2048, C=1000 (child process)", measure_gradients, tmp)
        maha = step("Mahalanobis scatter", measure_mahalanobis)
        add = step("IVF-PQ add", measure_ivfpq_add)
        zbytes, read_gb_s = step("Zarr bytes per row and read speed", measure_zarr_bytes, tmp)
    threads = min(torch.get_num_threads(), faiss().omp_get_max_threads())
    return Measured(threads, gflop, fwd, forward_rss, decode, gemm, fraction, grad_s, grad_rss, maha, add,
                    read_gb_s, zbytes)


def _forward_rss(workdir: Path) -> float:
    """Peak RSS (GB) of a fresh process running the ResNet-50 CPU forward pass at batch 8."""
    import subprocess

    code = ("import torch, torchvision; m = torchvision.models.resnet50(weights=None).eval()\n"
            "with torch.no_grad(): m(torch.randn(8, 3, 224, 224))\n"
            "from benchmarks.bench_scale import peak_rss_bytes; print(peak_rss_bytes())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=workdir)
    return int(out.stdout.strip().splitlines()[-1]) / 2**30


# ------------------------------------------------------------------------------------- the model


@dataclass
class StageCost:
    stage: str
    runs_on: str
    gpu_hours: float
    cpu_core_hours: float
    disk_gb: float
    peak_memory_gb: float
    basis: str


def imagenet_costs(m: Measured, a: Assumptions, data: dict = IMAGENET) -> list[StageCost]:
    """Per-stage costs of one GROOD benchmark on ImageNet-1k from measured unit costs and assumptions."""
    n_train = data["train"]
    n_query = data["val"] + sum(data["ood"].values())
    n_images = n_train + n_query
    d = data["width"]
    gpu_flops = a.gpu_fp32_tflops * 1e12
    gb = 1e9

    fwd_gpu_s = m.forward_gflop_per_image * 1e9 / (gpu_flops * a.conv_efficiency)
    fwd_gpu_h = n_images * fwd_gpu_s / 3600
    decode_core_h = n_images * m.decode_s_per_image / 3600
    workers = m.decode_s_per_image / fwd_gpu_s
    feat_disk = n_images * m.zarr_bytes_per_row["features"] / gb
    grad_disk = n_images * m.zarr_bytes_per_row["gradients"] / gb
    indexed = int(n_train * a.index_correct_share)
    flat_gb = indexed * d * 4 / gb
    pq_m = 64
    pq_gb = indexed * (pq_m + 8) / gb
    pairs = n_query * indexed
    search_gpu_h = pairs * 2 * d / (gpu_flops * a.search_efficiency) / 3600
    search_cpu_core_h = pairs * 2 * d / (m.gemm_gflops * 1e9 * m.flat_search_fraction) * m.threads / 3600
    shards = max(1, int(np.ceil(flat_gb / (0.5 * a.gpu_memory_gb))))
    mix_gpu_h = a.n_mix * fwd_gpu_s / 3600
    return [
        StageCost("features (ResNet-50 forward, all parts)", "GPU + decode workers", fwd_gpu_h, decode_core_h,
                  feat_disk, m.forward_peak_rss_gb,
                  f"M: {m.forward_gflop_per_image:.2f} GFLOP/image, decode {m.decode_s_per_image * 1e3:.1f} ms/image/core "
                  f"(≈ {workers:.0f} decode workers keep one GPU busy), {m.zarr_bytes_per_row['features']:,.0f} B/row; "
                  f"A: GPU peak × conv efficiency. CPU alone: {n_images * m.forward_cpu_s_per_image / 3600:,.0f} h on "
                  f"{m.threads} threads (M). Memory: the CPU job's RSS at batch 8 (M)"),
        StageCost("prototypes (class means + mix-up)", "GPU", mix_gpu_h, feat_disk / m.zarr_read_gb_s / 3600,
                  0.0, 2 * data["classes"] * d * 8 / gb,
                  f"A: n_mix={a.n_mix} forward passes; class sums: one streamed read of the train features (M: "
                  f"{m.zarr_read_gb_s:.1f} GB/s)"),
        StageCost("gradients (closed form, streamed)", "CPU", 0.0, n_images * m.gradients_s_per_row * m.threads / 3600,
                  grad_disk, m.gradients_peak_rss_gb,
                  f"M: {m.gradients_s_per_row * 1e6:.0f} µs/row on {m.threads} threads, peak RSS "
                  f"{m.gradients_peak_rss_gb:.2f} GB at any N, {m.zarr_bytes_per_row['gradients']:,.0f} B/row"),
        StageCost("fit: GROOD flat index", "CPU", 0.0, flat_gb / m.zarr_read_gb_s / 3600, flat_gb, flat_gb,
                  f"index = {indexed:,} × {d} float32 (A: share indexed {a.index_correct_share}); "
                  f"time = one streamed read of the store (M)"),
        StageCost("fit: GROOD IVF-PQ index (m=64)", "CPU", 0.0, indexed * m.ivfpq_add_s_per_vector * m.threads / 3600,
                  pq_gb, pq_gb + 1.0,
                  f"M: {m.ivfpq_add_s_per_vector * 1e6:.0f} µs/vector add at nlist=256 (scales with nlist); "
                  f"+1 GB: training sample"),
        StageCost("fit: Mahalanobis (streamed covariance)", "CPU", 0.0, n_train * m.mahalanobis_s_per_row * m.threads / 3600,
                  0.0, 3 * d * d * 8 / gb + 0.1,
                  f"M: {m.mahalanobis_s_per_row * 1e6:.0f} µs/row (float64 scatter, D={d})"),
        StageCost(f"score: GROOD exact search, {n_query:,} queries", "GPU", search_gpu_h, search_cpu_core_h,
                  n_query * 8 / gb, flat_gb / shards,
                  f"{pairs:.2e} query×vector pairs; A: GPU peak × search efficiency; CPU column: measured "
                  f"GEMM {m.gemm_gflops:.0f} GFLOP/s × search fraction {m.flat_search_fraction:.0%} (M); "
                  f"memory per shard with {shards} shard(s) of ≤ half a GPU"),
        StageCost("score: GROOD IVF-Flat search", "GPU", search_gpu_h / a.ivf_speedup,
                  search_cpu_core_h / a.ivf_speedup, n_query * 8 / gb, flat_gb,
                  f"A: speed-up {a.ivf_speedup:.0f}× (bench case 8 on synthetic vectors)"),
        StageCost("score: kNN (features, k=50), exact", "GPU", search_gpu_h, search_cpu_core_h, n_query * 8 / gb, flat_gb,
                  "same shapes as GROOD's exact search (D=2048 features)"),
    ]


def format_costs(rows: list[StageCost], m: Measured, a: Assumptions) -> str:
    from tabulate import tabulate

    table = [[r.stage, r.runs_on, f"{r.gpu_hours:,.2f}", f"{r.cpu_core_hours:,.1f}", f"{r.disk_gb:,.1f}",
              f"{r.peak_memory_gb:,.2f}", r.basis] for r in rows]
    total = ["total (exact search, one seed)", "", f"{sum(r.gpu_hours for r in rows if 'IVF' not in r.stage):,.2f}",
             f"{sum(r.cpu_core_hours for r in rows if 'IVF' not in r.stage):,.1f}",
             f"{sum(r.disk_gb for r in rows if 'IVF' not in r.stage):,.1f}", "", ""]
    out = [tabulate(table + [total], headers=["stage", "runs on", "GPU-h", "CPU core-h", "disk GB",
                                              "peak memory GB", "basis (M measured here, A assumption)"],
                    tablefmt="simple", disable_numparse=True), "", "Measured here:"]
    out += [f"  {k} = {v}" for k, v in asdict(m).items()]
    out += ["", f"Assumptions ({a.gpu}):"]
    out += [f"  {k} = {getattr(a, k)} — {src}" for k, src in a.sources.items()]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.costmodel", description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", metavar="OUT.json", help="also write the measurements, assumptions and table")
    ap.add_argument("--threads", type=int, default=None, help="cap torch, faiss and BLAS threads")
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
    t0 = time.perf_counter()
    m = measure(echo=lambda s: print(s, file=sys.stderr, flush=True))
    a = Assumptions()
    rows = imagenet_costs(m, a)
    print(f"ImageNet-1k cost model ({IMAGENET['train']:,} train, {IMAGENET['val']:,} val, OOD "
          f"{', '.join(f'{k} {v:,}' for k, v in IMAGENET['ood'].items())}; D={IMAGENET['width']}); "
          f"measured in {time.perf_counter() - t0:.0f} s on {os.cpu_count()} CPUs\n")
    print(format_costs(rows, m, a))
    if args.json:
        from grood.storage import save_json

        save_json(args.json, {"measured": asdict(m), "assumptions": asdict(a), "data": IMAGENET,
                              "stages": [asdict(r) for r in rows]})
    return 0


if __name__ == "__main__":
    sys.exit(main())
