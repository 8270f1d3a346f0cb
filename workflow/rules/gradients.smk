rule gradients:
    input:
        features=f"{R}/{{bench}}/seed{{seed}}/features/{{part}}.zarr",
        prototypes=f"{R}/{{bench}}/seed{{seed}}/prototypes/{{source}}.npz",
    output:
        zarr=directory(f"{R}/{{bench}}/seed{{seed}}/gradients/{{source}}_{{wrt}}_T{{temp}}/{{part}}.zarr"),
    params:
        batch_size=config["gradients"]["batch_size"],
        code=code_version("gradients.py", "stages/gradients.py"),
    log:
        f"{R}/logs/{{bench}}/seed{{seed}}/gradients/{{source}}_{{wrt}}_T{{temp}}/{{part}}.log",
    benchmark:
        f"{R}/benchmarks/{{bench}}/seed{{seed}}/gradients/{{source}}_{{wrt}}_T{{temp}}/{{part}}.tsv"
    conda:
        "../../environment.yml"
    script:
        "../scripts/gradients.py"
