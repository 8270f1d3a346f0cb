rule fit_detector:
    input:
        stores=lambda wc: detector_stores(wc, "train"),
    output:
        pkl=f"{R}/{{bench}}/seed{{seed}}/detectors/{{detector}}.pkl",
    params:
        method=lambda wc: DETECTORS[wc.detector]["method"],
        params=lambda wc: detector_params(wc.detector),
        code=code_version("detectors/__init__.py", "detectors/base.py", "index.py"),
    log:
        f"{R}/logs/{{bench}}/seed{{seed}}/fit_detector/{{detector}}.log",
    conda:
        "../../environment.yml"
    script:
        "../scripts/fit_detector.py"


rule score:
    input:
        detector=f"{R}/{{bench}}/seed{{seed}}/detectors/{{detector}}.pkl",
        stores=lambda wc: detector_stores(wc, wc.part),
    output:
        npy=f"{R}/{{bench}}/seed{{seed}}/scores/{{detector}}/{{part}}.npy",
    log:
        f"{R}/logs/{{bench}}/seed{{seed}}/score/{{detector}}/{{part}}.log",
    conda:
        "../../environment.yml"
    script:
        "../scripts/score.py"
