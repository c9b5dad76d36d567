"""Merging: a registry of methods (one small file each) and the resident in-place merger."""

from __future__ import annotations

from demix_core.io.device import resolve_device
from demix_core.merge import dare, linear, multislerp, task_arithmetic, ties  # noqa: F401  (register)
from demix_core.merge.registry import MergeMethod, ParamDef, Segment, get_method, method_class, method_names
from demix_core.merge.resident import Proxy, ResidentComponents

__all__ = [
    "MergeMethod",
    "ParamDef",
    "Proxy",
    "ResidentComponents",
    "Segment",
    "get_method",
    "method_class",
    "method_names",
    "resolve_device",
]
