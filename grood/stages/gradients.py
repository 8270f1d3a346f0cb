"""Stage `gradients`: GROOD's closed-form gradients of one split, to Zarr, streamed batch by batch
(:mod:`grood.method.gradient_store`), so the job's memory does not grow with the split."""

from __future__ import annotations

from grood.method.gradient_store import write_gradient_store
from grood.storage import load_npz, provenance, sha256_file


def gradients_stage(features_zarr, prototypes_npz, wrt: str, temperature: float, out_zarr,
                    batch_size: int = 8192) -> None:
    """GROOD gradients (closed form) of one dataset split, to Zarr with chunk rows = write batch."""
    protos, pmeta = load_npz(prototypes_npz, ["P", "p_ood"])  # not the mix-up's early prototypes Q
    if "P" not in protos or "p_ood" not in protos:
        raise ValueError(f"{prototypes_npz} holds no prototypes P / p_ood: not a prototypes file")
    attrs = provenance(prototypes=str(prototypes_npz), prototypes_sha256=sha256_file(prototypes_npz),
                       wrt=wrt, temperature=temperature, uses_ood_data=bool(pmeta.get("uses_ood_data")))
    write_gradient_store(features_zarr, protos["P"], protos["p_ood"], out_zarr, wrt, temperature,
                         batch_size, attrs)
