"""The scale cases of ``python -m benchmarks.bench`` (7–9): memory that does not grow, approximate search,
exact search against the machine's own GEMM.

7. **Peak RSS** of the whole process — Python, numpy, zarr, faiss and every C++ buffer — for GROOD
   gradient extraction (Zarr features → Zarr gradients) and for the index build, at N and 10·N
   rows: ours streams blocks, the reference reads the whole array first (today's stage way).  Each
   measurement runs in a fresh child process (``python -m benchmarks.bench_scale TASK ARGS``) that
   reports the kernel's high-water mark of its own address space (``VmHWM``), so no measurement
   inherits another's memory.  Target: ours grows < 20% from N to 10·N.
8. **Approximate search** at ≥ 1M × 512 synthetic float32 vectors (seeded, clustered on a
   low-dimensional manifold so that IVF cells are meaningful): IVF-Flat and IVF-PQ against exact
   search of the same ID and OOD queries — speed-up (target ≥ 10×), recall@1 (≥ 0.95) and the
   AUROC change of GROOD scores (−1st distance; target < 0.5 points).
9. **Exact search against GEMM**: the physical floor of exact kNN is the float32 GEMM
   queries × vectorsᵀ; ratio = GEMM time / search time = the fraction of the machine's GEMM speed
   the search reaches (target ≥ 70%), with our faiss settings and with faiss's defaults.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from grood.storage.chunks import iter_blocks

#: case number → name (joined into benchmarks.bench.CASES)
CASES = {7: "peak RSS (streaming)", 8: "approximate search", 9: "exact search vs GEMM"}

GROWTH_TARGET = 0.20
SPEEDUP_TARGET, RECALL_TARGET, AUROC_CHANGE_TARGET = 10.0, 0.95, 0.5
GEMM_FRACTION_TARGET = 0.70


# ------------------------------------------------------------------------------ child processes


def peak_rss_bytes() -> int:
    """This process's peak resident set size in bytes: ``VmHWM`` from ``/proc/self/status`` on Linux.

    Not ``getrusage(RUSAGE_SELF).ru_maxrss``: on Linux, ``exec`` carries the parent's high-water mark
    into the child's ``ru_maxrss`` (measured: a 60 MB child read 648 MB under a parent holding torch),
    while ``VmHWM`` belongs to the new address space only.  Elsewhere, ``ru_maxrss`` (bytes on macOS).
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)


def gradients_in_memory(features_zarr, prototypes, p_ood, out_zarr, batch_size: int = 8192) -> None:
    """Today's gradients stage: read the whole feature store, then compute and write in batches."""
    from grood.method.gradients import grood_gradients, ncp_softmax
    from grood.storage import ZarrWriter, read_zarr

    store, _ = read_zarr(features_zarr, ["features", "logits"])
    n = len(store["features"])
    with ZarrWriter(out_zarr, n, batch_size) as w:
        for start in range(0, n, batch_size):
            h = store["features"][start : start + batch_size]
            z = store["logits"][start : start + batch_size]
            dist, pi = ncp_softmax(h, prototypes, p_ood)
            w.write(start, gradients=grood_gradients(h, z, prototypes, p_ood),
                    proto_dist=dist[:, -1].astype(np.float32), pi_ood=pi[:, -1].astype(np.float32))


def task_gradients(features: str, prototypes: str, out: str, streamed: bool, batch_size: int) -> dict:
    from grood.method.gradient_store import write_gradient_store

    with np.load(prototypes) as p:
        P, p_ood = p["P"], p["p_ood"]
    if streamed:
        write_gradient_store(features, P, p_ood, out, batch_size=batch_size)
    else:
        gradients_in_memory(features, P, p_ood, out, batch_size)
    return {}


def task_index(store: str, array: str, spec: dict, out: str, streamed: bool) -> dict:
    from grood.storage.chunks import open_array
    from grood.search import IndexSpec, build_index, write_index
    from grood.storage import read_zarr

    source = open_array(store, array) if streamed else read_zarr(store, [array])[0][array]
    index = build_index(source, IndexSpec(**spec))
    write_index(index, out)
    return {"ntotal": int(index.ntotal)}


