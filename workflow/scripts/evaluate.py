from grood.pipeline import evaluate_stage, setup_logging

setup_logging(snakemake.log[0])
evaluate_stage(snakemake.wildcards.bench, list(snakemake.params.layout),
               {seed: path for seed, path in zip(snakemake.params.seeds, snakemake.input.summaries)},
               dict(snakemake.params.groups), dict(snakemake.params.flags), dict(snakemake.output.items()))
