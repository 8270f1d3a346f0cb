from grood.stages import setup_logging
from grood.stages.prepare_dataset import prepare_dataset_stage

setup_logging(snakemake.log[0])
prepare_dataset_stage(snakemake.wildcards.dataset, snakemake.params.spec, snakemake.params.raw_dir,
                      snakemake.output.npz)
