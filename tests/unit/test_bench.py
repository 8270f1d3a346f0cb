"""The benchmark's cases at tiny sizes, through the same functions the command runs.

These tests keep ``python -m benchmarks.bench`` from rotting: every case must run, its fast and reference
paths must agree, and every ratio must be a positive finite number.  They never assert on speed.
"""

import json
import math

import numpy as np
import pytest
import torch

from benchmarks import bench, bench_scale, harness

TINY = {
    "gradients": {"n": 120, "dims": (8, 16), "num_classes": 4},
    "gradnorm": {"n": 50, "dim": 16, "num_classes": 5},
    "features": {"n": 48, "k_detectors": 3},
    "knn": {"n_queries": 40, "n_index": 300, "dims": (8,), "k": 5},
    "zarr": {"n_rows": 300, "width": 8},
    "metrics": {"n": 2_000},
    "rss": {"n": 600, "dim": 16, "num_classes": 5, "factor": 3, "nlist": 8, "m": 4, "batch_size": 128},
    "ann": {"n": 6_000, "dim": 16, "n_queries": 80, "nlist": 16, "nprobe": 4, "m": 4},
    "gemm": {"n": 6_000, "dim": 16, "n_queries": 80, "check_queries": 8},
    "bootstrap": {"n_id": 300, "n_ood": 200, "n_resamples": 40, "n_naive": 8},
}


def check_rows(rows, case, n_rows):
    assert len(rows) == n_rows
    for r in rows:
        assert r.case == case
        assert r.agree, f"{r.ours} vs {r.reference}: relative error {r.error} > {r.tol}"
        assert math.isfinite(r.ratio) and r.ratio > 0
        assert r.ours_s > 0 and r.ref_s > 0
        assert len(r.ours_times) == len(r.ref_times) >= 1
        for mb in (r.ours_peak_mb, r.ref_peak_mb):
            assert mb is None or (math.isfinite(mb) and mb >= 0)


def test_gradients_case():
    rows = bench.case_gradients(**TINY["gradients"], repeats=1)
    check_rows(rows, 1, 4)  # two dims × (per-sample autograd, vmap)
    assert {r.reference for r in rows} == {"per-sample autograd", "vmap(grad)"}
    assert all(r.ours_peak_mb is not None for r in rows)  # numpy closed form: tracemalloc sees it


def test_vmap_reference_matches_closed_form_at_other_temperatures():
    h, z, P, po = bench.gradient_problem(30, 6, 3)
    from grood.method.gradients import grood_gradients

    for t in (0.5, 2.0):
        ok, err = harness.agreement(grood_gradients(h, z, P, po, temperature=t),
                                  bench.grood_gradients_vmap(h, z, P, po, temperature=t, chunk_size=7), 1e-5)
        assert ok, err


def test_gradnorm_case():
    check_rows(bench.case_gradnorm(**TINY["gradnorm"], repeats=1), 2, 1)


@pytest.mark.slow  # runs a network five times
def test_shared_features_case():
    rows = bench.case_shared_features(**TINY["features"], repeats=1, batch_size=16)
    check_rows(rows, 3, 1)
    assert rows[0].tol == 0  # on the CPU the shared and re-run forward passes are bit-equal


def test_shareable_detectors_refuse_too_many():
    with pytest.raises(ValueError, match="detectors"):
        bench.shareable_detectors(1000)


def test_knn_case():
    rows = bench.case_knn(**TINY["knn"], repeats=1)
    check_rows(rows, 4, 2)
    assert {r.reference for r in rows} == {"sklearn brute", "numpy brute"}


def test_zarr_case(tmp_path):
    rows = bench.case_zarr(**TINY["zarr"], batch_rows=64, aligned_chunk=64, misaligned_chunk=50, repeats=1,
                           workdir=tmp_path)
    check_rows(rows, 5, 1)
    assert rows[0].tol == 0
    assert list(tmp_path.iterdir()) == []  # every store written is cleaned up


def test_metrics_case():
    check_rows(bench.case_metrics(**TINY["metrics"], repeats=1), 6, 1)


