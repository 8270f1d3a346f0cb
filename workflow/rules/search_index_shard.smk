# shards.index > 1: one row shard of a k-NN detector's training index (GROOD, kNN), built and
# searched by every query of one part, per job; the part's `score` job merges the N results exactly
# (grood.search.sharded). A job holds only its shard's index (its rows' vectors, float32), the
# part's queries stream through it; shards start on the training store's chunks.
if INDEX_SHARDS > 1:

    rule search_index_shard:
        input:
            detector=out("detector"),
            train=fit_stores,
            queries=score_stores,
        output:
            npz=temp(INDEX_SHARD),
        params:
            shard=shard_param(INDEX_SHARDS),
            code=stage_code("search_index_shard"),
        threads: config["threads"]  # faiss proposes candidates, float64 re-ranking decides: any count gives the same
        resources:
            gpu=lambda wc: job_gpus() * int(config["search"]["gpu"]),
        log:
            job_log("search_index_shard", "seed", per_shard("{detector}/{part}", INDEX_SHARDS)),
        benchmark:
            job_benchmark("search_index_shard", "seed", per_shard("{detector}/{part}", INDEX_SHARDS))
        conda:
            "../../environment.yml"
        script:
            "../scripts/search_index_shard.py"
