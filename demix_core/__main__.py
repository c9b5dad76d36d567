"""``python -m demix_core`` runs the CLI."""

from __future__ import annotations

from demix_core.cli import main

raise SystemExit(main())
