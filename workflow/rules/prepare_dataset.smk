rule prepare_dataset:
    input:
        user=user_data_file,
    output:
        npz=out("dataset"),
    params:
        spec=lambda wc: dataset_spec(wc.dataset),
        raw_dir=RAW,
        user_folder=user_folder_manifest,
        code=stage_code("prepare_dataset"),
    log:
        job_log("prepare_dataset", "run", "{dataset}"),
    benchmark:
        job_benchmark("prepare_dataset", "run", "{dataset}")
    conda:
        "../../environment.yml"
    script:
        "../scripts/prepare_dataset.py"
