"""``python -m sayna_client.cli`` runs the ``sayna`` command line."""

import sys

from .entry import main

sys.exit(main())
