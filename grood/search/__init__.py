"""faiss search at scale: index specs, streamed builds, batched queries, canonical exact search,
shards and their exact merge, and what an approximate index costs (recall, AUROC change).
The detectors reach it through :mod:`grood.index`."""
