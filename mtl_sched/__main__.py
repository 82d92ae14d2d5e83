"""``python -m mtl_sched``: the ``mtl-sched`` command, for environments without its script on
``PATH``."""

import sys

from mtl_sched.cli import main

if __name__ == "__main__":
    sys.exit(main())
