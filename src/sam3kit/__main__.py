"""``python -m sam3kit`` = the ``sam3kit`` command."""

import sys

from .cli import main

sys.exit(main())
