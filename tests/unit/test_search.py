"""grood.search: streamed builds equal in-memory builds, sharded exact
search equals unsharded exact search bit for bit (ties included) and a float64 brute force, recall@k
and the approximation report, the GPU fallback, faiss's own file format; grood.storage.chunks' readers."""

import numpy as np
import pytest

from conftest import brute_force_topk
from grood.storage import chunks
from grood.search import IndexSpec, build_index, kth_distance, read_index, search, write_index
from grood.search import exact, quality, sharded
from grood.search import query as query_mod
from grood.search import vectors as vectors_mod
from grood.search.vectors import faiss, prepare
from grood.storage import write_zarr

# ------------------------------------------------------------------------------------------ helpers


def _zarr(tmp_path, name="v", chunk_rows=37, **arrays):
    path = tmp_path / f"{name}.zarr"
    write_zarr(path, arrays, chunk_rows=chunk_rows)
    return {k: chunks.open_array(path, k) for k in arrays}


def _clustered(n=3000, d=32, seed=0, clusters=20):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, d)) * 3
    return (centres[rng.integers(0, clusters, n)] + rng.normal(size=(n, d))).astype(np.float32)


_brute_force = brute_force_topk  # float64 distances ranked by (distance, row): the reference


def _serial(index) -> bytes:
    return faiss().serialize_index(index).tobytes()


# ------------------------------------------------------------------------------------------- chunks


def test_block_rows_is_a_power_of_two_within_the_budget():
    assert chunks.block_rows(512) == 32768  # 64 MB of float32 rows
    assert chunks.block_rows(2048, 8) == 4096
    assert chunks.block_rows(10**9) == 1
    for width in (1, 3, 100, 777):
        r = chunks.block_rows(width)
        assert r & (r - 1) == 0 and r * width * 4 <= chunks.BLOCK_BYTES


def test_iter_blocks_and_take_rows_read_zarr_like_memory(tmp_path):
    x = np.arange(500 * 3, dtype=np.float32).reshape(500, 3)
    z = _zarr(tmp_path, x=x)["x"]
    assert np.array_equal(np.concatenate([b for _, b in chunks.iter_blocks(z, 64)]), x)
    assert [s for s, _ in chunks.iter_blocks(z, 200, start=10, stop=450)] == [10, 210, 410]
    rows = np.array([0, 5, 63, 64, 65, 300, 499])
    assert np.array_equal(chunks.take_rows(z, rows, block=64), x[rows])
    with pytest.raises(ValueError, match="increasing"):
        chunks.take_rows(z, np.array([5, 1]))
    w = chunks.RowWindow(z, 100, 200)
    assert w.shape == (100, 3) and np.array_equal(w[10:20], x[110:120]) and np.array_equal(w[90:150], x[190:200])
    with pytest.raises(ValueError, match="outside"):
        chunks.RowWindow(z, 100, 600)


def test_seeded_sample_is_sorted_distinct_and_reproducible():
    a = chunks.seeded_sample(1000, 50, seed=3)
    assert np.array_equal(a, chunks.seeded_sample(1000, 50, seed=3))
    assert not np.array_equal(a, chunks.seeded_sample(1000, 50, seed=4))
    assert len(np.unique(a)) == 50 and np.all(np.diff(a) > 0)
    pool = np.array([7, 3, 9])
    assert np.array_equal(chunks.seeded_sample(pool, 10, 0), [3, 7, 9])


# --------------------------------------------------------------------------------------------- spec


@pytest.mark.parametrize("params, match", [
    ({"kind": "hnsw"}, "kind"), ({"metric": "ip"}, "metric"), ({"nlist": 0}, "nlist"),
    ({"nprobe": 1.5}, "nprobe"), ({"nbits": 17}, "nbits"), ({"train_size": 0}, "train_size"),
    ({"bogus": 1}, "bogus"),
])
def test_bad_index_parameters_are_named(params, match):
    with pytest.raises(ValueError, match=match):
        IndexSpec.from_params(params)


