"""``python -m grood``: the ``grood`` command (:mod:`grood.run.cli`)."""

import sys

from grood.run.cli import main

sys.exit(main())
