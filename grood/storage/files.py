"""Atomic, provenance-carrying writes: nothing half-written can pass as a finished output.

Every writer here builds its output beside the target under a temporary name and renames it into
place only once it is complete, so a job killed mid-write leaves a ``.tmp-*`` leftover that no rule
accepts as an output, never a truncated file with the real name.  The next write of the same target
on the same host removes such leftovers once their writer's process is gone.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import json
import os
import shutil
import socket
import tempfile
import warnings
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator, Mapping

import numpy as np

from grood import __version__

# Snakemake drops a `.snakemake_timestamp` file into directory outputs (our Zarr stores); Zarr warns
# about it on every read. It is Snakemake's, expected, and harmless.
warnings.filterwarnings("ignore", message=r"Object at \.snakemake_timestamp")


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; on success move it onto ``target``.

    Works for files and directories (Zarr stores).  On error the temporary is removed and the
    previous ``target`` (if any) is left untouched.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    _remove_dead_leftovers(target)
    owner = f"{socket.gethostname()}.{os.getpid()}."
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-{owner}", dir=target.parent))
    tmp_target = tmp / target.name
    try:
        yield tmp_target
        if not tmp_target.exists():
            raise FileNotFoundError(f"writer produced nothing for {target}")
        if os.path.lexists(target) and (tmp_target.is_dir() or (target.is_dir() and not target.is_symlink())):
            # a directory cannot be renamed over a non-empty one: move the old version aside in one
            # rename (never delete it in place: a kill mid-rmtree would leave a half store under
            # the real name), publish the new one, then delete the old from inside the temporary
            os.replace(target, tmp / f"{target.name}.old")
        os.replace(tmp_target, target)  # atomic; for a file it also replaces the old version
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _remove_dead_leftovers(target: Path) -> None:
    """Delete ``.<name>.tmp-<host>.<pid>.*`` temporaries of ``target`` left by a killed writer on this
    host (its pid no longer runs).  Never another host's, nor a live process's: those may be in use."""
    prefix, host = f".{target.name}.tmp-", socket.gethostname()
    for tmp in target.parent.glob(f"{glob.escape(prefix)}*"):
        parts = tmp.name[len(prefix):].rsplit(".", 2)
        if len(parts) != 3 or parts[0] != host or not parts[1].isdigit():
            continue
        pid = int(parts[1])
        if pid == os.getpid():
            continue
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            shutil.rmtree(tmp, ignore_errors=True)
        except PermissionError:  # alive, another user's
            continue


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def config_hash(obj: Any) -> str:
    """A short, stable digest of a JSON-able config fragment."""
    text = json.dumps(obj, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def provenance(**extra: Any) -> dict:
    """Metadata every output carries: package version, time, and whatever the caller adds."""
    return {
        "grood_version": __version__,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        **extra,
    }


def save_json(path: str | os.PathLike, obj: Any) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n")


def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def save_npz(path: str | os.PathLike, arrays: Mapping[str, np.ndarray], meta: dict | None = None) -> None:
    """np.savez with a ``__meta__`` JSON entry, written atomically."""
    payload = dict(arrays)
    if meta is not None:
        payload["__meta__"] = np.array(json.dumps(meta, default=_json_default))
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **payload)


class CorruptFileError(OSError):
    """A stored output exists but cannot be read back (truncated, overwritten, bit rot)."""


def load_npz(path: str | os.PathLike, names: list[str] | None = None) -> tuple[dict[str, np.ndarray], dict]:
    """Arrays (all, or those of ``names`` that exist) and ``__meta__`` of an npz from :func:`save_npz`.

    A missing file raises FileNotFoundError; a file that exists but does not read back completely
    (truncated, corrupted: zip, CRC or array-header errors) raises :class:`CorruptFileError` naming
    the file and how to rebuild it, never a half-read array.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist; re-run the workflow (snakemake) to build it")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files if k != "__meta__" and (names is None or k in names)}
            meta = json.loads(str(z["__meta__"])) if "__meta__" in z.files else {}
    except Exception as e:  # zipfile.BadZipFile, EOFError, ValueError, OSError, JSONDecodeError, ...
        raise CorruptFileError(
            f"{path} is corrupt or truncated and cannot be read ({type(e).__name__}: {e}). "
            f"Fix: delete it and run snakemake again, which rebuilds it from its inputs "
            f"(e.g. `rm {path}`; prepared datasets are rebuilt from the checksummed download cache)"
        ) from e
    return arrays, meta


class ZarrWriter:
    """Stream rows of several arrays into one Zarr v3 group, then publish it atomically.

    Chunks are ``chunk_rows`` rows deep; write in batches of that many rows (the last may be
    shorter) so each write fills whole chunks and never reads a chunk back.
    """

    def __init__(self, path: str | os.PathLike, n_rows: int, chunk_rows: int, attrs: dict | None = None):
        import zarr

        self._ctx = atomic_path(path)
        self._tmp = self._ctx.__enter__()
        self._group = zarr.open_group(str(self._tmp), mode="w")
        self._group.attrs.update(attrs or {})
        self.n_rows, self.chunk_rows = int(n_rows), int(chunk_rows)
        self._arrays: dict = {}
        self._closed = False

    def write(self, start: int, **batch: np.ndarray) -> None:
        for name, values in batch.items():
            values = np.asarray(values)
            if name not in self._arrays:
                shape = (self.n_rows, *values.shape[1:])
                chunks = (self.chunk_rows, *values.shape[1:])
                self._arrays[name] = self._group.create_array(
                    name, shape=shape, chunks=chunks, dtype=values.dtype
                )
            self._arrays[name][start : start + len(values)] = values

    def close(self, ok: bool = True) -> None:
        if self._closed:
            return
        self._closed = True
        if ok:
            self._ctx.__exit__(None, None, None)
        else:
            self._ctx.__exit__(RuntimeError, RuntimeError("aborted"), None)

    def __enter__(self) -> "ZarrWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close(ok=exc_type is None)


def write_zarr(path: str | os.PathLike, arrays: Mapping[str, np.ndarray], attrs: dict | None = None,
               chunk_rows: int = 8192) -> None:
    """Write whole arrays (all with the same number of rows) as one Zarr group."""
    lengths = {len(v) for v in arrays.values()}
    if len(lengths) != 1:
        raise ValueError(f"arrays for {path} differ in length: { {k: len(v) for k, v in arrays.items()} }")
    n = lengths.pop()
    with ZarrWriter(path, n, max(1, min(chunk_rows, n)), attrs) as w:
        for start in range(0, n, w.chunk_rows):
            w.write(start, **{k: np.asarray(v)[start : start + w.chunk_rows] for k, v in arrays.items()})


def read_zarr(path: str | os.PathLike, names: list[str] | None = None) -> tuple[dict[str, np.ndarray], dict]:
    """Read arrays (all, or ``names``) and the attributes of a Zarr group."""
    import zarr

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"Zarr store {path} does not exist; re-run the rule that makes it")
    group = zarr.open_group(str(path), mode="r")
    available = sorted(k for k, _ in group.arrays())
    wanted = available if names is None else names
    missing = [n for n in wanted if n not in available]
    if missing:
        raise KeyError(f"{path} has no array(s) {missing}; it holds {available}")
    return {n: group[n][...] for n in wanted}, dict(group.attrs)
