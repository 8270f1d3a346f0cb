"""Every stage of the pipeline under one name, for users: ``from grood.pipeline import features_stage``.

The stages live one per module in :mod:`grood.stages`, named like the rules that run them; the
workflow's scripts import their stage module directly, never this one.
"""

from grood.stages import setup_logging
from grood.stages.datacard import datacard_stage
from grood.stages.evaluate import evaluate_stage
from grood.stages.features import features_stage
from grood.stages.features_gather import features_gather_stage
from grood.stages.figures_detector import figures_detector_stage
from grood.stages.figures_method import figures_method_stage
from grood.stages.figures_summary import figures_summary_stage
from grood.stages.fit_detector import fit_detector_stage
from grood.stages.gradients import gradients_stage
from grood.stages.head import head_stage
from grood.stages.index_quality import index_quality_stage
from grood.stages.io import load_arrays, load_split, stored_rows
from grood.stages.prepare_dataset import prepare_dataset_stage
from grood.stages.prototypes import prototypes_stage
from grood.stages.score import score_stage
from grood.stages.score_gather import score_gather_stage
from grood.stages.search_index_shard import search_index_shard_stage
from grood.stages.train import train_stage
from grood.stages.tune import tune_stage

__all__ = [
    "datacard_stage", "evaluate_stage", "features_gather_stage", "features_stage", "figures_detector_stage",
    "figures_method_stage", "figures_summary_stage", "fit_detector_stage",
    "gradients_stage", "head_stage", "index_quality_stage", "load_arrays", "load_split", "prepare_dataset_stage",
    "prototypes_stage", "score_gather_stage", "score_stage", "search_index_shard_stage", "setup_logging", "stored_rows", "train_stage",
    "tune_stage",
]
