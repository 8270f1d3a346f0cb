"""The `grood` command: scoring new images with a finished run, `info`, help texts, bad inputs named.

A small fake run (an untrained network, detectors fitted on its features) checks the command's
own logic in seconds; that `grood score` on the ID test set of a real tiny workflow run gives exactly
the scores the pipeline stored: tests/workflow/test_run_commands.py.
"""

import io
import json
import pickle

import numpy as np
import pandas as pd
import pytest
import torch

from grood.run.cli import main
from grood.detectors import make_detector
from grood.detectors.store import save_detector
from grood.method.gradients import grood_gradients
from grood.evaluation.metrics import threshold_at_tpr
from grood.storage import save_json, save_npz, write_zarr

CLASSES = [3, 5, 7]  # original labels that are not 0..C-1: the CSV must show these
BATCH = 16


def _forward(model, images, spec):
    from grood.net.forward import forward_batches

    net = model.to(memory_format=torch.channels_last)
    return forward_batches(net, images, spec, torch.device("cpu"), BATCH)


@pytest.fixture(scope="module")
def fake_run(tmp_path_factory):
    """results/bench/seed0 with a checkpoint, features, prototypes, three stored detectors and their
    ID test scores, plus the test images as an .npz — the layout the workflow writes."""
    from grood.net.models import cnn_bn_gap
    from grood.net.preprocess import spec_from_training
    from grood.method.prototypes import class_means
    from grood.net.training import TrainConfig, TrainResult, save_checkpoint

    root = tmp_path_factory.mktemp("fake")
    run = root / "results" / "bench" / "seed0"
    rng = np.random.default_rng(0)
    x_train = rng.integers(0, 256, size=(90, 28, 28), dtype=np.uint8)
    y_train = np.repeat(np.arange(3), 30)
    x_test = rng.integers(0, 256, size=(50, 28, 28), dtype=np.uint8)
    torch.manual_seed(0)
    model = cnn_bn_gap(1, 3, width=4).eval()
    spec = spec_from_training(x_train)
    save_checkpoint(run / "model.pt", TrainResult(model, spec, CLASSES), TrainConfig(arch="cnn_bn_gap", width=4))
    save_json(run / "train.json", {"test_accuracy": 0.4, "history": [{"epoch": 1, "loss": 1.0, "train_acc": 0.4, "lr": 0.1}]})
    train, test = _forward(model, x_train, spec), _forward(model, x_test, spec)
    for part, out, labels in (("train", train, y_train), ("test", test, np.zeros(50, np.int64))):
        write_zarr(run / "features" / f"{part}.zarr", {**out, "labels": labels}, {"data": "data.npz"}, BATCH)
    P = class_means(train["features"], y_train, 3).astype(np.float32)
    p_ood = P.mean(0) * 0.5
    save_npz(run / "prototypes" / "mixup.npz", {"P": P, "p_ood": p_ood}, {"source": "mixup"})
    grads = {p: grood_gradients(o["features"], o["logits"], P, p_ood) for p, o in (("train", train), ("test", test))}
    dets = {"msp": make_detector("msp"),
            "mahalanobis": make_detector("mahalanobis").fit(features=train["features"], labels=y_train),
            "grood": make_detector("grood").fit(gradients=grads["train"], logits=train["logits"], labels=y_train)}
    inputs = {"msp": {"logits": test["logits"]}, "mahalanobis": {"features": test["features"]},
              "grood": {"gradients": grads["test"]}}
    for name, det in dets.items():
        save_detector(det, run / "detectors" / f"{name}.npz")
        (run / "scores" / name).mkdir(parents=True)
        np.save(run / "scores" / name / "test.npy", det.score(**inputs[name]))
    np.savez(root / "test_images.npz", images=x_test)
    pd.DataFrame([{"seed": 0, "detector": d, "ood": "noise", "group": "far", "auroc": 0.5} for d in dets]).to_csv(
        run.parent / "metrics.csv", index=False)
    return {"root": root, "run": run, "images": x_test, "logits": test["logits"], "npz": root / "test_images.npz"}


def _score(capsys, fake_run, *args):
    rc = main(["score", "--run", str(fake_run["run"]), *args])
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


