from grood.stages import setup_logging
from grood.stages.datacard import datacard_stage

setup_logging(snakemake.log[0])
datacard_stage(dict(zip(snakemake.params.names, snakemake.input.data)), snakemake.params.benchmarks,
               snakemake.output.md, snakemake.output.csv, snakemake.output.png,
               ood_val=snakemake.params.ood_val)
