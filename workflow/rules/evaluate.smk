rule evaluate:
    input:
        scores=lambda wc: [s["path"] for s in score_table(wc.bench)],
        summaries=lambda wc: [out("train_json", bench=wc.bench, seed=s) for s in SEEDS],
        ncp=lambda wc: [p for paths in ncp_inputs(wc.bench).values() for p in paths],
        index_quality=lambda wc: [r["path"] for r in index_quality_table(wc.bench)],
        tuning=lambda wc: [r["path"] for r in tuning_table(wc.bench)],
    output:
        **evaluate_outputs("{bench}"),
    params:
        scores=lambda wc: score_table(wc.bench),
        index_quality=lambda wc: index_quality_table(wc.bench),
        seeds=SEEDS,
        ncp_seeds=lambda wc: list(ncp_inputs(wc.bench)),
        groups=lambda wc: BENCH[wc.bench]["ood"],
        flags=detector_flags(),
        uncertainty=config["uncertainty"],
        tuning=lambda wc: tuning_table(wc.bench),
        code=stage_code("evaluate"),
    threads: config["threads"]  # the bootstrap splits the detectors between threads
    log:
        job_log("evaluate", "bench"),
    benchmark:
        job_benchmark("evaluate", "bench")
    conda:
        "../../environment.yml"
    script:
        "../scripts/evaluate.py"
