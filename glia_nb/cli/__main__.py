"""``python -m glia_nb.cli`` runs the ``glia`` command."""
from glia_nb.cli.main import main

raise SystemExit(main())
