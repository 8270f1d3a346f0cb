"""What one image costs at ImageNet scale, measured on this machine: JPEG decoding + the ImageNet
recipe per decoding worker, and a torchvision ResNet's forward pass on CPU -- the per-image inputs
of the ImageNet cost model (decoding, not the GPU, bounds a ResNet-50 feature pass).

    nice -n 19 python -m benchmarks.throughput --images 256 --threads 2 [--workers 0 1 2] [--json out.json]

The JPEGs are synthetic photographs at ImageNet's typical size (500×375, quality 90: smooth
structure plus sensor-like noise, ~100 KB like ImageNet's average file), decoded exactly as a
file-list dataset is (:mod:`grood.net.loader`); timings are wall-clock medians of ``repeats`` runs.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

IMAGENET_RECIPE_224 = {"resize": 256, "crop": 224, "mean": (0.485, 0.456, 0.406), "std": (0.229, 0.224, 0.225)}


def write_jpegs(folder: Path, n: int, size: tuple[int, int] = (500, 375), quality: int = 90,
                seed: int = 0) -> list[Path]:
    """``n`` photo-like JPEGs (width, height = ``size``): low-frequency colour fields + noise."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    w, h = size
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        coarse = rng.uniform(0, 255, (h // 25 + 2, w // 25 + 2, 3)).astype(np.uint8)
        smooth = np.asarray(Image.fromarray(coarse).resize((w, h), Image.Resampling.BICUBIC), np.float32)
        pixels = np.clip(smooth + rng.normal(0, 16, (h, w, 3)), 0, 255).astype(np.uint8)
        path = folder / f"img{i:05d}.JPEG"
        Image.fromarray(pixels).save(path, quality=quality)
        paths.append(path)
    return paths


def decode_rate(paths: list[Path], workers: int, batch_size: int = 64, repeats: int = 3) -> tuple[float, float]:
    """(images per wall-clock second, CPU seconds per image of the calling process) with which
    ``workers`` decoding processes (0: the calling process) turn JPEGs into normalised 3×224×224
    tensors with the ImageNet recipe, through :func:`grood.net.loader.file_batches`.  With 0 workers
    the CPU time is the decoding cost itself, unaffected by other jobs on a shared machine."""
    import torch

    from grood.data.filelist import ImageFiles
    from grood.net.loader import file_batches
    from grood.net.pretrained import input_spec

    root = paths[0].parent
    files = ImageFiles(root=str(root), files=np.array([p.name.encode() for p in paths]),
                       nbytes=np.array([p.stat().st_size for p in paths], np.int64), channels=3,
                       workers=workers, name="throughput")
    spec = input_spec(IMAGENET_RECIPE_224, {})
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as in a DataLoader worker: intra-op threads only spin on one image
    times, cpu = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        n = sum(len(b) for _, b in file_batches(files, spec, batch_size, "decode"))
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    torch.set_num_threads(threads)
    return n / statistics.median(times), statistics.median(cpu) / n


def forward_rate(arch: str = "resnet50", threads: int = 2, batch_size: int = 32, batches: int = 3,
                 size: int = 224) -> tuple[float, float]:
    """(images per wall-clock second, CPU seconds per image summed over threads) of torchvision
    ``arch``'s fp32 forward pass on CPU with ``threads`` threads (random weights: the cost does not
    depend on them), after one warm-up batch."""
    import torch

    from grood.net.models import torchvision_net

    torch.set_num_threads(threads)
    model = torchvision_net(arch).eval()
    x = torch.randn(batch_size, 3, size, size)
    times, cpu = [], []
    with torch.inference_mode():
        model(x)
        for _ in range(batches):
            t0, c0 = time.perf_counter(), time.process_time()
            model(x)
            times.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
    return batch_size / statistics.median(times), statistics.median(cpu) / batch_size


def measure(images: int = 256, workers: tuple[int, ...] = (0, 1, 2), threads: int = 2,
            arch: str = "resnet50", forward_batch: int = 32) -> dict:
    """Decode rates per worker count and the forward rate, with what they were measured on."""
    import os

    import torch

    with tempfile.TemporaryDirectory() as tmp:
        paths = write_jpegs(Path(tmp) / "jpegs", images)
        mean_kb = float(np.mean([p.stat().st_size for p in paths]) / 1024)
        decode = {w: decode_rate(paths, w) for w in workers}
    forward, forward_cpu = forward_rate(arch, threads, forward_batch)
    rates = {str(w): round(r, 1) for w, (r, _) in decode.items()}
    return {
        "load_average_1min": round(os.getloadavg()[0], 2),
        "decode_img_per_s": rates,
        # one worker process (or, unmeasured, the calling process): what each added worker brings
        "decode_img_per_s_per_worker": rates.get("1", rates.get("0")),
        # the decoding cost without contention: 1 / this is one free core's rate
        "decode_cpu_ms_per_img": round(1000 * decode[0][1], 2) if 0 in decode else None,
        "jpeg": {"size": "500x375", "quality": 90, "mean_kb": round(mean_kb, 1), "n": images,
                 "recipe": "shorter side 256 (PIL bilinear), centre crop 224, ImageNet mean/std"},
        "forward_img_per_s": round(forward, 2),
        "forward_cpu_ms_per_img": round(1000 * forward_cpu, 1),
        "forward": {"arch": arch, "threads": threads, "batch": forward_batch, "dtype": "float32",
                    "input": "3x224x224"},
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.throughput", description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", type=int, default=256, help="JPEGs to decode per run")
    ap.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2], help="decoding worker counts")
    ap.add_argument("--threads", type=int, default=2, help="torch threads of the forward pass")
    ap.add_argument("--arch", default="resnet50")
    ap.add_argument("--forward-batch", type=int, default=32, help="images per timed forward batch")
    ap.add_argument("--json", help="also write the result here")
    args = ap.parse_args(argv)
    result = measure(args.images, tuple(args.workers), args.threads, args.arch, args.forward_batch)
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
