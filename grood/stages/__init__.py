"""The pipeline's stages, one module per Snakemake rule and named like it: what the rule runs,
callable from Python (``from grood.stages.train import train_stage``).

Each stage reads its inputs, calls the science in the other grood modules and writes its outputs
atomically with provenance; the rule's script (``workflow/scripts/<rule>.py``) only unpacks the
``snakemake`` object and calls it — or, for the jobs that only do arithmetic on cached arrays
(``score_local``, ``fit_local``), the rule's ``run:`` block calls it inside the Snakemake process,
which saves the start-up of a Python process per job.  A rule's ``code`` param is the digest of the files its stage
module reaches (:mod:`grood.codeversion`), so editing a module re-runs exactly the stages that
import it, directly or not.  Job logging, shared by every script, is here.
"""

from grood.stages.io import decode_workers, job_log, search_on_gpu, setup_logging

__all__ = ["decode_workers", "job_log", "search_on_gpu", "setup_logging"]
