from grood.stages import search_on_gpu, setup_logging
from grood.stages.search_index_shard import search_index_shard_stage

setup_logging(snakemake.log[0])
shard, shards = snakemake.params.shard
search_index_shard_stage(snakemake.input.detector, list(snakemake.input.train), list(snakemake.input.queries),
                         snakemake.output.npz, shard, shards, threads=snakemake.threads,
                         search_gpu=search_on_gpu(snakemake.config))
