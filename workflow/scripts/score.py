from grood.pipeline import score_stage, setup_logging

setup_logging(snakemake.log[0])
score_stage(snakemake.input.detector, list(snakemake.input.stores), snakemake.output.npy)