@pytest.mark.parametrize("detector", ["msp", "mahalanobis", "grood"])
def test_score_npz_equals_the_stored_scores(capsys, fake_run, tmp_path, detector):
    out = tmp_path / "scores.csv"
    rc, _, err = _score(capsys, fake_run, "--detector", detector, str(fake_run["npz"]), "--out", str(out))
    assert rc == 0, err
    table = pd.read_csv(out)
    stored = np.load(fake_run["run"] / "scores" / detector / "test.npy")
    np.testing.assert_array_equal(table["score"].to_numpy(), stored)
    t = threshold_at_tpr(stored, 0.95)
    assert (table["threshold"] == t).all()
    assert ((table["decision"] == "in") == (stored >= t)).all() and (table["decision"] == "in").mean() >= 0.95
    assert table["input"].tolist() == [f"{fake_run['npz']}[{i}]" for i in range(50)]
    np.testing.assert_array_equal(table["predicted_class"], np.array(CLASSES)[fake_run["logits"].argmax(1)])
    assert "50 image(s) scored" in err and "0 input(s) skipped" in err


def _write_png(path, img):
    from PIL import Image

    Image.fromarray(img).save(path)


def test_folder_with_bad_files_is_scored_and_the_bad_ones_named(capsys, fake_run, tmp_path):
    folder = tmp_path / "imgs"
    (folder / "sub").mkdir(parents=True)
    images = fake_run["images"]
    for i in range(3):
        _write_png(folder / f"g{i}.png", images[i])
    _write_png(folder / "sub" / "rgb.png", np.repeat(images[0][..., None], 3, -1))  # colour, same digit
    _write_png(folder / "sub" / "wide.png", np.zeros((20, 36), np.uint8))  # not square: resized + cropped
    (folder / "broken.png").write_bytes(b"\x89PNG not really")
    (folder / "notes.txt").write_text("no image")
    rc, out, err = _score(capsys, fake_run, "--detector", "msp", str(folder), str(tmp_path / "missing.png"))
    assert rc == 0
    table = pd.read_csv(io.StringIO(out))
    assert sorted(table["input"]) == sorted(str(folder / n) for n in ("g0.png", "g1.png", "g2.png", "sub/rgb.png",
                                                                       "sub/wide.png"))
    for bad in (folder / "broken.png", folder / "notes.txt", tmp_path / "missing.png"):
        assert f"skipped {bad}: " in err, bad
    assert "3 input(s) skipped" in err
    stored = np.load(fake_run["run"] / "scores" / "msp" / "test.npy")
    by = table.set_index("input")["score"]
    # a PNG of a test image scores as the npz row; its RGB copy becomes grey again by luminance
    np.testing.assert_allclose(by[str(folder / "g1.png")], stored[1], rtol=1e-6)
    np.testing.assert_allclose(by[str(folder / "sub/rgb.png")], by[str(folder / "g0.png")], rtol=1e-5)


def test_no_readable_input_is_an_error(capsys, fake_run, tmp_path):
    (tmp_path / "bad.jpg").write_bytes(b"nope")
    rc, out, err = _score(capsys, fake_run, "--detector", "msp", str(tmp_path / "bad.jpg"))
    assert rc == 1 and out == ""
    assert "no readable image" in err and "bad.jpg" in err


@pytest.mark.parametrize("args, match", [
    (["--detector", "nope"], "no detector 'nope'; it holds ['grood', 'mahalanobis', 'msp']"),
    (["--detector", "msp", "--tpr", "1.5"], "--tpr must lie in (0, 1]"),
    (["--detector", "msp", "--batch-size", "0"], "--batch-size must be ≥ 1"),
])
def test_bad_options_are_named(capsys, fake_run, args, match):
    rc, _, err = _score(capsys, fake_run, *args, str(fake_run["npz"]))
    assert rc == 1 and match in err


def test_bad_run_directories_are_named(capsys, fake_run, tmp_path):
    assert main(["score", "--run", str(tmp_path / "none"), "--detector", "msp", "x.png"]) == 1
    assert "does not exist" in capsys.readouterr().err
    assert main(["score", "--run", str(fake_run["run"].parent), "--detector", "msp", "x.png"]) == 1
    assert "pass one, e.g." in capsys.readouterr().err  # a benchmark directory: the seeds are listed