def test_bootstrap_case():
    rows = bench.case_bootstrap(**TINY["bootstrap"], repeats=1)
    check_rows(rows, 10, 2)  # AUROC alone, then all five metrics
    assert all("8 of the 40 resamples" in r.note and "×5" in r.note for r in rows)
    assert all(r.ref_times[0] > 0 for r in rows)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_gpu_rows():
    rows = bench.case_gradients(n=64, dims=(8,), num_classes=4, repeats=1, devices=("cpu", "cuda"))
    gpu = [r for r in rows if r.device == "cuda"]
    check_rows(gpu, 1, 1)
    assert gpu[0].memory == "host/cuda" and gpu[0].ref_peak_mb is not None
    rows = bench.case_shared_features(n=32, k_detectors=2, repeats=1, devices=("cuda",), batch_size=16)
    check_rows(rows, 3, 1)
    assert rows[0].memory == "cuda/cuda"


def test_measure_interleaves_and_rotates():
    calls = []
    ways = {name: harness.Way(lambda name=name: calls.append(name) or name, memory=None) for name in "abc"}
    m = harness.measure(ways, repeats=3)
    assert calls[:3] == ["a", "b", "c"]  # warm-up
    assert calls[3:] == ["a", "b", "c", "b", "c", "a", "c", "a", "b"]
    assert all(len(v.times) == 3 and v.output == k for k, v in m.items())


def test_measure_takes_host_peak_of_numpy_buffers():
    m = harness.measure({"big": harness.Way(lambda: np.ones(4 << 20).sum())}, repeats=1)  # 32 MB float64
    assert m["big"].peak_bytes >= 32 << 20


def test_agreement_rules():
    assert harness.agreement([1.0, 2.0], [1.0, 2.0 + 1e-9], 1e-6)[0]
    assert not harness.agreement([1.0, 2.0], [1.0, 2.1], 1e-6)[0]
    assert not harness.agreement([0.0, 0.0], [0.0, 0.0], 1e-6)[0]  # agreement between zeros proves nothing
    assert not harness.agreement([1.0], [1.0, 2.0], 1e-6)[0]
    assert not harness.agreement([np.nan, 1.0], [1.0, 1.0], 1e-6)[0]
    assert harness.agreement([1.5], [1.5], 0)[0] and not harness.agreement([1.5], [1.5 + 1e-15], 0)[0]


