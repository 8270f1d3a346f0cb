from grood.stages import setup_logging
from grood.stages.fit_detector import fit_detector_stage

setup_logging(snakemake.log[0])
fit_detector_stage(snakemake.params.method, dict(snakemake.params.params), list(snakemake.input.stores),
                   snakemake.output.npz, index_shards=snakemake.params.index_shards,
                   head_npz=snakemake.input.head[0] if snakemake.input.head else None)
