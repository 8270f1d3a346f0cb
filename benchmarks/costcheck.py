"""The cost model against a real run: config/imagenet.yaml's stages and detectors, scaled down to
what a CPU can run here, on synthetic ImageNet-sized JPEGs, through the whole workflow.

    python -m benchmarks.costcheck DIR [--classes 50] [--per-class 120] [--test 600] [--ood 300]
    python -m benchmarks.costmodel --check DIR --config DIR/config.yaml      # then: predicted vs measured

Writes ``DIR/data``: OpenOOD-style image lists (``benchmark_imglist/``) over 500×375 photo-like JPEGs
(:func:`benchmarks.throughput.write_jpegs`: ImageNet's typical size and file weight; a pool of
:data:`POOL` distinct ones copied to every file, as encoding is slow and decoding costs the same) in
``images_largescale/`` — an ID set with a training and a test list, a near and a far OOD set — a
randomly initialised torchvision ResNet-18 as the user's checkpoint (nothing is trained: the
cost does not depend on the weights), and ``DIR/config.yaml``: imagenet.yaml's detectors and
settings at this size, on the CPU (``device: cpu``, ``loader.workers: 0``, ``search.gpu: false``).
Then it runs Snakemake in ``DIR`` (``--cores`` as given) unless ``--no-run``.
"""

from __future__ import annotations

import argparse
import math
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
#: distinct JPEGs encoded; every file is a copy of one of them
POOL = 96


def write_data(root: Path, classes: int, per_class: int, test_per_class: int, ood: int, seed: int = 0,
               pool_size: int = POOL) -> None:
    import shutil

    from benchmarks.throughput import write_jpegs

    large, lists = root / "images_largescale", root / "benchmark_imglist" / "check"
    lists.mkdir(parents=True, exist_ok=True)
    pool = write_jpegs(root / "pool", pool_size, seed=seed)
    count = 0

    def files(folder: Path, n: int) -> list[str]:
        nonlocal count
        folder.mkdir(parents=True, exist_ok=True)
        out = []
        for i in range(n):
            shutil.copyfile(pool[count % pool_size], folder / f"img{i:05d}.JPEG")
            out.append((folder / f"img{i:05d}.JPEG").relative_to(large).as_posix())
            count += 1
        return out

    train, test = [], []
    for c in range(classes):
        train += [f"{r} {c}" for r in files(large / "id" / "train" / f"c{c:03d}", per_class)]
        test += [f"{r} {c}" for r in files(large / "id" / "val" / f"c{c:03d}", test_per_class)]
    (lists / "train_id.txt").write_text("\n".join(train) + "\n")
    (lists / "test_id.txt").write_text("\n".join(test) + "\n")
    for name in ("near_set", "far_set"):
        (lists / f"test_{name}.txt").write_text("".join(f"{r} -1\n" for r in files(large / name, ood)))


def write_checkpoint(path: Path, classes: int, arch: str = "resnet18") -> None:
    import torch

    from grood.net.models import torchvision_resnet

    torch.manual_seed(0)  # random weights: the cost does not depend on them
    torch.save(torchvision_resnet(arch, classes).state_dict(), path)


def check_config(root: Path, classes: int, per_class: int, arch: str = "resnet18") -> dict:
    """config/imagenet.yaml's settings and detectors at this size, on the CPU."""
    imagenet = yaml.safe_load((REPO / "config" / "imagenet.yaml").read_text())
    data, lists = root / "data", root / "data" / "benchmark_imglist" / "check"
    listed = {"source": "imglist", "root": str(data / "images_largescale")}
    n_train = classes * per_class
    nlist = 2 ** round(math.log2(max(1.0, 4 * math.sqrt(n_train))))  # faiss: 4·√N cells
    detectors = dict(imagenet["detectors"])
    detectors["grood_ivf"] = {"method": "grood", "k": 1,
                              "index": {"kind": "ivf_flat", "nlist": nlist, "nprobe": max(1, nlist // 64)}}
    detectors["knn"] = {"method": "knn", "k": min(1000, n_train // 10)}
    return {
        "resources_dir": "resources", "results_dir": "results", "device": "cpu", "threads": 2,
        "loader": {"workers": 0},
        "datasets": {"id": {**listed, "train": str(lists / "train_id.txt"), "path": str(lists / "test_id.txt")},
                     "near_set": {**listed, "path": str(lists / "test_near_set.txt")},
                     "far_set": {**listed, "path": str(lists / "test_far_set.txt")}},
        "benchmarks": {"check": {"id": "id", "ood": {"near_set": "near", "far_set": "far"},
                                 "train": {"checkpoint": str(root / f"{arch}_random.pt"), "arch": arch}}},
        "seeds": [0],
        "prototypes": {**imagenet["prototypes"], "n_mix": 10 * classes},
        "features": {"batch_size": 128}, "gradients": imagenet["gradients"],
        "shards": imagenet["shards"], "search": {"gpu": False},
        "index_quality": {"sample": 200, "nprobe": sorted({max(1, nlist // 64), max(1, nlist // 16), nlist // 4})},
        "detectors": detectors,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.costcheck", description=__doc__.split("\n\n")[0])
    ap.add_argument("dir", type=Path)
    ap.add_argument("--classes", type=int, default=50)
    ap.add_argument("--per-class", type=int, default=120, help="training images per class")
    ap.add_argument("--test", type=int, default=600, help="ID test images (split over the classes)")
    ap.add_argument("--ood", type=int, default=300, help="images per OOD set")
    ap.add_argument("--pool", type=int, default=POOL,
                    help="distinct JPEGs encoded (every image is a copy of one; as many as images: no duplicates)")
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--no-run", action="store_true", help="write the data and config only")
    args = ap.parse_args(argv)
    root = args.dir.resolve()
    root.mkdir(parents=True, exist_ok=True)
    if not (root / "data").exists():
        write_data(root / "data", args.classes, args.per_class, max(1, args.test // args.classes), args.ood,
                   pool_size=args.pool)
    if not (root / "resnet18_random.pt").exists():
        write_checkpoint(root / "resnet18_random.pt", args.classes)
    config = check_config(root, args.classes, args.per_class)
    (root / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    print(f"data and config in {root}", file=sys.stderr)
    if args.no_run:
        return 0
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory", str(root),
           "--configfile", str(root / "config.yaml"), "--cores", str(args.cores)]
    return subprocess.run(cmd).returncode


if __name__ == "__main__":
    sys.exit(main())
