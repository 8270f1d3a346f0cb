"""The data card: what every dataset of a run is, where it came from, and what it looks like.

Built from the prepared ``resources/data/<name>.npz`` files (their ``__meta__`` and a few test
images; training arrays are never loaded), so it is cheap and always matches what was used:

* ``datacard.csv``: one row per dataset -- name, source, licence, train/test counts, image shape,
  classes, role per benchmark (``ID``, ``near``, ``far``, ``ood_val``, ``auxiliary outliers
  (training only)``: GReg's), upstream files;
* ``datacard.md``: the same table plus each dataset's description, parameters and notes;
* ``datacard.png``: a grid of seeded sample test images, one row per dataset.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .outliers import AUX_ROLE  # the role of a dataset a GReg / GReg+ benchmark trains on

N_SAMPLES = 8  # images per dataset in the grid
#: the roles of a tuned benchmark's validation data (hyper-parameters are chosen on them, never tested)
ID_VAL_ROLE = "ID validation (tuning)"
OOD_VAL_ROLE = "OOD validation (tuning)"


def roles(benchmarks: dict, ood_val: str | None = None) -> dict[str, dict[str, str]]:
    """dataset → {benchmark: role}; role ID / near / far, ood_val for the prototype set, AUX_ROLE
    for the auxiliary outliers a benchmark trains on (its ``aux``: one name or a list), and a tuned
    benchmark's validation data (``id_val``: the held-out dataset; ``ood_val``: one name or a list)."""
    out: dict[str, dict[str, str]] = {}
    for bench, spec in benchmarks.items():
        out.setdefault(spec["id"], {})[bench] = "ID"
        for ood, group in spec["ood"].items():
            out.setdefault(ood, {})[bench] = group
    if ood_val:
        for bench in benchmarks:
            out.setdefault(ood_val, {}).setdefault(bench, "ood_val")
    for bench, spec in benchmarks.items():
        aux = spec.get("aux") or []
        for name in [aux] if isinstance(aux, str) else aux:
            out.setdefault(name, {})[bench] = AUX_ROLE
        if spec.get("id_val"):
            out.setdefault(spec["id_val"], {})[bench] = ID_VAL_ROLE
        val = spec.get("ood_val") or []
        for name in [val] if isinstance(val, str) else val:
            out.setdefault(name, {})[bench] = OOD_VAL_ROLE
    return out


def read_card_inputs(npz: str | Path, n_samples: int = N_SAMPLES,
                     seed: int = 0) -> tuple[dict, np.ndarray]:
    """(meta, up to ``n_samples`` seeded test images) of one prepared dataset file; a file list's
    samples are decoded from their files (a list of arrays: their shapes may differ)."""
    with np.load(npz, allow_pickle=False) as z:
        meta = json.loads(str(z["__meta__"])) if "__meta__" in z.files else {}
        files = "files_test" in z.files
        x = {k: z[k] for k in ("files_test", "bytes_test")} if files else z["x_test"]
    rng = np.random.default_rng(seed)
    n = len(x["files_test"]) if files else len(x)
    pick = np.sort(rng.choice(n, min(n_samples, n), replace=False))
    if files:
        from .filelist import file_list_split

        images, _ = file_list_split(x, meta, "test", 0, str(npz))
        return meta, [images.read(int(i)) for i in pick]
    return meta, x[pick]


def _upstream(meta: dict) -> str:
    """Short provenance: packages with versions; user files grouped by folder."""
    parts, folders = [], {}
    for u in meta.get("upstream", []):
        if u.get("package"):
            parts.append(f"{u.get('kind', '')} {u['package']}=={u.get('version', '?')}".strip())
        elif u.get("file") or u.get("path"):
            f = Path(u.get("file") or u.get("path"))
            folders.setdefault(str(f.parent) if u.get("file") else str(f), []).append(u)
    for folder, files in folders.items():
        official = {u.get("official") for u in files} - {None}
        tag = (" (official files)" if official == {True} else
               " (not the official files)" if official else "")
        names = [Path(u["file"]).name for u in files if u.get("file")]
        parts.append(f"{folder}/{{{','.join(names)}}}{tag}" if len(names) > 1 else
                     f"{folder}/{names[0]}{tag}" if names else f"{folder}/")
    return "; ".join(dict.fromkeys(parts)) or "synthetic"


MAX_NAMES = 12  # class names listed in the table; more are counted


def _class_names(names: list[str], labels: set[str]) -> str:
    shown = [names[int(k)] if int(k) < len(names) else k for k in sorted(labels, key=int)]
    if len(shown) > MAX_NAMES:
        return ", ".join(shown[:MAX_NAMES]) + f", ... ({len(shown)} in all)"
    return ", ".join(shown)


