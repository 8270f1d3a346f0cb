"""Which ``grood`` files a stage runs, read from the source, and one digest over them.

Snakemake does not track the package's code: each rule carries a ``code`` param, the digest of the
files its stage module reaches through ``grood`` imports, so an edit to any of them re-runs that
stage (and what reads its outputs) and nothing else.  The files are found by reading the source
with :mod:`ast` — no module is imported, so the Snakemake scheduler never loads torch — following
what Python itself would load:

- every ``import`` statement, at module level or inside a function (lazy imports run too);
- ``from grood.x import y`` loads ``grood.x`` and, when ``y`` is a submodule, ``grood.x.y``;
- relative imports (``from .fetch import x``) resolve against the importing module's package;
- importing ``grood.a.b`` first runs ``grood/__init__.py`` and ``grood/a/__init__.py``: every
  package on the way is part of the closure (so an edit to ``grood/__init__.py`` re-runs all).
"""

from __future__ import annotations

import ast
import hashlib
from functools import lru_cache
from pathlib import Path

PACKAGE = "grood"


def module_path(module: str, root: str | Path) -> Path | None:
    """The file of ``module`` (``a.b`` → ``root/a/b.py`` or ``root/a/b/__init__.py``), or None."""
    base = Path(root).joinpath(*module.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def _is_ours(module: str) -> bool:
    return module == PACKAGE or module.startswith(PACKAGE + ".")


def _with_parents(module: str) -> list[str]:
    """``a.b.c`` → ``[a, a.b, a.b.c]``: the packages Python runs before the module itself."""
    parts = module.split(".")
    return [".".join(parts[: i + 1]) for i in range(len(parts))]


def imported_modules(module: str, root: str | Path) -> set[str]:
    """The ``grood`` modules that importing ``module`` (and calling its functions) loads directly."""
    path = module_path(module, root)
    if path is None:
        raise ModuleNotFoundError(f"no module {module!r} under {root}")
    st = path.stat()
    return set(_imports(str(path), module, str(root), st.st_mtime_ns, st.st_size))


@lru_cache(maxsize=None)
def _imports(path: str, module: str, root: str, mtime_ns: int, size: int) -> tuple[str, ...]:
    """The grood modules one file's import statements load, packages first; cached per file
    version (mtime, size), as every rule's digest walks the shared modules again."""
    tree = ast.parse(Path(path).read_bytes(), filename=path)
    package = module if Path(path).name == "__init__.py" else module.rpartition(".")[0]
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [m for alias in node.names if _is_ours(alias.name) for m in _with_parents(alias.name)]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = package.split(".")
                if node.level - 1 >= len(anchor):
                    raise ImportError(f"{path}: relative import beyond the top-level package")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            if not _is_ours(base):
                continue
            found += _with_parents(base)
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                if alias.name != "*" and module_path(sub, root) is not None:
                    found.append(sub)
    return tuple(found)


def closure(module: str, root: str | Path) -> list[str]:
    """Every ``grood`` module ``module`` reaches, itself and its packages included, sorted."""
    root = Path(root)
    seen: set[str] = set()
    todo = _with_parents(module)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        if module_path(name, root) is None:
            raise ModuleNotFoundError(f"{name!r} is imported (from {module!r}'s closure) but there "
                                      f"is no such file under {root}")
        seen.add(name)
        todo += [m for m in imported_modules(name, root) if m not in seen]
    return sorted(seen)


def closure_files(module: str, root: str | Path) -> list[Path]:
    """The files of :func:`closure`, relative to ``root``, sorted."""
    root = Path(root)
    return sorted(module_path(m, root).relative_to(root) for m in closure(module, root))


def code_digest(module: str, root: str | Path) -> str:
    """Digest (16 hex) of the relative paths and bytes of every file ``module`` reaches.

    A comment counts as a change too: the digest reads bytes, not meaning.
    """
    root = Path(root)
    h = hashlib.sha256()
    for rel in closure_files(module, root):
        h.update(rel.as_posix().encode() + b"\0")
        h.update((root / rel).read_bytes() + b"\0")
    return h.hexdigest()[:16]
