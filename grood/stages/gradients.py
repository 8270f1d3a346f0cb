"""Stage `gradients`: GROOD's closed-form gradients of one split, to Zarr."""

from __future__ import annotations

import logging

import numpy as np

from grood.storage import (
    ZarrWriter,
    load_npz,
    provenance,
    read_zarr,
    sha256_file,
)

log = logging.getLogger("grood")


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
