from grood.data.card import write_datacard
from grood.pipeline import setup_logging

setup_logging(snakemake.log[0])
write_datacard(dict(zip(snakemake.params.names, snakemake.input.data)), snakemake.params.benchmarks,
               snakemake.output.md, snakemake.output.csv, snakemake.output.png,
               ood_val=snakemake.params.ood_val)
