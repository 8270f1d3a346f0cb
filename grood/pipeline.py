"""Every stage of the pipeline under one name: ``from grood.pipeline import features_stage``.

The stages live one per module in :mod:`grood.stages` (so each rule's code version covers only
its own stage); this module gathers them for users and tests.
"""

from grood.stages.data import prepare_dataset
from grood.stages.detect import fit_detector_stage, load_detector, score_shard_stage, score_stage
from grood.stages.evaluate import evaluate_stage
from grood.stages.features import features_stage
from grood.stages.gradients import gradients_stage
from grood.stages.io import load_arrays, load_split, setup_logging, stored_rows
from grood.stages.prototypes import prototypes_stage
from grood.stages.train import train_stage

__all__ = [
    "evaluate_stage", "features_stage", "fit_detector_stage", "gradients_stage", "load_arrays",
    "load_detector", "load_split", "prepare_dataset", "prototypes_stage", "score_shard_stage",
    "score_stage", "setup_logging", "stored_rows", "train_stage",
]
