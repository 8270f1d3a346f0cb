"""Bring your own model: torchvision ResNets wrapped into stages run exactly torchvision's forward;
a user's checkpoint or torchvision's (cached) weights become a model.pt that loads like a trained
one; every way it can go wrong says what to do, offline within seconds."""

from __future__ import annotations

import socket
import time

import pytest
import torch
import torchvision

from grood.net.models import staged_resnet
from grood.net.pretrained import adopt, cached_weights_file, read_state_dict, resolve_weights, save_adopted
from grood.net.source import TORCHVISION_RESNETS, TRAINABLE, ModelSource, model_source, train_problems


@pytest.mark.parametrize("arch", ["resnet18", "resnet50"])
def test_staged_resnet_is_torchvision_forward_exactly(arch):
    torch.manual_seed(0)
    net = torchvision.models.get_model(arch, num_classes=5).eval()
    staged = staged_resnet(net).eval()
    assert staged.stage_names == ["stem", "layer1", "layer2", "layer3", "layer4", "pool"]
    x = torch.randn(2, 3, 40, 32)
    with torch.no_grad():
        full = net(x)
        assert torch.equal(staged(x), full)  # max diff 0
        for stage in staged.stage_names:
            e = staged.forward_to(x, stage)
            assert torch.equal(staged.fc(staged.forward_from(e, stage)), full), stage
        assert staged.features(x).shape == (2, net.fc.in_features)


def test_model_lists_match_torchvision_and_grood():
    """The torch-free lists the config is checked with are the libraries' own."""
    from grood.net.models import ARCHITECTURES

    import inspect

    builders = {n: torchvision.models.get_model_builder(n) for n in torchvision.models.list_models(module=torchvision.models)}
    family = sorted(n for n, b in builders.items() if inspect.signature(b).return_annotation is torchvision.models.ResNet)
    assert "resnet50" in family and "wide_resnet50_2" in family
    assert sorted(TORCHVISION_RESNETS) == family
    assert TRAINABLE == ARCHITECTURES


def _checkpoint(tmp_path, arch="resnet18", num_classes=4, wrap=None, seed=0):
    torch.manual_seed(seed)
    net = torchvision.models.get_model(arch, num_classes=num_classes).eval()
    state = net.state_dict()
    if wrap == "module":
        state = {f"module.{k}": v for k, v in state.items()}
    elif wrap:
        state = {wrap: state, "epoch": 3}
    path = tmp_path / f"{arch}.pt"
    torch.save(state, path)
    return net, path


@pytest.mark.parametrize("wrap", [None, "state_dict", "model", "module"])
def test_checkpoint_becomes_a_model_pt_that_loads_like_a_trained_one(tmp_path, wrap):
    from grood.net.training import load_checkpoint

    net, path = _checkpoint(tmp_path, wrap=wrap)
    source = model_source({"arch": "resnet18", "checkpoint": str(path), "preprocess": {"resize": 40, "crop": 32}})
    model, spec, origin = adopt(source)
    assert (spec.size, spec.resize, spec.mean) == (32, 40, (0.485, 0.456, 0.406))  # ImageNet mean/std
    assert origin["kind"] == "checkpoint" and len(origin["sha256"]) == 64
    save_adopted(tmp_path / "model.pt", model, spec, source, {"provenance": {"note": "test"}})
    loaded, meta = load_checkpoint(tmp_path / "model.pt")  # weights_only=True inside
    assert meta["arch"] == "torchvision/resnet18" and meta["classes"] == [0, 1, 2, 3]
    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(loaded(x), net(x))


def test_cached_pretrained_weights_load_without_network(tmp_path, monkeypatch):
    """Weights already in $TORCH_HOME are used as they are: no connection is opened, and the
    recipe is the weights' own (resize 256, crop 224 for IMAGENET1K_V1)."""
    monkeypatch.setattr(torch.hub, "_hub_dir", str(tmp_path / "hub"))
    weights = torchvision.models.ResNet18_Weights.IMAGENET1K_V1
    target = cached_weights_file(weights.url)
    target.parent.mkdir(parents=True)
    net, _ = _checkpoint(tmp_path, num_classes=1000)
    torch.save(net.state_dict(), target)  # stands in for the downloaded file

    def no_network(*a, **k):
        raise AssertionError("the network was used although the weights are cached")

    monkeypatch.setattr(socket, "create_connection", no_network)
    model, spec, origin = adopt(model_source({"pretrained": "torchvision/resnet18:IMAGENET1K_V1"}))
    assert (spec.resize, spec.size, spec.std) == (256, 224, (0.229, 0.224, 0.225))
    assert origin["weights"] == "ResNet18_Weights.IMAGENET1K_V1" and origin["url"] == weights.url
    with torch.no_grad():
        x = torch.randn(1, 3, 64, 64)
        assert torch.equal(model(x), net(x))


