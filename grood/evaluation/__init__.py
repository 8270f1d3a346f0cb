"""OOD metrics (:mod:`~grood.evaluation.metrics`: AUROC, AUPR, both FPR95 conventions) and the
tables over seeds, detectors and OOD sets (:mod:`~grood.evaluation.tables`)."""
