rule fit_detector:
    input:
        stores=fit_stores,
    output:
        pkl=f"{R}/{{bench}}/seed{{seed}}/detectors/{{detector}}.pkl",
    params:
        method=lambda wc: DETECTORS[wc.detector]["method"],
        params=lambda wc: detector_params(wc.detector),
        code=code_version("detectors", "index.py", "stages/detect.py", "stages/io.py"),
    log:
        f"{R}/logs/{{bench}}/seed{{seed}}/fit_detector/{{detector}}.log",
    conda:
        "../../environment.yml"
    script:
        "../scripts/fit_detector.py"


# Scores of one part: one job (shards.score == 1, the default), or N jobs over row shards plus a
# cheap local merge into the very same scores/{detector}/{part}.npy (shards.score > 1).  The
# scoring work is always the rule named `score`, so per-rule cluster resources apply to it.
SCORE_SHARDS = int(config["shards"]["score"])  # a digit string from --config too

if SCORE_SHARDS == 1:

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
        threads: 1  # start-up bound: two jobs share the cores
        resources:
            gpu=lambda wc: job_gpus() * int(needs_network(wc.detector)),
        log:
            f"{R}/logs/{{bench}}/seed{{seed}}/score/{{detector}}/{{part}}.log",
        conda:
            "../../environment.yml"
        script:
            "../scripts/score.py"

else:

    # shard i of N: rows computed in the job from the part's length, aligned to the feature batch
    # size (or, for network detectors such as ODIN, to the detector's batch size): grood.shards
    rule score:
        input:
            detector=f"{R}/{{bench}}/seed{{seed}}/detectors/{{detector}}.pkl",
            stores=score_stores,
            model=network_model,
            data=network_data,
        output:
            npz=temp(f"{R}/{{bench}}/seed{{seed}}/shards/scores/{{detector}}/{{part}}/{{shard}}-of-{SCORE_SHARDS}.npz"),
        wildcard_constraints:
            shard=r"\d+",
        params:
            split=lambda wc: part_split(wc.part),
            device=config["device"],
            shard=lambda wc: int(wc.shard),
            shards=SCORE_SHARDS,
            align=config["features"]["batch_size"],
            code=code_version("shards.py"),
        threads: 1  # start-up bound: two jobs share the cores
        resources:
            gpu=lambda wc: job_gpus() * int(needs_network(wc.detector)),
        log:
            f"{R}/logs/{{bench}}/seed{{seed}}/score/{{detector}}/{{part}}/{{shard}}-of-{SCORE_SHARDS}.log",
        conda:
            "../../environment.yml"
        script:
            "../scripts/score_shard.py"

    rule score_gather:
        input:
            shards=expand(
                f"{R}/{{{{bench}}}}/seed{{{{seed}}}}/shards/scores/{{{{detector}}}}/{{{{part}}}}/{{shard}}-of-{SCORE_SHARDS}.npz",
                shard=range(SCORE_SHARDS),
            ),
        output:
            npy=f"{R}/{{bench}}/seed{{seed}}/scores/{{detector}}/{{part}}.npy",
        params:
            code=code_version("shards.py"),
        localrule: True
        log:
            f"{R}/logs/{{bench}}/seed{{seed}}/score/{{detector}}/{{part}}.gather.log",
        conda:
            "../../environment.yml"
        script:
            "../scripts/score_gather.py"
