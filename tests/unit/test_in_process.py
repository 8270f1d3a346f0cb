"""The jobs that run inside the Snakemake process (rules ``score_local`` and ``fit_local``): the
same stage functions as the script rules, so the same bytes; they never import torch or faiss
into the scheduler; and each job's log holds only its own thread's lines."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
from grood.detectors import METHODS, fits_from_arrays, make_detector, scores_from_arrays
from grood.detectors.store import save_detector
from grood.method.gradients import grood_gradients
from grood.method.vocab import HEAD_ARRAYS
from grood.stages import job_log
from grood.storage import write_zarr

REPO = Path(__file__).resolve().parents[2]
C, D = 5, 12


def _in_process(cls) -> tuple[bool, bool]:
    """(scored in process, fitted in process) as workflow/rules/common.smk decides, config in_process on."""
    return scores_from_arrays(cls), fits_from_arrays(cls)


ARRAYS = ("features", "logits", "labels", "gradients", "proto_dist", "pi_ood", "gaia_a", "gaia_z")
HEAD = np.random.default_rng(1).normal(size=(D, C)).astype(np.float32)
#: the classifier head z = W h + b of the stores' logits, as fit_detector reads it from a checkpoint
HEAD_FIT = {"head_weight": HEAD.T.copy(), "head_bias": np.zeros(C, np.float32)}


def _stores(tmp_path: Path) -> dict[str, Path]:
    rng = np.random.default_rng(0)
    means = rng.uniform(0, 3, size=(C, D))
    head = HEAD
    paths = {}
    for part, n in (("train", 300), ("test", 120)):
        y = rng.integers(0, C, n)
        h = np.maximum(means[y] + rng.normal(scale=0.8, size=(n, D)), 0).astype(np.float32)
        z = (h @ head).astype(np.float32)
        arrays = {"features": h, "logits": z, "labels": y,
                  "gradients": grood_gradients(h, z, means, means.mean(0) * 0.3),
                  "proto_dist": rng.uniform(0, 2, n).astype(np.float32),
                  "pi_ood": rng.uniform(0, 1, n).astype(np.float32),
                  "gaia_a": rng.uniform(0, 1, (n, 6)).astype(np.float32),  # (N, channels)
                  "gaia_z": rng.uniform(0, 1, (n, 6)).astype(np.float32)}
        paths[part] = tmp_path / f"{part}.zarr"
        write_zarr(paths[part], arrays, chunk_rows=64)
    return paths


def test_in_process_jobs_never_import_torch_or_faiss_and_give_the_script_bytes(tmp_path):
    """Every detector the workflow fits in process is fitted, and every one it scores in process is
    scored, in a fresh interpreter through the stage functions the ``run:`` blocks call (the head
    detectors from the head stage's arrays): torch and faiss stay unimported, the fitted states equal
    in-memory fits and the scores the in-memory ones, bit for bit."""
    from grood.detectors.store import load_detector
    from grood.storage.chunks import open_arrays
    from grood.storage.files import save_npz

    stores = _stores(tmp_path)
    save_npz(tmp_path / "head.npz", HEAD_FIT)
    local_scores, local_fits = [], []
    for method, cls in METHODS.items():
        scored, fitted = _in_process(cls)
        local_fits += [method] if fitted else []
        local_scores += [method] if scored else []
    assert {"msp", "energy", "gradnorm", "mahalanobis", "grood_gnorm"} <= set(local_scores)
    assert {"msp", "odin", "gradnorm", "mahalanobis", "react", "vim", "gaia"} <= set(local_fits)
    assert not {"grood", "knn"} & set(local_fits) and not METHODS["odin"].fit_requires  # ODIN learns nothing
    assert "odin" not in local_scores and "grood" not in local_scores and "knn" not in local_scores
    assert set(local_scores) <= set(local_fits)  # a detector scored in process is fitted in process

    child = f"""
import json, sys
from grood.stages.fit_detector import fit_detector_stage
from grood.stages.score import score_stage
tmp = {str(tmp_path)!r}
for m in {local_fits!r}:
    fit_detector_stage(m, {{}}, [{str(stores['train'])!r}], f"{{tmp}}/{{m}}.npz", head_npz=f"{{tmp}}/head.npz")
for m in {local_scores!r}:
    score_stage(f"{{tmp}}/{{m}}.npz", [{str(stores['test'])!r}], f"{{tmp}}/{{m}}.npy", split="test")
print(json.dumps({{"torch": "torch" in sys.modules, "faiss": "faiss" in sys.modules}}))
"""
    out = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 0, out.stderr[-3000:]
    assert json.loads(out.stdout.strip().splitlines()[-1]) == {"torch": False, "faiss": False}

    test = open_arrays([stores["test"]], ARRAYS)
    train = {**open_arrays([stores["train"]], ARRAYS), **HEAD_FIT}
    for m in local_fits:
        det = make_detector(m, {})
        det.fit(**{k: np.asarray(train[k]) for k in det.fit_requires})
        stored = load_detector(tmp_path / f"{m}.npz").get_state()
        assert sorted(stored) == sorted(det.get_state()), m
        for name, value in det.get_state().items():
            assert np.array_equal(stored[name], value), (m, name)
        if m in local_scores:
            want = np.asarray(det.score(**{k: np.asarray(test[k]) for k in det.requires}), dtype=np.float64)
            got = np.load(tmp_path / f"{m}.npy")
            assert got.dtype == np.float64 and np.array_equal(got, want), m


def test_job_log_keeps_each_threads_lines_and_the_traceback(tmp_path):
    """Two in-process jobs log at once: each file holds its own lines only; a failing job's file
    ends with its traceback and the error still reaches the caller."""
    log = logging.getLogger("grood")
    barrier = threading.Barrier(2)
    errors = []

    def job(name: str, fail: bool):
        try:
            with job_log(str(tmp_path / f"{name}.log")):
                barrier.wait()
                for i in range(50):
                    log.info("%s line %d", name, i)
                if fail:
                    raise RuntimeError(f"{name} broke")
        except RuntimeError as e:
            errors.append(str(e))

    threads = [threading.Thread(target=job, args=("a", False)), threading.Thread(target=job, args=("b", True))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    a = (tmp_path / "a.log").read_text()
    b = (tmp_path / "b.log").read_text()
    assert a.count("a line") == 50 and "b line" not in a
    assert b.count("b line") == 50 and "a line" not in b
    assert "RuntimeError: b broke" in b and "Traceback" in b
    assert errors == ["b broke"]
    assert not [h for h in log.handlers if isinstance(h, logging.FileHandler)]
