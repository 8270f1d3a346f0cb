"""config/imagenet.yaml plans the whole DAG on a tiny fake OpenOOD data folder — images_largescale/,
images_classic/ and benchmark_imglist/imagenet/ with the lists its comments name — (its SLURM
profile: tests/unit/test_profiles.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from conftest import REPO, parse_dry_run, snakemake

CONFIG = REPO / "config" / "imagenet.yaml"


def write_fake_openood(root: Path) -> None:
    """Two ImageNet classes and a few images per OOD set in OpenOOD's folders, and every image list
    config/imagenet.yaml reads (OOD labels -1, ID labels the class index)."""
    from samples import write_photo_folder

    large, classic = root / "images_largescale", root / "images_classic"
    write_photo_folder(large / "imagenet_1k", classes=("n01440764", "n01443537"), n_per_class=2,
                       splits=("train", "val"))
    for folder in ("ssb_hard", "ninco", "inaturalist", "openimage_o"):
        write_photo_folder(large / folder, classes=None, n_per_class=3, splits=())
    write_photo_folder(classic / "texture", classes=("banded", "woven"), n_per_class=2, splits=())
    lists = root / "benchmark_imglist" / "imagenet"
    lists.mkdir(parents=True)

    def listing(base, folder, label=lambda rel: -1):
        files = sorted(p.relative_to(base).as_posix() for p in (base / folder).rglob("*") if p.is_file())
        return "".join(f"{rel} {label(rel)}\n" for rel in files)

    wnid = lambda rel: int(rel.split("/")[2] == "n01443537")  # noqa: E731
    (lists / "train_imagenet.txt").write_text(listing(large, "imagenet_1k/train", wnid))
    (lists / "test_imagenet.txt").write_text(listing(large, "imagenet_1k/val", wnid))
    for name, folder in (("ssb_hard", "ssb_hard"), ("ninco", "ninco"), ("inaturalist", "inaturalist"),
                         ("openimage_o", "openimage_o")):
        (lists / f"test_{name}.txt").write_text(listing(large, folder))
    (lists / "val_openimage_o.txt").write_text(listing(large, "openimage_o"))
    (lists / "test_textures.txt").write_text(listing(classic, "texture"))


@pytest.mark.slow
def test_imagenet_config_plans_on_a_fake_openood_tree(tmp_path, monkeypatch):
    write_fake_openood(tmp_path / "data")
    monkeypatch.setenv("GROOD_DATA_ROOT", str(tmp_path / "data"))
    work = tmp_path / "work"
    work.mkdir()
    proc = snakemake(work, "--dry-run", configfile=CONFIG, timeout=300)
    jobs = parse_dry_run(proc.stdout)
    config = yaml.safe_load(CONFIG.read_text())
    by_rule: dict[str, set] = {}
    for rule, wildcards in jobs:
        by_rule.setdefault(rule, set()).add(dict(wildcards).get("part") or dict(wildcards).get("dataset"))
    ood = config["benchmarks"]["imagenet"]["ood"]
    assert ood == {"ssb_hard": "near", "ninco": "near", "inaturalist": "far", "textures": "far", "openimage_o": "far"}
    assert by_rule["prepare_dataset"] == {"imagenet", *ood}  # the OOD-validation set is declared, not scored
    assert config["datasets"]["openimage_o_val"]["path"].endswith("val_openimage_o.txt")
    parts = {"train", "test", *ood}
    assert by_rule["features"] == parts
    assert by_rule["score"] == parts - {"train"}
    # array-only detectors are scored in the Snakemake process (score_local), the rest in score jobs
    assert len([j for j in jobs if j[0] in ("score", "score_local")]) == len(config["detectors"]) * (len(parts) - 1)
    assert {"train", "prototypes", "gradients", "fit_detector", "index_quality", "evaluate", "datacard"} <= set(by_rule)
    assert "search.gpu is true but this environment's faiss has no GPU build" in proc.stderr or _faiss_gpu()


def _faiss_gpu() -> bool:
    import faiss

    return hasattr(faiss, "StandardGpuResources")


@pytest.mark.slow
def test_the_fake_openood_lists_prepare(tmp_path, monkeypatch):
    """The lists the config reads prepare as file lists with the sets' counts and labels."""
    from grood.stages.io import load_split
    from grood.stages.prepare_dataset import prepare_dataset_stage

    write_fake_openood(tmp_path / "data")
    monkeypatch.setenv("GROOD_DATA_ROOT", str(tmp_path / "data"))
    config = yaml.safe_load(CONFIG.read_text())
    counts = {}
    for name in ("imagenet", "ssb_hard", "textures", "openimage_o_val"):
        out = tmp_path / f"{name}.npz"
        prepare_dataset_stage(name, config["datasets"][name], tmp_path / "raw", out)
        files, y = load_split(out, "test")
        counts[name] = (len(files), sorted(set(y.tolist())))
    _, y_train = load_split(tmp_path / "imagenet.npz", "train")
    assert counts == {"imagenet": (4, [0, 1]), "ssb_hard": (3, [-1]), "textures": (4, [-1]),
                      "openimage_o_val": (3, [-1])}
    assert sorted(y_train.tolist()) == [0, 0, 1, 1]
