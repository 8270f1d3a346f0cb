"""GROOD's gradient embedding: the gradient of a nearest-prototype (NCP) loss, in closed form.

With prototypes ``P_1..P_C`` and the OOD prototype ``p_ood`` stacked as ``M`` (C+1 rows), the NCP
logits are ``s_j = -‖h - M_j‖ / T`` and the loss is ``ℓ = CE(softmax(s), ŷ)`` with the head's
prediction ``ŷ = argmax z`` as pseudo-label.  Since only ``s_j`` depends on ``M_j``::

    ∂ℓ/∂M_j = (π_j - 1[j = ŷ]) · (h - M_j) / (T ‖h - M_j‖),     π = softmax(s)

so the default embedding (w.r.t. ``p_ood``, never the pseudo-label) is ``π_ood (h - p_ood)/(T‖h - p_ood‖)``.
:func:`grood_gradients_autograd` recomputes it with per-sample autograd as the independent reference.
"""

from __future__ import annotations

import numpy as np

from grood.method.vocab import WRT

_EPS = 1e-12


def _stack(prototypes: np.ndarray, p_ood: np.ndarray) -> np.ndarray:
    prototypes, p_ood = np.asarray(prototypes), np.asarray(p_ood)
    if prototypes.ndim != 2 or p_ood.shape != (prototypes.shape[1],):
        raise ValueError(
            f"prototypes must be (C, D) and p_ood (D,), got {prototypes.shape} and {p_ood.shape}"
        )
    return np.vstack([prototypes, p_ood[None]])


def ncp_softmax(features: np.ndarray, prototypes: np.ndarray, p_ood: np.ndarray, temperature: float = 1.0):
    """Distances ``‖h - M_j‖`` (N, C+1) and the NCP softmax ``π`` (N, C+1), in float64 via one GEMM."""
    h = np.asarray(features, dtype=np.float64)
    m = _stack(prototypes, p_ood).astype(np.float64)
    sq = (h**2).sum(1)[:, None] - 2.0 * h @ m.T + (m**2).sum(1)[None]
    dist = np.sqrt(np.maximum(sq, 0.0))
    s = -dist / temperature
    s -= s.max(1, keepdims=True)
    pi = np.exp(s)
    pi /= pi.sum(1, keepdims=True)
    return dist, pi


def grood_gradients(
    features: np.ndarray,
    logits: np.ndarray,
    prototypes: np.ndarray,
    p_ood: np.ndarray,
    wrt: str = "ood",
    temperature: float = 1.0,
    batch_size: int = 4096,
) -> np.ndarray:
    """Closed-form NCP-loss gradients, float32, batched.

    ``wrt``: ``ood`` → ∂ℓ/∂p_ood (N, D); ``pred`` → ∂ℓ/∂P_ŷ (N, D); ``all`` → all C+1 (N, (C+1)·D).
    """
    if wrt not in WRT:
        raise ValueError(f"wrt must be one of {WRT}, got {wrt!r}")
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    features, logits = np.asarray(features), np.asarray(logits)
    m = _stack(prototypes, p_ood).astype(np.float64)
    n, d = features.shape
    k = m.shape[0]
    width = k * d if wrt == "all" else d
    out = np.empty((n, width), dtype=np.float32)
    if wrt == "all":  # keep the (b, C+1, D) block near 64 MB
        batch_size = max(1, min(batch_size, (1 << 23) // (k * d)))
    for start in range(0, n, batch_size):
        sl = slice(start, start + batch_size)
        h = np.asarray(features[sl], dtype=np.float64)
        rows = np.arange(len(h))
        dist, pi = ncp_softmax(h, prototypes, p_ood, temperature)
        yhat = logits[sl].argmax(1)
        coef = pi.copy()
        coef[rows, yhat] -= 1.0
        coef /= temperature * np.maximum(dist, _EPS)  # (b, C+1): coefficient of (h - M_j)
        if wrt == "ood":
            out[sl] = coef[:, -1:] * (h - m[-1])
        elif wrt == "pred":
            out[sl] = coef[rows, yhat][:, None] * (h - m[yhat])
        else:
            out[sl] = (coef[..., None] * (h[:, None, :] - m[None])).reshape(len(h), -1)
    return out


def grood_gradients_autograd(
    features: np.ndarray,
    logits: np.ndarray,
    prototypes: np.ndarray,
    p_ood: np.ndarray,
    wrt: str = "ood",
    temperature: float = 1.0,
) -> np.ndarray:
    """Reference path: one ``torch.autograd.grad`` call per sample on the literal loss (slow; tests)."""
    import torch

    if wrt not in WRT:
        raise ValueError(f"wrt must be one of {WRT}, got {wrt!r}")
    h_all = torch.as_tensor(np.asarray(features), dtype=torch.float64)
    yhat_all = torch.as_tensor(np.asarray(logits)).argmax(1)
    rows = []
    for h, yhat in zip(h_all, yhat_all):
        protos = torch.tensor(np.asarray(prototypes), dtype=torch.float64, requires_grad=True)
        pood = torch.tensor(np.asarray(p_ood), dtype=torch.float64, requires_grad=True)
        m = torch.cat([protos, pood[None]])
        s = -torch.linalg.vector_norm(h[None] - m, dim=1) / temperature
        loss = torch.nn.functional.cross_entropy(s[None], yhat[None])
        gp, go = torch.autograd.grad(loss, (protos, pood))
        if wrt == "ood":
            rows.append(go)
        elif wrt == "pred":
            rows.append(gp[yhat])
        else:
            rows.append(torch.cat([gp, go[None]]).reshape(-1))
    return torch.stack(rows).numpy()