@pytest.mark.slow  # runs every case
def test_command_prints_table_and_writes_json(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(bench.SIZES, "quick", TINY)
    out = tmp_path / "bench.json"
    assert bench.main(["--quick", "--device", "cpu", "--cases", "1,5,6", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "torch_threads" in printed and "ratio" in printed and "closed form vs vmap(grad)" in printed
    result = json.loads(out.read_text())
    assert result["mode"] == "quick" and result["machine"]["device"] == "cpu"
    assert {r["case"] for r in result["rows"]} == {1, 5, 6}
    assert all(r["agree"] and r["ratio"] > 0 and len(r["ours_times"]) == 3 for r in result["rows"])


@pytest.mark.parametrize("argv", [["--repeats", "2"], ["--cases", "99"], ["--cases", "x"], ["--threads", "0"]])
def test_command_refuses_bad_arguments(argv):
    with pytest.raises(SystemExit) as e:
        bench.main(argv)
    assert e.value.code == 2


def test_disagreement_fails_the_command(monkeypatch, capsys):
    monkeypatch.setitem(bench.SIZES, "quick", TINY)
    wrong = {"auroc": 0.1, "aupr_in": 0.1, "aupr_out": 0.1, "fpr95_id": 0.9, "fpr95_ood": 0.9}
    monkeypatch.setattr(bench, "sklearn_ood_metrics", lambda a, b: wrong)
    assert bench.main(["--quick", "--device", "cpu", "--cases", "6"]) == 1
    assert "DISAGREEMENT" in capsys.readouterr().err


# ------------------------------------------------------------------------------ scale cases (7–9)


@pytest.mark.slow  # a child-process benchmark: the slow tier
def test_rss_case(tmp_path):
    rows = bench_scale.case_rss(**TINY["rss"], workdir=tmp_path)
    check_rows(rows, 7, 6)  # (gradients, ivf_pq, flat) × (N, 3N)
    assert all(r.memory == "rss/rss" and r.ours_peak_mb > 10 and r.ref_peak_mb > 10 for r in rows)
    assert all(r.tol == 0 for r in rows)  # streamed and whole-array outputs are bit-equal
    grown = [r for r in rows if "N=1,800" in r.size]
    assert len(grown) == 3 and all(isinstance(r.met, bool) and "growth" in r.note for r in grown)
    assert list(tmp_path.iterdir()) == []  # stores and indexes cleaned up


@pytest.mark.slow  # a child-process benchmark: the slow tier
def test_child_peak_rss_is_its_own(tmp_path):
    """A child's peak must not include the parent's memory (Linux carries ru_maxrss across exec)."""
    held = np.ones(300 << 17)  # 300 MB, touched, in this process
    bench_scale.write_feature_store(tmp_path / "f.zarr", 200, 8, 3, seed=0)
    r = bench_scale.run_child("gradients", features=str(tmp_path / "f.zarr"),
                              prototypes=str(tmp_path / "f.protos.npz"), out=str(tmp_path / "g.zarr"),
                              streamed=True, batch_size=64)
    assert 10 << 20 < r["peak_rss"] < 250 << 20 and held.sum() > 0
    with pytest.raises(RuntimeError, match="bench child index"):
        bench_scale.run_child("index", store=str(tmp_path / "missing.zarr"), array="features", spec={},
                              out=str(tmp_path / "i.faiss"), streamed=True)


def test_ann_case():
    rows = bench_scale.case_ann(**TINY["ann"], repeats=1)
    check_rows(rows, 8, 3)
    assert [r.ours for r in rows] == ["ivf_flat", "ivf_pq", "faiss ivf_flat"]
    assert all(r.reference == "exact" for r in rows)
    assert isinstance(rows[0].met, bool) and rows[1].met is None and rows[2].met is None
    assert rows[2].agree  # faiss's own IVF search finds what ours finds, at the same distances
    assert "recall@1" in rows[0].note and "AUROC" in rows[0].note


def test_gemm_floor_case():
    rows = bench_scale.case_gemm_floor(**TINY["gemm"], repeats=1)
    check_rows(rows, 9, 5)
    assert {r.reference for r in rows} == {"numpy GEMM", "torch GEMM"}
    assert [r.met is not None for r in rows] == [True, False, True, False, False]


def test_gemm_floor_computes_the_product():
    rng = np.random.default_rng(0)
    q, x = rng.normal(size=(5, 8)).astype(np.float32), rng.normal(size=(50, 8)).astype(np.float32)
    for lib in ("numpy", "torch"):
        total = bench_scale.gemm_floor(q, x, block=16, lib=lib)
        assert total == pytest.approx(sum(float(q[0] @ x[j]) for j in range(0, 50, 16)), rel=1e-5)


def test_clustered_space_is_seeded():
    space = bench_scale.ClusteredSpace(dim=8, latent=3, clusters=4, seed=1)
    a = np.concatenate(list(space.draw(100, 1, block=30)))
    b = np.concatenate(list(space.draw(100, 1, block=30)))
    c = np.concatenate(list(bench_scale.ClusteredSpace(dim=8, latent=3, clusters=4, seed=2).draw(100, 1)))
    assert a.shape == (100, 8) and a.dtype == np.float32 and np.array_equal(a, b) and not np.array_equal(a, c)


def test_missed_target_is_reported_not_failed(monkeypatch, capsys):
    def fake_case(**_):
        row = harness.Row(9, "exact search vs GEMM", "tiny", "a", "b", "cpu", 1.0, 0.5, 0.5, None, None,
                        "none/none", True, 0.0, 1e-4, "note", [1.0], [0.5], target="≥ 70% of GEMM", met=False)
        return [row]

    monkeypatch.setattr(bench_scale, "case_gemm_floor", fake_case)
    monkeypatch.setitem(bench.SIZES, "quick", TINY)
    assert bench.main(["--quick", "--device", "cpu", "--cases", "9"]) == 0
    out = capsys.readouterr().out
    assert "MISSED: ≥ 70% of GEMM" in out and "targets missed" in out
