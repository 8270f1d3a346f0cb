# Tuning on validation data (grood.evaluation.tuning, config `sweep:`): per (benchmark, seed, swept
# detector) the grid point with the best validation AUROC (ID-validation split against the
# OOD-validation sets; ties: the first point in grid order) is chosen and listed in tuning.csv. A
# checkpoint: only the chosen point's test parts are then scored, and the two copy rules give the
# detector the chosen point's fitted file and scores, so evaluate, the figures and `grood score` see
# a detector like any other.
from grood.stages.tune import copy_chosen


checkpoint tune:
    input:
        scores=lambda wc: [s["path"] for s in tune_table(wc)],
    output:
        csv=out("tuning"),
    params:
        scores=tune_table,
        points=lambda wc: TUNED[wc.detector],
        ood_val=lambda wc: grood.config.ood_val_sets(BENCH[wc.bench]),
        test=lambda wc: list(BENCH[wc.bench]["ood"]),
        code=stage_code("tune"),
    wildcard_constraints:
        detector=one_of(TUNED),
    log:
        job_log("tune", "seed", "{detector}"),
    conda:
        "../../environment.yml"
    script:
        "../scripts/tune.py"


rule tuned_detector:
    input:
        tuning=out("tuning"),
        npz=chosen("detector"),
    output:
        npz=out("detector"),
    wildcard_constraints:
        detector=one_of(TUNED),
    localrule: True
    log:
        job_log("tuned_detector", "seed", "{detector}"),
    run:  # in-process: a copy needs no job of its own
        from grood.stages import job_log as in_process_log

        with in_process_log(log[0]):
            copy_chosen(input.npz, output.npz)


rule tuned_scores:
    input:
        tuning=out("tuning"),
        npy=chosen("scores"),
    output:
        npy=out("scores"),
    wildcard_constraints:
        detector=one_of(TUNED),
    localrule: True
    log:
        job_log("tuned_scores", "seed", "{detector}/{part}"),
    run:  # in-process: a copy needs no job of its own
        from grood.stages import job_log as in_process_log

        with in_process_log(log[0]):
            copy_chosen(input.npy, output.npy)
