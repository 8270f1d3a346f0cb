# GROOD itself, on the first seed (grood.figures.catalog, job "method"): its gradient space (first
# GROOD-family detector, first near-OOD set) and the targeted mix-up (when the OOD prototype is built
# by mix-up). Only with such detectors.
if has_figures("method"):

    rule figures_method:
        input:
            unpack(figure_inputs("method")),
        output:
            **figure_outputs("method"),
        params:
            figures=figure_params("method"),
            code=stage_code("figures_method"),
        log:
            job_log("figures_method", "bench"),
        benchmark:
            job_benchmark("figures_method", "bench")
        conda:
            "../../environment.yml"
        script:
            "../scripts/figures_method.py"
