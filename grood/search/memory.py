"""Keep a streamed job's block buffers out of the C heap, so its memory does not creep with N.

glibc's ``malloc`` serves a request above the *mmap threshold* with its own mapping, returned to
the system on ``free``.  By default the threshold follows the largest buffer freed so far (up to
32 MB), so once a block-sized buffer has been freed, the next ones come from the heap, which
fragments and grows as more blocks pass through (zarr's decoded chunks, numpy temporaries).
Measured on a flat-index build from a Zarr store (rows of 512 floats, read 8,192 at a time): the
memory beside the index grew +29% from 50,000 to 500,000 rows with the sliding threshold, +7% with
it fixed at 4 MB.  A fixed threshold keeps every buffer of 4 MB or more in its own mapping.  It is
set by the index builds (:func:`grood.search.build.build_index`), not in training, where torch's
many large temporaries would pay a page fault per allocation.
"""

from __future__ import annotations

import ctypes
import functools
import logging

log = logging.getLogger(__name__)

#: glibc's ``mallopt`` parameter number for the mmap threshold (malloc.h: M_MMAP_THRESHOLD)
M_MMAP_THRESHOLD = -3
#: buffers of at least this many bytes get their own mapping
MMAP_THRESHOLD_BYTES = 4 << 20


@functools.cache
def fixed_mmap_threshold(nbytes: int = MMAP_THRESHOLD_BYTES) -> bool:
    """Fix glibc's mmap threshold at ``nbytes`` for this process (once per value; repeated calls return the first
    answer); False (and nothing done) where the C library is not glibc (macOS, musl)."""
    try:
        ok = bool(ctypes.CDLL("libc.so.6").mallopt(M_MMAP_THRESHOLD, int(nbytes)))
    except (OSError, AttributeError):
        return False
    if not ok:
        log.debug("mallopt(M_MMAP_THRESHOLD, %d) refused", nbytes)
    return ok


__all__ = ["MMAP_THRESHOLD_BYTES", "fixed_mmap_threshold"]