def test_ivf_pq_m_must_divide_the_width():
    with pytest.raises(ValueError, match=r"m=5 .* divide the vector width 32.*\[1, 2, 4, 8, 16, 32\]"):
        build_index(_clustered(), IndexSpec(kind="ivf_pq", m=5))


def test_training_sample_size():
    spec = IndexSpec(kind="ivf_flat", nlist=100)
    assert spec.cells(1000) == 25 and spec.training_rows(1000) == 1000  # small: every row
    assert spec.training_rows(10**6) == 6400  # 64 per cell
    assert IndexSpec(kind="ivf_pq", nlist=10).training_rows(10**6) == 64 * 256  # PQ codebooks need more
    assert IndexSpec(kind="ivf_flat", train_size=500).training_rows(10**6) == 500
    assert IndexSpec().training_rows(10**6) == 0


# ------------------------------------------------------------------------- streamed build = memory


@pytest.mark.parametrize("kind", ["flat", "ivf_flat", "ivf_pq"])
def test_build_from_zarr_equals_build_from_memory(tmp_path, kind):
    x = _clustered(3000, 32)
    mask = np.random.default_rng(1).random(3000) < 0.8
    spec = IndexSpec(kind=kind, nlist=16, nprobe=4, m=8, nbits=6, seed=5)
    z = _zarr(tmp_path, x=x)["x"]
    for m in (None, mask):
        mem = build_index(x, spec, m, block=256)
        disk = build_index(z, spec, m, block=256)
        assert _serial(mem) == _serial(disk)
        assert mem.ntotal == (3000 if m is None else int(mask.sum()))
    # the blocks are part of the definition: the default ones, from memory and from Zarr, agree too
    assert _serial(build_index(x, spec, mask)) == _serial(build_index(z, spec, mask))


@pytest.mark.parametrize("row_ids", [False, True])
@pytest.mark.parametrize("rows", [None, (100, 700), (5, 5)])
def test_flat_index_filled_in_place_equals_faiss_add(row_ids, rows):
    """The flat index is sized once and filled in place (no reallocation peak); its bytes must be
    exactly what faiss's own add / add_with_ids writes for the same kept rows."""
    x = _clustered(1000, 16)
    mask = np.random.default_rng(2).random(1000) < 0.7
    a, b = rows or (0, 1000)
    for m in (None, mask):
        keep = np.arange(a, b) if m is None else a + np.flatnonzero(m[a:b])
        if len(keep) == 0 and not row_ids:
            continue  # an empty unsharded index is refused (test_build_refuses...)
        ours = build_index(x, IndexSpec(), m, rows=rows, row_ids=row_ids, block=64)
        ref = faiss().IndexFlatL2(16)
        if row_ids:
            ref = faiss().IndexIDMap2(ref)
            ref.add_with_ids(x[keep], keep.astype(np.int64))
        else:
            ref.add(x[keep])
        assert _serial(ours) == _serial(ref)
        if len(keep) >= 3:
            assert np.array_equal(ours.search(x[:7], 3)[1], ref.search(x[:7], 3)[1])
            if row_ids:  # the reverse map is built: rows are reconstructable by global id
                assert np.array_equal(ours.reconstruct(int(keep[-1])), x[keep[-1]])


def test_seed_changes_the_ivf_quantiser_and_is_reproducible():
    x = _clustered(3000, 32)
    a, b, c = (build_index(x, IndexSpec(kind="ivf_flat", nlist=16, seed=s)) for s in (1, 1, 2))
    assert _serial(a) == _serial(b) and _serial(a) != _serial(c)


