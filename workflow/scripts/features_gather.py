from grood.stages import setup_logging
from grood.stages.features_gather import features_gather_stage

setup_logging(snakemake.log[0])
features_gather_stage(list(snakemake.input.shards), snakemake.output.zarr, snakemake.params.chunk_rows,
                      early_shards=list(snakemake.input.early), early_out=snakemake.output.early)
