from grood.stages import setup_logging
from grood.stages.score_gather import score_gather_stage

setup_logging(snakemake.log[0])
score_gather_stage(list(snakemake.input.shards), snakemake.output.npy)
