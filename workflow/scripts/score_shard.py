from grood.pipeline import score_shard_stage, setup_logging

setup_logging(snakemake.log[0])
# detectors that run the network at scoring time (ODIN) get the checkpoint and the part's dataset
network = {}
if snakemake.input.model:
    network = {"model_pt": snakemake.input.model[0], "data_npz": snakemake.input.data[0]}
score_shard_stage(snakemake.input.detector, list(snakemake.input.stores), snakemake.output.npz,
                  shard=snakemake.params.shard, shards=snakemake.params.shards, align=snakemake.params.align,
                  split=snakemake.params.split, device=snakemake.params.device, threads=snakemake.threads,
                  **network)
