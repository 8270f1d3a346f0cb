rule train:
    input:
        data=lambda wc: dataset_npz(BENCH[wc.bench]["id"]),
        weights=train_weights_input,
        aux=aux_inputs,
        init=init_model,
    output:
        model=f"{R}/{{bench}}/seed{{seed}}/model.pt",
        summary=f"{R}/{{bench}}/seed{{seed}}/train.json",
    params:
        train=lambda wc: train_params(wc.bench),
        device=config["device"],
        code=stage_code("train"),
    threads: config["threads"]
    resources:
        gpu=job_gpus,
    log:
        f"{R}/logs/{{bench}}/seed{{seed}}/train.log",
    benchmark:
        f"{R}/benchmarks/{{bench}}/seed{{seed}}/train.tsv"
    conda:
        "../../environment.yml"
    script:
        "../scripts/train.py"
