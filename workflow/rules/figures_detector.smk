# One page per detector (grood.figures.catalog, job "detector": score histograms with the
# 95%-TPR threshold, ROC curves) from the first seed's scores: one job each, drawn while the other
# seeds still run.
rule figures_detector:
    input:
        unpack(figure_inputs("detector")),
    output:
        **figure_outputs("detector"),
    params:
        figures=figure_params("detector"),
        code=stage_code("figures_detector"),
    wildcard_constraints:
        detector=one_of(TABLE),  # a swept detector too: its chosen point's scores
    log:
        job_log("figures_detector", "bench", "{detector}"),
    benchmark:
        job_benchmark("figures_detector", "bench", "{detector}")
    conda:
        "../../environment.yml"
    script:
        "../scripts/figures_detector.py"
