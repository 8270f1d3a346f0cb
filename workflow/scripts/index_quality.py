from grood.stages import setup_logging
from grood.stages.index_quality import index_quality_stage

setup_logging(snakemake.log[0])
index_quality_stage(snakemake.input.detector, list(snakemake.input.train), list(snakemake.input.test),
                    {ood: list(stores) for ood, stores in dict(snakemake.params.ood_stores).items()},
                    snakemake.output.json, sample=snakemake.params.sample, seed=int(snakemake.wildcards.seed),
                    nprobes=list(snakemake.params.nprobe), threads=snakemake.threads)
