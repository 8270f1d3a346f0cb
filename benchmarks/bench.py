"""Speed and memory of grood's fast paths against the reference way, measured in one run.

    python -m benchmarks.bench [--quick] [--device auto|cpu|cuda] [--json out.json]
                          [--cases 1,4] [--repeats N] [--threads N]

Cases 7–9 (peak RSS of the whole process, approximate search, exact search against the GEMM floor)
live in :mod:`benchmarks.bench_scale`; case 10 times the metrics' bootstrap
(:mod:`grood.evaluation.uncertainty`). Rows with a target say whether it was met (a missed target is
reported, not an error: the exit status is about results that disagree).

Every case runs *ours* and one or more *reference* ways in the same process on the same inputs:
an untimed warm-up of each (where peak memory is taken and whose outputs are compared), then
``repeats`` timed rounds, interleaved, with the order rotated each round so that no way always runs
first.  Times are medians (``time.perf_counter``); ``ratio = reference / ours`` (above 1: ours is
faster).  Ratios, not seconds, are the result: both sides see the same machine at the same moment,
so a ratio survives a noisy shared machine far better than either time.

Peak memory is measured only where the tools can see it: ``tracemalloc`` for ways whose large
buffers are numpy/Python objects, ``torch.cuda.max_memory_allocated`` for GPU ways.  torch's CPU
allocator, faiss and scikit-learn's C++ kernels allocate outside tracemalloc's view, so those cells
read "—" rather than a number that would look like zero.

The cases are plain functions (``case_gradients`` … ``case_metrics``, ``case_bootstrap``) returning
:class:`~benchmarks.harness.Row`s, measured by :func:`~benchmarks.harness.measure`;
``tests/unit/test_bench.py`` runs them at tiny sizes so the benchmark cannot rot.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from benchmarks import bench_scale
from benchmarks.harness import Row, Way, agreement, make_row, measure
from grood.method.gradients import grood_gradients, grood_gradients_autograd

CASES = {
    1: "GROOD gradients",
    2: "GradNorm",
    3: "shared features",
    4: "kNN search",
    5: "Zarr writes",
    6: "OOD metrics",
    **bench_scale.CASES,
    10: "bootstrap CIs",
}

#: sizes per mode; ``quick`` keeps cases 1–6 near a minute on 2 idle CPU cores, ``full`` near five;
#: the scale cases 7–9 take about 5 (quick) and 30 (full) minutes more
SIZES: dict[str, dict[str, Any]] = {
    "quick": {
        "gradients": {"n": 2_000, "dims": (64, 512), "num_classes": 10},
        "gradnorm": {"n": 2_000, "dim": 512, "num_classes": 10},
        "features": {"n": 1_000, "k_detectors": 5},
        "knn": {"n_queries": 2_000, "n_index": 50_000, "dims": (64,), "k": 50},
        "zarr": {"n_rows": 20_000, "width": 512},
        "metrics": {"n": 200_000},
        "rss": {"n": 20_000, "dim": 256, "num_classes": 100},
        "ann": {"n": 200_000, "dim": 256, "n_queries": 500, "nlist": 256, "nprobe": 16, "m": 32},
        "gemm": {"n": 200_000, "dim": 256, "n_queries": 500},
        "bootstrap": {"n_id": 10_000, "n_ood": 5_000, "n_resamples": 1000, "n_naive": 50},
    },
    "full": {
        "gradients": {"n": 10_000, "dims": (64, 512), "num_classes": 10},
        "gradnorm": {"n": 10_000, "dim": 512, "num_classes": 10},
        "features": {"n": 10_000, "k_detectors": 5},
        "knn": {"n_queries": 10_000, "n_index": 50_000, "dims": (64, 512), "k": 50},
        "zarr": {"n_rows": 50_000, "width": 512},
        "metrics": {"n": 1_000_000},
        # full sizes: N and 10·N rows; ≥ 1M × 512 vectors (2 GB float32)
        "rss": {"n": 50_000, "dim": 512, "num_classes": 100},
        "ann": {"n": 1_000_000, "dim": 512, "n_queries": 1000, "nlist": 1024, "nprobe": 32, "m": 64},
        "gemm": {"n": 1_000_000, "dim": 512, "n_queries": 1000},
        "bootstrap": {"n_id": 10_000, "n_ood": 5_000, "n_resamples": 1000, "n_naive": 200},
    },
}


# ------------------------------------------------------------------------------------ 1. gradients


def grood_gradients_vmap(features, logits, prototypes, p_ood, temperature: float = 1.0,
                         device: torch.device | str = "cpu", chunk_size: int = 4096) -> np.ndarray:
    """∂ℓ/∂p_ood per sample by ``torch.func.vmap(grad(loss))`` in float32 (the idiomatic torch way)."""
    from torch.func import grad, vmap

    device = torch.device(device)
    h = torch.as_tensor(np.asarray(features), dtype=torch.float32, device=device)
    yhat = torch.as_tensor(np.asarray(logits)).argmax(1).to(device)
    protos = torch.as_tensor(np.asarray(prototypes), dtype=torch.float32, device=device)
    pood = torch.as_tensor(np.asarray(p_ood), dtype=torch.float32, device=device)

    def loss(p, x, y):
        m = torch.cat([protos, p[None]])
        s = -torch.linalg.vector_norm(x[None] - m, dim=1) / temperature
        return torch.nn.functional.cross_entropy(s[None], y[None])

    g = vmap(grad(loss), in_dims=(None, 0, 0), chunk_size=chunk_size)(pood, h, yhat)
    return g.cpu().numpy()


def gradient_problem(n: int, dim: int, num_classes: int, seed: int = 0):
    """Features near C prototypes at a scale where the OOD prototype's softmax share is not negligible."""
    rng = np.random.default_rng(seed)
    protos = rng.normal(size=(num_classes, dim)) * 3.0 / np.sqrt(dim)
    y = rng.integers(0, num_classes, n)
    h = protos[y] + rng.normal(size=(n, dim)) / np.sqrt(dim)
    logits = rng.normal(size=(n, num_classes)) + 3.0 * np.eye(num_classes)[y]
    p_ood = protos.mean(0)
    f32 = np.float32
    return h.astype(f32), logits.astype(f32), protos.astype(f32), p_ood.astype(f32)


