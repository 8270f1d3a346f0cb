rule evaluate:
    input:
        scores=lambda wc: score_files(wc.bench),
        summaries=lambda wc: [f"{run_dir(wc.bench, s)}/train.json" for s in SEEDS],
    output:
        **evaluate_outputs("{bench}"),
    params:
        layout=lambda wc: score_layout(wc.bench),
        seeds=SEEDS,
        groups=lambda wc: BENCH[wc.bench]["ood"],
        flags=detector_flags(),
        code=code_version("metrics.py", "results.py", "plots.py", "stages/evaluate.py"),
    log:
        f"{R}/logs/{{bench}}/evaluate.log",
    conda:
        "../../environment.yml"
    script:
        "../scripts/evaluate.py"
