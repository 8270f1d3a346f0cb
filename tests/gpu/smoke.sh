#!/usr/bin/env bash
# GPU smoke test: the whole workflow on a small ImageNet-like image subset, once on the GPU and once
# on the CPU, compared; plus dry runs through both SLURM profiles.
#
#   tests/gpu/smoke.sh                      # from the repository root, grood installed (+ faiss-gpu)
#   SMOKE_DIR=/tmp/smoke tests/gpu/smoke.sh # keep the run's files there (default: a new temp dir)
#   SMOKE_CPU_ONLY=1 tests/gpu/smoke.sh     # no GPU: the CPU run, the checks and the dry runs only
#                                           # (tests the script itself on a machine without a GPU)
#
# Data: `python -m benchmarks.costcheck --no-run` at a small size: synthetic 500×375 JPEGs in
# OpenOOD-style image lists (an ID set with train/test lists, a near and a far OOD set), a randomly
# initialised ResNet-18 as the given checkpoint (nothing is trained) and config/imagenet.yaml's
# detectors (exact and IVF GROOD, k-NN, Mahalanobis, ODIN, GradNorm, the logit scores). Nothing is
# downloaded.
#
# Checks (a PASS/FAIL table at the end; exit 1 when any check fails, 2 when no GPU is visible):
#   gpu run / cpu run   the workflow finishes with `device: cuda` (and `search: {gpu: true}` when
#                       faiss sees a GPU) and with `device: cpu`, into separate results folders;
#   metrics             every (detector, seed, OOD set) AUROC of the GPU run within SMOKE_AUROC_TOL
#                       points (default 0.5) of the CPU run's. GPU convolutions are not bit-identical
#                       to CPU ones (other algorithms, other summation order), so the features, and
#                       every score computed from them, differ in the last bits: metrics get a
#                       tolerance, not equality. The largest relative score difference per detector
#                       is printed for information;
#   exact search        k-NN scores are exact when they come from the same features: the canonical
#                       exact search (grood.search.query.exact_kth_distance, k = 1, 10 and the config's
#                       k-NN k) over the CPU run's training features, queried with its test features,
#                       gives the same bits on the GPU (faiss-gpu) as on the CPU, and on 1 thread as on
#                       all of them;
#   dry run slurm /     `snakemake -n --profile profiles/slurm` and `--profile profiles/slurm-imagenet`
#   slurm-imagenet      plan the whole workflow of the same config (both profiles' rule shapes and
#                       resources parse; nothing is submitted).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$REPO"
PY=${PYTHON:-python}
CPU_ONLY=${SMOKE_CPU_ONLY:-0}
TOL=${SMOKE_AUROC_TOL:-0.5}
CORES=${SMOKE_CORES:-$(nproc)}
WORK=${SMOKE_DIR:-$(mktemp -d -t grood-smoke.XXXXXX)}
mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)
echo "smoke: working in $WORK"

# ------------------------------------------------------------------ is there a GPU?
SEARCH_GPU=false
if [[ $CPU_ONLY == 1 ]]; then
    echo "smoke: SMOKE_CPU_ONLY=1: no GPU run, CPU run and checks only (tests the script, not the GPU)"
else
    if ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L >/dev/null 2>&1; then
        echo "smoke: FAIL: no GPU visible (nvidia-smi missing or failing). Run on a GPU machine, or set SMOKE_CPU_ONLY=1 to test the script itself." >&2
        exit 2
    fi
    if ! "$PY" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)'; then
        echo "smoke: FAIL: nvidia-smi sees a GPU but torch.cuda.is_available() is false (a CPU build of torch, or a driver too old for its CUDA)." >&2
        exit 2
    fi
    nvidia-smi -L
    NFAISS=$("$PY" -c 'import faiss; print(faiss.get_num_gpus() if hasattr(faiss, "get_num_gpus") else 0)' 2>/dev/null | tail -n 1 || true)
    [[ $NFAISS =~ ^[0-9]+$ ]] || NFAISS=0
    if [[ $NFAISS -ge 1 ]]; then
        SEARCH_GPU=true
        echo "smoke: faiss sees $NFAISS GPU(s): the GPU run searches on the GPU (search: {gpu: true})"
    else
        echo "smoke: faiss has no GPU (faiss-cpu installed): the GPU run tests CPU search (search: {gpu: false})"
    fi
