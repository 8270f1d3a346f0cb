from grood.pipeline import features_stage, setup_logging

setup_logging(snakemake.log[0])
features_stage(snakemake.input.model, snakemake.input.data, snakemake.params.split, snakemake.params.is_id,
               snakemake.output.zarr, snakemake.params.batch_size,
               snakemake.params.device, snakemake.threads)
