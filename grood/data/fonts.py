"""The pinned Debian font packages' font files, fetched and checked once: what ``letters_fonts``
(letters A-J) and GReg's ``font_glyphs`` (other characters) render."""
from __future__ import annotations

import re
from pathlib import Path

from . import pins
from .debfile import deb_source, licences_from_copyright, read_members
from .fetch import Corrupt, deb_version, fetch_debs, manifest_digest, sha256_bytes

_FONT_FILE = re.compile(r"^usr/share/(texmf/)?fonts/.*\.(ttf|otf)$", re.I)


def _verify_fonts(pkg: str, deb: Path) -> tuple[dict[str, bytes], str, list[str]]:
    version, expected, count = pins.FONT_PACKAGES[pkg]
    copyright_path = f"usr/share/doc/{pkg}/copyright"
    members = read_members(deb, lambda rel: bool(_FONT_FILE.match(rel)) or rel == copyright_path)
    copyright_text = members.pop(copyright_path, b"").decode("utf-8", "replace")
    actual = manifest_digest(members)
    if actual != expected:
        raise Corrupt(f"font files ({len(members)} found, {count} expected)", expected, actual)
    return members, deb_version(deb), licences_from_copyright(copyright_text)


def font_files(raw_dir: Path, packages: list[str] | None = None
               ) -> tuple[list[tuple[str, bytes]], list[dict], set[str]]:
    """Every distinct font file of the pinned Debian font packages (all, or ``packages``), as
    ``("pkg:path", bytes)`` sorted by package and path; plus upstream records and licences."""
    fetched = fetch_debs(sorted(packages or pins.FONT_PACKAGES), raw_dir, _verify_fonts)
    out, seen, upstream, licences = [], set(), [], set()
    for pkg in sorted(fetched):
        files, version, lic = fetched[pkg]
        upstream.append({**deb_source(pkg, version), "files": len(files),
                         "manifest_sha256": pins.FONT_PACKAGES[pkg][1], "licences": lic})
        licences.update(lic)
        for rel in sorted(files):
            digest = sha256_bytes(files[rel])
            if digest in seen:  # the same font file shipped twice
                continue
            seen.add(digest)
            out.append((f"{pkg}:{rel}", files[rel]))
    return out, upstream, licences
