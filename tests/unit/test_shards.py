"""Scatter/gather: shard row ranges and exact merges (the sharded workflow against the unsharded one:
tests/workflow/test_sharded_runs.py)."""

from __future__ import annotations

import numpy as np
import pytest
import zarr

from conftest import same_store
from grood.storage.shards import merge_npz_rows, merge_zarr, row_ranges, shard_rows

# ------------------------------------------------------------------------------------- row ranges


@pytest.mark.parametrize("align", [1, 3, 128])
def test_row_ranges_partition(align):
    for n in [0, 1, 2, 5, 7, 100, 127, 128, 129, 1000, 1001]:
        for shards in [1, 2, 3, 4, 7, 8, 50, 2000]:
            r = row_ranges(n, shards, align)
            assert len(r) == shards
            assert r[0][0] == 0 and r[-1][1] == n
            assert all(a <= b for a, b in r)
            assert all(r[i][1] == r[i + 1][0] for i in range(shards - 1))  # contiguous: a partition
            # every shard starts on a block boundary; only the last non-empty one holds the tail
            assert all(a % align == 0 for a, b in r if a < n)
            sizes = [b - a for a, b in r]
            blocks = [s // align for s in sizes]
            assert max(blocks) - min(blocks) <= 1 or n < align  # balanced in blocks
            if shards <= 8:
                assert [shard_rows(n, i, shards, align) for i in range(shards)] == r


def test_row_ranges_plain_formula():
    for n in [0, 1, 9, 10, 1001]:
        for shards in [1, 3, 4, 11, 20]:
            assert row_ranges(n, shards) == [(i * n // shards, (i + 1) * n // shards) for i in range(shards)]


def test_row_ranges_empty_shards_allowed_and_tail_joins_last_block():
    # more shards than rows: the extra shards are empty (the count is fixed before n is known)
    assert row_ranges(2, 4) == [(0, 0), (0, 1), (1, 1), (1, 2)]
    assert row_ranges(5, 3, align=8) == [(0, 0), (0, 0), (0, 5)]
    # 2 full blocks of 4 + a tail of 1: the tail joins the last block, never a one-row shard
    assert row_ranges(9, 3, align=4) == [(0, 0), (0, 4), (4, 9)]
    with pytest.raises(ValueError, match="shard count"):
        row_ranges(10, 0)
    with pytest.raises(ValueError, match="outside"):
        shard_rows(10, 3, 3)


# ---------------------------------------------------------------------------- exact merge (package)


@pytest.fixture(scope="module")
def lenet_files(tmp_path_factory):
    """A small random lenet checkpoint and a 203-image uint8 dataset (test split, labels 0..9)."""
    import torch

    from grood.net.models import cnn_bn_gap
    from grood.net.preprocess import InputSpec
    from grood.storage import save_npz
    from grood.net.training import TrainConfig, TrainResult, save_checkpoint

    d = tmp_path_factory.mktemp("shards")
    torch.manual_seed(0)
    model = cnn_bn_gap(1, 10, width=8).eval()
    spec = InputSpec(1, 28, (0.5,), (0.25,))
    cfg = TrainConfig.from_dict({"arch": "cnn_bn_gap", "width": 8, "epochs": 1})
    save_checkpoint(d / "model.pt", TrainResult(model, spec, list(range(10)), []), cfg)
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (203, 28, 28, 1), dtype=np.uint8)
    save_npz(d / "data.npz", {"x_test": x, "y_test": rng.integers(0, 10, 203)})
    return d


def _features(d, out, **kw):
    from grood.pipeline import features_stage

    features_stage(d / "model.pt", d / "data.npz", "test", True, out, batch_size=16, device="cpu",
                   threads=2, **kw)


@pytest.mark.parametrize("shards", [3, pytest.param(20, marks=pytest.mark.slow)])  # 20 > 12 batches: empty shards
def test_merge_features_equals_unsharded(lenet_files, tmp_path, shards):
    d = lenet_files
    whole = tmp_path / "whole.zarr"
    _features(d, whole)
    parts = [tmp_path / f"{i}-of-{shards}.zarr" for i in range(shards)]
    for i, p in enumerate(parts):
        _features(d, p, shard=(i, shards))
    rows = [zarr.open_group(str(p), mode="r").attrs["rows"] for p in parts]
    assert [tuple(r) for r in rows] == row_ranges(203, shards, 16)
    merged = tmp_path / "merged.zarr"
    merge_zarr(parts, merged, chunk_rows=16)
    same_store(whole, merged)
    attrs = dict(zarr.open_group(str(merged), mode="r").attrs)
    assert attrs["sharded_from"]["count"] == shards
    assert attrs["sharded_from"]["stores"] == [str(p) for p in parts]
    assert attrs["model_sha256"] == dict(zarr.open_group(str(whole), mode="r").attrs)["model_sha256"]
    assert "shard" not in attrs and "rows" not in attrs
    # a missing or reordered shard is refused, never merged into a short store
    with pytest.raises(ValueError, match="expected shards"):
        merge_zarr(parts[:-1], tmp_path / "bad.zarr", chunk_rows=16)
    assert not (tmp_path / "bad.zarr").exists()


def test_rows_param_and_unaligned_batches_caveat(lenet_files, tmp_path):
    """``rows=`` writes a row slice; CPU conv outputs depend on the batch an image shares, which is
    why shards align to the batch size (a one-image batch differs from the same image in a batch)."""
    import torch

    from grood.net.training import load_checkpoint

    d = lenet_files
    _features(d, tmp_path / "whole.zarr")
    _features(d, tmp_path / "slice.zarr", rows=(32, 80))
    whole = zarr.open_group(str(tmp_path / "whole.zarr"), mode="r")
    part = zarr.open_group(str(tmp_path / "slice.zarr"), mode="r")
    assert part.attrs["rows"] == [32, 80] and part.attrs["n_rows_total"] == 203
    assert np.array_equal(part["features"][...], whole["features"][32:80])  # aligned: equal
    model, _ = load_checkpoint(d / "model.pt")
    x = torch.randn(16, 1, 28, 28)
    with torch.no_grad():
        batch, single = model.features(x), torch.cat([model.features(x[i : i + 1]) for i in range(16)])
    assert torch.allclose(batch, single, rtol=1e-5, atol=1e-6)  # equal only to a tolerance


def test_merge_scores(tmp_path):
    from grood.storage.shards import shard_attrs
    from grood.storage import save_npz

    scores = np.random.default_rng(1).standard_normal(50)
    ranges = row_ranges(50, 4, 8)
    files = []
    for i, (a, b) in enumerate(ranges):
        files.append(tmp_path / f"{i}.npz")
        save_npz(files[-1], {"scores": scores[a:b]}, shard_attrs(i, 4, (a, b), 50))
    info = merge_npz_rows(files, tmp_path / "s.npy")
    out = np.load(tmp_path / "s.npy")
    assert out.dtype == np.float64 and out.tobytes() == scores.tobytes()
    assert info["sharded_from"]["rows"] == [list(r) for r in ranges]
    with pytest.raises(ValueError, match="expected shards"):
        merge_npz_rows([files[0], files[2], files[3]], tmp_path / "t.npy")
    assert not (tmp_path / "t.npy").exists()


@pytest.mark.parametrize("method,params", [pytest.param("odin", {"batch_size": 8}, marks=pytest.mark.slow),
                                           ("msp", {}), ("knn", {"k": 5}), ("mahalanobis", {})])
def test_score_shards_merge_equals_unsharded(lenet_files, tmp_path, method, params):
    """ODIN runs the network (shards align to its batch size); MSP, kNN (faiss) and Mahalanobis
    (BLAS) read the feature store: row-wise, equal bytes for shards of whole batches."""
    from grood.pipeline import fit_detector_stage, score_stage

    d = lenet_files
    _features(d, tmp_path / "f.zarr")
    fit_detector_stage(method, params, [tmp_path / "f.zarr"], tmp_path / "det.npz")
    kw = dict(model_pt=d / "model.pt", data_npz=d / "data.npz", split="test", device="cpu", threads=2)
    stores = [tmp_path / "f.zarr"]
    score_stage(tmp_path / "det.npz", stores, tmp_path / "whole.npy", **kw)
    files = [tmp_path / f"{i}.npz" for i in range(3)]
    ranges = [score_stage(tmp_path / "det.npz", stores, f, shard=(i, 3), align=16, **kw)
              for i, f in enumerate(files)]
    assert ranges == row_ranges(203, 3, 8 if method == "odin" else 16)
    merge_npz_rows(files, tmp_path / "merged.npy")
    assert np.load(tmp_path / "whole.npy").tobytes() == np.load(tmp_path / "merged.npy").tobytes()
