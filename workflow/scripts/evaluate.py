from grood.stages import setup_logging
from grood.stages.evaluate import evaluate_stage

setup_logging(snakemake.log[0])
evaluate_stage(snakemake.wildcards.bench, list(snakemake.params.scores),
               {seed: path for seed, path in zip(snakemake.params.seeds, snakemake.input.summaries)},
               dict(snakemake.params.groups), dict(snakemake.params.flags), dict(snakemake.output.items()),
               ncp_inputs={seed: tuple(snakemake.input.ncp[2 * i : 2 * i + 2])
                           for i, seed in enumerate(snakemake.params.ncp_seeds)},
               index_quality=list(snakemake.params.index_quality), uncertainty=dict(snakemake.params.uncertainty),
               tuning=list(snakemake.params.tuning), threads=snakemake.threads)
