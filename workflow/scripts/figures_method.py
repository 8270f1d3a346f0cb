from grood.stages import setup_logging
from grood.stages.figures_method import figures_method_stage

setup_logging(snakemake.log[0])
sets = snakemake.params.sets  # ID train, ID test, the OOD set: the order of the stores below
gradient = mixup = None
if "gradient_space" in snakemake.output.keys():
    gradient = {"features": dict(zip(sets, snakemake.input.features)),
                "gradients": dict(zip(sets, snakemake.input.gradients)),
                "prototypes": snakemake.input.prototypes, **snakemake.params.gradient}
if "mixup" in snakemake.output.keys():
    mixup = {"model": snakemake.input.model, "prototypes": snakemake.input.mixup, "data": snakemake.input.data}
figures_method_stage(snakemake.params.title,
                     {k: snakemake.output[k].removesuffix(".png") for k in ("gradient_space", "mixup")
                      if k in snakemake.output.keys()},
                     gradient, mixup)
