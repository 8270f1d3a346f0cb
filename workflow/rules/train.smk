rule train:
    input:
        data=lambda wc: dataset_npz(BENCH[wc.bench]["id"]),
        weights=train_weights_input,
        aux=aux_inputs,
        init=init_model,
    output:
        model=out("model"),
        summary=out("train_json"),
    params:
        train=lambda wc: train_params(wc.bench),
        device=config["device"],
        code=stage_code("train"),
    threads: config["threads"]
    resources:
        gpu=job_gpus,
    log:
        job_log("train", "seed"),
    benchmark:
        job_benchmark("train", "seed")
    conda:
        "../../environment.yml"
    script:
        "../scripts/train.py"
