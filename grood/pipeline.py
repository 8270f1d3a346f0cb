"""The pipeline's stages as plain functions over files: what each Snakemake rule does, callable from Python.

Each stage reads its inputs, calls the science in the other modules and writes its outputs
atomically with provenance.  Workflow scripts only unpack ``snakemake`` objects and call these.
"""

from __future__ import annotations

import logging
import pickle
import sys
import time
from pathlib import Path

import numpy as np

from grood.storage import (
    ZarrWriter,
    atomic_path,
    config_hash,
    load_npz,
    provenance,
    read_zarr,
    save_json,
    save_npz,
    sha256_file,
)

log = logging.getLogger("grood")


def setup_logging(log_path: str | None = None) -> None:
    """Log to ``log_path`` (a job's log file) and stderr; capture warnings too."""
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_path:
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_path, mode="w"))
    logging.basicConfig(level=logging.INFO, handlers=handlers, force=True,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.captureWarnings(True)
    logging.getLogger("faiss.loader").setLevel(logging.WARNING)  # its INFO lines list failed imports


# --------------------------------------------------------------------------------------------- data

def prepare_dataset(name: str, spec: dict, raw_dir: str | Path, out_npz: str | Path) -> None:
    """Fetch (cached, checksummed) and build dataset ``name`` from its config ``spec``."""
    from grood.data import DataError, build_dataset

    params = {k: v for k, v in spec.items() if k not in ("source",)}
    try:
        arrays = build_dataset(spec["source"], params, Path(raw_dir))
    except DataError as e:
        raise DataError(f"dataset {name!r} (config datasets.{name}): {e}") from e
    meta = dict(arrays.pop("meta", {}))
    meta.update(provenance(dataset=name, spec=spec))
    for split in ("train", "test"):
        if f"x_{split}" in arrays:
            meta[f"n_{split}"] = int(len(arrays[f"x_{split}"]))
    if "x_test" not in arrays or len(arrays["x_test"]) == 0:
        raise ValueError(f"dataset {name!r} (source {spec['source']!r}) produced no test images")
    save_npz(out_npz, arrays, meta)
    log.info("dataset %s: %s", name, {k: v.shape for k, v in arrays.items()})


def load_split(data_npz: str | Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Images and labels of ``split`` (train/test); a missing split is an error naming the file."""
    arrays, _ = load_npz(data_npz)
    if f"x_{split}" not in arrays:
        raise KeyError(f"{data_npz} has no {split} split (it holds {sorted(arrays)}); "
                       f"this dataset cannot be used as an ID set")
    x = arrays[f"x_{split}"]
    y = arrays.get(f"y_{split}", np.full(len(x), -1, dtype=np.int64))
    return x, y


# -------------------------------------------------------------------------------------------- train

def train_stage(data_npz, model_out, summary_out, train_cfg: dict, seed: int, device: str = "auto",
                threads: int | None = None) -> dict:
    """Train on the ID set's train split, report test accuracy, save the checkpoint."""
    import torch

    from grood.device import select_device, set_threads
    from grood.features import encode_known_labels, forward_batches
    from grood.training import TrainConfig, save_checkpoint, train

    set_threads(threads)
    dev = select_device(device)
    cfg = TrainConfig.from_dict({**train_cfg, "seed": seed})
    x_train, y_train = load_split(data_npz, "train")
    x_test, y_test = load_split(data_npz, "test")
    t0 = time.perf_counter()
    result = train(x_train, y_train, cfg, dev)
    seconds = time.perf_counter() - t0
    out = forward_batches(result.model, x_test, result.spec, dev, name="test accuracy")
    y_enc = encode_known_labels(y_test, result.classes)
    known = y_enc >= 0
    acc = float((out["logits"].argmax(1)[known] == y_enc[known]).mean())
    summary = {
        "test_accuracy": acc,
        "n_train": int(len(x_train)),
        "n_test": int(known.sum()),
        "train_seconds": round(seconds, 2),
        "device": str(dev),
        "torch": str(torch.__version__),
        "threads": torch.get_num_threads(),
        "history": result.history,
        **provenance(config_hash=config_hash(cfg.__dict__), data_sha256=sha256_file(data_npz)),
    }
    log.info("test accuracy %.4f after %.1f s of training", acc, seconds)
    save_checkpoint(model_out, result, cfg, {"provenance": summary})
    save_json(summary_out, summary)
    return summary


# ----------------------------------------------------------------------------------------- features

def features_stage(model_pt, data_npz, split: str, is_id: bool, out_zarr, batch_size: int = 1024,
                   precision: str = "fp32", device: str = "auto", threads: int | None = None,
                   rows: tuple[int, int] | None = None, shard: tuple[int, int] | None = None) -> None:
    """Penultimate features, logits and (for ID sets) class labels of one dataset split, to Zarr.

    ``rows=(start, stop)`` writes only those rows; ``shard=(i, N)`` writes shard ``i`` of ``N``
    (rows from the split's length, aligned to ``batch_size`` — :func:`grood.shards.row_ranges` —
    so the shard runs exactly the unsharded run's batches and :func:`grood.shards.merge_zarr` of
    all N shards is byte-identical to the unsharded store).  Either is recorded in the attrs.
    """
    from grood.device import select_device, set_threads
    from grood.features import encode_known_labels, forward_batches
    from grood.preprocess import InputSpec
    from grood.training import load_checkpoint

    set_threads(threads)
    dev = select_device(device)
    model, meta = load_checkpoint(model_pt, dev)
    spec = InputSpec.from_dict(meta["spec"])
    images, labels = load_split(data_npz, split)
    labels = encode_known_labels(labels, meta["classes"]) if is_id else np.full(len(images), -1, np.int64)
    attrs = provenance(model_sha256=sha256_file(model_pt), data=str(data_npz), split=split,
                       data_sha256=sha256_file(data_npz), precision=precision)
    n_total = len(images)
    start, stop = _select_rows(n_total, rows, shard, batch_size, attrs)
    images, labels = images[start:stop], labels[start:stop]
    with ZarrWriter(out_zarr, len(images), batch_size, attrs) as w:
        def sink(begin, out):
            w.write(begin, **out, labels=labels[begin : begin + len(out["logits"])])

        forward_batches(model, images, spec, dev, batch_size, precision, name=Path(str(out_zarr)).stem,
                        sink=sink)
    log.info("features of %d images (rows [%d, %d) of %d) → %s", len(images), start, stop, n_total, out_zarr)


def _select_rows(n: int, rows, shard, align: int, attrs: dict) -> tuple[int, int]:
    """The row range a stage works on (all rows, ``rows`` or ``shard=(i, N)``); records it in ``attrs``."""
    from grood.shards import shard_attrs, shard_rows

    if rows is not None and shard is not None:
        raise ValueError("pass rows=(start, stop) or shard=(i, N), not both")
    if shard is not None:
        i, count = shard
        rows = shard_rows(n, i, count, align)
        attrs.update(shard_attrs(i, count, rows, n))
    elif rows is not None:
        rows = (int(rows[0]), int(rows[1]))
        if not 0 <= rows[0] <= rows[1] <= n:
            raise ValueError(f"rows {rows} are outside [0, {n}]")
        attrs.update(rows=list(rows), n_rows_total=n)
    else:
        rows = (0, n)
    return rows


# --------------------------------------------------------------------------------------- prototypes

def prototypes_stage(model_pt, data_npz, train_features_zarr, source: str, params: dict, out_npz,
                     seed: int = 0, ood_val_npz=None, device: str = "auto", threads: int | None = None) -> dict:
    """Class prototypes ``P``, early prototypes ``Q`` and the OOD prototype ``p_ood`` from ``source``."""
    from grood import prototypes as pr
    from grood.device import select_device, set_threads
    from grood.features import forward_batches
    from grood.preprocess import InputSpec
    from grood.training import load_checkpoint

    if source not in pr.SOURCES:
        raise ValueError(f"unknown OOD-prototype source {source!r}; choose one of {pr.SOURCES}")
    set_threads(threads)
    dev = select_device(device)
    model, meta = load_checkpoint(model_pt, dev)
    spec = InputSpec.from_dict(meta["spec"])
    num_classes = meta["num_classes"]
    feats, _ = read_zarr(train_features_zarr, ["features", "labels"])
    P = pr.class_means(feats["features"], feats["labels"], num_classes)
    arrays = {"P": P.astype(np.float32)}
    info: dict = {"source": source, "uses_ood_data": source == "ood_val"}
    if source == "mixup":
        layer = params["layer"]
        x_train, _ = load_split(data_npz, "train")
        Q = pr.early_prototypes(model, x_train, feats["labels"], num_classes, layer, spec, dev)
        rng = np.random.default_rng(seed)
        n_mix = min(int(params["n_mix"]), len(x_train))
        pick = np.sort(rng.choice(len(x_train), n_mix, replace=False))
        h_mix = pr.mixup_features(model, x_train[pick], Q, layer, float(params["lam"]), spec, dev)
        p_ood = h_mix.mean(0)
        arrays["Q"] = Q
        info.update(layer=layer, lam=float(params["lam"]), n_mix=n_mix)
    elif source == "noise":
        noise = pr.noise_candidates(int(params["noise_n"]), spec, seed)
        out = forward_batches(model, noise, spec, dev, name="noise prototype")
        p_ood = pr.most_ood_like_mean(out["features"], out["logits"], float(params["noise_keep"]))
        info.update(noise_n=int(params["noise_n"]), noise_keep=float(params["noise_keep"]))
    elif source == "proto_mean":
        p_ood = P.mean(0)
    else:  # ood_val: real OOD validation images — uses OOD data, flagged in every result
        if ood_val_npz is None:
            raise ValueError("OOD-prototype source 'ood_val' needs prototypes.ood_val_dataset in the config")
        x_val, _ = load_split(ood_val_npz, "test")
        n = min(int(params["n_mix"]), len(x_val))
        out = forward_batches(model, x_val[:n], spec, dev, name="ood_val prototype")
        p_ood = out["features"].mean(0)
        info.update(ood_val_dataset=str(ood_val_npz), n=n)
    arrays["p_ood"] = np.asarray(p_ood, dtype=np.float32)
    if not np.isfinite(arrays["p_ood"]).all():
        raise FloatingPointError(f"the {source} OOD prototype is not finite")
    info.update(provenance(model_sha256=sha256_file(model_pt)))
    save_npz(out_npz, arrays, info)
    log.info("prototypes (%s): P %s, ‖p_ood − mean P‖ = %.3f", source, P.shape,
             float(np.linalg.norm(arrays["p_ood"] - P.mean(0))))
    return info


# ---------------------------------------------------------------------------------------- gradients

def gradients_stage(features_zarr, prototypes_npz, wrt: str, temperature: float, out_zarr,
                    batch_size: int = 8192) -> None:
    """GROOD gradients (closed form) of one dataset split, to Zarr with chunk rows = write batch."""
    from grood.gradients import grood_gradients, ncp_softmax

    protos, pmeta = load_npz(prototypes_npz)
    store, _ = read_zarr(features_zarr, ["features", "logits"])
    n = len(store["features"])
    attrs = provenance(prototypes=str(prototypes_npz), prototypes_sha256=sha256_file(prototypes_npz),
                       wrt=wrt, temperature=temperature, uses_ood_data=bool(pmeta.get("uses_ood_data")))
    with ZarrWriter(out_zarr, n, batch_size, attrs) as w:
        for start in range(0, n, batch_size):
            h = store["features"][start : start + batch_size]
            z = store["logits"][start : start + batch_size]
            g = grood_gradients(h, z, protos["P"], protos["p_ood"], wrt, temperature)
            dist, pi = ncp_softmax(h, protos["P"], protos["p_ood"], temperature)
            w.write(start, gradients=g, proto_dist=dist[:, -1].astype(np.float32),
                    pi_ood=pi[:, -1].astype(np.float32))
    log.info("gradients (%s, T=%g) of %d samples → %s", wrt, temperature, n, out_zarr)


# ---------------------------------------------------------------------------------------- detectors

def load_arrays(stores: list[str | Path], names: tuple[str, ...],
                rows: tuple[int, int] | None = None) -> dict[str, np.ndarray]:
    """Named arrays gathered from several Zarr stores (features, gradients); each name once.
    ``rows=(start, stop)`` reads only those rows."""
    sel = slice(None) if rows is None else slice(int(rows[0]), int(rows[1]))
    found: dict[str, np.ndarray] = {}
    for store in stores:
        import zarr

        group = zarr.open_group(str(store), mode="r")
        have = {k for k, _ in group.arrays()}
        for name in names:
            if name in have and name not in found:
                found[name] = group[name][sel]
    missing = [n for n in names if n not in found]
    if missing:
        raise KeyError(f"array(s) {missing} are in none of {list(map(str, stores))}")
    return found


def stored_rows(stores: list[str | Path], names: tuple[str, ...]) -> int:
    """Row count of the first of ``names`` found in ``stores`` (without reading the data)."""
    import zarr

    for store in stores:
        group = zarr.open_group(str(store), mode="r")
        have = {k: a for k, a in group.arrays()}
        for name in names:
            if name in have:
                return int(have[name].shape[0])
    raise KeyError(f"array(s) {list(names)} are in none of {list(map(str, stores))}")


def fit_detector_stage(method: str, params: dict, train_stores: list, out_pkl) -> None:
    from grood.detectors import make_detector

    det = make_detector(method, params)
    arrays = load_arrays(train_stores, det.fit_requires) if det.fit_requires else {}
    det.fit(**arrays)
    with atomic_path(out_pkl) as tmp:
        with open(tmp, "wb") as f:
            pickle.dump({"detector": det, "method": method, "params": params,
                         "provenance": provenance(stores=list(map(str, train_stores)))}, f)


def load_detector(pkl):
    with open(pkl, "rb") as f:
        return pickle.load(f)["detector"]


def score_stage(detector_pkl, stores: list, out_npy, model_pt=None, data_npz=None, split: str = "test",
                device: str = "auto", threads: int | None = None,
                rows: tuple[int, int] | None = None) -> None:
    """Score one part with a fitted detector; one that ``needs_network`` (ODIN) also gets the model
    (``model_pt``) and the part's images (``split`` of ``data_npz``).  ``rows=(start, stop)``
    scores only those rows."""
    scores, _ = _score(detector_pkl, stores, model_pt, data_npz, split, device, threads,
                       lambda n, det: rows if rows is not None else (0, n))
    with atomic_path(out_npy) as tmp:
        with open(tmp, "wb") as f:
            np.save(f, scores)


def score_shard_stage(detector_pkl, stores: list, out_npz, shard: int, shards: int, align: int = 1,
                      model_pt=None, data_npz=None, split: str = "test", device: str = "auto",
                      threads: int | None = None) -> tuple[int, int]:
    """Scores of shard ``shard`` of ``shards`` of one part, to ``.npz`` (``scores`` + shard meta) for
    :func:`grood.shards.merge_npz_rows`.  Rows are aligned to ``align`` (the feature batch size:
    shards read whole chunks) or, for a detector that runs the network, to its own batch size, so
    the shard runs the very batches of the unsharded run.  Returns the shard's row range."""
    from grood.shards import shard_attrs, shard_rows

    def pick(n, det):
        block = int(getattr(det, "batch_size", align)) if det.needs_network else int(align)
        return shard_rows(n, shard, shards, block)

    scores, (start, stop, n) = _score(detector_pkl, stores, model_pt, data_npz, split, device, threads, pick)
    meta = provenance(detector=str(detector_pkl), stores=list(map(str, stores)),
                      **shard_attrs(shard, shards, (start, stop), n))
    save_npz(out_npz, {"scores": scores}, meta)
    return start, stop


def _score(detector_pkl, stores, model_pt, data_npz, split, device, threads, pick_rows):
    """Scores (float64) of the rows ``pick_rows(n, detector)`` of a part, and ``(start, stop, n)``."""
    from grood.detectors.base import check_finite

    det = load_detector(detector_pkl)
    source = str(stores[0]) if stores else f"{data_npz} ({split})"
    images = None
    if det.needs_network:
        if model_pt is None or data_npz is None:
            raise ValueError(f"{type(det).__name__} needs the network: pass model_pt and data_npz "
                             f"(the score rule adds them for detectors with needs_network)")
        images, _ = load_split(data_npz, split)
        n = len(images)
    else:
        n = stored_rows(stores, det.requires)
    start, stop = (int(r) for r in pick_rows(n, det))
    if not 0 <= start <= stop <= n:
        raise ValueError(f"rows [{start}, {stop}) are outside the {n} rows of {source}")
    if stop == start:  # an empty shard (more shards than row blocks)
        return np.empty(0, dtype=np.float64), (start, stop, n)
    arrays = load_arrays(stores, det.requires, (start, stop)) if det.requires else {}
    if det.needs_network:
        from grood.device import select_device, set_threads
        from grood.preprocess import InputSpec
        from grood.training import load_checkpoint

        set_threads(threads)
        dev = select_device(device)
        model, meta = load_checkpoint(model_pt, dev)
        arrays.update(model=model, images=images[start:stop], spec=InputSpec.from_dict(meta["spec"]),
                      device=dev)
    scores = check_finite(f"{type(det).__name__} scores for {source}", det.score(**arrays))
    return np.asarray(scores, dtype=np.float64), (start, stop, n)


# ----------------------------------------------------------------------------------------- evaluate

def evaluate_stage(bench: str, scores: list[dict], train_summaries: dict[int, str], groups: dict[str, str],
                   flags: dict[str, dict], outputs: dict[str, str]) -> None:
    """Metrics (long CSV, summary CSV/Markdown/LaTeX) and figures for one benchmark.

    ``scores``: one dict per score file with ``seed``, ``detector``, ``part`` (``test`` or an OOD set)
    and ``path``.  ``outputs`` names: metrics_csv, summary_csv, table_md, table_tex, hist, roc.
    """
    import json

    from grood import plots, results

    acc = {int(seed): json.loads(Path(p).read_text())["test_accuracy"] for seed, p in train_summaries.items()}
    by_key: dict[tuple[int, str], dict[str, np.ndarray]] = {}
    for s in scores:
        by_key.setdefault((int(s["seed"]), s["detector"]), {})[s["part"]] = np.load(s["path"])
    sets = [results.ScoreSet(seed, det, parts.pop("test"), {o: parts[o] for o in groups})
            for (seed, det), parts in by_key.items()]
    detectors = list(dict.fromkeys(s.detector for s in sets))
    long = results.metrics_long(sets, groups, acc, flags)
    summ = results.summary(long, order=detectors)
    oods = list(groups)
    first_seed = min(acc)
    with atomic_path(outputs["metrics_csv"]) as tmp:
        long.to_csv(tmp, index=False, float_format="%.6f")
    with atomic_path(outputs["summary_csv"]) as tmp:
        summ.to_csv(tmp, index=False, float_format="%.6f")
    seeds = sorted(acc)
    acc_vals = np.array([acc[s] for s in seeds])
    header = (f"# {bench}: OOD detection results\n\n"
              f"ID test accuracy: {100 * acc_vals.mean():.2f}% "
              f"(± {100 * acc_vals.std(ddof=1) if len(seeds) > 1 else 0:.2f} over seeds {seeds}).\n"
              f"Cells: mean ± std over seeds, in %. near/far: unweighted means over "
              f"{[o for o in oods if groups[o] == 'near']} / {[o for o in oods if groups[o] == 'far']}.\n"
              f"FPR95 here is `fpr95_id` (OOD accepted at 95% ID kept); `fpr95_ood` is in the CSVs.\n")
    notes = [f"- `{d}`: " + ", ".join(k.replace("_", " ") for k, v in f.items() if v)
             for d, f in flags.items() if any(f.values())]
    md = [header]
    tex = []
    for metric, label in (("auroc", "AUROC ↑"), ("fpr95_id", "FPR95 ↓"), ("aupr_in", "AUPR-In ↑"),
                          ("aupr_out", "AUPR-Out ↑")):
        table = results.openood_table(summ, oods, metric)
        md.append(f"\n## {label}\n\n{table.to_markdown()}\n")
        tex.append(f"% {label}\n" + table.to_latex(escape=True) + "\n")
    if notes:
        md.append("\n## Flags\n\n" + "\n".join(notes) + "\n")
    with atomic_path(outputs["table_md"]) as tmp:
        tmp.write_text("".join(md))
    with atomic_path(outputs["table_tex"]) as tmp:
        tmp.write_text("".join(tex))
    first = [s for s in sets if s.seed == first_seed]
    for key, draw in (("hist", plots.score_histograms), ("roc", plots.roc_curves)):
        with atomic_path(outputs[key]) as tmp:
            draw(first, str(tmp), f"{bench}, seed {first_seed}")
    log.info("metrics for %s: %d rows → %s", bench, len(long), outputs["metrics_csv"])
