# The classifier head of a seed's checkpoint as plain arrays (head_weight, head_bias): read once per
# seed, so the detectors fitted on it (ReAct, ASH, SCALE, DICE, ViM) fit from arrays, without torch.
rule head:
    input:
        model=out("model"),
    output:
        npz=out("head"),
    params:
        code=stage_code("head"),
    log:
        job_log("head", "seed"),
    benchmark:
        job_benchmark("head", "seed")
    conda:
        "../../environment.yml"
    script:
        "../scripts/head.py"


# One detector fitted on the ID training arrays it needs (a faiss index for GROOD and kNN), stored
# without pickle (grood.detectors.store: arrays + JSON header), so a shared run is safe to open.
# With shards.index > 1 a k-NN detector is stored without its index (search_index_shard builds it).
# Detectors fitted on the classifier head (ReAct, ASH, SCALE, DICE, ViM) also get the head's arrays.
# With in_process on, only the k-NN detectors are fitted here; the others in rule fit_local.
rule fit_detector:
    wildcard_constraints:
        detector=one_of(d for d in DETECTORS if d not in LOCAL_FITS),
    input:
        stores=fit_stores,
        head=fit_head,
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


# The same stage inside the Snakemake process (config in_process) for the detectors fitted from cached
# arrays alone (no faiss index): those that learn nothing (MSP, Energy, GradNorm, ODIN, …: stored with
# their parameters only), and Mahalanobis, ViM, ReAct, … from the training arrays and the head's
# arrays — no Python start-up, no torch, the same bytes.
rule fit_local:
    wildcard_constraints:
        detector=one_of(LOCAL_FITS),
    input:
        stores=fit_stores,
        head=fit_head,
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
            fit_detector_stage(params.method, dict(params.params), list(input.stores), output.npz,
                               head_npz=input.head[0] if input.head else None)
