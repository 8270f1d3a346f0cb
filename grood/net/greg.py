"""GReg and GReg+ (Sharifi et al., ECCV 2024; docs/methods.md §3): the training losses and the GReg+ sampler.

GReg adds two terms to the cross-entropy of the ID batch, both on the energy ``E(x) = −logsumexp z``
(low = in-distribution), over an ID batch and a batch of auxiliary outliers:

* ``L_S`` — the energy hinge of Liu et al. (2020): ID energies pushed below ``m_in``, outlier
  energies above ``m_aux``;
* ``L_∇`` — the input-gradient norm ``‖∇_x E‖₂`` of the samples *already on the right side* of
  their margin (``E ≤ m_in`` for ID, ``E ≥ m_aux`` for outliers): a flat score around correctly
  separated samples, by double backpropagation.

GReg+ picks that outlier batch at every step: a candidate pool is scored, its L2-normalised
penultimate features are clustered with K-Means, and the ``B // k`` lowest-energy members of each
cluster (the outliers the network mistakes most for ID, from every region of feature space) — and
the ``B // k`` highest, where configured — make up the batch, filled at random from the rest of the
pool: the authors' released code (``train_sea.py``, ``--sampleTwoWay``).

**Scale of L_∇.** The authors' code takes the Jacobian of the *scalar*
``−mean_ID relu(m_in − E) + mean_aux relu(E − m_aux)`` with respect to the whole batch of N = n_ID +
n_aux inputs and averages its N row norms: each row already carries its group's 1/n, so the term is
the paper's expectation form divided by N. ``grad_norm="authors"`` (the default) computes exactly
that; ``grad_norm="paper"`` the expectation form ``mean_ID 1{E ≤ m_in}‖∇E‖ + mean_aux 1{E ≥ m_aux}‖∇E‖``,
N times as strong at the same λ_∇.

Where the paper's text and the code differ we follow the code: one outlier batch serves both losses
(the paper's text assigns the lowest-energy picks to ``L_S`` and the highest to ``L_∇``). K-Means is
our own (k-means++ and Lloyd, in torch on the training device, checked against scikit-learn); the
authors call scikit-learn's. The authors train GReg+ from scratch on CIFAR (60 epochs, Adam) and
fine-tune on ImageNet; grood's MNIST benchmark fine-tunes a CE backbone (``train.init``) with SGD.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from grood.net.train_config import GRAD_NORMS, LAMBDA_GRAD, LAMBDA_S, M_AUX, M_IN  # the authors' defaults


def _at_least_fp32(t: torch.Tensor) -> torch.Tensor:
    return t.to(torch.promote_types(t.dtype, torch.float32))


def energy(logits: torch.Tensor) -> torch.Tensor:
    """``E = −logsumexp(z)`` per row (temperature 1), in fp32 at least whatever the autocast dtype."""
    return -torch.logsumexp(_at_least_fp32(logits), dim=1)


# ----------------------------------------------------------------------------------- GReg losses
@dataclass(frozen=True)
class GRegWeights:
    """Margins and weights of the GReg terms; defaults are the authors'."""

    m_in: float = M_IN
    m_aux: float = M_AUX
    lambda_s: float = LAMBDA_S
    lambda_grad: float = LAMBDA_GRAD
    grad_norm: str = "authors"  # the scale of L_∇: "authors" (their code's) or "paper" (N × theirs)

    def __post_init__(self):
        if self.grad_norm not in GRAD_NORMS:
            raise ValueError(f"grad_norm must be one of {GRAD_NORMS}, got {self.grad_norm!r}")


def margin_masks(e_in: torch.Tensor, e_aux: torch.Tensor, m_in: float = M_IN,
                 m_aux: float = M_AUX) -> tuple[torch.Tensor, torch.Tensor]:
    """Which samples are already on the right side of their margin: ``E ≤ m_in`` (ID) and
    ``E ≥ m_aux`` (outliers); a sample exactly at its margin counts (its hinge is zero there)."""
    return e_in.detach() <= m_in, e_aux.detach() >= m_aux


def energy_hinge(e_in: torch.Tensor, e_aux: torch.Tensor, m_in: float = M_IN,
                 m_aux: float = M_AUX) -> torch.Tensor:
    """``L_S = mean_ID relu(E − m_in)² + mean_aux relu(m_aux − E)²``.

    Each mean runs over its whole batch (samples inside their margin add zero), as in Liu et al.'s
    code and docs/methods.md's ``E_in[·]`` / ``E_aux[·]``: the term shrinks as more samples are separated.
    """
    return F.relu(e_in - m_in).pow(2).mean() + F.relu(m_aux - e_aux).pow(2).mean()