def test_offline_download_fails_in_seconds_with_the_fix(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "_hub_dir", str(tmp_path / "empty_hub"))

    def offline(*a, **k):
        raise OSError("[Errno -2] Name or service not known")

    monkeypatch.setattr(socket, "create_connection", offline)
    t0 = time.perf_counter()
    with pytest.raises(RuntimeError) as err:
        adopt(model_source({"pretrained": "torchvision/resnet50"}))
    assert time.perf_counter() - t0 < 10
    msg = str(err.value)
    for needed in ("ResNet50_Weights.IMAGENET1K_V2", "TORCH_HOME", "grood weights torchvision/resnet50",
                   "train.checkpoint", "download.pytorch.org", "unreachable"):
        assert needed in msg, (needed, msg)


def test_unknown_weights_name_lists_the_real_ones():
    with pytest.raises(ValueError, match=r"no weights 'IMAGENET9K'.*IMAGENET1K_V1, IMAGENET1K_V2, DEFAULT"):
        resolve_weights("resnet50", "IMAGENET9K")
    assert resolve_weights("resnet50", None).name == "IMAGENET1K_V2"  # DEFAULT, resolved and recorded


def test_missing_unreadable_and_mismatched_checkpoints_name_the_fix(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"gone\.pt does not exist.*model\.state_dict\(\)"):
        read_state_dict(tmp_path / "gone.pt", "resnet50")
    pickled = tmp_path / "module.pt"
    torch.save(torchvision.models.resnet18(num_classes=2), pickled)  # a whole module: needs unpickling code
    with pytest.raises(ValueError, match=r"weights_only=True.*torch\.save\(model\.state_dict\(\), path\)"):
        read_state_dict(pickled, "resnet18")
    _, r18 = _checkpoint(tmp_path)
    with pytest.raises(ValueError, match=r"does not fit torchvision's resnet50.*set train\.arch"):
        adopt(ModelSource("checkpoint", "resnet50", checkpoint=str(r18)))
    junk = tmp_path / "junk.pt"
    torch.save({"weights": [1, 2]}, junk)
    with pytest.raises(ValueError, match="not a state_dict"):
        read_state_dict(junk, "resnet18")


@pytest.mark.parametrize("train, expected", [
    ({"checkpoint": "/nowhere/w.pt", "arch": "resnet50"},
     ["benchmarks.b.train.checkpoint", "/nowhere/w.pt does not exist", "state_dict"]),
    ({"checkpoint": "$GROOD_NO_SUCH_VAR/w.pt", "arch": "resnet50"},
     ["GROOD_NO_SUCH_VAR", "is not set"]),
    ({"pretrained": "torchvision/vit_b_16"}, ["benchmarks.b.train.pretrained", "not a torchvision ResNet", "resnet50"]),
    ({"pretrained": "timm/resnet50"}, ["benchmarks.b.train.pretrained", "torchvision/<model>[:<weights>]"]),
    ({"pretrained": "torchvision/resnet50", "checkpoint": "x.pt"}, ["not both"]),
    ({"arch": "resnet50"}, ["benchmarks.b.train.arch", "pretrained: torchvision/resnet50"]),
    ({"arch": "lenet5", "preprocess": {"resize": 256}}, ["benchmarks.b.train.preprocess", "only pretrained"]),
    ({"pretrained": "torchvision/resnet50", "preprocess": {"resize": 200, "crop": 224}}, ["crop 224 is larger"]),
    ({"pretrained": "torchvision/resnet50", "preprocess": {"mean": [0.5]}}, ["preprocess.mean", "3 values"]),
    ({"pretrained": "torchvision/resnet50", "width": 8}, ["benchmarks.b.train.width", "remove width"]),
], ids=["missing-checkpoint", "unset-var", "not-a-resnet", "other-provider", "both", "torchvision-arch-from-scratch",
        "preprocess-when-training", "crop-gt-resize", "mean-length", "width"])
def test_train_section_problems_name_the_key_and_fix(train, expected):
    msg = "\n".join(train_problems(train, "benchmarks.b.train"))
    for text in expected:
        assert text in msg, (text, msg)


