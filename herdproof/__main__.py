"""``python -m herdproof`` runs the CLI."""

import sys

from herdproof.cli import main

sys.exit(main())