def task_fit_detector(method: str, params: dict, stores: list, out: str) -> dict:
    """The workflow's fit_detector stage (index built, serialised into the detector's .npz)."""
    from grood.stages.fit_detector import fit_detector_stage

    fit_detector_stage(method, params, stores, out)
    return {}


def task_score(detector: str, stores: list, out: str, threads: int = 1) -> dict:
    """The workflow's score stage (the detector's .npz read, its index deserialised and searched)."""
    from grood.stages.score import score_stage

    score_stage(detector, stores, out, threads=threads, search_gpu=False)
    return {}


def task_baseline() -> dict:
    """The same imports as the fit and score tasks, nothing else: the interpreter's own share."""
    import grood.stages.fit_detector  # noqa: F401
    import grood.stages.score  # noqa: F401
    from grood.search.vectors import faiss

    faiss()
    return {}


CHILD_TASKS = {"gradients": task_gradients, "index": task_index, "fit_detector": task_fit_detector,
               "score": task_score, "baseline": task_baseline}


def child_main(argv: list[str]) -> int:
    """``python -m benchmarks.bench_scale TASK JSON``: run one task, print its seconds and peak RSS as JSON."""
    if len(argv) != 2 or argv[0] not in CHILD_TASKS:
        print(f"usage: python -m benchmarks.bench_scale {{{','.join(CHILD_TASKS)}}} JSON-KWARGS", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    result = CHILD_TASKS[argv[0]](**json.loads(argv[1]))
    result.update(seconds=time.perf_counter() - t0, peak_rss=peak_rss_bytes())
    print(json.dumps(result))
    return 0


def run_child(task: str, **kwargs) -> dict:
    """Run one task in a fresh interpreter (same environment, from the repository root); its JSON result."""
    proc = subprocess.run([sys.executable, "-m", "benchmarks.bench_scale", task, json.dumps(kwargs)],
                          capture_output=True, text=True, env=os.environ.copy(), cwd=Path(__file__).resolve().parents[1])
    if proc.returncode != 0:
        raise RuntimeError(f"bench child {task} {kwargs} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ----------------------------------------------------------------------------- 7. peak RSS


def write_feature_store(path: Path, n: int, dim: int, num_classes: int, seed: int, batch: int = 8192) -> None:
    """A synthetic feature store (ReLU-like features, logits, labels) written batch by batch."""
    from grood.storage import ZarrWriter

    rng = np.random.default_rng(seed)
    means = np.abs(rng.normal(size=(num_classes, dim))).astype(np.float32)
    head = rng.normal(size=(dim, num_classes)).astype(np.float32) / np.sqrt(dim)
    with ZarrWriter(path, n, batch) as w:
        for start in range(0, n, batch):
            b = min(batch, n - start)
            y = rng.integers(0, num_classes, b)
            h = np.maximum(means[y] + rng.normal(size=(b, dim)).astype(np.float32), 0)
            w.write(start, features=h, logits=h @ head, labels=y)
    np.savez(path.with_suffix(".protos.npz"), P=means, p_ood=means.mean(0))


def stores_equal(a: Path, b: Path) -> bool:
    """Every array of two Zarr groups equal, read block by block."""
    import zarr

    ga, gb = zarr.open_group(str(a), mode="r"), zarr.open_group(str(b), mode="r")
    names = sorted(k for k, _ in ga.arrays())
    if names != sorted(k for k, _ in gb.arrays()):
        return False
    for name in names:
        x, y = ga[name], gb[name]
        if x.shape != y.shape or x.dtype != y.dtype:
            return False
        for start, block in iter_blocks(x):
            if not np.array_equal(block, np.asarray(y[start : start + len(block)])):
                return False
    return True


def case_rss(n: int = 50_000, dim: int = 512, num_classes: int = 100, factor: int = 10,
             kinds=("ivf_pq", "flat"), nlist: int = 256, m: int = 32, batch_size: int = 8192,
             workdir: str | os.PathLike | None = None, seed: int = 0) -> list:
    """Peak RSS of streamed vs whole-array gradient extraction and index build at N and factor·N."""
    rows = []
    with tempfile.TemporaryDirectory(prefix="grood-bench-rss-", dir=workdir) as tmp:
        tmp = Path(tmp)
        peaks: dict[tuple, dict] = {}
        for size in (n, factor * n):
            store = tmp / f"features-{size}.zarr"
            write_feature_store(store, size, dim, num_classes, seed)
            runs = {}
            for way, streamed in (("streamed", True), ("whole array", False)):
                out = tmp / f"grad-{size}-{streamed}.zarr"
                runs[way] = run_child("gradients", features=str(store), prototypes=str(store.with_suffix(".protos.npz")),
                                      out=str(out), streamed=streamed, batch_size=batch_size)
            ok = stores_equal(tmp / f"grad-{size}-True.zarr", tmp / f"grad-{size}-False.zarr")
            for streamed in (True, False):
                shutil.rmtree(tmp / f"grad-{size}-{streamed}.zarr")
            peaks[("gradients", size)] = runs
            rows.append(_rss_row("GROOD gradients → Zarr", f"N={size:,} D={dim} C={num_classes}", runs, ok,
                                 "outputs bit-equal" if ok else "outputs differ"))
            for kind in kinds:
                spec = {"kind": kind, "nlist": nlist, "m": m, "seed": seed}
                runs, files = {}, {}
                for way, streamed in (("streamed", True), ("whole array", False)):
                    files[way] = tmp / f"index-{kind}-{size}-{streamed}.faiss"
                    runs[way] = run_child("index", store=str(store), array="features", spec=spec,
                                          out=str(files[way]), streamed=streamed)
                    runs[way]["index_bytes"] = files[way].stat().st_size
                ok = files["streamed"].read_bytes() == files["whole array"].read_bytes()
                for f in files.values():
                    f.unlink()
                peaks[(kind, size)] = runs
                rows.append(_rss_row(f"index build ({kind})", f"N={size:,} D={dim}", runs, ok,
                                     f"index {runs['streamed']['index_bytes'] / 2**20:,.0f} MB; "
                                     + ("indexes byte-equal" if ok else "indexes differ")))
            shutil.rmtree(store)
    for i, r in enumerate(rows):  # growth N → factor·N on the factor·N rows
        what = "gradients" if r.name.startswith("GROOD") else r.name[len("index build ("):-1]
        if f"N={factor * n:,}" not in r.size:
            continue
        small, big = peaks[(what, n)], peaks[(what, factor * n)]
        growth = {w: big[w]["peak_rss"] / small[w]["peak_rss"] - 1 for w in small}
        note = f"RSS growth ×{factor} rows: ours {growth['streamed']:+.0%}, whole array {growth['whole array']:+.0%}"
        if what == "flat":  # the flat index *is* the data: judge the memory beside it
            net = {w: (big[w]["peak_rss"] - big[w]["index_bytes"]) / (small[w]["peak_rss"] - small[w]["index_bytes"]) - 1
                   for w in small}
            note += f"; net of the index itself: ours {net['streamed']:+.0%}"
            r.target, r.met = "net growth < 20% (flat holds N·D floats)", net["streamed"] < GROWTH_TARGET
        else:
            r.target, r.met = "growth < 20%", growth["streamed"] < GROWTH_TARGET
        r.note = f"{note}; {r.note}"
    return rows


def _rss_row(name: str, size: str, runs: dict, ok: bool, note: str):
    from benchmarks.harness import Row

    o, r = runs["streamed"], runs["whole array"]
    return Row(7, name, size, "streamed", "whole array", "cpu", o["seconds"], r["seconds"],
               r["seconds"] / o["seconds"], o["peak_rss"] / 2**20, r["peak_rss"] / 2**20, "rss/rss", ok,
               0.0 if ok else float("inf"), 0.0, "one child process per way; " + note,
               [o["seconds"]], [r["seconds"]])


# --------------------------------------------------------------------- synthetic vector space


@dataclass(frozen=True)
class ClusteredSpace:
    """Vectors on a ``latent``-dimensional manifold in ``dim`` dimensions: ``clusters`` Gaussian
    clusters (centres ~ N(0, I), unit spread, so neighbouring clusters overlap) mapped by a fixed
    random linear map, plus isotropic noise.  ID queries come from the same clusters; OOD queries
    from the same centres with ``ood_spread`` times the spread (a covariate shift, not far away)."""

    dim: int = 512
    latent: int = 32
    clusters: int = 1000
    noise: float = 0.1
    ood_spread: float = 1.3
    seed: int = 0

    def _model(self):
        rng = np.random.default_rng(self.seed)
        centres = rng.standard_normal((self.clusters, self.latent)).astype(np.float32)
        lift = (rng.standard_normal((self.latent, self.dim)) / np.sqrt(self.latent)).astype(np.float32)
        return centres, lift

    def draw(self, n: int, stream: int, spread: float = 1.0, block: int = 65536):
        """``n`` vectors from random stream ``stream``, yielded in blocks (never all at once)."""
        centres, lift = self._model()
        rng = np.random.default_rng([self.seed, stream])
        for start in range(0, n, block):
            b = min(block, n - start)
            z = centres[rng.integers(0, self.clusters, b)] + spread * rng.standard_normal((b, self.latent),
                                                                                            dtype=np.float32)
            yield z @ lift + self.noise * rng.standard_normal((b, self.dim), dtype=np.float32)

    def queries(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        return (np.concatenate(list(self.draw(n, 2))), np.concatenate(list(self.draw(n, 3, self.ood_spread))))


_SCALE_DATA: dict = {}


def scale_data(n: int, dim: int, n_queries: int, seed: int = 0):
    """(flat index over n vectors, its float32 storage (a view, no copy), ID queries, OOD queries),
    built once per process for cases 8 and 9; the vectors exist only inside the flat index."""
    from grood.search.exact import flat_storage
    from grood.search.vectors import faiss

    key = (n, dim, n_queries, seed)
    if key not in _SCALE_DATA:
        _SCALE_DATA.clear()
        space = ClusteredSpace(dim=dim, clusters=max(1, n // 1000), seed=seed)
        flat = faiss().IndexFlatL2(dim)
        for block in space.draw(n, 1):
            flat.add(block)
        _SCALE_DATA[key] = (flat, flat_storage(flat)[0], *space.queries(n_queries))
    return _SCALE_DATA[key]


def release_scale_data() -> None:
    """Free the cached vectors (GBs at full size)."""
    _SCALE_DATA.clear()


# ---------------------------------------------------------------------- 8. approximate search


def case_ann(n: int = 1_000_000, dim: int = 512, n_queries: int = 1000, nlist: int = 1024, nprobe: int = 32,
             m: int = 64, k: int = 1, repeats: int = 3, seed: int = 0) -> list:
    """IVF-Flat and IVF-PQ vs exact search: speed-up, recall@k and GROOD's AUROC change."""
    from benchmarks.harness import Way, agreement, make_row, measure
    from grood.search import IndexSpec, build_index, search
    from grood.search.exact import canonical_distances
    from grood.search.quality import auroc_change, recall_at_k

    flat, vectors, q_id, q_ood = scale_data(n, dim, n_queries, seed)
    queries = np.concatenate([q_id, q_ood])
    built, build_s = {}, {}
    for kind in ("ivf_flat", "ivf_pq"):
        t0 = time.perf_counter()
        built[kind] = build_index(vectors, IndexSpec(kind=kind, nlist=nlist, nprobe=nprobe, m=m, seed=seed))
        build_s[kind] = time.perf_counter() - t0
    ways = {"exact": Way(lambda: search(flat, queries, k, use_gpu=False), memory=None)}
    for kind, index in built.items():
        ways[kind] = Way(lambda index=index: search(index, queries, k, use_gpu=False), memory=None)
    # faiss's own IVF-Flat search (one query at a time), the way grood searched before ivf_blocked
    ways["faiss ivf_flat"] = Way(lambda: built["ivf_flat"].search(queries, k), memory=None)
    res = measure(ways, repeats)
    exact_d, exact_i = res["exact"].output
    size = f"{n:,} × {dim}, {len(q_id):,}+{len(q_ood):,} queries, k={k}"
    rows = []
    for kind in built:
        d, i = res[kind].output
        recall = recall_at_k(i, exact_i, k)
        delta = auroc_change(-exact_d[:n_queries, k - 1], -exact_d[n_queries:, k - 1],
                             -d[:n_queries, k - 1], -d[n_queries:, k - 1])
        found = i[:, 0] >= 0
        true = canonical_distances(queries[found], vectors, i[found, :1])[:, 0]
        if kind == "ivf_flat":  # full vectors: the distance of what it finds is the exact distance
            tol = 1e-5
            ok_err = agreement(d[found, 0], true, tol)
            check = "its distances = exact distances of the ids found"
            extra = ""
        else:  # codes: its distance is the exact distance to the *decoded* vector
            tol = 1e-4
            decoded = _decoded(built[kind], i[found, 0])
            ok_err = agreement(d[found, 0], canonical_distances(queries[found], decoded,
                                                                np.arange(len(decoded))[:, None])[:, 0], tol)
            check = "its distances = exact distances to its decoded vectors"
            rel = float(np.median(np.abs(d[found, 0] - true) / np.maximum(true, 1e-12)))
            extra = f"median error of its distance estimates {rel:.1%}; "
        spec = f"nlist={built[kind].nlist} nprobe={built[kind].nprobe}" + (f" m={m}" if kind == "ivf_pq" else "")
        row = make_row(8, "approximate search", size, kind, "exact", res, ok_err, tol, "cpu",
                       f"{spec}; recall@{k} {recall:.3f}; AUROC {delta['auroc_exact']:.4f} → "
                       f"{delta['auroc_approx']:.4f} ({delta['auroc_change_points']:+.2f} points); "
                       f"{extra}build {build_s[kind]:.0f} s; agree = {check}")
        row.memory = "none/none"
        if kind == "ivf_flat":
            row.target = f"≥{SPEEDUP_TARGET:.0f}×, recall@1 ≥ {RECALL_TARGET}, |ΔAUROC| < {AUROC_CHANGE_TARGET}"
            row.met = (row.ratio >= SPEEDUP_TARGET and recall >= RECALL_TARGET
                       and abs(delta["auroc_change_points"]) < AUROC_CHANGE_TARGET)
        rows.append(row)
    d, i = res["faiss ivf_flat"].output
    ours_i = res["ivf_flat"].output[1]
    row = make_row(8, "approximate search", size, "faiss ivf_flat", "exact", res,
                   agreement(d[:, 0], res["ivf_flat"].output[0][:, 0], 1e-5), 1e-5, "cpu",
                   f"faiss's own IVF-Flat search (per query, memory-bound) on the same index; recall@{k} "
                   f"{recall_at_k(i, exact_i, k):.3f}; same ids as ours for {np.mean(i == ours_i):.4f} of "
                   f"the queries; agree = its distances vs ours")
    row.memory = "none/none"
    rows.append(row)
    return rows


def _decoded(index, ids: np.ndarray) -> np.ndarray:
    """The vectors an IVF-PQ index stores for ``ids`` (coarse centroid + decoded residual)."""
    index.make_direct_map()
    return np.stack([index.reconstruct(int(i)) for i in ids]).astype(np.float32)


# -------------------------------------------------------------------- 9. exact search vs GEMM


def gemm_floor(queries: np.ndarray, vectors: np.ndarray, block: int = 16384, lib: str = "numpy") -> float:
    """queries × vectorsᵀ in float32, block by block into one reused buffer (the output is not kept:
    exact search needs only each block's top-k); returns a checksum so the work cannot be skipped."""
    total = 0.0
    if lib == "torch":
        import torch

        q = torch.from_numpy(np.ascontiguousarray(queries))
        buf = torch.empty((len(queries), block))
        for start in range(0, len(vectors), block):
            x = torch.from_numpy(vectors[start : start + block])
            out = buf[:, : len(x)]
            torch.matmul(q, x.T, out=out)
            total += float(out[0, 0])
        return total
    buf = np.empty((len(queries), block), dtype=np.float32)
    for start in range(0, len(vectors), block):
        x = vectors[start : start + block]
        out = buf[:, : len(x)]
        np.matmul(queries, x.T, out=out)
        total += float(out[0, 0])
    return total


def brute_force_kth(queries: np.ndarray, vectors: np.ndarray, k: int, block: int = 65536) -> np.ndarray:
    """float64 k-th smallest squared distance per query: the independent reference (few queries)."""
    q = queries.astype(np.float64)
    best = np.full((len(q), 0), np.inf)
    for start in range(0, len(vectors), block):
        x = vectors[start : start + block].astype(np.float64)
        d = (q**2).sum(1)[:, None] - 2.0 * q @ x.T + (x**2).sum(1)[None]
        best = np.sort(np.hstack([best, np.partition(d, min(k, d.shape[1]) - 1, 1)[:, :k]]), 1)[:, :k]
    return best[:, k - 1]


def case_gemm_floor(n: int = 1_000_000, dim: int = 512, n_queries: int = 1000, ks=(1, 50), repeats: int = 3,
                    check_queries: int = 32, seed: int = 0) -> list:
    """faiss flat search (our GEMM blocks; faiss's defaults) vs a bare float32 GEMM of the same shapes."""
    import torch

    from benchmarks.harness import Way, agreement, make_row, measure
    from grood.search import search
    from grood.search.vectors import faiss

    flat, vectors, q_id, _ = scale_data(n, dim, n_queries, seed)
    queries = q_id
    cv = faiss().cvar
    defaults = (cv.distance_compute_blas_query_bs, cv.distance_compute_blas_database_bs)

    def faiss_defaults(k):
        def run():  # faiss's own settings, whatever grood.search.query sets around its calls
            return flat.search(queries, k)
        return run

    ways = {}
    for k in ks:
        ways[f"faiss flat k={k}"] = Way(lambda k=k: search(flat, queries, k, use_gpu=False), memory=None)
        ways[f"faiss defaults k={k}"] = Way(faiss_defaults(k), memory=None)
    ways["numpy GEMM"] = Way(lambda: gemm_floor(queries, vectors), memory=None)
    ways["torch GEMM"] = Way(lambda: gemm_floor(queries, vectors, lib="torch"), memory=None)
    res = measure(ways, repeats)
    assert (cv.distance_compute_blas_query_bs, cv.distance_compute_blas_database_bs) == defaults
    size = f"{n_queries:,}q × {n:,} d={dim}"
    threads = (f"threads: faiss {faiss().omp_get_max_threads()}, torch {torch.get_num_threads()}, "
               f"numpy BLAS {_blas_threads()}")
    rows = []
    tol = 1e-4
    for k in ks:
        ref = brute_force_kth(queries[:check_queries], vectors, k)
        for ours, label in ((f"faiss flat k={k}", "ours: GEMM blocks 2048×8192"),
                            (f"faiss defaults k={k}", "faiss defaults: blocks 4096×1024")):
            d, _ = res[ours].output
            row = make_row(9, "exact search vs GEMM", size, ours, "numpy GEMM", res,
                           agreement(d[:check_queries, k - 1], ref, tol), tol, "cpu",
                           f"ratio = share of the GEMM's speed reached; {label}; agree: first "
                           f"{check_queries} queries vs float64 brute force; {threads}")
            row.memory = "none/none"
            if ours.startswith("faiss flat"):
                row.target, row.met = f"≥ {GEMM_FRACTION_TARGET:.0%} of GEMM", row.ratio >= GEMM_FRACTION_TARGET
            rows.append(row)
    k = ks[0]
    d, _ = res[f"faiss flat k={k}"].output
    row = make_row(9, "exact search vs GEMM", size, f"faiss flat k={k}", "torch GEMM", res,
                   agreement(d[:check_queries, k - 1], brute_force_kth(queries[:check_queries], vectors, k), tol),
                   tol, "cpu", f"torch's GEMM (MKL) as the floor; {threads}")
    row.memory = "none/none"
    rows.append(row)
    return rows


def _blas_threads() -> str:
    try:
        from threadpoolctl import threadpool_info

        return ",".join(str(i["num_threads"]) for i in threadpool_info() if i.get("user_api") == "blas") or "?"
    except Exception:  # threadpoolctl missing or a runtime it cannot read
        return "?"


if __name__ == "__main__":
    sys.exit(child_main(sys.argv[1:]))
