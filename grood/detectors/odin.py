"""ODIN (Liang, Li & Srikant, ICLR 2018): temperature scaling plus input perturbation (§5).

``x̃ = x − ε·sign(−∇_x log S_ŷ(x; T))`` with ``S(x; T) = softmax(f(x)/T)`` and ``ŷ = argmax``;
the score is ``max S(x̃; T)``, higher = ID.  The perturbation is applied to the *normalised* input
the network sees.  With ``scale_by_std`` (default, as the authors' code and OpenOOD) the sign is
divided by the channel std, so ε is in [0, 1] pixel units; without it ε is in normalised units.

This is the one baseline that needs the network at scoring time: :class:`ODIN` declares
``needs_network`` and the pipeline's score stage hands it the model and the images.  torch is
imported inside the functions: the Snakemake scheduler imports this package to check the config.
"""

from __future__ import annotations

import numpy as np

from grood.detectors.base import Detector, softmax


def odin_perturb(model: "torch.nn.Module", x: "torch.Tensor", temperature: float, epsilon: float,
                 std: "torch.Tensor | None" = None) -> "torch.Tensor":
    """The perturbed normalised batch ``x̃`` (batched: per-sample gradients, as BatchNorm is in eval)."""
    import torch

    if epsilon == 0.0:
        return x
    x = x.detach().clone().requires_grad_(True)
    log_s = torch.log_softmax(model(x) / temperature, dim=1).max(1).values
    (grad,) = torch.autograd.grad(log_s.sum(), x)  # samples are independent: d(sum)/dx_i = dlog S_i/dx_i
    step = grad.sign()
    if std is not None:
        step = step / std.view(1, -1, 1, 1)
    return (x + epsilon * step).detach()


def odin_scores(model: "torch.nn.Module", images_uint8: np.ndarray, spec, device, temperature: float = 1000.0,
                epsilon: float = 0.0014, batch_size: int = 256, scale_by_std: bool = True) -> np.ndarray:
    """ODIN scores of uint8 images (float64), through ``spec``'s preprocessing, batched on ``device``."""
    import torch

    from grood.net.device import fp32_forward
    from grood.net.forward import batches

    model.eval()
    device = torch.device(device)
    std = torch.tensor(spec.std, dtype=torch.float32, device=device) if scale_by_std else None
    out = []
    for _, x in batches(images_uint8, spec, batch_size, "ODIN"):
        with fp32_forward():
            x_t = odin_perturb(model, x.to(device), temperature, epsilon, std)
            with torch.no_grad():
                z = model(x_t).float().cpu().numpy()
        if not np.isfinite(z).all():
            raise FloatingPointError("ODIN: non-finite logits after the perturbation; check the model")
        out.append(softmax(z, temperature).max(1))
    return np.concatenate(out)


class ODIN(Detector):
    """Max softmax at temperature T of the input perturbed by ε; T=1000, ε=0.0014 by default."""

    requires = ()
    needs_network = True
    #: Liang et al.'s grid: T ∈ {1, 2, 5, 10, 20, 50, 100, 200, 500, 1000}, ε in 21 steps over [0, 0.004]
    sweep_grid = {"temperature": [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000],
                  "epsilon": [round(0.0002 * i, 4) for i in range(21)]}

    def __init__(self, temperature: float = 1000.0, epsilon: float = 0.0014, batch_size: int = 256,
                 scale_by_std: bool = True):
        if temperature <= 0:
            raise ValueError(f"odin temperature must be > 0, got {temperature}")
        if epsilon < 0:
            raise ValueError(f"odin epsilon must be ≥ 0, got {epsilon}")
        if int(batch_size) < 1:
            raise ValueError(f"odin batch_size must be ≥ 1, got {batch_size}")
        self.temperature, self.epsilon = float(temperature), float(epsilon)
        self.batch_size, self.scale_by_std = int(batch_size), bool(scale_by_std)

    def score(self, model: "torch.nn.Module", images: np.ndarray, spec, device="cpu", **_) -> np.ndarray:
        return odin_scores(model, images, spec, device, self.temperature, self.epsilon, self.batch_size,
                           self.scale_by_std)
