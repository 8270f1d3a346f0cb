rule evaluate:
    input:
        scores=lambda wc: score_files(wc.bench),
        summaries=lambda wc: [f"{run_dir(wc.bench, s)}/train.json" for s in SEEDS],
        ncp=lambda wc: [p for paths in ncp_inputs(wc.bench).values() for p in paths],
        index_quality=lambda wc: index_quality_files(wc.bench),
    output:
        **{k: v for k, v in evaluate_outputs("{bench}").items() if k not in ("hist", "roc")},
        hist=report(evaluate_outputs("{bench}")["hist"], caption="../report/histograms.rst", category="Figures"),
        roc=report(evaluate_outputs("{bench}")["roc"], caption="../report/roc.rst", category="Figures"),
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
