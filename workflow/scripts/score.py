from grood.stages import decode_workers, search_on_gpu, setup_logging
from grood.stages.score import score_stage

setup_logging(snakemake.log[0])
# detectors that run the network at scoring time (ODIN) get the checkpoint and the part's dataset
network = {}
if snakemake.input.model:
    network = {"model_pt": snakemake.input.model[0], "data_npz": snakemake.input.data[0]}
shard = snakemake.params.shard  # [i, N] when shards.score > 1, else None
score_stage(snakemake.input.detector, list(snakemake.input.stores), snakemake.output.scores,
            split=snakemake.params.split, device=snakemake.params.device, threads=snakemake.threads,
            shard=tuple(shard) if shard else None, align=snakemake.params.align or 1,
            workers=decode_workers(snakemake.config), index_shards=list(snakemake.input.index_shards) or None,
            search_gpu=search_on_gpu(snakemake.config),
            **network)
