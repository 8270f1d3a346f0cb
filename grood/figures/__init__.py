"""Figures of a benchmark, one kind per module, all in one style (:mod:`grood.figures.style`), listed
with what each is drawn from in one catalog (:mod:`grood.figures.catalog`).

- :mod:`~grood.figures.summary`: AUROC heatmap and near/far chart (the report's first figures);
- :mod:`~grood.figures.detector_page`: one page per detector (score histograms, threshold, ROC);
- :mod:`~grood.figures.gradient_space`: PCA of feature and gradient space with the prototypes;
- :mod:`~grood.figures.mixup`: the targeted mix-up on a few images;
- :mod:`~grood.figures.training_curves`: loss, accuracy and learning rate per seed;
- :mod:`~grood.figures.load`: readers from a run's files to arrays and tables;
- :mod:`~grood.figures.catalog`: every figure (its job, caption, inputs and drawing), read by the
  workflow's figure rules and by :mod:`grood.run.render` (``grood figures``).

Every drawing function takes plain arrays/tables and an output stem, and writes ``<stem>.png`` and
``<stem>.pdf`` atomically.
"""
