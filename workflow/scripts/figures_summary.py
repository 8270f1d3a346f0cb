from grood.stages import setup_logging
from grood.stages.figures_summary import figures_summary_stage

setup_logging(snakemake.log[0])
figures_summary_stage(snakemake.wildcards.bench, snakemake.input.metrics,
                      dict(zip(snakemake.params.seeds, snakemake.input.summaries)),
                      {k: snakemake.output[k].removesuffix(".png") for k in ("heatmap", "near_far", "training")})
