"""``python -m sam3kit.cli`` = the ``sam3kit`` command."""

import sys

from . import main

sys.exit(main())
