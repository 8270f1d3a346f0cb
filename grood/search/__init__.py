"""faiss search at scale, the detectors' entry point (``from grood import search``): index specs
(:mod:`~grood.search.spec`), streamed builds (:mod:`~grood.search.build`), batched and GPU queries
(:mod:`~grood.search.query`), faiss's own file format (:mod:`~grood.search.io`); beside them canonical
exact search (:mod:`~grood.search.exact`; identical rows stored once, :mod:`~grood.search.duplicates`),
shards and their exact merge (:mod:`~grood.search.sharded`) and what an approximate index costs
(:mod:`~grood.search.quality`)."""

from grood.search.build import build_index, build_unique_index
from grood.search.io import deserialize, read_index, serialize, write_index
from grood.search.query import exact_kth_distance, kth_distance, on_device, search
from grood.search.spec import KINDS, METRICS, IndexSpec
from grood.search.vectors import gpu_available, prepare, search_threads

__all__ = ["KINDS", "METRICS", "IndexSpec", "build_index", "build_unique_index", "search", "kth_distance",
           "exact_kth_distance", "on_device", "search_threads", "gpu_available", "prepare", "serialize", "deserialize", "write_index", "read_index"]
