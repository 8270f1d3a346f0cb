# grood: gradient-based OOD detection, from data to report.  `snakemake --cores all` runs the
# embedded default benchmark (config/config.yaml); `--configfile X.yaml` runs X *instead* of it.
from snakemake.utils import min_version

min_version("9.0")

if not workflow.overwrite_configfiles:
    configfile: workflow.source_path("config/config.yaml")


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/prepare_dataset.smk"
include: "workflow/rules/datacard.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/features.smk"
include: "workflow/rules/prototypes.smk"
include: "workflow/rules/gradients.smk"
include: "workflow/rules/fit_detector.smk"
include: "workflow/rules/search_index_shard.smk"
include: "workflow/rules/score.smk"
include: "workflow/rules/tune.smk"
include: "workflow/rules/index_quality.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/figures_summary.smk"
include: "workflow/rules/figures_detector.smk"
include: "workflow/rules/figures_method.smk"


rule all:
    default_target: True
    input:
        final_outputs(),


onsuccess:
    print_results_summary()