def case_gradients(n: int = 10_000, dims=(64, 512), num_classes: int = 10, repeats: int = 3,
                   devices=("cpu",), seed: int = 0) -> list[Row]:
    """GROOD's ∂ℓ/∂p_ood: closed form (numpy, batched) vs per-sample autograd vs vmap(grad)."""
    rows = []
    for dim in dims:
        h, z, P, po = gradient_problem(n, dim, num_classes, seed)
        size = f"N={n:,} D={dim} C={num_classes}"
        paths = {
            "closed form": Way(lambda: grood_gradients(h, z, P, po)),
            "per-sample autograd": Way(lambda: grood_gradients_autograd(h, z, P, po), memory=None),
            "vmap(grad)": Way(lambda: grood_gradients_vmap(h, z, P, po), memory=None),
        }
        for dev in devices:
            if dev != "cpu":
                d = torch.device(dev)
                paths[f"vmap(grad) {d.type}"] = Way(
                    lambda d=d: grood_gradients_vmap(h, z, P, po, device=d), memory="cuda", device=d)
        m = measure(paths, repeats)
        ours = m["closed form"].output
        tols = {"per-sample autograd": 1e-6, "vmap(grad)": 1e-5}
        for ref in paths:
            if ref == "closed form":
                continue
            tol = tols.get(ref, 1e-5)
            note = ("float64 loop, one autograd.grad per sample" if ref == "per-sample autograd"
                    else "float32; ours runs on the CPU" if ref.startswith("vmap(grad) ") else "float32")
            rows.append(make_row(1, "GROOD gradients", size, "closed form", ref, m,
                                 agreement(ours, m[ref].output, tol), tol,
                                 "cuda" if ref.endswith("cuda") else "cpu", note))
    return rows


# ------------------------------------------------------------------------------------- 2. GradNorm


def gradnorm_autograd(features: np.ndarray, fc: torch.nn.Linear, temperature: float = 1.0) -> np.ndarray:
    """GradNorm as the official code computes it: batch size 1, all-ones target, ‖∂L/∂W‖₁ per sample.

    The all-ones target gives ``C·S``; the result is divided by ``C`` to be comparable.
    """
    num_classes = fc.out_features
    logsoftmax = torch.nn.LogSoftmax(dim=-1)
    targets = torch.ones((1, num_classes))
    scores = np.empty(len(features))
    for i, h in enumerate(torch.as_tensor(np.asarray(features), dtype=torch.float32)):
        fc.zero_grad()
        out = fc(h[None]) / temperature
        loss = torch.mean(torch.sum(-targets * logsoftmax(out), dim=-1))
        loss.backward()
        scores[i] = fc.weight.grad.abs().sum().item()
    return scores / num_classes