def card_row(name: str, meta: dict, role: dict[str, str], benchmarks: list[str]) -> dict:
    counts = meta.get("counts", {})
    shape = meta.get("shapes", {}).get("x_test") or meta.get("shapes", {}).get("x_train") or []
    h, w = (shape[1], shape[2]) if len(shape) >= 3 else (None, None)
    channels = shape[3] if len(shape) == 4 else 1
    names = meta.get("class_names") or []
    labels = {k for split in meta.get("label_counts", {}).values() for k in split if k != "-1"}
    row = {
        "name": name,
        "source": meta.get("source", "?"),
        "licence": meta.get("licence", "?"),
        "n_train": int(counts.get("train", 0)),
        "n_test": int(counts.get("test", 0)),
        "shape": f"{h}x{w}x{channels}" if h else "files" if meta.get("store") == "files" else "?",
        "classes": len(labels),
        "class_names": _class_names(names, labels),
    }
    row.update({f"role_{b}": role.get(b, "") for b in benchmarks})
    row["upstream"] = _upstream(meta)
    return row


def sample_grid(samples: dict[str, np.ndarray], out_png: str | Path, captions: dict[str, str],
                n_cols: int = N_SAMPLES) -> None:
    """One row of sample images per dataset (grey shown grey), the dataset name on the left."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = list(samples)
    fig, axes = plt.subplots(len(rows), n_cols, figsize=(1.1 * n_cols + 2.2, 1.15 * len(rows)),
                             squeeze=False, gridspec_kw={"wspace": 0.05, "hspace": 0.15})
    for r, name in enumerate(rows):
        for c in range(n_cols):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            for side in ax.spines.values():
                side.set_visible(False)
            if c < len(samples[name]):
                img = samples[name][c]
                ax.imshow(img, cmap="gray" if img.ndim == 2 else None, vmin=0, vmax=255,
                          interpolation="nearest")
        axes[r, 0].set_ylabel(f"{name}\n{captions.get(name, '')}", rotation=0, ha="right",
                              va="center", fontsize=8)
    fig.suptitle("grood data card: sample test images", fontsize=10)
    fig.savefig(out_png, dpi=100, bbox_inches="tight")
    plt.close(fig)


def _markdown(table, metas: dict[str, dict], png_name: str) -> str:
    cols = [c for c in table.columns if c not in ("class_names", "upstream")]
    lines = ["# Data card", "",
             "Every dataset this run prepared: where it comes from, its licence, its size and its "
             "role in each benchmark (ID: in-distribution; near / far: OOD groups; ood_val: "
             "images used to form the OOD prototype, flagged in results; auxiliary outliers "
             "(training only): images a GReg / GReg+ backbone trains on as "
             "outliers, never tested on). Built from the prepared files' metadata.", "",
             table[cols].to_markdown(index=False), "", f"![sample test images]({png_name})", ""]
    for name, meta in metas.items():
        params = {k: v for k, v in meta.get("params", {}).items()
                  if v is not None and k != "seed" or k == "seed" and v}
        notes = meta.get("notes")
        lines += [f"## {name}", "",
                  f"- **source**: `{meta.get('source', '?')}` -- {meta.get('description', '')}",
                  *([f"- **role**: {meta['role']}"] if meta.get("role") else []),
                  f"- **licence**: {meta.get('licence', '?')}",
                  f"- **params**: `{json.dumps(params, sort_keys=True)}`",
                  f"- **counts**: {meta.get('counts', {})}"
                  + (f" (upstream {meta['upstream_counts']})"
                     if meta.get("upstream_counts") and meta.get("upstream_counts")
                     != meta.get("counts") else ""),
                  f"- **upstream**: {_upstream(meta)}"]
        if notes:
            lines.append(f"- **notes**: {notes if isinstance(notes, str) else json.dumps(notes)}")
        if meta.get("upstream_counts") != meta.get("counts"):
            lines.append(f"- **subset**: {meta.get('subset_method', '')}")
        lines.append("")
    return "\n".join(lines)


def write_datacard(datasets: dict[str, str | Path], benchmarks: dict, out_md, out_csv, out_png,
                   ood_val: str | None = None, seed: int = 0) -> "pandas.DataFrame":
    """Write the card's CSV, Markdown and PNG for ``datasets`` (name → prepared npz)."""
    import pandas as pd

    from grood.storage import atomic_path

    role = roles(benchmarks, ood_val)
    metas, samples, rows = {}, {}, []
    for name, npz in datasets.items():
        meta, x = read_card_inputs(npz, seed=seed)
        metas[name], samples[name] = meta, x
        rows.append(card_row(name, meta, role.get(name, {}), list(benchmarks)))
    table = pd.DataFrame(rows)
    with atomic_path(out_csv) as tmp:
        table.to_csv(tmp, index=False)
    with atomic_path(out_md) as tmp:
        tmp.write_text(_markdown(table, metas, Path(out_png).name))
    captions = {r["name"]: f"{r['source']}, {r['shape']}\n"
                           + ", ".join(f"{b}: {v}" for b, v in role.get(r["name"], {}).items())
                for r in rows}
    with atomic_path(out_png) as tmp:
        sample_grid(samples, tmp, captions)
    return table
