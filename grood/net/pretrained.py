"""Bring your own model: torchvision ResNets as :class:`~grood.net.models.StagedNet`, from torchvision's
weights or from the user's own state_dict, with the preprocessing they were trained with.

The wrapper reuses the network's own modules -- stem = conv1 + bn1 + relu + maxpool, layer1..layer4,
pool = avgpool + flatten, head = fc -- so its forward is torchvision's, operation for operation, and
GROOD's early-layer mix-up, the prototypes and every detector run on it unchanged.  A wrapped model
is stored like any other (``model.pt``: a state_dict, the architecture's name and where the
weights came from; never a pickled module) and rebuilt by :func:`grood.net.models.build_model`.

Weights come from ``$TORCH_HOME`` (torch.hub's cache) when they are there; otherwise from
torchvision's URL after a reachability probe, so an offline machine fails in seconds with the fix.
Pre-download on a machine with internet: ``grood weights torchvision/resnet50``.
"""

from __future__ import annotations

import logging
import os
import socket
from pathlib import Path

import torch
from torch import nn

from grood.net.models import StagedNet, staged_resnet, torchvision_resnet
from grood.net.source import PROVIDER, TORCHVISION_RESNETS, ModelSource, parse_pretrained
from grood.net.preprocess import InputSpec
from grood.storage import sha256_file

log = logging.getLogger(__name__)

#: torchvision's ImageNet classification preset (``ImageClassification``'s defaults): the recipe of
#: a user's checkpoint unless ``train.preprocess`` says otherwise
IMAGENET_RECIPE = {"resize": 256, "crop": 224, "mean": (0.485, 0.456, 0.406), "std": (0.229, 0.224, 0.225)}
DOWNLOAD_TIMEOUT_S = int(os.environ.get("GROOD_DOWNLOAD_TIMEOUT", "300"))


# -------------------------------------------------------------------------------------- weights

def resolve_weights(model: str, weights: str | None):
    """torchvision's weights enum member for ``model`` (``weights`` None: its ``DEFAULT``);
    ValueError listing the names that exist."""
    import torchvision

    try:
        enum = torchvision.models.get_model_weights(model)
    except (ValueError, KeyError) as e:
        raise ValueError(f"torchvision has no model {model!r} ({e}); choose one of "
                         f"{', '.join(TORCHVISION_RESNETS)}") from None
    name = weights or "DEFAULT"
    try:
        return enum[name]
    except KeyError:
        raise ValueError(f"torchvision has no weights {name!r} for {model}; its weights are "
                         f"{', '.join(enum.__members__)} (write e.g. {PROVIDER}{model}:"
                         f"{next(iter(enum.__members__))})") from None


def cached_weights_file(url: str) -> Path:
    """Where torch.hub keeps the file of ``url``: ``$TORCH_HOME/hub/checkpoints/<name>``."""
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(url)


def _unreachable(url: str, timeout: float = 10.0) -> str | None:
    """None if ``url``'s host accepts a TCP connection within ``timeout`` s, else why not."""
    from urllib.parse import urlparse

    u = urlparse(url)
    try:
        socket.create_connection((u.hostname, u.port or 443), timeout).close()
        return None
    except OSError as e:
        return f"{u.hostname} is unreachable ({e})"


def fetch_weights(weights) -> Path:
    """The local file of torchvision ``weights``: torch.hub's cache, or downloaded into it (its
    sha256 prefix checked).  Offline, a RuntimeError within seconds that says how to get it."""
    url = weights.url
    target = cached_weights_file(url)
    if target.is_file():
        return target
    label = f"{type(weights).__name__}.{weights.name}"
    why = _unreachable(url)
    if why:
        raise RuntimeError(
            f"the weights {label} are not in $TORCH_HOME ({target} is missing) and cannot be "
            f"downloaded: {why}. Fix: on a machine with internet run `grood weights "
            f"{PROVIDER}{_model_of(weights)}:{weights.name}` with the same TORCH_HOME (now "
            f"{torch.hub.get_dir()}; e.g. a shared file system), or copy {url} to {target}; or "
            f"use train.checkpoint with a state_dict file you have")
    from torch.hub import HASH_REGEX, download_url_to_file

    target.parent.mkdir(parents=True, exist_ok=True)
    match = HASH_REGEX.search(target.name)
    old = socket.getdefaulttimeout()
    socket.setdefaulttimeout(60)  # a stalled transfer fails instead of hanging the job
    try:
        log.info("downloading %s from %s into %s", label, url, target)
        download_url_to_file(url, str(target), match.group(1) if match else None, progress=False)
    except Exception as e:  # noqa: BLE001 -- URLError, timeouts, hash mismatch: all say the same fix
        raise RuntimeError(f"downloading {label} from {url} failed ({type(e).__name__}: {e}). "
                           f"Fix: download it by hand into {target}, or use train.checkpoint") from e
    finally:
        socket.setdefaulttimeout(old)
    return target


def _model_of(weights) -> str:
    """``ResNet50_Weights`` → ``resnet50`` (the builder's name, for the fix in messages)."""
    import torchvision

    for name in TORCHVISION_RESNETS:
        if torchvision.models.get_model_weights(name) is type(weights):
            return name
    return type(weights).__name__


