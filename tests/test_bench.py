"""The benchmark's cases at tiny sizes, through the same functions the command runs.

These tests keep ``python -m grood.bench`` from rotting: every case must run, its fast and reference
paths must agree, and every ratio must be a positive finite number.  They never assert on speed.
"""

import json
import math

import numpy as np
import pytest
import torch

from grood import bench

TINY = {
    "gradients": {"n": 120, "dims": (8, 16), "num_classes": 4},
    "gradnorm": {"n": 50, "dim": 16, "num_classes": 5},
    "features": {"n": 48, "k_detectors": 3},
    "knn": {"n_queries": 40, "n_index": 300, "dims": (8,), "k": 5},
    "zarr": {"n_rows": 300, "width": 8},
    "metrics": {"n": 2_000},
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
    from grood.gradients import grood_gradients

    for t in (0.5, 2.0):
        ok, err = bench.agreement(grood_gradients(h, z, P, po, temperature=t),
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
    ways = {name: bench.Way(lambda name=name: calls.append(name) or name, memory=None) for name in "abc"}
    m = bench.measure(ways, repeats=3)
    assert calls[:3] == ["a", "b", "c"]  # warm-up
    assert calls[3:] == ["a", "b", "c", "b", "c", "a", "c", "a", "b"]
    assert all(len(v.times) == 3 and v.output == k for k, v in m.items())


def test_measure_takes_host_peak_of_numpy_buffers():
    m = bench.measure({"big": bench.Way(lambda: np.ones(4 << 20).sum())}, repeats=1)  # 32 MB float64
    assert m["big"].peak_bytes >= 32 << 20


def test_agreement_rules():
    assert bench.agreement([1.0, 2.0], [1.0, 2.0 + 1e-9], 1e-6)[0]
    assert not bench.agreement([1.0, 2.0], [1.0, 2.1], 1e-6)[0]
    assert not bench.agreement([0.0, 0.0], [0.0, 0.0], 1e-6)[0]  # agreement between zeros proves nothing
    assert not bench.agreement([1.0], [1.0, 2.0], 1e-6)[0]
    assert not bench.agreement([np.nan, 1.0], [1.0, 1.0], 1e-6)[0]
    assert bench.agreement([1.5], [1.5], 0)[0] and not bench.agreement([1.5], [1.5 + 1e-15], 0)[0]


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


@pytest.mark.parametrize("argv", [["--repeats", "2"], ["--cases", "7"], ["--cases", "x"], ["--threads", "0"]])
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
