# One detector fitted on the ID training arrays it needs (a faiss index for GROOD and kNN), stored
# without pickle (grood.detectors.store: arrays + JSON header), so a shared run is safe to open.
# With shards.index > 1 a k-NN detector is stored without its index (search_index_shard builds it).
# Detectors fitted on the classifier head (ReAct, ASH, SCALE, DICE, ViM) also get the checkpoint.
rule fit_detector:
    wildcard_constraints:
        detector=one_of(d for d in DETECTORS if d not in LOCAL_FITS),
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
    benchmark:
        job_benchmark("fit_detector", "seed", "{detector}")
    conda:
        "../../environment.yml"
    script:
        "../scripts/fit_detector.py"


# A detector that learns nothing from the training set (MSP, Energy, GradNorm, ODIN, …) is stored
# with its parameters only: inside the Snakemake process (config in_process), the same bytes.
rule fit_local:
    wildcard_constraints:
        detector=one_of(LOCAL_FITS),
    output:
        npz=out("detector"),
    params:
        method=lambda wc: DETECTORS[wc.detector]["method"],
        params=lambda wc: detector_params(wc.detector),
        code=stage_code("fit_detector"),
    localrule: True
    log:
        job_log("fit_local", "seed", "{detector}"),
    benchmark:
        job_benchmark("fit_local", "seed", "{detector}")
    run:
        from grood.stages import job_log as in_process_log
        from grood.stages.fit_detector import fit_detector_stage

        with in_process_log(log[0]):
            fit_detector_stage(params.method, dict(params.params), [], output.npz)
