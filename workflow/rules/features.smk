# Features of one part: one job (shards.features == 1, the default) writing features/{part}.zarr, or
# N jobs over row shards plus `features_gather`, a cheap local merge into the very same store. The
# network pass is always the rule named `features`, so per-rule cluster resources apply to it.
# Shard i of N: the row blocks [floor(i·nb/N), floor((i+1)·nb/N)) of the nb feature batches,
# computed in the job from the split's length (grood.storage.shards.shard_rows).
# The pass over the ID training part also sums the mix-up's early activations by class (Q, in its own
# store: prototypes/early/train.zarr); every other part, or a config without the mix-up, writes a
# store without Q. Shards write their partial sums, which the gather adds.
FEATURE_SHARDS = shard_count("features")
FEATURE_SHARD = out("feature_shard", shards=FEATURE_SHARDS)
EARLY_SHARD = out("early_shard", shards=FEATURE_SHARDS)


rule features:
    input:
        model=out("model"),
        data=lambda wc: dataset_npz(part_dataset(wc.bench, wc.part)),
    output:
        zarr=temp(directory(FEATURE_SHARD)) if FEATURE_SHARDS > 1 else directory(out("features")),
        early=temp(EARLY_SHARD) if FEATURE_SHARDS > 1 else directory(out("early_prototypes")),
    params:
        split=lambda wc: part_split(wc.part),
        is_id=lambda wc: wc.part in ("train", "test", ID_VAL),
        gaia=lambda wc: features_gaia(wc.part),  # + GAIA's statistics (only when a detector reads them)
        batch_size=config["features"]["batch_size"],
        device=config["device"],
        shard=shard_param(FEATURE_SHARDS),
        early_layer=early_layer,
        code=stage_code("features"),
    threads: lambda wc: config["threads"] if wc.part == "train" else 1  # small parts: start-up bound
    resources:
        gpu=job_gpus,
    log:
        job_log("features", "seed", per_shard("{part}", FEATURE_SHARDS)),
    benchmark:
        job_benchmark("features", "seed", per_shard("{part}", FEATURE_SHARDS))
    conda:
        "../../environment.yml"
    script:
        "../scripts/features.py"


if FEATURE_SHARDS > 1:

    rule features_gather:
        input:
            shards=expand(FEATURE_SHARD, shard=range(FEATURE_SHARDS), allow_missing=True),
            early=expand(EARLY_SHARD, shard=range(FEATURE_SHARDS), allow_missing=True),
        output:
            zarr=directory(out("features")),
            early=directory(out("early_prototypes")),
        params:
            chunk_rows=config["features"]["batch_size"],
            code=stage_code("features_gather"),
        localrule: True
        log:
            job_log("features", "seed", "{part}.gather"),
        conda:
            "../../environment.yml"
        script:
            "../scripts/features_gather.py"
