"""Stage `head`: the classifier head ``z = W h + b`` of a seed's checkpoint as plain arrays
(``head_weight``, ``head_bias``), read once per seed, so the detectors fitted on it (ReAct, ASH,
SCALE, DICE, ViM) are fitted from arrays alone — inside the Snakemake process (rule fit_local)
rather than one torch-importing job each."""

from __future__ import annotations

import logging

from grood.storage.files import save_npz

log = logging.getLogger("grood")


def head_stage(model_pt, out_npz) -> None:
    """Write ``model.fc`` of the checkpoint ``model_pt`` to ``out_npz`` (float32 arrays, no pickle)."""
    from grood.stages.fit_detector import checkpoint_head
    from grood.storage import sha256_file

    arrays = checkpoint_head(model_pt, "head")
    save_npz(out_npz, arrays, meta={"model": str(model_pt), "model_sha256": sha256_file(model_pt)})
    log.info("head %s → %s", {k: v.shape for k, v in arrays.items()}, out_npz)
