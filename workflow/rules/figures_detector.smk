# One page per detector (score histograms with the 95%-TPR threshold, ROC curves) from the first
# seed's scores: one job each, drawn while the other seeds still run.
rule figures_detector:
    input:
        id_scores=f"{R}/{{bench}}/seed{FIGURE_SEED}/scores/{{detector}}/test.npy",
        ood_scores=lambda wc: [f"{run_dir(wc.bench, FIGURE_SEED)}/scores/{wc.detector}/{o}.npy"
                               for o in BENCH[wc.bench]["ood"]],
    output:
        **figure_pair("page", f"{R}/{{bench}}/figures/detector_{{detector}}.png", "detector_page.rst",
                      "2 Detectors", detector="{detector}", benchmark="{bench}"),
    params:
        groups=lambda wc: BENCH[wc.bench]["ood"],
        title=lambda wc: f"{wc.bench}, seed {FIGURE_SEED}",
        code=stage_code("figures_detector"),
    log:
        f"{R}/logs/{{bench}}/figures_detector/{{detector}}.log",
    benchmark:
        f"{R}/benchmarks/{{bench}}/figures_detector/{{detector}}.tsv"
    conda:
        "../../environment.yml"
    script:
        "../scripts/figures_detector.py"
