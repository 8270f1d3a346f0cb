"""``python -m grood.figures BENCH_DIR --out DIR``: the same as ``grood figures``."""

import sys

from grood.cli import main

sys.exit(main(["figures", *sys.argv[1:]]))
