# GROOD's gradients of one part in one gradient space ({space}: grood.method.vocab.gradient_space, e.g.
# mixup_ood_T1). The name is an identity only: source, wrt and temperature are looked up from it.
rule gradients:
    input:
        features=f"{R}/{{bench}}/seed{{seed}}/features/{{part}}.zarr",
        prototypes=lambda wc: f"{run_dir(wc.bench, wc.seed)}/prototypes/{GRADIENT_SPACES[wc.space]['source']}.npz",
    output:
        zarr=directory(f"{R}/{{bench}}/seed{{seed}}/gradients/{{space}}/{{part}}.zarr"),
    params:
        wrt=gradient_space_param("wrt"),
        temperature=gradient_space_param("temperature"),
        batch_size=config["gradients"]["batch_size"],
        code=stage_code("gradients"),
    log:
        f"{R}/logs/{{bench}}/seed{{seed}}/gradients/{{space}}/{{part}}.log",
    benchmark:
        f"{R}/benchmarks/{{bench}}/seed{{seed}}/gradients/{{space}}/{{part}}.tsv"
    conda:
        "../../environment.yml"
    script:
        "../scripts/gradients.py"