class _Trap:
    """Unpickling this creates ``marker``: proof that the command ran code from the file."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_a_pickled_detector_is_refused_not_run(capsys, fake_run, tmp_path):
    """A detector stored as a pickle (grood's format before the store, or a crafted file) is listed
    by `info` and refused by `score` with the fix; its code never runs."""
    import shutil

    run = tmp_path / "bench" / "seed0"
    shutil.copytree(fake_run["run"], run)
    (run / "detectors" / "msp.npz").unlink()
    marker = tmp_path / "pwned"
    (run / "detectors" / "msp.pkl").write_bytes(pickle.dumps({"detector": _Trap(marker), "method": "msp"}))
    assert main(["score", "--run", str(run), "--detector", "msp", str(fake_run["npz"])]) == 1
    err = capsys.readouterr().err
    assert "msp.pkl is a pickle" in err and "re-fit" in err
    assert main(["info", "--run", str(run)]) == 0
    assert "legacy pickle, not opened" in capsys.readouterr().out
    assert not marker.exists()


def test_a_crafted_detector_file_is_refused_not_run(capsys, fake_run, tmp_path):
    import shutil

    run = tmp_path / "bench" / "seed0"
    shutil.copytree(fake_run["run"], run)
    marker = tmp_path / "pwned"
    (run / "detectors" / "grood.npz").write_bytes(pickle.dumps(_Trap(marker)))
    assert main(["score", "--run", str(run), "--detector", "grood", str(fake_run["npz"])]) == 1
    assert "grood.npz: refused: not an .npz archive" in capsys.readouterr().err
    assert main(["info", "--run", str(run)]) == 0
    assert "REFUSED" in capsys.readouterr().out
    assert not marker.exists()


def test_info_lists_what_the_run_holds(capsys, fake_run):
    assert main(["info", "--run", str(fake_run["run"])]) == 0
    out = capsys.readouterr().out
    assert "benchmark bench, seed 0" in out and "cnn_bn_gap, 3 classes [3, 5, 7]" in out
    stored = np.load(fake_run["run"] / "scores" / "grood" / "test.npy")
    assert f"{threshold_at_tpr(stored, 0.95):.6g}" in out
    for name in ("msp", "mahalanobis", "grood", "prototypes   mixup", "test accuracy 40.00%", "format v1"):
        assert name in out, name
    assert json.dumps({"rcond": 1e-10}) in out


@pytest.mark.parametrize("argv, words", [
    ([], ["score", "info", "figures", "weights", "--verbose"]),
    (["score"], ["INPUT", "--run", "--detector", "--out", "--tpr", "--batch-size", "--device", "--threads",
                 "safe to open", "predicted_class", "decision", "threshold", ".npz", "folder", "skipped"]),
    (["info"], ["--run", "--tpr", "thresholds", "provenance"]),
    (["figures"], ["BENCH_DIR", "--out", "--seed", "--ood", "--detector", "--data-dir"]),
])
def test_help_is_complete(capsys, argv, words):
    with pytest.raises(SystemExit) as info:
        main([*argv, "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    for w in words:
        assert w in out, (argv, w)


def test_readme_commands_parse():
    """The README's and docs/ pages' `grood` commands use options the command has (their snakemake
    commands are run by tests/workflow/test_readme.py; these need a finished run, so they are parsed)."""
    import re
    import shlex

    from conftest import REPO
    from grood.run.cli import build_parser

    pages = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
    commands = [shlex.split(line, comments=True) for page in pages
                for block in re.findall(r"^```bash\n(.*?)^```", page.read_text(), re.M | re.S)
                for line in block.splitlines() if line.startswith("grood ")]
    assert {c[1] for c in commands} == {"score", "info", "figures", "weights"}, commands
    for words in commands:
        args = build_parser().parse_args(words[1:])
        assert callable(args.func), words


def test_missing_arguments_are_usage_errors(capsys):
    with pytest.raises(SystemExit) as info:
        main(["score", "--run", "x"])
    assert info.value.code == 2
    assert "--detector" in capsys.readouterr().err
