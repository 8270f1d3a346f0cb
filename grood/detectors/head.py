"""The classifier head ``z = W h + b`` for the detectors that re-run it on changed features (ReAct,
ASH, SCALE, DICE) or need its geometry (ViM's origin ``u = −W⁺ b``).

The head is not a row array: it comes as ``head_weight`` (C, D) and ``head_bias`` (C,), read only
when a detector is fitted (``fit_requires``); each detector keeps the copy it needs in its fitted
state, so scoring reads row arrays only.  :func:`head_arrays` takes them from a network;
:func:`check_head` refuses a head that does not produce the run's stored logits (a head from another
checkpoint would give silently wrong scores).
"""

from __future__ import annotations

import numpy as np

from grood.detectors.base import check_finite
from grood.method.vocab import HEAD_ARRAYS
from grood.storage.chunks import default_block_rows

#: rows of the training set on which :func:`check_head` compares ``W h + b`` with the stored logits
CHECK_ROWS = 1024
#: largest tolerated ``|W h + b − z|``, relative to ``1 + max|z|`` (fp32 forward vs float64 here)
CHECK_RTOL = 1e-4


def head_arrays(model) -> dict[str, np.ndarray]:
    """``{"head_weight": W, "head_bias": b}`` (float32) of a network whose head is ``model.fc``
    (every :class:`grood.net.models.StagedNet`)."""
    fc = model.fc
    weight = fc.weight.detach().cpu().float().numpy()
    bias = (fc.bias.detach().cpu().float().numpy() if fc.bias is not None
            else np.zeros(weight.shape[0], dtype=np.float32))
    return dict(zip(HEAD_ARRAYS, (weight, bias)))


def check_head(name: str, head_weight, head_bias, features=None, logits=None) -> tuple[np.ndarray, np.ndarray]:
    """``(W, b)`` as float64 after checking shapes, finiteness and — given the training ``features``
    and ``logits`` — that ``W h + b`` reproduces the stored logits on their first rows."""
    w = np.asarray(check_finite(f"{name} head_weight", np.asarray(head_weight)), dtype=np.float64)
    b = np.asarray(check_finite(f"{name} head_bias", np.asarray(head_bias)), dtype=np.float64)
    if w.ndim != 2 or b.shape != (w.shape[0],):
        raise ValueError(f"{name}: head_weight must be (C, D) and head_bias (C,), got {w.shape} and {b.shape}; "
                         f"pass model.fc.weight and model.fc.bias (grood.detectors.head.head_arrays)")
    if features is not None and int(features.shape[1]) != w.shape[1]:
        raise ValueError(f"{name}: head_weight has {w.shape[1]} inputs but the features have "
                         f"{features.shape[1]} dimensions; the head must be the run's own model.fc")
    if logits is not None and int(logits.shape[1]) != w.shape[0]:
        raise ValueError(f"{name}: head_weight has {w.shape[0]} outputs but the logits have "
                         f"{logits.shape[1]} classes; the head must be the run's own model.fc")
    if features is not None and logits is not None:
        n = min(CHECK_ROWS, int(features.shape[0]))
        h = np.asarray(check_finite(f"{name} features", np.asarray(features[:n])), dtype=np.float64)
        z = np.asarray(check_finite(f"{name} logits", np.asarray(logits[:n])), dtype=np.float64)
        err = np.abs(h @ w.T + b - z).max() if n else 0.0
        if err > CHECK_RTOL * (1.0 + (np.abs(z).max() if n else 0.0)):
            raise ValueError(f"{name}: head_weight/head_bias do not reproduce the stored logits (max "
                             f"|W h + b − z| = {err:.3g} on the first {n} training rows); the head must be "
                             f"model.fc of the checkpoint that wrote the features")
    return w, b


def energy_of(h: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``logsumexp(W h + b)`` per row (float64): the energy score of re-run logits."""
    z = h @ w.T + b
    m = z.max(1)
    return m + np.log(np.exp(z - m[:, None]).sum(1))


def blocks(array, name: str):
    """``(start, float64 block)`` over the rows of a row array (numpy, Zarr, RowWindow), NaN refused."""
    rows = default_block_rows(array)
    n = int(array.shape[0])
    for start in range(0, n, rows):
        yield start, np.asarray(check_finite(name, np.asarray(array[start : start + rows])), dtype=np.float64)


__all__ = ["CHECK_ROWS", "CHECK_RTOL", "blocks", "check_head", "energy_of", "head_arrays"]
