from grood.stages import decode_workers, setup_logging
from grood.stages.train import train_stage

setup_logging(snakemake.log[0])
train_stage(snakemake.input.data, snakemake.output.model, snakemake.output.summary,
            dict(snakemake.params.train), int(snakemake.wildcards.seed), snakemake.params.device,
            snakemake.threads, workers=decode_workers(snakemake.config),
            aux_npzs=list(snakemake.input.aux), init_model=list(snakemake.input.init))
