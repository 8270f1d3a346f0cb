# The data card: every dataset a benchmark uses, with source, licence, counts, shape, role and
# sample images — built from the prepared npz files' metadata (cheap, no network, no torch).


rule datacard:
    input:
        data=[dataset_npz(name) for name in datacard_datasets()],
    output:
        md=datacard_outputs()["md"],
        csv=datacard_outputs()["csv"],
        png=report(datacard_outputs()["png"], caption="../report/datacard.rst", category="Data"),
    params:
        names=datacard_datasets(),
        benchmarks=benchmark_roles(),
        ood_val=config["prototypes"]["ood_val_dataset"],
        code=stage_code("datacard"),
    localrule: True
    log:
        job_log("datacard"),
    conda:
        "../../environment.yml"
    script:
        "../scripts/datacard.py"