def input_gradient_norms(energies: torch.Tensor, inputs: torch.Tensor,
                         mask: torch.Tensor) -> torch.Tensor:
    """``mask_i · ‖∇_{x_i} E_i‖₂`` per sample, differentiable (``create_graph=True``).

    One backward pass of ``Σ_i mask_i E_i`` gives every selected sample's own input gradient,
    because a sample's energy depends on no other input: exact for networks without batch
    statistics (LeNet; any network in eval mode). In train mode, batch norm couples the samples of
    a batch and the pass includes that coupling, as any batched double backprop does.
    ``inputs`` is what the network was fed (normalised images), and must require grad.
    """
    if not inputs.requires_grad:
        raise ValueError("input_gradient_norms: `inputs` must require grad and be the tensor the "
                         "energies were computed from (call inputs.requires_grad_() before the forward)")
    if not bool(mask.any()):
        return energies.new_zeros(energies.shape)
    (grad,) = torch.autograd.grad((energies * mask).sum(), inputs, create_graph=True)
    return torch.linalg.vector_norm(_at_least_fp32(grad.flatten(1)), dim=1) * mask


def authors_gradient_term(energies: torch.Tensor, inputs: torch.Tensor, n_in: int,
                          m_in: float = M_IN, m_aux: float = M_AUX) -> torch.Tensor:
    """L_∇ as the authors' code computes it, differentiable (``create_graph=True``).

    The input gradient of the scalar ``−mean_ID relu(m_in − E) + mean_aux relu(E − m_aux)``, one row
    per input, and the mean of the N row norms: ``(mean_ID 1{E < m_in}‖∇E‖ + mean_aux
    1{E > m_aux}‖∇E‖) / N`` for a network without batch coupling (the relu's derivative is 0 at
    the margin itself). One backward pass, as their Jacobian of a scalar is.
    """
    if not inputs.requires_grad:
        raise ValueError("authors_gradient_term: `inputs` must require grad and be the tensor the "
                         "energies were computed from (call inputs.requires_grad_() before the forward)")
    e_in, e_aux = energies[:n_in], energies[n_in:]
    scalar = -F.relu(m_in - e_in).mean() + F.relu(e_aux - m_aux).mean()
    (grad,) = torch.autograd.grad(scalar, inputs, create_graph=True)
    return torch.linalg.vector_norm(_at_least_fp32(grad.flatten(1)), dim=1).mean()


@dataclass
class GRegTerms:
    """The GReg regulariser of one step and its parts (parts detached, for the training log)."""

    loss: torch.Tensor  # λ_S·L_S + λ_∇·L_∇
    l_s: torch.Tensor
    l_grad: torch.Tensor
    in_mask: torch.Tensor  # ID samples with E ≤ m_in
    aux_mask: torch.Tensor  # outliers with E ≥ m_aux


def greg_terms(energies: torch.Tensor, inputs: torch.Tensor, n_in: int,
               w: GRegWeights = GRegWeights()) -> GRegTerms:
    """``λ_S·L_S + λ_∇·L_∇`` for a batch whose first ``n_in`` rows are ID and the rest outliers.

    ``w.grad_norm`` picks the scale of L_∇. ``"authors"``: :func:`authors_gradient_term`, the
    released code's reduction. ``"paper"``: ``mean_ID 1{E ≤ m_in}‖∇_x E‖₂ + mean_aux 1{E ≥ m_aux}‖∇_x E‖₂``,
    each mean over the *whole* ID (resp. outlier) batch, masked-out samples adding zero — the
    expectation ``E_in[1{E ≤ m_in}·‖∇E‖]`` of the paper's text; it is N = len(energies) times the
    authors' term (networks without batch statistics).
    """
    if not 0 < n_in < len(energies):
        raise ValueError(f"greg_terms: n_in={n_in} must split the {len(energies)} rows into a "
                         f"non-empty ID part and a non-empty outlier part")
    e_in, e_aux = energies[:n_in], energies[n_in:]
    in_mask, aux_mask = margin_masks(e_in, e_aux, w.m_in, w.m_aux)
    l_s = energy_hinge(e_in, e_aux, w.m_in, w.m_aux)
    if w.lambda_grad <= 0:
        l_grad = energies.new_zeros(())
    elif w.grad_norm == "authors":
        l_grad = authors_gradient_term(energies, inputs, n_in, w.m_in, w.m_aux)
    else:
        norms = input_gradient_norms(energies, inputs, torch.cat([in_mask, aux_mask]))
        l_grad = norms[:n_in].mean() + norms[n_in:].mean()
    return GRegTerms(w.lambda_s * l_s + w.lambda_grad * l_grad, l_s.detach(), l_grad.detach(),
                     in_mask, aux_mask)


