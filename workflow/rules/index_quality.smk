# What an approximate index (ivf_flat / ivf_pq) costs, per detector that uses one: recall@k against
# exact search and the AUROC change, on a seeded sample of ID test and OOD queries per OOD set. The
# exact side streams the training store block by block. Evaluate tabulates the reports.
rule index_quality:
    input:
        detector=out("detector"),
        train=fit_stores,
        test=lambda wc: detector_array_stores(wc, "test", detector_object(wc.detector).requires),
        ood=lambda wc: [s for stores in index_quality_ood_stores(wc).values() for s in stores],
    output:
        json=out("index_quality"),
    params:
        ood_stores=index_quality_ood_stores,
        sample=config["index_quality"]["sample"],
        nprobe=config["index_quality"]["nprobe"],
        code=stage_code("index_quality"),
    threads: config["threads"]
    log:
        job_log("index_quality", "seed", "{detector}"),
    conda:
        "../../environment.yml"
    script:
        "../scripts/index_quality.py"
