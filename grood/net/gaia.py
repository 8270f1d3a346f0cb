"""GAIA's per-sample, per-channel gradient statistics (Chen et al., NeurIPS 2023; docs/baselines.md
§11), batched: one forward pass and three backward passes per batch, exact per sample because the
network is in eval mode (no sample's output depends on another's).

For a batch of inputs ``x`` with penultimate features ``h`` and logits ``z`` (authors' code, read):

- ``gaia_z`` (GAIA-Z, zero-deflation): for every hooked feature map ``A`` (N, K, H, W), each
  channel's share of non-zero entries of ``∂(max_c z_c)/∂A``; the maps' channels side by side.
- ``gaia_a`` (GAIA-A, channel-wise average): each channel's spatial mean of ``∂(Σ_k h_k)/∂A`` over
  the "inner" maps, divided by the output component ``o = sqrt(mean_k |∂(Σ_c log p_c)/∂h_k|)``.

The detector (:class:`grood.detectors.gradient_family.GAIA`) scores ``−mean_k x_k²`` of either.

Which maps (:func:`gaia_layers`): the authors hook every BatchNorm output (GAIA-Z) and the
BatchNorm outputs of ResNet's last two stages (GAIA-A, "inner"); a network without BatchNorm (our
LeNet) gets its convolutions' outputs instead — the same place in the block, before the ReLU.
Hooks pass a copy downstream, so a later in-place op (torchvision's ``ReLU(inplace=True)``,
``out += identity``) cannot change the tensor whose gradient is read.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from torch import nn

from grood.net.device import fp32_forward

#: the arrays :func:`gaia_statistics` returns (also :data:`grood.method.vocab.GAIA_ARRAYS`)
NAMES = ("gaia_a", "gaia_z")
_NORMS = (nn.BatchNorm2d, nn.GroupNorm)


def gaia_layers(model) -> dict[str, list[str]]:
    """``{"z": [...], "a": [...]}``: names (in ``model.stages``) of the modules whose outputs GAIA-Z
    and GAIA-A read — every normalisation layer (else every convolution), and those of them in the
    last two stages that hold any."""
    modules = list(model.stages.named_modules())
    z = [n for n, m in modules if isinstance(m, _NORMS)] or [n for n, m in modules if isinstance(m, nn.Conv2d)]
    if not z:
        raise ValueError("GAIA needs convolutional feature maps: this network has no Conv2d or "
                         "normalisation layer in its stages")
    with_maps = [s for s in model.stage_names if any(n.split(".")[0] == s for n in z)]
    inner = set(with_maps[-2:])
    return {"z": z, "a": [n for n in z if n.split(".")[0] in inner]}


def _channel_mean(g: torch.Tensor) -> torch.Tensor:
    return g.flatten(2).mean(2) if g.ndim > 2 else g


def gaia_statistics(model, x: torch.Tensor, layers: dict[str, list[str]] | None = None,
                    with_outputs: bool = False) -> dict[str, np.ndarray]:
    """``{"gaia_a": (N, K_a), "gaia_z": (N, K_z)}`` (float32) for the batch ``x`` (module doc).

    ``layers``: :func:`gaia_layers` by default.  ``model`` must be in eval mode.
    ``with_outputs``: also ``features`` and ``logits`` of the same forward pass (float32, the values
    :func:`grood.net.forward.forward_batches` gives), so a features stage needs one forward pass."""
    if model.training:
        raise ValueError("gaia_statistics needs the model in eval mode (model.eval()): in training mode "
                         "batch norm mixes the samples of a batch")
    layers = layers or gaia_layers(model)
    modules = dict(model.stages.named_modules())
    unknown = sorted((set(layers["z"]) | set(layers["a"])) - set(modules))
    if unknown:
        raise ValueError(f"GAIA layers {unknown} are not modules of the network's stages")
    captured: dict[str, list[torch.Tensor]] = {}

    def keep(name: str) -> Callable:
        def hook(module, inputs, output):
            captured.setdefault(name, []).append(output)
            return output.clone()
        return hook

    handles = [modules[n].register_forward_hook(keep(n)) for n in dict.fromkeys(layers["z"] + layers["a"])]
    with fp32_forward(), torch.enable_grad():  # fp32 as the features stage: no autocast, no TF32
        try:
            x = x.detach().clone().requires_grad_(True)  # a graph even when no parameter needs gradients
            h = model.features(x)
            z = model.fc(h)
        finally:
            for handle in handles:
                handle.remove()
        twice = sorted(n for n, outs in captured.items() if len(outs) != 1)
        if twice:
            raise ValueError(f"GAIA layers {twice} ran more than once in the forward pass; hook modules used once")
        maps = {n: outs[0] for n, outs in captured.items()}
        grads_z = torch.autograd.grad(z.max(1).values.sum(), [maps[n] for n in layers["z"]], retain_graph=True)
        nonzero = torch.cat([_channel_mean((g != 0).float()) for g in grads_z], 1)
        (grad_h,) = torch.autograd.grad(torch.log_softmax(z, 1).sum(), h, retain_graph=True)
        output_component = grad_h.abs().mean(1).sqrt()
        grads_a = torch.autograd.grad(h.sum(), [maps[n] for n in layers["a"]])
        average = torch.cat([_channel_mean(g) for g in grads_a], 1) / output_component[:, None]
    out = {"gaia_a": average.detach().float().cpu().numpy(), "gaia_z": nonzero.detach().float().cpu().numpy()}
    if with_outputs:
        out.update(features=h.detach().float().cpu().numpy(), logits=z.detach().float().cpu().numpy())
    return out


def gaia_batches(model, images, spec, device, batch_size: int = 256, name: str = "images",
                 sink: Callable[[int, dict[str, np.ndarray]], None] | None = None,
                 with_outputs: bool = False) -> dict[str, np.ndarray] | None:
    """:func:`gaia_statistics` of ``images`` batch by batch (inputs as the features stage makes them,
    :func:`grood.net.forward.batches`): each batch's arrays to ``sink(start, arrays)``, or all collected;
    ``with_outputs`` adds ``features`` and ``logits``."""
    from grood.net.forward import batches

    model.eval()
    collected: dict[str, list] = {}
    for start, x in batches(images, spec, batch_size, f"{name}: GAIA"):
        out = gaia_statistics(model, x.to(device), with_outputs=with_outputs)
        if not all(np.isfinite(v).all() for v in out.values()):
            raise FloatingPointError(f"{name}: non-finite GAIA statistics in rows {start}–{start + len(x) - 1} "
                                     f"(a zero output component: every ∂Σlog p/∂h is 0)")
        if sink is not None:
            sink(start, out)
        else:
            for k, v in out.items():
                collected.setdefault(k, []).append(v)
    if sink is not None:
        return None
    return {k: np.concatenate(v) for k, v in collected.items()}


__all__ = ["NAMES", "gaia_batches", "gaia_layers", "gaia_statistics"]
