rule evaluate:
    input:
        scores=lambda wc: score_files(wc.bench),
        summaries=lambda wc: [f"{run_dir(wc.bench, s)}/train.json" for s in SEEDS],
        ncp=lambda wc: [p for paths in ncp_inputs(wc.bench).values() for p in paths],
        index_quality=lambda wc: index_quality_files(wc.bench),
    output:
        **evaluate_outputs("{bench}"),
    params:
        layout=lambda wc: score_layout(wc.bench),
        index_quality=lambda wc: index_quality_layout(wc.bench),
        seeds=SEEDS,
        ncp_seeds=lambda wc: list(ncp_inputs(wc.bench)),
        groups=lambda wc: BENCH[wc.bench]["ood"],
        flags=detector_flags(),
        code=stage_code("evaluate"),
    log:
        f"{R}/logs/{{bench}}/evaluate.log",
    conda:
        "../../environment.yml"
    script:
        "../scripts/evaluate.py"
