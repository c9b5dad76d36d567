"""DeMix Studio's engine: components, in-memory merging, evaluation, search and validation."""

from __future__ import annotations

__version__ = "0.1.0"
