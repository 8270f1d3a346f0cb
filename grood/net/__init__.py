"""The network: backbones split into named stages (:mod:`~grood.net.models`), adopted pretrained or
user weights (:mod:`~grood.net.pretrained`, :mod:`~grood.net.source`), training with CE, GReg or
GReg+ (:mod:`~grood.net.training`, :mod:`~grood.net.train_config`, :mod:`~grood.net.greg`), the input
recipe (:mod:`~grood.net.preprocess`), the batched fp32 forward pass (:mod:`~grood.net.forward`,
file lists decoded by :mod:`~grood.net.loader`), and device, precision and progress."""
