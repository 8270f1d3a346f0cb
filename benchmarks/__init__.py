"""Tools about grood, beside the package: speed and memory against the reference ways
(:mod:`benchmarks.bench`, :mod:`benchmarks.bench_scale`), the ImageNet-1k cost model
(:mod:`benchmarks.costmodel`) and per-image decoding and forward costs (:mod:`benchmarks.throughput`).
Run from the repository root: ``python -m benchmarks.bench --quick``."""
