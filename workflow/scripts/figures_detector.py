from grood.stages import setup_logging
from grood.stages.figures_detector import figures_detector_stage

setup_logging(snakemake.log[0])
figures_detector_stage(snakemake.wildcards.detector, snakemake.input.id_scores,
                       dict(zip(snakemake.params.groups, snakemake.input.ood_scores)), dict(snakemake.params.groups),
                       snakemake.output.page.removesuffix(".png"), snakemake.params.title)
