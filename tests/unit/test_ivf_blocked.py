"""grood.search.ivf_blocked: the cell-by-cell GEMM IVF-Flat search against faiss's own IVF-Flat
search (same cells probed, so the same neighbours) and a float64 brute force over the probed cells."""

import numpy as np
import pytest

from grood.search import IndexSpec, build_index, kth_distance, search
from grood.search import ivf_blocked
from grood.search.vectors import faiss


def _data(n=4000, d=24, seed=0, clusters=30):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, d)) * 3
    x = (centres[rng.integers(0, clusters, n)] + rng.normal(size=(n, d))).astype(np.float32)
    q = (centres[rng.integers(0, clusters, 150)] + 1.5 * rng.normal(size=(150, d))).astype(np.float32)
    return x, q


def _index(x, nlist=32, nprobe=4):
    return build_index(x, IndexSpec(kind="ivf_flat", nlist=nlist, nprobe=nprobe, seed=3))


def _probed_brute_force(index, x, q, k):
    """float64 top-k over the vectors of the cells the quantiser assigns each query (ties by id)."""
    _, cells = index.quantizer.search(q, index.nprobe)
    _, assign = index.quantizer.search(x, 1)
    out_d = np.full((len(q), k), np.inf)
    out_i = np.full((len(q), k), -1)
    for r in range(len(q)):
        rows = np.flatnonzero(np.isin(assign[:, 0], cells[r]))
        d = ((x[rows].astype(np.float64) - q[r].astype(np.float64)) ** 2).sum(1)
        order = np.lexsort((rows, d))[:k]
        out_d[r, : len(order)], out_i[r, : len(order)] = d[order], rows[order]
    return out_d, out_i


@pytest.mark.parametrize("k", [1, 5, 20])
@pytest.mark.parametrize("nprobe", [1, 4, 32])
def test_equals_faiss_ivf_flat_search(k, nprobe):
    x, q = _data()
    index = _index(x, nprobe=nprobe)
    ours_d, ours_i = ivf_blocked.search_ivf_flat(index, q, k)
    ref_d, ref_i = index.search(q, k)
    assert ours_d.dtype == np.float32 and ours_i.dtype == np.int64
    assert np.array_equal(ours_i, ref_i)
    np.testing.assert_allclose(ours_d, ref_d, rtol=1e-5, atol=1e-4)  # pads included
    bf_d, bf_i = _probed_brute_force(index, x, q, k)
    assert np.array_equal(ours_i, bf_i)
    found = bf_i >= 0
    np.testing.assert_allclose(ours_d[found], bf_d[found], rtol=1e-6)  # exact distances, float64 rounded once


def test_pads_like_faiss_when_the_probed_cells_hold_fewer_than_k():
    x, q = _data(n=400, d=8)
    index = _index(x, nlist=10, nprobe=1)
    k = 120  # more than any one cell holds
    ours_d, ours_i = ivf_blocked.search_ivf_flat(index, q, k)
    ref_d, ref_i = index.search(q, k)
    assert (ref_i == -1).any()
    assert np.array_equal(ours_i == -1, ref_i == -1)
    assert np.array_equal(ours_i, ref_i)
    assert np.array_equal(ours_d[ours_i == -1], ref_d[ref_i == -1])  # faiss's pad value


def test_ties_go_to_the_smaller_id():
    x = np.repeat(np.random.default_rng(0).normal(size=(50, 6)).astype(np.float32), 3, axis=0)
    index = _index(x, nlist=4, nprobe=4)
    d, i = ivf_blocked.search_ivf_flat(index, x[::3], 3)
    assert np.array_equal(i, np.arange(0, 150, 3)[:, None] + np.arange(3))
    assert (d == 0).all()


def test_the_pipeline_search_uses_it_and_matches_faiss():
    x, q = _data()
    index = _index(x, nprobe=8)
    d, i = search(index, q, 3, use_gpu=False, batch_size=64)
    ref_d, ref_i = index.search(q, 3)
    assert np.array_equal(i, ref_i)
    np.testing.assert_allclose(kth_distance(index, q, 3, use_gpu=False), ref_d[:, 2], rtol=1e-5, atol=1e-4)


def test_large_query_batches_are_split_with_the_same_result(monkeypatch):
    x, q = _data()
    index = _index(x, nprobe=8)
    whole = ivf_blocked.search_ivf_flat(index, q, 5)
    monkeypatch.setattr(ivf_blocked, "CANDIDATES", 8 * 5 * 7)  # 7 queries per batch
    split = ivf_blocked.search_ivf_flat(index, q, 5)
    assert all(np.array_equal(a, b) for a, b in zip(whole, split))
    empty_d, empty_i = ivf_blocked.search_ivf_flat(index, q[:0], 5)
    assert empty_d.shape == empty_i.shape == (0, 5)


def test_deterministic_and_refuses_other_indexes():
    x, q = _data()
    index = _index(x)
    a = ivf_blocked.search_ivf_flat(index, q, 4)
    b = ivf_blocked.search_ivf_flat(index, q, 4)
    assert all(np.array_equal(u, v) for u, v in zip(a, b))
    with pytest.raises(TypeError, match="IndexIVFFlat"):
        ivf_blocked.search_ivf_flat(faiss().IndexFlatL2(24), q, 1)
    assert not ivf_blocked.is_ivf_flat(build_index(x, IndexSpec(kind="ivf_pq", nlist=8, m=4, nbits=6)))
