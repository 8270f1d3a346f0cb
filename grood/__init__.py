"""grood: gradient-based out-of-distribution detection, as a reproducible pipeline."""

__version__ = "0.1.0"
