"""Progress for long loops: a tqdm bar on a terminal, a few log lines in a job log."""

from __future__ import annotations

import logging
import sys
from typing import Iterable, Iterator, TypeVar

T = TypeVar("T")
log = logging.getLogger("grood.net.progress")


def progress(it: Iterable[T], desc: str = "", total: int | None = None, every: float = 0.25) -> Iterator[T]:
    """Iterate ``it``; show a bar when stderr is a TTY, else log at each ``every`` fraction done."""
    if total is None:
        try:
            total = len(it)  # type: ignore[arg-type]
        except TypeError:
            total = None
    if sys.stderr.isatty():
        from tqdm import tqdm

        yield from tqdm(it, desc=desc, total=total, leave=False)
        return
    step = max(1, int(total * every)) if total else 0
    for i, item in enumerate(it, 1):
        yield item
        if step and (i % step == 0 or i == total):
            log.info("%s: %d/%d", desc, i, total)
