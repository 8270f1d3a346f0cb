"""A finished run, without Snakemake: its directories read through the run layout
(:mod:`~grood.run.finished`), what it holds (:mod:`~grood.run.info`), new images scored with the
pipeline's own stages (:mod:`~grood.run.apply`), its figures redrawn (:mod:`~grood.run.render`), and
the ``grood`` command over all of them (:mod:`~grood.run.cli`)."""
