"""The methods a validation compares, by the names its report, its record and the pages show."""

from __future__ import annotations

MERGED = "merged proxies (DeMix)"
ENSEMBLE = "output ensemble"
TRAINED = "trained proxies (compute-matched)"
NULL = "null: domain weight"
PROXY_NAMES = {"merge": MERGED, "ensemble": ENSEMBLE}  # proxy kind -> its method's name in a report
