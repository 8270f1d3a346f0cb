from grood.stages import setup_logging
from grood.stages.tune import tune_stage

setup_logging(snakemake.log[0])
tune_stage(snakemake.wildcards.detector, int(snakemake.wildcards.seed), list(snakemake.params.scores),
           list(snakemake.params.points), list(snakemake.params.ood_val), list(snakemake.params.test),
           snakemake.output.csv)
