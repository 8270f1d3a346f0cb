from grood.stages import setup_logging
from grood.stages.head import head_stage

setup_logging(snakemake.log[0])
head_stage(snakemake.input.model, snakemake.output.npz)
