"""Parsers for the raw upstream formats: MNIST idx files, GIMP .pat patterns, numpy pickles."""
from __future__ import annotations

import gzip
import io
import pickle
import struct

import numpy as np

from .errors import DataError

_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(data: bytes, name: str = "idx") -> np.ndarray:
    """Parse an (uncompressed) idx file: 2 zero bytes, dtype code, ndim, big-endian dims, data."""
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_DTYPES:
        raise DataError(f"{name} is not an idx file")
    ndim = data[3]
    dims = struct.unpack(f">{ndim}I", data[4:4 + 4 * ndim])
    dtype = np.dtype(_IDX_DTYPES[data[2]])
    count = int(np.prod(dims)) if dims else 1
    offset = 4 + 4 * ndim
    if len(data) - offset != count * dtype.itemsize:
        raise DataError(f"{name}: idx payload has {len(data) - offset} bytes, "
                        f"expected {count * dtype.itemsize}")
    return np.frombuffer(data, dtype=dtype, count=count, offset=offset).reshape(dims).copy()


def read_gpat(data: bytes, name: str = "pattern") -> np.ndarray:
    """Parse a GIMP pattern (.pat, "GPAT"): uint8 array (H, W) or (H, W, C).

    Header, big-endian uint32: header size, version (1), width, height, bytes per pixel
    (1 grey, 2 grey+alpha, 3 RGB, 4 RGBA); then the magic ``GPAT`` and a NUL-terminated UTF-8
    name up to the header size; then width*height*bpp raw pixel bytes, row-major.
    """
    if len(data) < 24:
        raise DataError(f"{name}: too short for a GIMP pattern")
    header_size, version, width, height, bpp = struct.unpack(">5I", data[:20])
    if data[20:24] != b"GPAT" or version != 1 or bpp not in (1, 2, 3, 4):
        raise DataError(f"{name}: not a GIMP pattern (magic {data[20:24]!r}, version {version}, "
                        f"bpp {bpp})")
    n = width * height * bpp
    pixels = data[header_size:header_size + n]
    if len(pixels) != n or width == 0 or height == 0:
        raise DataError(f"{name}: truncated GIMP pattern ({len(pixels)} of {n} pixel bytes)")
    arr = np.frombuffer(pixels, dtype=np.uint8).reshape(height, width, bpp)
    return arr[:, :, 0].copy() if bpp == 1 else arr.copy()


def gpat_name(data: bytes) -> str:
    header_size = struct.unpack(">I", data[:4])[0]
    return data[24:header_size].split(b"\0", 1)[0].decode("utf-8", "replace")


def to_grey(img: np.ndarray) -> np.ndarray:
    """uint8 grey from grey / grey+alpha / RGB / RGBA (alpha dropped; ITU-R 601 luma, rounded)."""
    if img.ndim == 2:
        return img
    if img.shape[2] <= 2:
        return img[:, :, 0]
    rgb = img[:, :, :3].astype(np.float64)
    return np.rint(rgb @ np.array([0.299, 0.587, 0.114])).clip(0, 255).astype(np.uint8)


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickler that builds numpy arrays and nothing else (no arbitrary code from the file)."""

    _ALLOWED = {("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "_reconstruct"),
                ("numpy._core.multiarray", "_reconstruct")}

    def find_class(self, module: str, name: str):
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a data file")
        if name == "_reconstruct":
            try:
                from numpy._core.multiarray import _reconstruct
            except ImportError:  # numpy < 2
                from numpy.core.multiarray import _reconstruct
            return _reconstruct
        return getattr(np, name)


def load_numpy_pickle_gz(data: bytes):
    """Load a gzip'd pickle made only of numpy arrays (tuples/lists thereof)."""
    return _NumpyOnlyUnpickler(io.BytesIO(gzip.decompress(data)), encoding="latin1").load()