def read_state_dict(path: str | Path, arch: str) -> dict[str, torch.Tensor]:
    """A user's state_dict file (``weights_only``: tensors and plain containers, never code).

    Accepts a bare state_dict or one under ``state_dict`` / ``model`` (training scripts' usual
    wrappers), with DataParallel's ``module.`` prefix removed.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist. Fix: set train.checkpoint to your "
                                f"state_dict file (torch.save(model.state_dict(), path)), or use "
                                f"train.pretrained: {PROVIDER}{arch}")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 -- UnpicklingError, zip errors, EOF...
        raise ValueError(f"checkpoint {path} cannot be read as a state_dict with weights_only=True "
                         f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}). Fix: "
                         f"save only the weights, torch.save(model.state_dict(), path) -- a pickled "
                         f"module or optimiser object is not loaded (it could run code)") from None
    for key in ("state_dict", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ValueError(f"checkpoint {path} is not a state_dict (a mapping of parameter names to "
                         f"tensors). Fix: torch.save(model.state_dict(), path)")
    if all(k.startswith("module.") for k in obj):
        obj = {k[len("module."):]: v for k, v in obj.items()}
    return obj


def load_into(arch: str, state: dict[str, torch.Tensor], what: str) -> nn.Module:
    """torchvision's ``arch`` with ``state`` loaded (class count from ``fc.weight``); a mismatch
    names the missing / unexpected keys and asks whether ``arch`` is right."""
    if "fc.weight" not in state:
        raise ValueError(f"{what} has no fc.weight, so it is not a state_dict of torchvision's {arch} "
                         f"(keys start {sorted(state)[:3]}). Fix: set train.arch to its architecture")
    net = torchvision_resnet(arch, int(state["fc.weight"].shape[0]))
    try:
        net.load_state_dict(state)
    except RuntimeError as e:
        raise ValueError(f"{what} does not fit torchvision's {arch}: {str(e).splitlines()[1:3]}. "
                         f"Fix: set train.arch to the checkpoint's architecture (one of "
                         f"{', '.join(TORCHVISION_RESNETS)})") from None
    return net


# ---------------------------------------------------------------------------------- the recipe

def input_spec(recipe: dict, overrides: dict) -> InputSpec:
    """The model's :class:`InputSpec` from a recipe (resize, crop, mean, std) and config overrides."""
    r = {**recipe, **{k: v for k, v in (overrides or {}).items() if v is not None}}
    if r["crop"] > r["resize"]:
        raise ValueError(f"train.preprocess: crop {r['crop']} is larger than resize {r['resize']}; "
                         f"use crop <= resize")
    return InputSpec(3, int(r["crop"]), tuple(map(float, r["mean"])), tuple(map(float, r["std"])),
                     resize=int(r["resize"]))


def weights_recipe(weights) -> dict:
    """resize, crop, mean, std of torchvision ``weights``' own ``transforms()``."""
    from torchvision.transforms import InterpolationMode

    t = weights.transforms()
    if t.interpolation != InterpolationMode.BILINEAR:
        raise ValueError(f"{weights} preprocess with {t.interpolation.value} interpolation; grood's "
                         f"recipe is bilinear: choose other weights")
    return {"resize": int(t.resize_size[0]), "crop": int(t.crop_size[0]), "mean": tuple(t.mean),
            "std": tuple(t.std)}


def adopt(source: ModelSource) -> tuple[StagedNet, InputSpec, dict]:
    """The network of a pretrained / checkpoint ``source`` (eval mode, CPU), its input spec, and
    where it came from (weights name and URL, or checkpoint path, each with the file's sha256)."""
    import torchvision

    if source.kind == "pretrained":
        weights = resolve_weights(source.arch, source.weights)
        path = fetch_weights(weights)
        state = torch.load(path, map_location="cpu", weights_only=True)
        net = load_into(source.arch, state, f"{type(weights).__name__}.{weights.name}")
        recipe = weights_recipe(weights)
        origin = {"kind": "pretrained", "weights": f"{type(weights).__name__}.{weights.name}",
                  "url": weights.url, "sha256": sha256_file(path),
                  "reported_accuracy": weights.meta.get("_metrics", {}).get("ImageNet-1K", {})}
    elif source.kind == "checkpoint":
        state = read_state_dict(source.checkpoint, source.arch)
        net = load_into(source.arch, state, f"checkpoint {source.checkpoint}")
        recipe = dict(IMAGENET_RECIPE)
        origin = {"kind": "checkpoint", "path": str(source.checkpoint),
                  "sha256": sha256_file(source.checkpoint)}
    else:
        raise ValueError(f"adopt() takes a pretrained or checkpoint source, not {source.kind!r}")
    origin.update(arch=source.arch, torchvision=torchvision.__version__,
                  preprocess=dict(source.preprocess))
    spec = input_spec(recipe, source.preprocess)
    return staged_resnet(net).eval(), spec, origin


def save_adopted(path, model: StagedNet, spec: InputSpec, source: ModelSource, extra: dict) -> None:
    """model.pt of an adopted network: what :func:`grood.net.training.load_checkpoint` reads (state_dict,
    arch, width, num_classes, classes, spec), plus ``extra`` (provenance); tensors and plain
    values only, so it loads with ``weights_only=True``."""
    from grood.storage import atomic_path

    num_classes = int(model.fc.out_features)
    payload = {
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "arch": source.stored_arch,
        "width": None,
        "num_classes": num_classes,
        "classes": list(range(num_classes)),  # the head's outputs are the dataset's labels 0..C-1
        "spec": spec.to_dict(),
        "history": [],
        **extra,
    }
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def prefetch(values: list[str]) -> list[tuple[str, Path]]:
    """Fill ``$TORCH_HOME`` with the weights each ``torchvision/<model>[:<weights>]`` names (``grood
    weights``, on a machine with internet): ``(weights name, file)`` of each."""
    out = []
    for value in values:
        weights = resolve_weights(*parse_pretrained(value))
        out.append((f"{type(weights).__name__}.{weights.name}", fetch_weights(weights)))
    return out
