# GROOD's gradients of one part in one gradient space ({space}: grood.method.vocab.gradient_space, e.g.
# mixup_ood_T1). The name is an identity only: source, wrt and temperature are looked up from it.
rule gradients:
    input:
        features=out("features"),
        prototypes=lambda wc: out("prototypes", bench=wc.bench, seed=wc.seed, source=GRADIENT_SPACES[wc.space]["source"]),
    output:
        zarr=directory(out("gradients")),
    params:
        wrt=gradient_space_param("wrt"),
        temperature=gradient_space_param("temperature"),
        batch_size=config["gradients"]["batch_size"],
        code=stage_code("gradients"),
    log:
        job_log("gradients", "seed", "{space}/{part}"),
    benchmark:
        job_benchmark("gradients", "seed", "{space}/{part}")
    conda:
        "../../environment.yml"
    script:
        "../scripts/gradients.py"
