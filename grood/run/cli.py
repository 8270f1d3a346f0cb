"""The ``grood`` command: use a finished run without Snakemake.

``grood score`` applies a run's network and fitted detector to new images, ``grood info`` says what
a run holds, ``grood figures`` draws a benchmark's figures, ``grood weights`` fills ``$TORCH_HOME``
with torchvision's weights before an offline run. Errors are one line naming the file and
the fix (exit status 1); usage errors exit with 2.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

EPILOG_SCORE = """\
inputs (any mix):
  a folder          every file below it, sorted; files that are not images are reported and skipped
  an .npz file      its `images` array (else `x_test`: a prepared dataset's test split); rows are
                    named FILE[i]; uint8 0..255 or floats in [0, 1], (N,H,W), (N,H,W,C) or (N,C,H,W)
  image files       PNG, JPEG, BMP, TIFF, WebP, GIF, PGM/PPM
Images are converted as the pipeline converts a dataset: grey <-> colour by repetition / ITU-R 601
luminance, square images resized to the network's input (bilinear, antialiased), non-square ones
first resized on the shorter side and centre-cropped. Unreadable inputs are listed on stderr and
counted, never dropped silently.

output (CSV, one row per image, in input order):
  input            the file, or FILE.npz[i]
  score            the detector's score (higher = more in-distribution)
  decision         `in` when score >= threshold, else `out`
  predicted_class  the network's prediction, in the dataset's original labels
  threshold        the score that keeps --tpr of the run's ID test set (its stored test scores)

GROOD-family detectors compute the new images' gradients exactly as the pipeline (the run's
prototypes file, the detector's wrt and temperature); ODIN runs the network on each image.

safe to open: nothing of the run is unpickled. Detectors are read from their pickle-free files
(detectors/NAME.npz: numeric arrays, a JSON header, faiss indexes in faiss's own format), which
are checked entry by entry; a crafted or tampered file is refused with the reason, never run. The
checkpoint loads with torch's weights_only. A detector stored as a pickle (runs made before the
pickle-free store) is refused: re-run the workflow, which re-fits it.

examples:
  grood score --run results/mnist/seed0 --detector grood my_digits/ --out scores.csv
  grood score --run results/mnist/seed0 --detector energy new.npz a.png b.png
"""


def _add_run(parser: argparse.ArgumentParser) -> None:
    """The ``--run`` option of the commands that read one seed of a finished run."""
    parser.add_argument("--run", required=True, type=Path, metavar="DIR",
                        help="a seed directory of a finished run, e.g. results/mnist/seed0")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="grood", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Use a finished grood run (results/<benchmark>/seed<N>) without Snakemake: score new "
                    "images, inspect the run, draw its figures.",
        epilog="Run `grood COMMAND --help` for each command's options.")
    verbose = dict(action="store_true", help="log progress and timings to stderr, and show full tracebacks on errors")
    parser.add_argument("-v", "--verbose", **verbose)
    common = argparse.ArgumentParser(add_help=False)  # -v also after the command
    common.add_argument("-v", "--verbose", **verbose, default=argparse.SUPPRESS)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    score = sub.add_parser("score", help="score images with a detector of a finished run",
                           description="Score images with a fitted detector of a finished run: one CSV row "
                                       "per image with its score, in/out decision and predicted class.",
                           formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG_SCORE,
                           parents=[common])
    score.add_argument("inputs", nargs="+", metavar="INPUT", help="image folders, .npz files or image files")
    _add_run(score)
    score.add_argument("--detector", required=True, metavar="NAME",
                       help="a detector of the run, by its config name (see `grood info --run DIR`)")
    score.add_argument("--out", type=Path, metavar="CSV", help="write the CSV here (atomically); default: stdout")
    score.add_argument("--tpr", type=float, default=0.95, metavar="SHARE",
                       help="share of the ID test set the in/out threshold keeps (default: 0.95)")
    score.add_argument("--batch-size", type=int, metavar="N",
                       help="images per forward pass (default: the run's feature batch size, so ID test "
                            "images score exactly as in the run)")
    score.add_argument("--device", default="auto", help="auto (GPU when present), cpu, cuda or cuda:N (default: auto)")
    score.add_argument("--threads", type=int, metavar="N", help="CPU threads for torch (default: torch's)")
    score.set_defaults(func=_score)

    info = sub.add_parser("info", help="print what a finished run holds",
                          description="Print what a finished run holds: benchmark and seed, network and "
                                      "training, datasets scored, detectors with their parameters and "
                                      "95%%-TPR thresholds, near/far AUROC, and provenance.",
                          parents=[common])
    _add_run(info)
    info.add_argument("--tpr", type=float, default=0.95, metavar="SHARE",
                      help="share of the ID test set each listed threshold keeps (default: 0.95)")
    info.set_defaults(func=_info)

    figures = sub.add_parser("figures", help="draw every figure of a finished benchmark",
                             description="Draw every figure of a finished benchmark (PNG and PDF): AUROC "
                                         "heatmap, near/far chart, one page per detector, gradient space, "
                                         "mix-up, training curves.",
                             parents=[common])
    figures.add_argument("bench", type=Path, metavar="BENCH_DIR",
                         help="a benchmark directory of a finished run, e.g. results/mnist")
    figures.add_argument("--out", required=True, type=Path, metavar="DIR", help="folder for the figures")
    figures.add_argument("--seed", type=int, help="seed of the per-detector and method figures (default: the first)")
    figures.add_argument("--ood", metavar="SET", help="OOD set of the gradient-space figure (default: the first near set)")
    figures.add_argument("--detector", action="append", metavar="NAME", dest="detectors",
                         help="draw only this detector's page (repeatable; default: all)")
    figures.add_argument("--data-dir", type=Path, metavar="DIR",
                         help="folder of the prepared datasets, for the mix-up figure's images "
                              "(default: as recorded in the run, e.g. resources/data)")
    figures.set_defaults(func=_figures)

    timings = sub.add_parser("timings", help="where a finished run spent its time, per rule",
                             description="One row per rule from the jobs' timing files: jobs, summed, mean "
                                         "and longest wall time, summed CPU time, peak memory.",
                             parents=[common])
    timings.add_argument("results", type=Path, nargs="?", default=Path("results"), metavar="RESULTS_DIR",
                         help="the run's results folder (default: results)")
    timings.set_defaults(func=_timings)

    weights = sub.add_parser("weights", help="download torchvision weights into $TORCH_HOME",
                             description="Download torchvision's weights into $TORCH_HOME (torch.hub's cache) on "
                                         "a machine with internet, for a config's train.pretrained on machines "
                                         "without it (use the TORCH_HOME the jobs will see).",
                             parents=[common])
    weights.add_argument("models", nargs="+", metavar="MODEL",
                         help="torchvision/<model>[:<weights>], e.g. torchvision/resnet50:IMAGENET1K_V1")
    weights.set_defaults(func=_weights)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("faiss.loader").setLevel(logging.WARNING)
    from grood.data.errors import DataError
    from grood.detectors.store import DetectorFileError
    from grood.storage import CorruptFileError

    try:
        return args.func(args)
    except (FileNotFoundError, DataError, DetectorFileError, CorruptFileError, KeyError, ValueError,
            RuntimeError) as e:
        if args.verbose:  # the full traceback, for a bug report
            raise
        msg = e.args[0] if isinstance(e, KeyError) and e.args else e
        print(f"grood {args.command}: error: {msg}", file=sys.stderr)
        return 1


def _score(args) -> int:
    from grood.run.apply import read_inputs, score_inputs
    from grood.net.device import set_threads
    from grood.run.finished import SeedRun
    from grood.storage import atomic_path

    if not 0 < args.tpr <= 1:
        raise ValueError(f"--tpr must lie in (0, 1], got {args.tpr}")
    if args.batch_size is not None and args.batch_size < 1:
        raise ValueError(f"--batch-size must be ≥ 1, got {args.batch_size}")
    run = SeedRun.open(args.run)
    run.detector_file(args.detector)  # an unknown detector fails before the images are read
    set_threads(args.threads)
    size = _model_size(run)
    t0 = time.perf_counter()
    inputs = read_inputs(args.inputs, size)
    logging.getLogger("grood.run.apply").info("read %d image(s): %.2f s", len(inputs), time.perf_counter() - t0)
    for name, why in inputs.skipped:
        print(f"grood score: skipped {name}: {why}", file=sys.stderr)
    table = score_inputs(run, args.detector, inputs, args.batch_size, args.device, args.tpr)
    if args.out:
        with atomic_path(args.out) as tmp:
            table.to_csv(tmp, index=False)
    else:
        table.to_csv(sys.stdout, index=False)
    n_in = int((table["decision"] == "in").sum())
    print(f"grood score: {len(table)} image(s) scored with {args.detector!r} of {run.root}: {n_in} in, "
          f"{len(table) - n_in} out at threshold {table['threshold'].iloc[0]:.6g} (keeps {100 * args.tpr:g}% of "
          f"the ID test set); {len(inputs.skipped)} input(s) skipped"
          + (f"; written to {args.out}" if args.out else ""), file=sys.stderr)
    return 0


def _model_size(run) -> int:
    import torch

    ckpt = torch.load(run.model, map_location="cpu", weights_only=True)
    return int(ckpt["spec"]["size"])


def _info(args) -> int:
    from grood.run.info import describe
    from grood.run.finished import SeedRun

    print(describe(SeedRun.open(args.run), args.tpr))
    return 0


def _figures(args) -> int:
    from grood.run.render import render_all

    t0 = time.perf_counter()
    written = render_all(args.bench, args.out, args.data_dir, args.seed, args.ood, args.detectors)
    for name, paths in written.items():
        print(f"{name}: " + ", ".join(map(str, paths)))
    print(f"grood figures: {len(written)} figure(s) in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    return 0


def _weights(args) -> int:
    from grood.net.pretrained import prefetch

    for name, path in prefetch(args.models):
        print(f"{name}: {path}")
    return 0


def _timings(args) -> int:
    from grood.run.timings import markdown, rule_timings

    print(markdown(rule_timings(args.results)), end="")
    return 0
