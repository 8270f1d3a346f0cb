from grood.pipeline import prepare_dataset, setup_logging

setup_logging(snakemake.log[0])
prepare_dataset(snakemake.wildcards.dataset, snakemake.params.spec, snakemake.params.raw_dir,
                snakemake.output.npz)
