from grood.stages import setup_logging
from grood.stages.gradients import gradients_stage

setup_logging(snakemake.log[0])
gradients_stage(snakemake.input.features, snakemake.input.prototypes, snakemake.params.wrt,
                snakemake.params.temperature, snakemake.output.zarr, snakemake.params.batch_size)
