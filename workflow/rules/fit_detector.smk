# One detector fitted on the ID training arrays it needs (a faiss index for GROOD and kNN).
rule fit_detector:
    input:
        stores=fit_stores,
    output:
        pkl=f"{R}/{{bench}}/seed{{seed}}/detectors/{{detector}}.pkl",
    params:
        method=lambda wc: DETECTORS[wc.detector]["method"],
        params=lambda wc: detector_params(wc.detector),
        code=stage_code("fit_detector"),
    log:
        f"{R}/logs/{{bench}}/seed{{seed}}/fit_detector/{{detector}}.log",
    conda:
        "../../environment.yml"
    script:
        "../scripts/fit_detector.py"