fi

# ------------------------------------------------------------------ data and configs
"$PY" -m benchmarks.costcheck "$WORK" --no-run --classes ${SMOKE_CLASSES:-10} --per-class ${SMOKE_PER_CLASS:-40} \
    --test ${SMOKE_TEST:-80} --ood ${SMOKE_OOD:-40} --pool ${SMOKE_POOL:-600}
"$PY" - "$WORK" "$SEARCH_GPU" "$CORES" <<'EOF'
import sys
from pathlib import Path

import yaml

work, search_gpu, cores = Path(sys.argv[1]), sys.argv[2] == "true", int(sys.argv[3])
base = yaml.safe_load((work / "config.yaml").read_text())
base["threads"] = max(1, min(cores, 8))
runs = {"cpu": {"device": "cpu", "search": {"gpu": False}},
        "gpu": {"device": "cuda", "search": {"gpu": search_gpu}},
        "dry": {"device": "cuda", "search": {"gpu": True}}}  # planned only: the profiles' GPU shapes
for name, over in runs.items():
    (work / f"config_{name}.yaml").write_text(yaml.safe_dump({**base, **over, "results_dir": f"results_{name}"},
                                                             sort_keys=False))
EOF

declare -A RESULT DETAIL
ORDER=()
record() { ORDER+=("$1"); RESULT[$1]=$2; DETAIL[$1]=$3; }

run_workflow() {  # name
    local name=$1 start rc
    start=$(date +%s)
    set +e
    "$PY" -m snakemake --snakefile "$REPO/Snakefile" --directory "$WORK" --configfile "$WORK/config_$name.yaml" \
        --cores "$CORES" >"$WORK/$name.log" 2>&1
    rc=$?
    set -e
    if [[ $rc -eq 0 ]]; then
        record "$name run" PASS "$(($(date +%s) - start)) s, log $WORK/$name.log"
    else
        record "$name run" FAIL "exit $rc after $(($(date +%s) - start)) s: see $WORK/$name.log"
        tail -n 30 "$WORK/$name.log" >&2
    fi
}

[[ $CPU_ONLY == 1 ]] || run_workflow gpu
run_workflow cpu

# ------------------------------------------------------------------ compare
set +e
"$PY" - "$WORK" "$CPU_ONLY" "$TOL" "$SEARCH_GPU" >"$WORK/compare.tsv" 2>"$WORK/compare.log" <<'EOF'
import sys
from pathlib import Path

import numpy as np

work, cpu_only, tol, search_gpu = Path(sys.argv[1]), sys.argv[2] == "1", float(sys.argv[3]), sys.argv[4] == "true"


def row(check, ok, detail):
    print(f"{check}\t{'PASS' if ok else 'FAIL'}\t{detail}")


# metrics: GPU vs CPU AUROC
cpu_m = work / "results_cpu" / "check" / "metrics.csv"
gpu_m = work / "results_gpu" / "check" / "metrics.csv"
if not cpu_only and cpu_m.exists() and gpu_m.exists():
    import pandas as pd

    a, b = pd.read_csv(cpu_m), pd.read_csv(gpu_m)
    keys = [c for c in ("seed", "detector", "ood", "group") if c in a.columns]
    both = a.merge(b, on=keys, suffixes=("_cpu", "_gpu"), validate="one_to_one")
    scale = 100.0 if a["auroc"].max() <= 1.0 else 1.0  # points
    diff = (both["auroc_gpu"] - both["auroc_cpu"]).abs() * scale
    worst = both.loc[diff.idxmax()] if len(both) else None
    ok = len(both) == len(a) == len(b) and len(both) > 0 and bool((diff <= tol).all())
    row("metrics", ok, f"{len(both)} (detector, OOD set) AUROCs, largest |GPU - CPU| {diff.max():.3f} points "
        f"({worst['detector'] if worst is not None else '-'}); tolerance {tol} points")
    for det in sorted({p.name for p in (work / "results_cpu" / "check" / "seed0" / "scores").iterdir()}):
        rel = 0.0
        for f in (work / "results_cpu" / "check" / "seed0" / "scores" / det).glob("*.npy"):
            x, y = np.load(f), np.load(work / "results_gpu" / "check" / "seed0" / "scores" / det / f.name)
            rel = max(rel, float(np.max(np.abs(x - y) / np.maximum(np.abs(x), 1e-12))) if x.size else 0.0)
        print(f"# scores {det}: largest relative GPU-CPU difference {rel:.2e}", file=sys.stderr)
