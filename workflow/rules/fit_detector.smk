# One detector fitted on the ID training arrays it needs (a faiss index for GROOD and kNN), stored
# without pickle (grood.detectors.store: arrays + JSON header), so a shared run is safe to open.
# With shards.index > 1 a k-NN detector is stored without its index (search_index_shard builds it).
# Detectors fitted on the classifier head (ReAct, ASH, SCALE, DICE, ViM) also get the checkpoint.
rule fit_detector:
    input:
        stores=fit_stores,
        model=fit_model,
    output:
        npz=out("detector"),
    params:
        method=lambda wc: DETECTORS[wc.detector]["method"],
        params=lambda wc: detector_params(wc.detector),
        index_shards=lambda wc: index_shards_of(wc.detector),
        code=stage_code("fit_detector"),
    log:
        job_log("fit_detector", "seed", "{detector}"),
    conda:
        "../../environment.yml"
    script:
        "../scripts/fit_detector.py"
