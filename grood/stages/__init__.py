"""The pipeline's stages, one module per Snakemake rule and named like it: what the rule runs,
callable from Python (``from grood.stages.train import train_stage``).

Each stage reads its inputs, calls the science in the other grood modules and writes its outputs
atomically with provenance; the rule's script (``workflow/scripts/<rule>.py``) only unpacks the
``snakemake`` object and calls it.  A rule's ``code`` param is the digest of the files its stage
module reaches (:mod:`grood.codeversion`), so editing a module re-runs exactly the stages that
import it, directly or not.  Job logging, shared by every script, is here.
"""

from grood.stages.io import decode_workers, search_on_gpu, setup_logging

__all__ = ["decode_workers", "search_on_gpu", "setup_logging"]
