rule prepare_dataset:
    output:
        npz=f"{RES}/data/{{dataset}}.npz",
    params:
        spec=lambda wc: dataset_spec(wc.dataset),
        raw_dir=RAW,
        code=code_version("data"),
    log:
        f"{R}/logs/prepare_dataset/{{dataset}}.log",
    benchmark:
        f"{R}/benchmarks/prepare_dataset/{{dataset}}.tsv"
    conda:
        "../../environment.yml"
    script:
        "../scripts/prepare_dataset.py"
