from grood.stages import setup_logging
from grood.stages.figures_summary import figures_summary_stage

setup_logging(snakemake.log[0])
figures_summary_stage(dict(snakemake.input.items()), dict(snakemake.params.figures), dict(snakemake.output.items()))
