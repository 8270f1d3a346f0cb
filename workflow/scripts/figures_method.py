from grood.stages import setup_logging
from grood.stages.figures_method import figures_method_stage

setup_logging(snakemake.log[0])
figures_method_stage(dict(snakemake.input.items()), dict(snakemake.params.figures), dict(snakemake.output.items()))
