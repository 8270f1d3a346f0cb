rule features:
    input:
        model=f"{R}/{{bench}}/seed{{seed}}/model.pt",
        data=lambda wc: dataset_npz(part_dataset(wc.bench, wc.part)),
    output:
        zarr=directory(f"{R}/{{bench}}/seed{{seed}}/features/{{part}}.zarr"),
    params:
        split=lambda wc: part_split(wc.part),
        is_id=lambda wc: wc.part in ("train", "test"),
        batch_size=config["features"]["batch_size"],
        precision=config["features"]["precision"],
        device=config["device"],
        code=code_version("features.py", "preprocess.py", "models.py"),
    threads: config["threads"]
    resources:
        gpu=1,
    log:
        f"{R}/logs/{{bench}}/seed{{seed}}/features/{{part}}.log",
    benchmark:
        f"{R}/benchmarks/{{bench}}/seed{{seed}}/features/{{part}}.tsv"
    conda:
        "../../environment.yml"
    script:
        "../scripts/features.py"