def case_gradnorm(n: int = 10_000, dim: int = 512, num_classes: int = 10, repeats: int = 3,
                  seed: int = 0) -> list[Row]:
    """GradNorm: closed form ``‖h‖₁‖p − u‖₁/T`` on cached arrays vs batch-1 autograd through nn.Linear."""
    try:
        from grood.detectors.gradnorm import GradNorm
    except ImportError:  # the detector is optional for the benchmark
        return []
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    fc = torch.nn.Linear(dim, num_classes)
    h = np.maximum(rng.normal(size=(n, dim)), 0).astype(np.float32)  # ReLU-like penultimate features
    with torch.no_grad():
        z = fc(torch.from_numpy(h)).numpy()  # the logits the pipeline has cached
    det = GradNorm()
    paths = {
        "closed form": Way(lambda: det.score(features=h, logits=z)),
        "batch-1 autograd": Way(lambda: gradnorm_autograd(h, fc), memory=None),
    }
    m = measure(paths, repeats)
    tol = 1e-5
    return [make_row(2, "GradNorm", f"N={n:,} D={dim} C={num_classes}", "closed form", "batch-1 autograd",
                     m, agreement(m["closed form"].output, m["batch-1 autograd"].output, tol), tol, "cpu",
                     "head only; the official code back-propagates through the whole backbone")]


# ------------------------------------------------------------------------------ 3. shared features


def shareable_detectors(k: int) -> list[str]:
    """The first ``k`` registered detectors that score cached features/logits without fitting."""
    from grood.detectors import METHODS

    names = [name for name, cls in METHODS.items()
             if not cls.fit_requires and not cls.needs_network and cls.requires
             and set(cls.requires) <= {"features", "logits"}]
    if len(names) < k:
        raise ValueError(f"only {len(names)} detectors score cached features without fitting, asked for {k}")
    return names[:k]


def case_shared_features(n: int = 10_000, k_detectors: int = 5, repeats: int = 3, devices=("cpu",),
                         batch_size: int = 1024, seed: int = 0) -> list[Row]:
    """One forward pass shared by K detectors vs one forward pass per detector (lenet5, random 28×28)."""
    from grood.detectors import make_detector
    from grood.net.forward import forward_batches
    from grood.net.models import lenet5
    from grood.net.preprocess import spec_from_training

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    spec = spec_from_training(images)
    names = shareable_detectors(k_detectors)
    detectors = {name: make_detector(name) for name in names}
    rows = []
    for dev in devices:
        device = torch.device(dev)
        model = lenet5().to(device).eval()

        def shared():
            arrays = forward_batches(model, images, spec, device, batch_size)
            return {name: det.score(**arrays) for name, det in detectors.items()}

        def per_detector():
            out = {}
            for name, det in detectors.items():
                arrays = forward_batches(model, images, spec, device, batch_size)
                out[name] = det.score(**arrays)
            return out

        mem = "cuda" if device.type == "cuda" else None
        m = measure({"shared": Way(shared, mem, device), "per detector": Way(per_detector, mem, device)},
                    repeats)
        tol = 0.0 if device.type == "cpu" else 1e-5
        checks = [agreement(m["shared"].output[k], m["per detector"].output[k], tol) for k in names]
        ok_err = (all(c[0] for c in checks), max(c[1] for c in checks))
        rows.append(make_row(3, "shared features", f"N={n:,} K={k_detectors} lenet", "shared", "per detector",
                             m, ok_err, tol, device.type, f"ideal ratio {k_detectors}; " + ",".join(names)))
    return rows


# ----------------------------------------------------------------------------------------- 4. kNN


