rule prepare_dataset:
    input:
        user=user_data_file,
    output:
        npz=f"{RES}/data/{{dataset}}.npz",
    params:
        spec=lambda wc: dataset_spec(wc.dataset),
        raw_dir=RAW,
        user_folder=user_folder_manifest,
        code=stage_code("prepare_dataset"),
    log:
        f"{R}/logs/prepare_dataset/{{dataset}}.log",
    benchmark:
        f"{R}/benchmarks/prepare_dataset/{{dataset}}.tsv"
    conda:
        "../../environment.yml"
    script:
        "../scripts/prepare_dataset.py"
