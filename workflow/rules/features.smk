# Features of one part: one GPU job (shards.features == 1, the default), or N GPU jobs over row
# shards plus a cheap local merge into the very same features/{part}.zarr (shards.features > 1).
# The GPU work is always the rule named `features`, so per-rule cluster resources apply to it.
FEATURE_SHARDS = int(config["shards"]["features"])  # a digit string from --config too

if FEATURE_SHARDS == 1:

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
            device=config["device"],
            code=code_version("features.py", "preprocess.py", "models.py", "stages/features.py", "stages/io.py"),
        threads: lambda wc: config["threads"] if wc.part == "train" else 1  # small parts: start-up bound
        resources:
            gpu=job_gpus,
        log:
            f"{R}/logs/{{bench}}/seed{{seed}}/features/{{part}}.log",
        benchmark:
            f"{R}/benchmarks/{{bench}}/seed{{seed}}/features/{{part}}.tsv"
        conda:
            "../../environment.yml"
        script:
            "../scripts/features.py"

else:

    # shard i of N: rows of block range [floor(i·nb/N), floor((i+1)·nb/N)) of the nb feature batches,
    # computed in the job from the split's length (grood.shards.row_ranges)
    rule features:
        input:
            model=f"{R}/{{bench}}/seed{{seed}}/model.pt",
            data=lambda wc: dataset_npz(part_dataset(wc.bench, wc.part)),
        output:
            zarr=temp(directory(f"{R}/{{bench}}/seed{{seed}}/shards/features/{{part}}/{{shard}}-of-{FEATURE_SHARDS}.zarr")),
        wildcard_constraints:
            shard=r"\d+",
        params:
            split=lambda wc: part_split(wc.part),
            is_id=lambda wc: wc.part in ("train", "test"),
            batch_size=config["features"]["batch_size"],
            device=config["device"],
            shard=lambda wc: int(wc.shard),
            shards=FEATURE_SHARDS,
            code=code_version("features.py", "preprocess.py", "models.py", "shards.py", "stages/features.py", "stages/io.py"),
        threads: lambda wc: config["threads"] if wc.part == "train" else 1  # small parts: start-up bound
        resources:
            gpu=job_gpus,
        log:
            f"{R}/logs/{{bench}}/seed{{seed}}/features/{{part}}/{{shard}}-of-{FEATURE_SHARDS}.log",
        benchmark:
            f"{R}/benchmarks/{{bench}}/seed{{seed}}/features/{{part}}/{{shard}}-of-{FEATURE_SHARDS}.tsv"
        conda:
            "../../environment.yml"
        script:
            "../scripts/features_shard.py"

    rule features_gather:
        input:
            shards=expand(
                f"{R}/{{{{bench}}}}/seed{{{{seed}}}}/shards/features/{{{{part}}}}/{{shard}}-of-{FEATURE_SHARDS}.zarr",
                shard=range(FEATURE_SHARDS),
            ),
        output:
            zarr=directory(f"{R}/{{bench}}/seed{{seed}}/features/{{part}}.zarr"),
        params:
            chunk_rows=config["features"]["batch_size"],
            code=code_version("shards.py"),
        localrule: True
        log:
            f"{R}/logs/{{bench}}/seed{{seed}}/features/{{part}}.gather.log",
        conda:
            "../../environment.yml"
        script:
            "../scripts/features_gather.py"
