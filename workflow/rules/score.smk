# Scores of one part: one job (shards.score == 1, the default) writing scores/{detector}/{part}.npy,
# or N jobs over row shards plus `score_gather`, a cheap local merge into the very same file. The
# scoring work is always the rule named `score`, so per-rule cluster resources apply to it. Shard
# rows are computed in the job from the part's length, aligned to the feature batch size (or, for
# detectors that run the network such as ODIN, to the detector's batch size): grood.storage.shards.
SCORE_SHARDS = shard_count("score")
SCORE_SHARD = out("score_shard", shards=SCORE_SHARDS)


rule score:
    wildcard_constraints:
        detector=one_of(d for d in DETECTORS if d not in LOCAL_SCORES),
    input:
        detector=out("detector"),
        stores=score_stores,
        model=network_model,
        data=network_data,
        index_shards=index_shard_files,  # shards.index > 1: the merged k-NN search replaces the index
    output:
        scores=temp(SCORE_SHARD) if SCORE_SHARDS > 1 else out("scores"),
    params:
        split=lambda wc: part_split(wc.part),
        device=config["device"],
        shard=shard_param(SCORE_SHARDS),
        align=config["features"]["batch_size"] if SCORE_SHARDS > 1 else None,
        code=stage_code("score"),
    threads: search_threads  # k-NN searches: search.threads (exact scores are the same bits on any count)
    resources:
        gpu=lambda wc: job_gpus() * int(needs_network(wc.detector) or searches_on_gpu(wc.detector)),
    log:
        job_log("score", "seed", per_shard("{detector}/{part}", SCORE_SHARDS)),
    benchmark:
        job_benchmark("score", "seed", per_shard("{detector}/{part}", SCORE_SHARDS))
    conda:
        "../../environment.yml"
    script:
        "../scripts/score.py"


# The same stage for the detectors that only do arithmetic on cached arrays (config in_process):
# run inside the Snakemake process — no Python start-up, no sbatch submission (localrule), the same
# bytes. torch is never imported here (tests/unit/test_in_process.py checks every such detector).
rule score_local:
    wildcard_constraints:
        detector=one_of(LOCAL_SCORES),
    input:
        detector=out("detector"),
        stores=score_stores,
    output:
        scores=out("scores"),
    params:
        split=lambda wc: part_split(wc.part),
        code=stage_code("score"),
    localrule: True
    log:
        job_log("score_local", "seed", "{detector}/{part}"),
    benchmark:
        job_benchmark("score_local", "seed", "{detector}/{part}")
    run:
        from grood.stages import job_log as in_process_log
        from grood.stages.score import score_stage

        with in_process_log(log[0]):
            score_stage(input.detector, list(input.stores), output.scores, split=params.split)


if SCORE_SHARDS > 1:

    rule score_gather:
        input:
            shards=expand(SCORE_SHARD, shard=range(SCORE_SHARDS), allow_missing=True),
        output:
            npy=out("scores"),
        params:
            code=stage_code("score_gather"),
        localrule: True
        log:
            job_log("score", "seed", "{detector}/{part}.gather"),
        conda:
            "../../environment.yml"
        script:
            "../scripts/score_gather.py"
