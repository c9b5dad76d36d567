"""Proxy kinds: a registry (one small file per kind) of what stands in for a model trained on a mixture."""

from __future__ import annotations

from demix_core.proxy import ensemble, merge  # noqa: F401  (register)
from demix_core.proxy.registry import DEFAULT_KIND, ProxyHost, ProxyKind, describe, get_kind, kind_names, register

__all__ = ["DEFAULT_KIND", "ProxyHost", "ProxyKind", "describe", "get_kind", "kind_names", "register"]
