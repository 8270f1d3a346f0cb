"""OOD metrics (:mod:`~grood.evaluation.metrics`: AUROC, AUPR, both FPR95 conventions), their sampling
uncertainty (:mod:`~grood.evaluation.uncertainty`: bootstrap intervals, paired tests, the mean over
seeds), the tables over seeds, detectors and OOD sets (:mod:`~grood.evaluation.tables`) and tuning on
validation data (:mod:`~grood.evaluation.tuning`: grids, grid points, the choice)."""
