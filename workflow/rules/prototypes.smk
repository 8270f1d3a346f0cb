rule prototypes:
    input:
        model=f"{R}/{{bench}}/seed{{seed}}/model.pt",
        data=lambda wc: dataset_npz(BENCH[wc.bench]["id"]),
        train_features=f"{R}/{{bench}}/seed{{seed}}/features/train.zarr",
        ood_val=ood_val_input,
    output:
        npz=f"{R}/{{bench}}/seed{{seed}}/prototypes/{{source}}.npz",
    params:
        prototypes=lambda wc: prototype_params(wc.source),
        device=config["device"],
        code=stage_code("prototypes"),
    threads: config["threads"]
    resources:
        gpu=job_gpus,
    log:
        f"{R}/logs/{{bench}}/seed{{seed}}/prototypes/{{source}}.log",
    conda:
        "../../environment.yml"
    script:
        "../scripts/prototypes.py"
