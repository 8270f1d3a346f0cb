from grood.stages import setup_logging
from grood.stages.figures_detector import figures_detector_stage

setup_logging(snakemake.log[0])
figures_detector_stage(dict(snakemake.input.items()), dict(snakemake.params.figures), dict(snakemake.output.items()))
