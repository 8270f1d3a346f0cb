from grood.stages import setup_logging
from grood.stages.fit_detector import fit_detector_stage

setup_logging(snakemake.log[0])
fit_detector_stage(snakemake.params.method, dict(snakemake.params.params), list(snakemake.input.stores),
                   snakemake.output.npz, index_shards=snakemake.params.index_shards,
                   model_pt=snakemake.input.model[0] if snakemake.input.model else None)
