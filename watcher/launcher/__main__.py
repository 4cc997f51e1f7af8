"""``python3 launch -- COMMAND``: the zip application's entry point (and ``python -m``)."""

import sys

from .main import main

sys.exit(main())