def test_flat_streaming_is_bit_equal_to_one_shot_faiss(tmp_path):
    """Blocks in, batches out: the same float32 numbers as one faiss add and one faiss search."""
    x, q = _clustered(3000, 32), _clustered(700, 32, seed=9)
    z = {**_zarr(tmp_path, "x", x=x), **_zarr(tmp_path, "q", q=q)}
    ref = faiss().IndexFlatL2(32)
    ref.add(x)
    with query_mod.blas_blocks():
        d_ref, i_ref = ref.search(q, 10)
    idx = build_index(z["x"], IndexSpec(), block=128)
    d, i = search(idx, z["q"], 10, use_gpu=False, batch_size=100)
    assert np.array_equal(d, d_ref) and np.array_equal(i, i_ref)
    assert np.array_equal(kth_distance(idx, z["q"], 10, use_gpu=False, batch_size=64), d_ref[:, 9])


def test_nan_in_any_row_is_refused_even_when_masked_out():
    x = _clustered(300, 8)
    x[5, 2] = np.nan
    mask = np.ones(300, bool)
    mask[5] = False
    with pytest.raises(FloatingPointError, match="training gradients: 1 non-finite"):
        build_index(x, IndexSpec(), mask, name="training gradients")


def test_query_width_mismatch_is_named():
    idx = build_index(_clustered(300, 8))
    with pytest.raises(ValueError, match="vector width 8"):
        search(idx, np.zeros((3, 9), np.float32), 1)
    with pytest.raises(ValueError, match=r"k must lie in \[1, 300\]"):
        kth_distance(idx, np.zeros((3, 8), np.float32), 301)


