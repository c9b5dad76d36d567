"""What each field of ``demix.yaml`` must be, checked one entry at a time with a one-line message per problem.

:mod:`demix_core.workspace.manifest` reads the file and builds the workspace from entries checked here.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from demix_core.errors import WorkspaceError

# The proxy kinds defaults.proxy may name. This layer sits below demix_core.proxy and cannot ask its registry;
# tests/test_proxy_contract.py checks that this is every registered kind.
PROXY_KINDS = ("merge", "ensemble")
# The manifest's ``defaults``: what each setting a new study takes must be.
DEFAULT_TYPES: dict[str, tuple[tuple[type, ...], str]] = {
    "sampler": ((str,), "a sampler name such as front or tpe"),
    "method": ((str,), "a merge method name such as linear"),
    "seed": ((int,), "a whole number"),
    "proxy": ((str,), "a proxy kind: " + " or ".join(PROXY_KINDS)),
    "share": ((int, float), "the fraction of a component's training data from its own dataset (a record)"),
}

# What each manifest field must be: (accepted types, what to write in the error).
NUMBER = ((int, float), "a number")
FIELD_TYPES: dict[str, tuple[tuple[type, ...], str]] = {
    "str": ((str,), "a string (quote it, e.g. '123')"),
    "int": ((int,), "a whole number of tokens, e.g. 1000000"),
    "float | None": NUMBER,
    "int | None": ((int,), "a whole number (a training seed, e.g. 1)"),
    "dict[str, float]": ((dict,), "a mapping of component name to weight"),
    "dict[str, float] | None": ((dict,), "a mapping of metric name to score"),
}
TOP_TYPES = {"name": ((str, int, float), "a string"), "base": ((str,), "a folder path"),
              "tokenizer": ((str,), "a folder path"), "suite": ((str,), "quick, paper or task names"),
              "storage": ((str,), "a storage URL"), "defaults": ((dict,), "a mapping of setting to value"),
              "components": ((list,), "a list of components"), "datasets": ((list,), "a list of datasets"),
              "references": ((list,), "a list of references"),
              "heldout_tokens": ((int,), "a whole number of tokens per held-out file, e.g. 16384"),
              "budget": ((dict,), "a mapping with target_tokens, max_epochs and datasets")}


def check_top(manifest: Path, data: dict[str, Any]) -> None:
    for key, (types, what) in TOP_TYPES.items():
        value = data.get(key)
        if value is not None and (not isinstance(value, types) or isinstance(value, bool)):
            raise WorkspaceError(f"{manifest}: '{key}' is {value!r}; it must be {what}")


def check_defaults(manifest: Path, defaults: dict[str, Any]) -> None:
    for key, value in defaults.items():
        if key not in DEFAULT_TYPES:
            known = ", ".join(DEFAULT_TYPES)
            raise WorkspaceError(f"{manifest}: defaults has unknown setting {key!r}; known: {known}")
        types, what = DEFAULT_TYPES[key]
        if not isinstance(value, types) or isinstance(value, bool) or (key == "proxy" and value not in
                                                                        PROXY_KINDS):
            raise WorkspaceError(f"{manifest}: defaults.{key} is {value!r}; it must be {what}")


def entries(manifest: Path, data: dict[str, Any], key: str, cls: type) -> list[dict[str, Any]]:
    """The entries of one list in the manifest, each checked: a mapping, known fields, right types."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    required = [n for n, f in fields.items()
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    out = []
    for i, entry in enumerate(data.get(key) or []):
        where = f"{manifest}: {key}[{i}]"
        if not isinstance(entry, dict):
            raise WorkspaceError(f"{where} is {entry!r}; each entry must be a mapping such as name: ..., path: ...")
        unknown = sorted(str(k) for k in entry if k not in fields)
        if unknown:
            raise WorkspaceError(f"{where} has unknown field {unknown[0]!r}; known: {', '.join(fields)}")
        missing = [n for n in required if n not in entry]
        if missing:
            raise WorkspaceError(f"{where} lacks {missing[0]!r}; every entry needs {', '.join(required)}")
        for name, value in entry.items():
            types, what = FIELD_TYPES[str(fields[name].type)]
            if value is None and "None" in str(fields[name].type):
                continue
            if not isinstance(value, types) or isinstance(value, bool):
                raise WorkspaceError(f"{where}: {name} is {value!r}; it must be {what}")
        out.append(entry)
    return out
