"""``python -m deepdual`` runs the command line (see :mod:`deepdual.cli`)."""

from .cli import main

raise SystemExit(main())
