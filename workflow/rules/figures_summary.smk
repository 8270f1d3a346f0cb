# The figures over every seed of a benchmark: AUROC heatmap (the report's first figure), near/far
# chart, training curves — from the metrics table, so a figure change never recomputes metrics.
rule figures_summary:
    input:
        metrics=f"{R}/{{bench}}/metrics.csv",
        summaries=lambda wc: [f"{run_dir(wc.bench, s)}/train.json" for s in SEEDS],
    output:
        **figure_pair("heatmap", f"{R}/{{bench}}/figures/summary_auroc_heatmap.png", "summary_auroc_heatmap.rst",
                      "1 Summary", figure="AUROC heatmap", benchmark="{bench}"),
        **figure_pair("near_far", f"{R}/{{bench}}/figures/summary_near_far.png", "summary_near_far.rst",
                      "1 Summary", figure="near / far AUROC per seed", benchmark="{bench}"),
        **figure_pair("training", f"{R}/{{bench}}/figures/training_curves.png", "training_curves.rst",
                      "4 Training", figure="training curves", benchmark="{bench}"),
    params:
        seeds=SEEDS,
        code=stage_code("figures_summary"),
    log:
        f"{R}/logs/{{bench}}/figures_summary.log",
    benchmark:
        f"{R}/benchmarks/{{bench}}/figures_summary.tsv"
    conda:
        "../../environment.yml"
    script:
        "../scripts/figures_summary.py"