# ----------------------------------------------------------------------------------- K-Means
def _sq_distances(x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """Squared distances between rows: x (..., N, D), c (..., K, D) → (..., N, K), clamped at 0."""
    d = (x * x).sum(-1, keepdim=True) - 2 * x @ c.transpose(-1, -2) + (c * c).sum(-1).unsqueeze(-2)
    return d.clamp_min_(0)


def kmeans_plus_plus(x: torch.Tensor, k: int, n_runs: int, generator: torch.Generator) -> torch.Tensor:
    """Greedy k-means++ seeds for ``n_runs`` independent runs at once: (n_runs, k, D).

    Each new centre is the best of ``2 + ⌊ln k⌋`` candidates drawn with probability ∝ D² (the
    squared distance to the nearest centre so far) — the seeding scikit-learn's KMeans uses.
    When every point already sits on a centre (fewer distinct points than k) candidates are uniform.
    The pool's pairwise distances are computed once, so each of the k sequential rounds is a gather.
    """
    n, trials = len(x), 2 + int(math.log(k))
    runs = torch.arange(n_runs, device=x.device)
    pairwise = _sq_distances(x, x)  # (N, N)
    first = torch.randint(n, (n_runs,), generator=generator, device=x.device)
    chosen = torch.empty(n_runs, k, dtype=torch.long, device=x.device)
    chosen[:, 0] = first
    closest = pairwise[first]  # (runs, N)
    for j in range(1, k):
        weights = torch.where(closest.sum(1, keepdim=True) > 0, closest, torch.ones_like(closest))
        cand = torch.multinomial(weights, trials, replacement=True, generator=generator)  # (runs, T)
        merged = torch.minimum(closest.unsqueeze(1), pairwise[cand])  # (runs, T, N)
        best = merged.sum(2).argmin(1)
        chosen[:, j] = cand[runs, best]
        closest = merged[runs, best]
    return x[chosen]


@dataclass
class KMeansResult:
    centres: torch.Tensor  # (k, D)
    labels: torch.Tensor  # (N,) cluster of each point
    inertia: float  # Σ squared distance to the assigned centre
    n_iter: int


def kmeans(x: torch.Tensor, k: int, n_init: int = 3, generator: torch.Generator | None = None,
           max_iter: int = 100, tol: float = 1e-4) -> KMeansResult:
    """K-Means on the rows of ``x``: ``n_init`` k-means++ seedings refined by Lloyd's algorithm,
    all runs batched on ``x``'s device; the run with the lowest inertia wins.

    Stops when every run's summed squared centre shift is at most ``tol`` × the mean per-feature
    variance of ``x`` (scikit-learn's criterion) or after ``max_iter`` rounds. A cluster that loses
    all its points keeps its centre (scikit-learn moves it to a far point instead). Deterministic
    for a seeded ``generator`` on ``x``'s device.
    """
    if x.ndim != 2 or not 1 <= k <= len(x):
        raise ValueError(f"kmeans: need 1 <= k <= N rows of a 2-D tensor, got k={k}, x {tuple(x.shape)}")
    if generator is None:
        generator = torch.Generator(device=x.device).manual_seed(0)
    centres = kmeans_plus_plus(x, k, n_init, generator)
    threshold = tol * float(x.var(0, unbiased=False).mean())
    runs = centres.shape[0]
    offsets = (torch.arange(runs, device=x.device) * k).unsqueeze(1)
    n_iter = 0
    for n_iter in range(1, max_iter + 1):
        # nearest centre: argmin_j ‖c_j‖² − 2 x·c_j (‖x‖² is the same for every j), one fused product
        labels = torch.baddbmm((centres * centres).sum(2).unsqueeze(1), x.expand(runs, -1, -1),
                               centres.transpose(1, 2), alpha=-2).argmin(2)  # (runs, N)
        slots = (labels + offsets).flatten()  # cluster j of run r → slot r·k + j
        sums = x.new_zeros(runs * k, x.shape[1]).index_add_(0, slots, x.repeat(runs, 1))
        counts = torch.bincount(slots, minlength=runs * k).view(runs, k, 1).to(x.dtype)
        moved = torch.where(counts > 0, sums.view(runs, k, -1) / counts.clamp_min(1), centres)
        shift = (moved - centres).pow(2).sum((1, 2))
        centres = moved
        if bool((shift <= threshold).all()):
            break
    d = _sq_distances(x, centres)
    dist, labels = d.min(2)
    inertia = dist.sum(1)
    best = int(inertia.argmin())
    return KMeansResult(centres[best], labels[best], float(inertia[best]), n_iter)


# ----------------------------------------------------------------------------------- GReg+ sampler
def _by_cluster_and_energy(labels: torch.Tensor, energies: torch.Tensor):
    """Pool indices sorted by (cluster, energy) (stable: ties by index), each one's rank inside its
    cluster and its cluster's size."""
    by_energy = torch.argsort(energies, stable=True)
    order = by_energy[torch.argsort(labels[by_energy], stable=True)]
    lab = labels[order]
    sizes = torch.bincount(lab)
    starts = torch.cumsum(sizes, 0) - sizes
    rank = torch.arange(len(order), device=order.device) - starts[lab]
    return order, lab, rank, sizes[lab]


def select_from_clusters(labels: torch.Tensor, energies: torch.Tensor, outliers: int, k: int,
                         with_highest: bool = True,
                         generator: torch.Generator | None = None) -> torch.Tensor:
    """GReg+'s picks from a clustered pool, as the authors' ``clusterAndChooseSamples``: indices.

    ``outliers`` is their B (``--size_factor_sampled_ood`` × batch). From each of the clusters
    ``0 … min(k, B) − 1`` come its ``s = B // k`` (at least 1) lowest-energy members and —
    ``with_highest``, their ``--sampleTwoWay`` — its ``s`` highest-energy members (a cluster of at
    most ``s`` members gives all of them); a uniform random draw from the rest of the pool fills the
    batch up to B, or 2B with the highest. The picks come first, sorted by (cluster, energy).
    """
    n = len(labels)
    target = outliers * (2 if with_highest else 1)
    if not target <= n:
        raise ValueError(f"GReg+ sampling: the outlier batch ({target}) must not exceed the pool "
                         f"({n}); raise the pool size")
    if generator is None:
        generator = torch.Generator(device=labels.device).manual_seed(0)
    per_cluster = max(1, outliers // k)
    order, lab, rank, size = _by_cluster_and_energy(labels, energies)
    take = rank < per_cluster
    if with_highest:
        take |= rank >= size - per_cluster
    take &= lab < min(k, outliers)
    picks = order[take]
    chosen = torch.zeros(n, dtype=torch.bool, device=labels.device)
    chosen[picks] = True
    rest = (~chosen).nonzero().squeeze(1)
    fill = rest[torch.randperm(len(rest), generator=generator, device=rest.device)[: target - len(picks)]]
    return torch.cat([picks, fill])


def energy_based_selection(features: torch.Tensor, energies: torch.Tensor, outliers: int, k: int,
                           with_highest: bool = True, n_init: int = 3,
                           generator: torch.Generator | None = None) -> torch.Tensor:
    """GReg+'s choice from a scored pool: the L2-normalised features (so feature magnitude does not
    decide the clusters) clustered into ``k`` by K-Means, then :func:`select_from_clusters`."""
    if not 1 <= k <= len(features):
        raise ValueError(f"GReg+ sampling: need 1 <= clusters k={k} <= pool size {len(features)}")
    if generator is None:
        generator = torch.Generator(device=features.device).manual_seed(0)
    labels = kmeans(F.normalize(features.float(), dim=1), k, n_init, generator).labels
    return select_from_clusters(labels, energies, outliers, k, with_highest, generator)


@torch.no_grad()
def score_pool(model: torch.nn.Module, pool: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Penultimate features and energies of a candidate pool, in eval mode (the scoring pass must
    not move batch-norm statistics), restoring the model's mode afterwards."""
    was_training = model.training
    model.eval()
    try:
        h = model.features(pool)
        return h, energy(model.fc(h))
    finally:
        model.train(was_training)


def greg_plus_sample(model: torch.nn.Module, pool: torch.Tensor, outliers: int, k: int,
                     with_highest: bool = True, n_init: int = 3,
                     generator: torch.Generator | None = None) -> torch.Tensor:
    """Indices of the pool images GReg+ trains on this step (see :func:`energy_based_selection`)."""
    h, e = score_pool(model, pool)
    return energy_based_selection(h, e, outliers, k, with_highest, n_init, generator)
