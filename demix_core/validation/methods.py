"""The methods a validation compares, by the names its report, its record and the pages show: each proxy kind's
is its ``report_name`` (:mod:`demix_core.proxy`, e.g. ``merged proxies (DeMix)``); the baselines' are here."""

from __future__ import annotations

TRAINED = "trained proxies (compute-matched)"
NULL = "null: domain weight"