def test_checkpoint_with_the_default_arch_is_rejected(tmp_path):
    """The schema fills arch: lenet5 when it is left out: with a checkpoint that must say which arch."""
    _, path = _checkpoint(tmp_path)
    msg = "\n".join(train_problems({"checkpoint": str(path), "arch": "lenet5"}, "train"))
    assert "train.arch: 'lenet5'" in msg and "resnet50" in msg
    assert train_problems({"checkpoint": str(path), "arch": "resnet18"}, "train") == []


def test_weights_command_needs_a_model():
    from grood.run.cli import main

    with pytest.raises(SystemExit) as usage:
        main(["weights"])
    assert usage.value.code == 2


def test_train_stage_adopts_a_checkpoint_without_training(tmp_path):
    """The train stage with ``checkpoint`` writes model.pt (the user's weights, unchanged) and
    train.json whose ID test accuracy equals torchvision's own transforms + forward on the files,
    and whose provenance is the checkpoint's sha256 -- no optimiser step taken."""
    import json

    from PIL import Image
    from torchvision import transforms as T

    from samples import write_photo_folder
    from grood.stages.io import load_split
    from grood.stages.prepare_dataset import prepare_dataset_stage
    from grood.stages.train import train_stage
    from grood.storage import sha256_file
    from grood.net.training import load_checkpoint

    folder = write_photo_folder(tmp_path / "photos", n_per_class=4)
    data = tmp_path / "photos.npz"
    prepare_dataset_stage("photos", {"source": "image_folder", "path": str(folder), "store": "files"},
                          tmp_path / "raw", data)
    net, ckpt = _checkpoint(tmp_path, arch="resnet18", num_classes=3, seed=3)
    cfg = {"arch": "resnet18", "checkpoint": str(ckpt), "preprocess": {"resize": 36, "crop": 32}}
    summary = train_stage(data, tmp_path / "model.pt", tmp_path / "train.json", cfg, seed=0, device="cpu",
                          workers=2)

    files, labels = load_split(data, "test")
    reference = T.Compose([T.Resize(36), T.CenterCrop(32), T.ToTensor(),
                           T.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))])
    x = torch.stack([reference(Image.open(files.path(i)).convert("RGB")) for i in range(len(files))])
    with torch.no_grad():
        expected = float((net(x).argmax(1).numpy() == labels).mean())
    written = json.loads((tmp_path / "train.json").read_text())
    assert written["test_accuracy"] == summary["test_accuracy"] == pytest.approx(expected, abs=0)
    assert written["n_test"] == len(files) == 12 and written["train_seconds"] == 0.0
    assert written["model_source"]["kind"] == "checkpoint"
    assert written["model_source"]["sha256"] == sha256_file(ckpt)
    model, meta = load_checkpoint(tmp_path / "model.pt")
    assert meta["arch"] == "torchvision/resnet18" and meta["spec"]["resize"] == 36
    for k, v in net.state_dict().items():  # the weights as given: nothing was trained
        assert torch.equal(model.state_dict()[_staged_key(k)], v), k


def _staged_key(name: str) -> str:
    """torchvision ResNet parameter name → the StagedNet's (conv1 → stages.stem.conv1, ...)."""
    first, _, rest = name.partition(".")
    if first in ("conv1", "bn1"):
        return f"stages.stem.{name}"
    if first.startswith("layer"):
        return f"stages.{name}"
    return name


def test_train_stage_rejects_a_network_whose_classes_differ_from_the_dataset(tmp_path):
    from samples import write_photo_folder
    from grood.stages.prepare_dataset import prepare_dataset_stage
    from grood.stages.train import train_stage

    folder = write_photo_folder(tmp_path / "photos", n_per_class=2)
    data = tmp_path / "photos.npz"
    prepare_dataset_stage("photos", {"source": "image_folder", "path": str(folder), "store": "files"},
                          tmp_path / "raw", data)
    _, ckpt = _checkpoint(tmp_path, arch="resnet18", num_classes=5)
    with pytest.raises(ValueError, match=r"has 5 outputs but the ID dataset .* has 3 classes.*Fix"):
        train_stage(data, tmp_path / "model.pt", tmp_path / "train.json",
                    {"arch": "resnet18", "checkpoint": str(ckpt), "preprocess": {"resize": 36, "crop": 32}},
                    seed=0, device="cpu")
    assert not (tmp_path / "model.pt").exists()
