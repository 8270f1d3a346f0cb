# The figures over every seed of a benchmark (grood.figures.catalog, job "summary"): AUROC heatmap
# (the report's first figure), near/far chart, training curves — from the metrics table, so a
# figure change never recomputes metrics.
rule figures_summary:
    input:
        unpack(figure_inputs("summary")),
    output:
        **figure_outputs("summary"),
    params:
        figures=figure_params("summary"),
        code=stage_code("figures_summary"),
    log:
        job_log("figures_summary", "bench"),
    benchmark:
        job_benchmark("figures_summary", "bench")
    conda:
        "../../environment.yml"
    script:
        "../scripts/figures_summary.py"
