"""What a finished run holds, as text (``grood info``): read from its files, nothing opened unsafely.

Detector files are read through their JSON header only (:func:`grood.detectors.store.read_header`);
legacy pickles are listed, never opened.
"""

from __future__ import annotations

import json

import pandas as pd

from grood import layout
from grood.run.finished import BenchRun, SeedRun


def describe(run: SeedRun, level: float = 0.95) -> str:
    import torch
    import zarr

    from grood.evaluation.metrics import threshold_at_tpr
    from grood.storage import load_npz

    ckpt = torch.load(run.model, map_location="cpu", weights_only=True)
    spec, cfg = ckpt["spec"], ckpt.get("train_config", {})
    summary = run.train_summary()
    classes = ckpt["classes"]
    lines = [f"run          {run.root} (benchmark {run.bench}, seed {run.seed})",
             f"network      {ckpt['arch']}, {len(classes)} classes {_short(classes)}, input "
             f"{spec['channels']}×{spec['size']}×{spec['size']}"]
    if summary:
        hist = summary.get("history", [])
        lines.append(f"training     {len(hist)} epoch(s), batch {cfg.get('batch_size', '?')}, lr {cfg.get('lr', '?')} "
                     f"({cfg.get('scheduler', '?')}), {summary.get('train_seconds', '?')} s on {summary.get('device', '?')}; "
                     f"test accuracy {100 * summary['test_accuracy']:.2f}% on {summary.get('n_test', '?')} images")
        lines.append(f"provenance   grood {summary.get('grood_version', '?')}, created {summary.get('created', '?')}, "
                     f"config hash {summary.get('config_hash', '?')}, torch {summary.get('torch', '?')}, "
                     f"training data sha256 {str(summary.get('data_sha256', '?'))[:16]}…")
    long = _seed_metrics(run)
    groups = dict(zip(long["ood"], long["group"])) if long is not None else {}
    lines.append("datasets     (part: rows, file)")
    for store in sorted(run.glob("features"), key=lambda p: ({"train": 0, "test": 1}.get(p.stem, 2), p.stem)):
        g = zarr.open_group(str(store), mode="r")
        attrs = dict(g.attrs)
        role = "ID" if store.stem in ("train", "test") else f"OOD, {groups.get(store.stem, '?')}"
        lines.append(f"  {store.stem:<16} {role:<10} {g['features'].shape[0]:>7} rows  "
                     f"{attrs.get('data', '?')} [{attrs.get('split', '?')}]")
    for proto in run.glob("prototypes"):
        arrays, meta = load_npz(proto, ["P", "Q"])  # Q: a run made before the early prototypes had their store
        extra = ", ".join(f"{k} {meta[k]}" for k in ("layer", "lam", "n_mix", "noise_n", "noise_keep", "n")
                          if k in meta)
        q_shape = tuple(arrays["Q"].shape) if "Q" in arrays else _early_shape(run, meta)
        lines.append(f"prototypes   {proto.stem}: P {tuple(arrays['P'].shape)}"
                     + (f", Q {q_shape}" if q_shape else "")
                     + (f"; {extra}" if extra else "")
                     + ("; USES OOD DATA" if meta.get("uses_ood_data") else ""))
    lines.append(f"detectors    (threshold: score that keeps {100 * level:g}% of the ID test set; AUROC % of "
                 f"this seed, near / far mean)")
    for name, path in run.detectors().items():
        method, params, fmt = _detector_header(path)
        try:
            threshold = f"{threshold_at_tpr(run.id_test_scores(name), level):.6g}"
        except FileNotFoundError:
            threshold = "no test scores"
        aurocs = ""
        if long is not None and name in set(long["detector"]):
            sub = long[long["detector"] == name].groupby("group")["auroc"].mean()
            aurocs = " / ".join(f"{100 * sub[g]:.2f}" if g in sub else "–" for g in ("near", "far"))
        lines.append(f"  {name:<18} {method:<18} threshold {threshold:<12} AUROC {aurocs or '–':<14} {fmt}"
                     + (f"  {params}" if params else ""))
    return "\n".join(lines)


def _short(values: list) -> str:
    return str(values) if len(values) <= 12 else f"[{values[0]}, {values[1]}, …, {values[-1]}]"


def _seed_metrics(run: SeedRun) -> pd.DataFrame | None:
    try:
        bench = BenchRun.open(run.root.parent)
    except FileNotFoundError:
        return None
    long = pd.read_csv(bench.metrics_csv)
    return long[long["seed"] == run.seed] if run.seed is not None else None


def _detector_header(path) -> tuple[str, str, str]:
    """(method, params as JSON, format) of a stored detector, from its header alone."""
    from grood.detectors.store import DetectorFileError, read_header

    if path.suffix == ".pkl":
        return "?", "", "legacy pickle, not opened (re-fit: snakemake re-runs fit_detector)"
    try:
        meta = read_header(path)
    except DetectorFileError as e:
        return "?", "", f"REFUSED: {e}"
    prov = meta.get("provenance", {})
    return (meta["method"], json.dumps(meta["params"], sort_keys=True),
            f"format v{meta['format_version']}, fitted {prov.get('created', '?')}")


__all__ = ["describe"]


def _early_shape(run, meta: dict) -> tuple | None:
    """The shape of the early prototypes ``Q`` a mix-up prototype file was made from, if recorded and present."""
    from pathlib import Path

    from grood.method.early_store import open_early

    if not meta.get("early_prototypes"):
        return None
    path = run.root / layout.below(layout.SEED_DIR, "early_prototypes", part="train")
    try:
        return tuple(open_early(path if path.exists() else Path(meta["early_prototypes"]))[0].shape)
    except (FileNotFoundError, ValueError):
        return None
