from grood.pipeline import gradients_stage, setup_logging

setup_logging(snakemake.log[0])
gradients_stage(snakemake.input.features, snakemake.input.prototypes, snakemake.wildcards.wrt,
                float(snakemake.wildcards.temp), snakemake.output.zarr, snakemake.params.batch_size)
