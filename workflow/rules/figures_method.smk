# GROOD itself, on the first seed: its gradient space (first GROOD-family detector, first near-OOD
# set) and the targeted mix-up (when the OOD prototype is built by mix-up). Only with such detectors.
if METHOD_FIGURES:

    rule figures_method:
        input:
            unpack(method_figure_inputs),
        output:
            **method_figure_outputs(),
        params:
            sets=lambda wc: ["ID train", "ID test", figure_ood(wc.bench)],
            gradient=gradient_figure_params(),
            title=lambda wc: f"{wc.bench}, seed {FIGURE_SEED}",
            code=stage_code("figures_method"),
        log:
            f"{R}/logs/{{bench}}/figures_method.log",
        benchmark:
            f"{R}/benchmarks/{{bench}}/figures_method.tsv"
        conda:
            "../../environment.yml"
        script:
            "../scripts/figures_method.py"
