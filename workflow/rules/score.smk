rule fit_detector:
    input:
        stores=fit_stores,
    output:
        pkl=f"{R}/{{bench}}/seed{{seed}}/detectors/{{detector}}.pkl",
    params:
        method=lambda wc: DETECTORS[wc.detector]["method"],
        params=lambda wc: detector_params(wc.detector),
        code=code_version("detectors", "index.py"),
    log:
        f"{R}/logs/{{bench}}/seed{{seed}}/fit_detector/{{detector}}.log",
    conda:
        "../../environment.yml"
    script:
        "../scripts/fit_detector.py"


rule score:
    input:
        detector=f"{R}/{{bench}}/seed{{seed}}/detectors/{{detector}}.pkl",
        stores=score_stores,
        model=network_model,
        data=network_data,
    output:
        npy=f"{R}/{{bench}}/seed{{seed}}/scores/{{detector}}/{{part}}.npy",
    params:
        split=lambda wc: part_split(wc.part),
        device=config["device"],
    threads: lambda wc: config["threads"] if needs_network(wc.detector) else 1
    resources:
        gpu=lambda wc: int(needs_network(wc.detector)),
    log:
        f"{R}/logs/{{bench}}/seed{{seed}}/score/{{detector}}/{{part}}.log",
    conda:
        "../../environment.yml"
    script:
        "../scripts/score.py"
