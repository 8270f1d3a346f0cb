from grood.pipeline import setup_logging
from grood.shards import merge_zarr

setup_logging(snakemake.log[0])
merge_zarr(list(snakemake.input.shards), snakemake.output.zarr, snakemake.params.chunk_rows)