elif not cpu_only:
    row("metrics", False, "a run's metrics.csv is missing")

# the canonical exact search: same bits on 1 and N threads, and on the GPU when faiss has one
feats = work / "results_cpu" / "check" / "seed0" / "features"
if (feats / "train.zarr").exists() and (feats / "test.zarr").exists():
    import os

    import yaml

    from grood.search.build import build_unique_index
    from grood.search.query import exact_kth_distance
    from grood.search.vectors import search_threads
    from grood.storage.files import read_zarr

    train, _ = read_zarr(feats / "train.zarr", ["features"])
    test, _ = read_zarr(feats / "test.zarr", ["features"])
    x, q = np.ascontiguousarray(train["features"], np.float32), np.ascontiguousarray(test["features"], np.float32)
    k_knn = yaml.safe_load((work / "config_cpu.yaml").read_text())["detectors"]["knn"]["k"]
    index, duplicates = build_unique_index(x)  # as the detectors build it
    ok, notes = True, []
    n_threads = max(2, os.cpu_count() or 2)
    for k in sorted({1, 10, int(k_knn)}):
        with search_threads(1):
            one = exact_kth_distance(index, q, k, use_gpu=False, duplicates=duplicates)
        with search_threads(n_threads):
            many = exact_kth_distance(index, q, k, use_gpu=False, duplicates=duplicates)
        same = np.array_equal(one, many)
        if search_gpu:
            gpu = exact_kth_distance(index, q, k, use_gpu=True, duplicates=duplicates)
            same = same and np.array_equal(one, gpu)
        ok &= same
        notes.append(f"k={k} {'identical' if same else 'DIFFERENT'}")
    where = f"1 thread, {n_threads} threads" + (" and the GPU" if search_gpu else " (no faiss GPU: CPU only)")
    row("exact search", ok, f"{len(x)}×{x.shape[1]} train features, {len(q)} queries: {', '.join(notes)} on {where}")
else:
    row("exact search", False, "the CPU run's features are missing")
EOF
rc=$?
set -e
cat "$WORK/compare.log" >&2
if [[ $rc -ne 0 ]]; then
    record compare FAIL "the comparison crashed (exit $rc): see $WORK/compare.log"
fi
while IFS=$'\t' read -r check status detail; do
    record "$check" "$status" "$detail"
done <"$WORK/compare.tsv"

# ------------------------------------------------------------------ both profiles plan the workflow
for profile in slurm slurm-imagenet; do
    set +e
    "$PY" -m snakemake -n --profile "$REPO/profiles/$profile" --snakefile "$REPO/Snakefile" --directory "$WORK" \
        --configfile "$WORK/config_dry.yaml" >"$WORK/dry_$profile.log" 2>&1
    rc=$?
    set -e
    jobs=$(awk '$1 == "total" {print $2; exit}' "$WORK/dry_$profile.log")
    if [[ $rc -eq 0 && -n $jobs ]]; then
        record "dry run $profile" PASS "$jobs jobs planned"
    else
        record "dry run $profile" FAIL "exit $rc: see $WORK/dry_$profile.log"
        tail -n 20 "$WORK/dry_$profile.log" >&2
    fi
done

# ------------------------------------------------------------------ the table
failed=0
echo
printf '%-24s %-6s %s\n' check result detail
printf '%-24s %-6s %s\n' ----- ------ ------
for check in "${ORDER[@]}"; do
    printf '%-24s %-6s %s\n' "$check" "${RESULT[$check]}" "${DETAIL[$check]}"
    [[ ${RESULT[$check]} == PASS ]] || failed=1
done
if [[ $CPU_ONLY == 1 ]]; then
    echo "(SMOKE_CPU_ONLY=1: nothing ran on a GPU)"
fi
if [[ $failed -eq 0 ]]; then echo "smoke: PASS"; else echo "smoke: FAIL"; fi
exit $failed