def test_cosine_is_l2_on_normalised_vectors():
    x, q = _clustered(500, 16), _clustered(40, 16, seed=3)
    normed = lambda a: a / np.linalg.norm(a, axis=1, keepdims=True)  # noqa: E731
    d, _ = search(build_index(x, IndexSpec(metric="cosine")), q, 3, "cosine", use_gpu=False)
    ref, _ = _brute_force(normed(q), normed(x), 3)
    np.testing.assert_allclose(d, ref, rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------------------------- exact, shards


def _tied_problem(n=2000, d=24, seed=0):
    """Vectors with exact duplicates and queries sitting on them: ties inside and across shards."""
    x = _clustered(n, d, seed)
    rng = np.random.default_rng(seed + 1)
    src = rng.integers(0, n, 60)
    dst = rng.integers(0, n, 60)
    x[dst] = x[src]  # duplicated rows (some far apart, so in different shards)
    x[1500:1530] = x[3]  # thirty copies of one row: a tie wider than the candidate margin
    q = _clustered(150, d, seed + 2)
    q[:20] = x[src[:20]]
    q[20] = x[3]
    return x, q


@pytest.mark.parametrize("metric", ["l2", "cosine"])
def test_canonical_exact_search_equals_float64_brute_force(metric):
    x, q = _tied_problem()
    k = 5
    idx = build_index(x, IndexSpec(metric=metric), row_ids=True)
    d, i = exact.exact_search(idx, q, k, metric)
    xp, qp = (prepare(a, metric) for a in (x, q))
    ref_d, ref_i = _brute_force(qp, xp, k)
    assert np.array_equal(i, ref_i)  # ties resolved by the smaller row, exactly as the reference
    np.testing.assert_allclose(d, ref_d, rtol=1e-12, atol=1e-12)
    assert np.array_equal(i[20], [3, 1500, 1501, 1502, 1503])  # the 31-way tie: the first 5 rows
    assert d[20, 0] == 0.0


@pytest.mark.parametrize("shards, align", [(1, 1), (2, 1), (3, 64), (7, 1), (40, 64)])
def test_sharded_search_merges_to_the_unsharded_exact_search(shards, align):
    x, q = _tied_problem()
    mask = np.random.default_rng(3).random(len(x)) < 0.9
    mask[[3, 1500, 1501]] = True
    k = 7
    full = build_index(x, IndexSpec(), mask, row_ids=True)
    ref_d, ref_i = exact.exact_search(full, q, k)
    parts = [sharded.search_shard(x, q, k, s, shards, mask=mask, align=align) for s in range(shards)]
    assert sum(p[2]["n_indexed"] for p in parts) == mask.sum()
    d, i, meta = sharded.merge_shard_results(parts)
    assert np.array_equal(d, ref_d) and np.array_equal(i, ref_i)  # bit for bit, ties included
    assert meta["canonical"] and meta["sharded_from"]["count"] == shards
    bf_d, bf_i = _brute_force(q, x, k, mask)
    assert np.array_equal(i, bf_i)
    assert set(np.unique(i)) <= set(np.flatnonzero(mask))


def test_exact_search_searches_again_when_the_margin_is_too_small():
    x, q = _tied_problem()
    idx = build_index(x, IndexSpec(), row_ids=True)
    d1, i1 = exact.exact_topk(idx, q, 1, margin=1)  # 31 tied vectors for query 20: needs rounds
    d2, i2 = exact.exact_search(idx, q, 1)
    assert np.array_equal(i1, i2) and np.array_equal(d1, d2) and i1[20, 0] == 3


def test_shard_files_round_trip_and_refuse_bad_sets(tmp_path):
    x, q = _tied_problem()
    paths = []
    for s in range(3):
        paths.append(tmp_path / f"shard{s}.npz")
        sharded.search_shard(x, q, 4, s, 3, out_npz=paths[-1], source="test")
    d, i, meta = sharded.merge_shard_files(paths, tmp_path / "merged.npz")
    ref_d, ref_i = exact.exact_search(build_index(x, IndexSpec(), row_ids=True), q, 4)
    assert np.array_equal(i, ref_i) and np.array_equal(d, ref_d)
    with np.load(tmp_path / "merged.npz", allow_pickle=False) as z:  # no pickles: plain arrays + JSON
        assert np.array_equal(z["ids"], ref_i)
    with pytest.raises(ValueError, match="expected shards"):
        sharded.merge_shard_files(paths[:2])
    other = tmp_path / "other.npz"
    sharded.search_shard(x, q, 5, 2, 3, out_npz=other)
    with pytest.raises(ValueError, match=r"differs from shard 0 in \['k'\]"):
        sharded.merge_shard_files([paths[0], paths[1], other])


def test_approximate_shards_merge_their_own_results():
    x, q = _clustered(4000, 16), _clustered(50, 16, seed=4)
    spec = IndexSpec(kind="ivf_flat", nlist=8, nprobe=8)  # every cell probed: exact in each shard
    parts = [sharded.search_shard(x, q, 3, s, 2, spec) for s in range(2)]
    d, i, meta = sharded.merge_shard_results(parts)
    ref_d, ref_i = _brute_force(q, x, 3)
    assert not meta["canonical"] and np.array_equal(i, ref_i)
    np.testing.assert_allclose(d, ref_d, rtol=1e-4)


def test_merge_topk_rejects_too_few_neighbours():
    d = np.array([[1.0, np.inf]])
    i = np.array([[4, exact.PAD_ID]])
    with pytest.raises(ValueError, match="fewer than k=2"):
        exact.merge_topk([(d, i)], 2)
    assert exact.merge_topk([(d, i)], 3, allow_padding=True)[1].tolist() == [[4, -1, -1]]


# ------------------------------------------------------------------------------------------ quality


def test_recall_at_k_known_cases():
    exact_ids = np.array([[1, 2, 3], [4, 5, 6]])
    assert quality.recall_at_k(exact_ids, exact_ids) == 1.0
    assert quality.recall_at_k(np.array([[3, 2, 1], [6, 5, 4]]), exact_ids) == 1.0  # order does not matter
    assert quality.recall_at_k(np.array([[1, 9, 9], [9, 9, 9]]), exact_ids, k=1) == 0.5
    assert quality.recall_at_k(np.array([[1, 9, 3], [4, -1, -1]]), exact_ids) == pytest.approx(0.5)
    assert quality.recall_at_k(np.array([[-1], [-1]]), np.array([[-1], [-1]])) == 0.0  # padding never counts
    with pytest.raises(ValueError, match="k=4"):
        quality.recall_at_k(exact_ids, exact_ids, k=4)


def test_streamed_exact_search_reads_blocks_and_honours_the_mask(tmp_path):
    x, q = _tied_problem()
    mask = np.random.default_rng(8).random(len(x)) < 0.7
    z = _zarr(tmp_path, x=x)["x"]
    d, i = quality.streamed_exact_search(z, q, 6, mask=mask, block=300)
    ref = exact.exact_search(build_index(x, IndexSpec(), mask, row_ids=True), q, 6)
    assert np.array_equal(i, ref[1]) and np.array_equal(d, ref[0])


def test_approximation_report_exhaustive_ivf_costs_nothing():
    x = _clustered(3000, 16)
    q_id, q_ood = _clustered(300, 16, seed=5), _clustered(300, 16, seed=6) * 1.5
    mask = np.random.default_rng(2).random(3000) < 0.8
    exhaustive = build_index(x, IndexSpec(kind="ivf_flat", nlist=8, nprobe=8), mask)
    rep = quality.approximation_report(exhaustive, x, q_id, q_ood, k=2, mask=mask, sample=200, use_gpu=False)
    assert rep["recall_at_k"] == 1.0 and abs(rep["auroc_change_points"]) < 1e-9
    assert rep["n_id_queries"] == rep["n_ood_queries"] == 200 and 0.5 < rep["auroc_exact"] <= 1.0
    one_probe = build_index(x, IndexSpec(kind="ivf_flat", nlist=64, nprobe=1), mask)
    rep1 = quality.approximation_report(one_probe, x, q_id, q_ood, k=2, mask=mask, sample=200, use_gpu=False)
    assert rep1["recall_at_k"] < 1.0 and rep1["auroc_exact"] == rep["auroc_exact"]


# ------------------------------------------------------------------------------------- GPU, files


class _FakeGpuFaiss:
    """Stands in for a GPU build of faiss: records the copy to the GPU, optionally refuses it."""

    def __init__(self, refuse=False):
        self.refuse, self.copied = refuse, []

    def get_num_gpus(self):
        return 1

    class StandardGpuResources:
        pass

    class GpuClonerOptions:
        useFloat16 = True

    def index_cpu_to_gpu(self, res, device, index, options):
        if self.refuse:
            raise RuntimeError("layout not supported on the GPU")
        self.copied.append((device, options.useFloat16))
        return index


@pytest.mark.parametrize("refuse", [False, True])
def test_gpu_search_when_faiss_sees_a_gpu_and_cpu_fallback(monkeypatch, refuse, caplog):
    fake = _FakeGpuFaiss(refuse)
    for mod in (query_mod, vectors_mod):
        monkeypatch.setattr(mod, "faiss", lambda: fake)
    monkeypatch.setattr(query_mod, "_GPU_RESOURCES", [])
    cpu_index = object()
    assert query_mod.on_device(cpu_index, "auto") is cpu_index  # the fake returns the same object
    assert fake.copied == ([] if refuse else [(0, False)])  # exact float32 on the GPU, no fp16
    if refuse:
        assert "searching on the CPU" in caplog.text
        with pytest.raises(RuntimeError, match="layout"):
            query_mod.on_device(cpu_index, True)
    assert query_mod.on_device(cpu_index, False) is cpu_index


def test_gpu_asked_without_a_gpu_build_is_an_error():
    if query_mod.gpu_available():
        pytest.skip("this faiss sees a GPU")
    with pytest.raises(RuntimeError, match=r"pip install -e '\.\[gpu\]'"):
        query_mod.wants_gpu(True)
    with pytest.raises(ValueError, match="use_gpu"):
        query_mod.wants_gpu("yes")


def test_write_and_read_index_round_trip(tmp_path):
    x = _clustered(2000, 16)
    idx = build_index(x, IndexSpec(kind="ivf_pq", nlist=8, m=4, nbits=6))
    write_index(idx, tmp_path / "a.faiss")
    for mmap in (False, True):
        again = read_index(tmp_path / "a.faiss", mmap=mmap)
        assert np.array_equal(search(again, x[:50], 3, use_gpu=False)[1], search(idx, x[:50], 3, use_gpu=False)[1])
    (tmp_path / "bad.faiss").write_bytes(b"not an index")
    with pytest.raises(OSError, match="bad.faiss is not a readable faiss index"):
        read_index(tmp_path / "bad.faiss")
    with pytest.raises(FileNotFoundError, match="missing.faiss"):
        read_index(tmp_path / "missing.faiss")


@pytest.mark.parametrize("kind", ["flat", "ivf_flat", "ivf_pq"])
def test_every_index_kind_round_trips_through_its_bytes_and_others_are_refused(kind):
    """The detectors store their index as faiss's own bytes; every kind grood builds reads back and
    searches alike, while bytes of another faiss type (or not bytes at all) are refused by name."""
    from grood.search import deserialize, serialize

    x = np.random.default_rng(4).standard_normal((4000, 16)).astype(np.float32)
    index = build_index(x, IndexSpec(kind=kind, nlist=8, nprobe=3, m=4, nbits=6))
    blob = serialize(index)
    back = deserialize(blob)
    assert type(back) is type(index) and back.ntotal == index.ntotal
    for a, b in zip(search(index, x[:50], 3), search(back, x[:50], 3)):
        assert np.array_equal(a, b)
    other = serialize(faiss().IndexHNSWFlat(16, 8))
    with pytest.raises(ValueError, match="not one grood builds"):
        deserialize(other)
    with pytest.raises(ValueError, match="1-D uint8"):
        deserialize(blob.astype(np.int64))
    with pytest.raises(ValueError, match="cannot be read"):
        deserialize(blob[: len(blob) // 2])


def test_mmap_threshold_is_fixed_on_glibc():
    """The flat build fixes glibc's mmap threshold (grood.search.memory) so block buffers never settle in the heap."""
    import platform

    from grood.search import memory

    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        pytest.skip("mallopt is glibc's")
    assert memory.fixed_mmap_threshold()


def test_a_new_index_kind_is_one_row(monkeypatch, tmp_path):
    """An index kind added as one row of grood.search.kinds.KINDS (HNSW here) is built, checked,
    stored, read back and searched by a detector with nothing else changed."""
    from grood.detectors import make_detector
    from grood.detectors.store import load_detector, save_detector
    from grood.search import kinds
    from grood.search.vectors import faiss

    def make_hnsw(spec, d, n):
        index = faiss().IndexHNSWFlat(d, spec.m)
        index.hnsw.efSearch = spec.nprobe
        return index

    monkeypatch.setitem(kinds.KINDS, "hnsw", kinds.Kind(exact=False, params=("m", "nprobe"), faiss_type="IndexHNSWFlat",
                                                        faiss_tag=b"IHNf", make=make_hnsw))
    x = _clustered(400, 8)
    det = make_detector("knn", {"k": 3, "index": {"kind": "hnsw", "m": 16, "nprobe": 64}}).fit(features=x)
    assert type(det.index_).__name__ == "IndexHNSWFlat" and not det.index_spec.exact
    save_detector(det, tmp_path / "knn.npz")
    again = load_detector(tmp_path / "knn.npz")
    np.testing.assert_array_equal(again.score(features=x[:20]), det.score(features=x[:20]))
    exact = make_detector("knn", {"k": 3}).fit(features=x)
    np.testing.assert_allclose(det.score(features=x[:20]), exact.score(features=x[:20]), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="does not read 'nlist'"):
        make_detector("knn", {"index": {"kind": "hnsw", "nlist": 8}})
