from grood.stages import decode_workers, setup_logging
from grood.stages.prototypes import prototypes_stage

setup_logging(snakemake.log[0])
prototypes_stage(snakemake.input.model, snakemake.input.data, snakemake.input.train_features,
                 snakemake.params.source, dict(snakemake.params.prototypes), snakemake.output.npz,
                 seed=int(snakemake.wildcards.seed),
                 ood_val_npz=snakemake.input.ood_val[0] if snakemake.input.ood_val else None,
                 device=snakemake.params.device, threads=snakemake.threads,
                 workers=decode_workers(snakemake.config),
                 early_zarr=snakemake.input.early[0] if snakemake.input.early else None)
