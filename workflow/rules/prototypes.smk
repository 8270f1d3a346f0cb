rule prototypes:
    input:
        model=out("model"),
        data=lambda wc: dataset_npz(BENCH[wc.bench]["id"]),
        train_features=out("features", part="train"),
        early=early_input,
        ood_val=ood_val_input,
    output:
        npz=out("prototypes"),
    params:
        source=lambda wc: PROTOTYPES[wc.source]["source"],
        prototypes=lambda wc: PROTOTYPES[wc.source]["params"],
        device=config["device"],
        code=stage_code("prototypes"),
    threads: config["threads"]
    resources:
        gpu=job_gpus,
    log:
        job_log("prototypes", "seed", "{source}"),
    conda:
        "../../environment.yml"
    script:
        "../scripts/prototypes.py"
