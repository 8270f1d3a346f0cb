"""Read selected files out of a Debian .deb without installing or unpacking it to disk.

A .deb is an ``ar`` archive holding ``debian-binary``, ``control.tar.*`` and ``data.tar.*``.
This reads the ar container in Python and the data tarball with :mod:`tarfile` (xz, gz, bz2 or
plain); for a zstd-compressed data part it asks ``dpkg-deb --fsys-tarfile`` (the same bytes
``dpkg-deb -x`` would unpack). Works on any OS for the common case.
"""
from __future__ import annotations

import io
import lzma
import re
import subprocess
import tarfile
import zlib
from pathlib import Path
from typing import Callable

from .fetch import Corrupt


def _data_tar(path: Path) -> tuple[str, bytes]:
    blob = path.read_bytes()
    if not blob.startswith(b"!<arch>\n"):
        raise Corrupt(path.name, "a Debian ar archive", "not an ar archive")
    pos = 8
    while pos + 60 <= len(blob):
        header = blob[pos:pos + 60]
        name = header[:16].decode("ascii", "replace").strip().rstrip("/")
        try:
            size = int(header[48:58].decode("ascii").strip())
        except ValueError:
            raise Corrupt(path.name, "a Debian ar archive", "bad ar member header") from None
        body = blob[pos + 60:pos + 60 + size]
        if len(body) < size:
            raise Corrupt(path.name, "a complete .deb", "truncated file")
        if name.startswith("data.tar"):
            return name, body
        pos += 60 + size + (size & 1)
    raise Corrupt(path.name, "a .deb with a data.tar member", "no data.tar member")


def read_members(path: Path, want: Callable[[str], bool]) -> dict[str, bytes]:
    """``{relative path: bytes}`` of the regular files in the .deb's filesystem that ``want``.

    Paths are relative to ``/`` (``usr/share/...``). Symlinks and directories are skipped.
    Raises :class:`Corrupt` if the file cannot be read as a .deb.
    """
    name, body = _data_tar(path)
    if name.endswith(".zst"):
        try:
            r = subprocess.run(["dpkg-deb", "--fsys-tarfile", str(path)], capture_output=True,
                               timeout=300, check=True)
        except (OSError, subprocess.SubprocessError) as e:
            raise Corrupt(path.name, "a readable .deb (zstd data part needs dpkg-deb)",
                          f"unreadable: {e}") from None
        body = r.stdout
    out: dict[str, bytes] = {}
    try:
        with tarfile.open(fileobj=io.BytesIO(body), mode="r|*") as tf:
            for member in tf:
                rel = member.name.removeprefix("./").lstrip("/")
                if member.isfile() and want(rel):
                    fh = tf.extractfile(member)
                    out[rel] = fh.read() if fh is not None else b""
    except (tarfile.TarError, lzma.LZMAError, zlib.error, EOFError, OSError) as e:
        raise Corrupt(path.name, "a readable .deb", f"unreadable data part: {e}") from None
    return out


def deb_source(pkg: str, version: str) -> dict:
    """The ``upstream`` record of a Debian package a dataset came from."""
    return {"kind": "debian", "package": pkg, "version": version}


def licences_from_copyright(text: str) -> list[str]:
    """The ``License:`` names of a Debian copyright file."""
    return sorted({m.strip() for m in re.findall(r"^License:\s*(\S[^\n]*)$", text, re.M)})