def knn_faiss(index_vectors: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    from grood.search import IndexSpec, build_index, kth_distance

    return kth_distance(build_index(index_vectors, IndexSpec()), queries, k, "l2", use_gpu=False)


def knn_sklearn(index_vectors: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    from sklearn.neighbors import NearestNeighbors

    dist, _ = NearestNeighbors(n_neighbors=k, algorithm="brute").fit(index_vectors).kneighbors(queries)
    return dist[:, k - 1] ** 2


def knn_numpy(index_vectors: np.ndarray, queries: np.ndarray, k: int, chunk: int = 1024) -> np.ndarray:
    """Brute force: ‖q‖² − 2qxᵀ + ‖x‖² by one GEMM per query chunk, then a partial sort."""
    x = np.asarray(index_vectors, dtype=np.float32)
    xx = (x.astype(np.float64) ** 2).sum(1).astype(np.float32)
    out = np.empty(len(queries), dtype=np.float32)
    for start in range(0, len(queries), chunk):
        q = np.asarray(queries[start : start + chunk], dtype=np.float32)
        d = (q**2).sum(1)[:, None] - 2.0 * (q @ x.T) + xx[None]
        out[start : start + chunk] = np.partition(d, k - 1, axis=1)[:, k - 1]
    return np.maximum(out, 0.0)


def case_knn(n_queries: int = 10_000, n_index: int = 50_000, dims=(64, 512), k: int = 50,
             repeats: int = 3, seed: int = 0) -> list[Row]:
    """Exact k-th neighbour distance: faiss IndexFlatL2 (ours) vs sklearn brute vs numpy brute."""
    rows = []
    rng = np.random.default_rng(seed)
    for dim in dims:
        x = rng.normal(size=(n_index, dim)).astype(np.float32)
        q = rng.normal(size=(n_queries, dim)).astype(np.float32)
        paths = {
            "faiss flat": Way(lambda: knn_faiss(x, q, k), memory=None),
            "sklearn brute": Way(lambda: knn_sklearn(x, q, k), memory=None),
            "numpy brute": Way(lambda: knn_numpy(x, q, k), memory=None),
        }
        m = measure(paths, repeats)
        tol = 1e-4
        for ref in ("sklearn brute", "numpy brute"):
            rows.append(make_row(4, "kNN search", f"{n_queries:,}q × {n_index:,} d={dim} k={k}", "faiss flat",
                                 ref, m, agreement(m["faiss flat"].output, m[ref].output, tol), tol, "cpu",
                                 "index build + search; squared k-th distance"))
    return rows


# ---------------------------------------------------------------------------------------- 5. Zarr


def zarr_write(path: Path, data: np.ndarray, chunk_rows: int, batch_rows: int) -> Path:
    from grood.storage import ZarrWriter

    with ZarrWriter(path, len(data), chunk_rows) as w:
        for start in range(0, len(data), batch_rows):
            w.write(start, x=data[start : start + batch_rows])
    return path


def case_zarr(n_rows: int = 50_000, width: int = 512, batch_rows: int = 1024, aligned_chunk: int = 1024,
              misaligned_chunk: int = 1000, repeats: int = 3, workdir: str | os.PathLike | None = None,
              seed: int = 0) -> list[Row]:
    """ZarrWriter with chunk rows equal to the write batch vs chunks that straddle batches."""
    from grood.storage import read_zarr

    data = np.random.default_rng(seed).normal(size=(n_rows, width)).astype(np.float32)
    with tempfile.TemporaryDirectory(prefix="grood-bench-", dir=workdir) as tmp:
        counter = iter(range(10**9))

        def writer(chunk):
            return lambda: zarr_write(Path(tmp) / f"{chunk}-{next(counter)}.zarr", data, chunk, batch_rows)

        ours, ref = f"chunk {aligned_chunk}", f"chunk {misaligned_chunk}"
        m = measure({ours: Way(writer(aligned_chunk)), ref: Way(writer(misaligned_chunk))}, repeats,
                    cleanup=lambda p: shutil.rmtree(p, ignore_errors=True))
        back = {name: read_zarr(m[name].output)[0]["x"] for name in (ours, ref)}
        ok = bool(np.array_equal(back[ours], data) and np.array_equal(back[ref], data))
        ok = ok and back[ours].tobytes() == back[ref].tobytes() == data.tobytes()
    return [make_row(5, "Zarr writes", f"{n_rows:,}×{width} f32, batch {batch_rows}", ours, ref, m,
                     (ok, 0.0 if ok else float("inf")), 0.0, "cpu",
                     "page-cache writes (no fsync); read back: bytes identical to the source" if ok
                     else "read back differs from the source")]


# ------------------------------------------------------------------------------------- 6. metrics


def sklearn_ood_metrics(id_scores: np.ndarray, ood_scores: np.ndarray) -> dict[str, float]:
    """The five metrics from scikit-learn: roc_auc_score, average_precision_score, roc_curve."""
    from sklearn import metrics as skm

    y = np.r_[np.ones(len(id_scores)), np.zeros(len(ood_scores))]
    s = np.r_[id_scores, ood_scores].astype(np.float64)
    fpr, tpr, _ = skm.roc_curve(y, s, drop_intermediate=False)
    fpr_o, tpr_o, _ = skm.roc_curve(1 - y, -s, drop_intermediate=False)
    return {
        "auroc": float(skm.roc_auc_score(y, s)),
        "aupr_in": float(skm.average_precision_score(y, s)),
        "aupr_out": float(skm.average_precision_score(1 - y, -s)),
        "fpr95_id": float(fpr[np.argmax(tpr >= 0.95)]),
        "fpr95_ood": float(fpr_o[np.argmax(tpr_o >= 0.95)]),
    }


def case_metrics(n: int = 1_000_000, repeats: int = 3, seed: int = 0) -> list[Row]:
    """grood.evaluation.metrics.ood_metrics vs scikit-learn on ``n`` scores (half ID, half OOD; float32, so ties)."""
    from grood.evaluation.metrics import ood_metrics

    rng = np.random.default_rng(seed)
    a = rng.normal(1.0, 1.0, n // 2).astype(np.float32)
    b = rng.normal(0.0, 1.5, n - n // 2).astype(np.float32)
    m = measure({"grood.evaluation.metrics": Way(lambda: ood_metrics(a, b)),
                 "scikit-learn": Way(lambda: sklearn_ood_metrics(a, b))}, repeats)
    keys = sorted(m["scikit-learn"].output)
    vec = lambda d: np.array([d[k] for k in keys])  # noqa: E731
    tol = 1e-9
    return [make_row(6, "OOD metrics", f"{n:,} scores, 5 metrics", "grood.evaluation.metrics", "scikit-learn", m,
                     agreement(vec(m["grood.evaluation.metrics"].output), vec(m["scikit-learn"].output), tol), tol,
                     "cpu", "AUROC, AUPR-in/out, both FPR95")]


# ----------------------------------------------------------------------------------- 10. bootstrap


def naive_bootstrap(id_scores: np.ndarray, ood_scores: np.ndarray, n_resamples: int, seed: int,
                    all_metrics: bool) -> np.ndarray:
    """The naive way: draw the same resamples as :func:`grood.evaluation.uncertainty.bootstrap_metrics`,
    materialise each and score it with scikit-learn (``roc_auc_score``, or all five metrics)."""
    from sklearn.metrics import roc_auc_score

    from grood.evaluation.metrics import METRICS
    from grood.evaluation.uncertainty import DEFAULT_OOD, resample_indices

    ia = resample_indices(len(id_scores), n_resamples, seed)
    ib = resample_indices(len(ood_scores), n_resamples, seed, DEFAULT_OOD)
    y = np.r_[np.ones(ia.shape[1]), np.zeros(ib.shape[1])]
    out = []
    for i, j in zip(ia, ib):
        a, b = id_scores[i], ood_scores[j]
        if all_metrics:
            m = sklearn_ood_metrics(a, b)
            out.append([m[k] for k in METRICS])
        else:
            out.append([roc_auc_score(y, np.r_[a, b])])
    return np.array(out)


def case_bootstrap(n_id: int = 10_000, n_ood: int = 5_000, n_resamples: int = 1000, n_naive: int = 200,
                   repeats: int = 3, seed: int = 0) -> list[Row]:
    """Bootstrap replicates of the metrics: grood.evaluation.uncertainty (sorted once, O(n) per resample) vs
    scikit-learn on each materialised resample.  The naive side runs the first ``n_naive`` of the same
    ``n_resamples`` resamples and its times are scaled by ``n_resamples / n_naive``; agreement is
    checked on those resamples."""
    from grood.evaluation.metrics import METRICS
    from grood.evaluation.uncertainty import bootstrap_metrics

    if not 1 <= n_naive <= n_resamples:
        raise ValueError(f"n_naive must lie in [1, n_resamples={n_resamples}], got {n_naive}")
    rng = np.random.default_rng(seed)
    a = rng.normal(1.0, 1.0, n_id).astype(np.float32).astype(np.float64)  # float32 scores: some ties
    b = rng.normal(0.0, 1.5, n_ood).astype(np.float32).astype(np.float64)
    scale = n_resamples / n_naive
    rows = []
    for label, metrics in (("AUROC", ("auroc",)), ("5 metrics", METRICS)):
        def ours(metrics=metrics):
            reps = bootstrap_metrics(a, b, n_resamples=n_resamples, seed=seed, metrics=metrics).replicates
            return np.stack([reps[k][0, 0] for k in metrics], axis=1)

        ref_name = "sklearn roc_auc_score" if len(metrics) == 1 else "sklearn metrics"
        m = measure({"rank bootstrap": Way(ours),
                     ref_name: Way(lambda metrics=metrics: naive_bootstrap(a, b, n_naive, seed, len(metrics) > 1),
                                   memory=None)}, repeats)
        ref = m[ref_name]
        ref.times = [t * scale for t in ref.times]
        tol = 1e-12
        ok_err = agreement(m["rank bootstrap"].output[:n_naive], ref.output, tol)
        rows.append(make_row(10, "bootstrap CIs", f"{n_id:,} ID + {n_ood:,} OOD, {n_resamples} resamples, {label}",
                             "rank bootstrap", ref_name, m, ok_err, tol, "cpu",
                             f"reference: {n_naive} of the {n_resamples} resamples (the same draws), "
                             f"time ×{scale:g}; agreement on those"))
    return rows


# ------------------------------------------------------------------------------------------ report


def machine(device: str) -> dict:
    import faiss
    import sklearn
    import zarr

    info = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "faiss_threads": faiss.omp_get_max_threads(),
        "torch": torch.__version__,
        "faiss": faiss.__version__,
        "numpy": np.__version__,
        "sklearn": sklearn.__version__,
        "zarr": zarr.__version__,
        "device": device,
        "load_average_1m": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
    }
    if device == "cuda":
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def _fmt_mb(v: float | None, kind: str) -> str:
    return "—" if v is None else f"{v:,.1f}" + {"cuda": " GPU", "rss": " RSS"}.get(kind, "")


def _fmt_target(r: Row) -> str:
    return "" if r.met is None else ("met: " if r.met else "MISSED: ") + r.target


def format_table(rows: list[Row]) -> str:
    from tabulate import tabulate

    table = [[r.case, r.name, r.size, f"{r.ours} vs {r.reference}", r.device, f"{r.ours_s:.4f}", f"{r.ref_s:.4f}",
              f"{r.ratio:.2f}×", " / ".join(_fmt_mb(v, kind) for v, kind in
                                                   zip((r.ours_peak_mb, r.ref_peak_mb), r.memory.split("/"))),
              ("yes" if r.agree else "NO") + (" (bit-equal)" if r.tol == 0 else f" ({r.error:.1e} ≤ {r.tol:.0e})"),
              _fmt_target(r), r.note] for r in rows]
    headers = ["#", "case", "size", "ours vs reference", "dev", "ours (s)", "ref (s)", "ratio",
               "peak MB ours / ref", "agree (rel. err ≤ tol)", "target", "note"]
    return tabulate(table, headers=headers, tablefmt="simple", disable_numparse=True)


LEGEND = """\
ratio = reference median / ours median (above 1: ours is faster), medians of {repeats} interleaved timed runs
after one warm-up (case 7: one run of each way, each in its own child process; case 9: ratio = the share of
the GEMM's speed that the search reaches; case 10: the reference runs a share of the resamples and its
times are scaled to all of them, as the note says). Peak memory: tracemalloc (numpy/Python buffers),
torch.cuda.max_memory_allocated (GPU) or "RSS": the peak resident set of a child process running only that
way (the whole process: interpreter, libraries, C++ buffers); "—" where the allocations are invisible to
these tools (torch's CPU allocator, faiss, scikit-learn's C++ kernels). Agreement: max|ours − ref| ≤ tol ·
max|ref| on the same inputs (bit-equal where tol is 0; the note says what else is compared)."""


def run_cases(cases: list[int], mode: str, devices: tuple[str, ...], repeats: int,
              echo: Callable[[str], None] = lambda s: None) -> list[Row]:
    sizes = SIZES[mode]
    rows: list[Row] = []
    for c in cases:
        echo(f"case {c}: {CASES[c]} …")
        t0 = time.perf_counter()
        if c == 1:
            new = case_gradients(**sizes["gradients"], repeats=repeats, devices=devices)
        elif c == 2:
            new = case_gradnorm(**sizes["gradnorm"], repeats=repeats)
            if not new:
                echo("  skipped: grood.detectors.gradnorm is not available")
        elif c == 3:
            new = case_shared_features(**sizes["features"], repeats=repeats, devices=devices)
        elif c == 4:
            new = case_knn(**sizes["knn"], repeats=repeats)
        elif c == 5:
            new = case_zarr(**sizes["zarr"], repeats=repeats)
        elif c == 6:
            new = case_metrics(**sizes["metrics"], repeats=repeats)
        elif c == 7:
            new = bench_scale.case_rss(**sizes["rss"])
        elif c == 8:
            new = bench_scale.case_ann(**sizes["ann"], repeats=repeats)
        elif c == 9:
            new = bench_scale.case_gemm_floor(**sizes["gemm"], repeats=repeats)
        elif c == 10:
            new = case_bootstrap(**sizes["bootstrap"], repeats=repeats)
        else:
            raise ValueError(f"unknown case {c}; cases are {sorted(CASES)}")
        echo(f"  {time.perf_counter() - t0:.1f} s")
        rows.extend(new)
    bench_scale.release_scale_data()
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.bench", description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="smaller sizes: about a minute on 2 CPU cores")
    ap.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"),
                    help="cuda (or auto with a GPU) also runs cases 1 and 3 on the GPU")
    ap.add_argument("--json", metavar="OUT.json", help="also write the machine and every row as JSON")
    ap.add_argument("--cases", default=",".join(map(str, CASES)),
                    help=f"comma-separated case numbers ({min(CASES)}-{max(CASES)})")
    ap.add_argument("--repeats", type=int, default=3, help="timed runs per path after the warm-up (≥ 3)")
    ap.add_argument("--threads", type=int, default=None,
                    help="cap torch, faiss (OpenMP) and BLAS threads; default: each library's own choice")
    args = ap.parse_args(argv)
    if args.repeats < 3:
        ap.error("--repeats must be at least 3 (the median of fewer is not a measurement)")
    try:
        cases = sorted({int(c) for c in args.cases.split(",") if c.strip()})
    except ValueError:
        ap.error(f"--cases takes numbers {min(CASES)}-{max(CASES)} separated by commas, got {args.cases!r}")
    if not set(cases) <= set(CASES):
        ap.error(f"--cases takes numbers from {sorted(CASES)}, got {cases}")
    from grood.net.device import select_device

    try:
        device = select_device(args.device).type
    except RuntimeError as e:
        ap.error(str(e))
    devices = ("cpu",) if device == "cpu" else ("cpu", device)
    mode = "quick" if args.quick else "full"
    if args.threads is not None:
        if args.threads < 1:
            ap.error(f"--threads must be ≥ 1, got {args.threads}")
        import faiss
        import sklearn.neighbors  # noqa: F401  (load its OpenMP runtime so the limit reaches it)
        from threadpoolctl import threadpool_limits

        threadpool_limits(args.threads)  # every BLAS and OpenMP runtime loaded by now, for the whole run
        torch.set_num_threads(args.threads)
        faiss.omp_set_num_threads(args.threads)

    info = machine(device)
    print(f"benchmarks.bench ({mode}) — " + ", ".join(f"{k} {v}" for k, v in info.items()), flush=True)
    t0 = time.perf_counter()
    rows = run_cases(cases, mode, devices, args.repeats, echo=lambda s: print(s, file=sys.stderr, flush=True))
    total = time.perf_counter() - t0
    print()
    print(format_table(rows))
    print()
    print(LEGEND.format(repeats=args.repeats))
    load = f", load average now {os.getloadavg()[0]:.2f}" if hasattr(os, "getloadavg") else ""
    print(f"total {total:.1f} s{load}")
    if args.json:
        from grood.storage import save_json

        save_json(args.json, {"mode": mode, "repeats": args.repeats, "total_s": total, "machine": info,
                              "rows": [asdict(r) for r in rows]})
    missed = [f"case {r.case} {r.ours} vs {r.reference} ({r.size}): {r.target}" for r in rows if r.met is False]
    if missed:
        print("targets missed (see each row's note for the measured numbers): " + "; ".join(missed))
    failed = [f"case {r.case} {r.ours} vs {r.reference} ({r.size})" for r in rows if not r.agree]
    if failed:
        print("DISAGREEMENT: " + "; ".join(failed), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
