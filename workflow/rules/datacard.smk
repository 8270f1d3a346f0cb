# The data card: every dataset a benchmark uses, with source, licence, counts, shape, role and
# sample images — built from the prepared npz files' metadata (cheap, no network, no torch).


rule datacard:
    input:
        data=[dataset_npz(name) for name in datacard_datasets()],
    output:
        **datacard_outputs(),
    params:
        names=datacard_datasets(),
        benchmarks=benchmark_roles(),
        ood_val=config["prototypes"]["ood_val_dataset"],
        code=code_version("data/card.py"),
    localrule: True
    log:
        f"{R}/logs/datacard.log",
    conda:
        "../../environment.yml"
    script:
        "../scripts/datacard.py"
