# The data card: every dataset a benchmark uses, with source, licence, counts, shape, role and
# sample images — built from the prepared npz files' metadata (cheap, no network, no torch).


def datacard_datasets():
    """Datasets with a role: each benchmark's ID and OOD sets, and the ood_val prototype set."""
    names = [n for spec in BENCH.values() for n in (spec["id"], *spec["ood"])]
    if config["prototypes"]["ood_val_dataset"]:
        names.append(config["prototypes"]["ood_val_dataset"])
    return list(dict.fromkeys(names))


def datacard_outputs():
    return {"md": f"{R}/datacard.md", "csv": f"{R}/datacard.csv", "png": f"{R}/datacard.png"}


rule datacard:
    input:
        data=[dataset_npz(name) for name in datacard_datasets()],
    output:
        **datacard_outputs(),
    params:
        names=datacard_datasets(),
        benchmarks=BENCH,
        ood_val=config["prototypes"]["ood_val_dataset"],
        code=code_version("data/card.py"),
    localrule: True
    log:
        f"{R}/logs/datacard.log",
    conda:
        "../../environment.yml"
    script:
        "../scripts/datacard.py"
