"""Stage `datacard`: every dataset a run uses, with source, licence, counts, shape, role and samples."""

from __future__ import annotations

from pathlib import Path

from grood.data.card import write_datacard


def datacard_stage(datasets: dict[str, str | Path], benchmarks: dict, out_md, out_csv, out_png,
                   ood_val: str | None = None) -> None:
    """The data card of ``datasets`` (name → prepared npz) in the roles ``benchmarks`` give them."""
    write_datacard(datasets, benchmarks, out_md, out_csv, out_png, ood_val=ood_val)
