from grood.stages import decode_workers, setup_logging
from grood.stages.features import features_stage

setup_logging(snakemake.log[0])
shard = snakemake.params.shard  # [i, N] when shards.features > 1, else None
features_stage(snakemake.input.model, snakemake.input.data, snakemake.params.split, snakemake.params.is_id,
               snakemake.output.zarr, snakemake.params.batch_size,
               snakemake.params.device, snakemake.threads, shard=tuple(shard) if shard else None,
               workers=decode_workers(snakemake.config), gaia=snakemake.params.gaia,
               early_layer=snakemake.params.early_layer, early_out=snakemake.output.early)
