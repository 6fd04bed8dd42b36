"""``python -m sayna_client`` runs the ``sayna`` command line."""

import sys

from .cli import main

sys.exit(main())
