"""The training options (``benchmarks.<name>.train`` in the config) and their cross-field checks.

Torch-free, so config validation can check a training section before any job runs: the same
:meth:`TrainConfig.from_dict` the train stage calls raises the same messages, each naming
``train.<option>`` and the fix.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

#: GReg's defaults, the authors' (docs/methods.md §3): ID energies pushed below M_IN, outlier energies
#: above M_AUX, weights of the energy hinge L_S and of the input-gradient regulariser L_∇
M_IN, M_AUX, LAMBDA_S, LAMBDA_GRAD = -25.0, -7.0, 0.1, 1.0
#: the scale of GReg's input-gradient term L_∇: ``authors`` = their released code's (the mean over
#: the N = n_ID + n_aux rows of the Jacobian of one scalar, i.e. the paper's form / N); ``paper`` =
#: the expectation form of the paper's text, ``mean_ID 1{E ≤ m_in}‖∇E‖ + mean_aux 1{E ≥ m_aux}‖∇E‖``
GRAD_NORMS = ("authors", "paper")

#: learning-rate schedules, stepped once per batch: ``cosine`` is OpenOOD v1.5's (from ``lr`` down to
#: 1e-6 over all steps), ``onecycle`` a one-cycle ramp (15% warm-up), ``constant`` none
SCHEDULERS = ("cosine", "onecycle", "constant")
#: training augmentations: ``crop_flip`` is OpenOOD's (random crop with 4 px zero padding + horizontal
#: flip), ``crop`` the crop alone (for digits and letters, which flips change), ``shift`` up to 2 px
#: translations with repeated border pixels
AUGMENTATIONS = ("none", "shift", "crop", "crop_flip")
#: training methods: plain cross-entropy, GReg (energy hinge + input-gradient regulariser on random
#: auxiliary outliers) and GReg+ (the same on outliers chosen by energy-based sampling), docs/methods.md §3
METHODS = ("ce", "greg", "greg_plus")
#: the options only GReg / GReg+ read, with the options only GReg+ reads after them
GREG_OPTIONS = ("m_in", "m_aux", "lambda_s", "lambda_grad", "grad_norm", "aux_batch_size")
GREG_PLUS_OPTIONS = ("pool_size", "clusters", "kmeans_n_init", "with_highest")


@dataclass
class TrainConfig:
    arch: str = "lenet5"
    width: int | None = None
    epochs: int = 2
    batch_size: int = 128
    lr: float = 0.05
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4
    scheduler: str = "cosine"
    precision: str = "auto"
    augment: str = "none"
    seed: int = 0
    #: the benchmark whose backbone (same seed) this run starts from, or None for from scratch; the
    #: workflow loads that checkpoint and passes its weights as ``train(..., init=...)``
    init: str | None = None
    # --- GReg / GReg+ (docs/methods.md §3); defaults are the authors' ---------------------------------
    method: str = "ce"
    m_in: float = M_IN  # ID energies are pushed below this margin
    m_aux: float = M_AUX  # outlier energies above this one
    lambda_s: float = LAMBDA_S  # weight of the energy hinge L_S
    lambda_grad: float = LAMBDA_GRAD  # weight of the input-gradient regulariser L_∇
    grad_norm: str = "authors"  # the scale of L_∇ (GRAD_NORMS)
    #: outliers per step B; None: batch_size (the authors' --size_factor_sampled_ood 1). GReg+ with
    #: with_highest trains on 2B (B // k lowest and B // k highest per cluster), as their code does
    aux_batch_size: int | None = None
    #: GReg+ candidate pool per step; None: 6 × batch_size (the authors' 300k candidates / 50k
    #: CIFAR training images × batch)
    pool_size: int | None = None
    clusters: int = 64  # GReg+ K-Means clusters k = min(clusters, batch_size) (the authors' --num_cluster)
    kmeans_n_init: int = 3  # GReg+ K-Means restarts
    with_highest: bool = True  # GReg+ also takes each cluster's highest-energy members (--sampleTwoWay)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        known = set(cls.__dataclass_fields__)
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown training option(s) {sorted(unknown)}; known: {sorted(known)}")
        cfg = cls(**d)
        cfg.validate()
        return cfg

    def validate(self) -> None:
        """Cross-field checks; every error names the option (``train.<name>``) and the fix."""
        if self.scheduler not in SCHEDULERS:
            raise ValueError(f"train.scheduler: {self.scheduler!r} is not one of {SCHEDULERS}")
        if self.augment not in AUGMENTATIONS:
            raise ValueError(f"train.augment: {self.augment!r} is not one of {AUGMENTATIONS}")
        if self.init is not None and not (isinstance(self.init, str) and self.init):
            raise ValueError(f"train.init: must be the name of a benchmark whose backbone to start "
                             f"from (or left out), got {self.init!r}")
        if self.method not in METHODS:
            raise ValueError(f"train.method: {self.method!r} is not one of {METHODS}")
        defaults = TrainConfig()
        unused = {"ce": GREG_OPTIONS + GREG_PLUS_OPTIONS, "greg": GREG_PLUS_OPTIONS, "greg_plus": ()}
        for name in unused[self.method]:
            if getattr(self, name) != getattr(defaults, name):
                users = "greg and greg_plus" if name in GREG_OPTIONS else "greg_plus"
                raise ValueError(f"train.{name}: only method {users} reads it, but train.method is "
                                 f"{self.method!r}; remove train.{name} or change the method")
        if self.method == "ce":
            return
        for name in ("m_in", "m_aux", "lambda_s", "lambda_grad"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError(f"train.{name}: must be a finite number, got {value!r}")
        if not self.m_in < self.m_aux:
            raise ValueError(f"train.m_in ({self.m_in}) must be below train.m_aux ({self.m_aux}): ID "
                             f"energies are pushed below m_in and outlier energies above m_aux")
        if self.grad_norm not in GRAD_NORMS:
            raise ValueError(f"train.grad_norm: {self.grad_norm!r} is not one of {GRAD_NORMS}")
        if self.lambda_s < 0 or self.lambda_grad < 0:
            raise ValueError(f"train.lambda_s / train.lambda_grad: weights must be >= 0, got "
                             f"{self.lambda_s} / {self.lambda_grad}")
        for name, minimum in (("aux_batch_size", 1), ("pool_size", 1), ("clusters", 1), ("kmeans_n_init", 1)):
            value = getattr(self, name)
            bad = isinstance(value, bool) or not isinstance(value, int) or value < minimum
            if value is not None and bad:
                raise ValueError(f"train.{name}: must be an integer >= {minimum}, got {value!r}")
        if not isinstance(self.with_highest, bool):
            raise ValueError(f"train.with_highest: must be true or false, got {self.with_highest!r}")
        if self.method == "greg_plus" and self.pool < self.aux_step:
            raise ValueError(f"train.pool_size: the candidate pool ({self.pool}) must hold the "
                             f"{self.aux_step} outliers GReg+ trains on per step; raise pool_size "
                             f"or lower aux_batch_size")

    @property
    def aux_batch(self) -> int:
        """B, the authors' outliers per step (GReg trains on B, GReg+ on B or 2B: :attr:`aux_step`)."""
        return self.aux_batch_size or self.batch_size

    @property
    def aux_step(self) -> int:
        """Outliers in each training step: B, or 2B for GReg+ with its highest-energy picks."""
        return self.aux_batch * (2 if self.method == "greg_plus" and self.with_highest else 1)

    @property
    def pool(self) -> int:
        """GReg+'s candidate pool per step."""
        return self.pool_size or 6 * self.batch_size

    @property
    def n_clusters(self) -> int:
        """GReg+'s k = min(clusters, batch size)."""
        return min(self.clusters, self.batch_size)
