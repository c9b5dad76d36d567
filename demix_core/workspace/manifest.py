"""The workspace manifest (``demix.yaml``): components, base, datasets, references, suite, storage.

All paths inside a workspace are relative to its folder. Loading validates every entry and reports
the first problem in one line; saving is atomic.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

from demix_core.errors import WorkspaceError
from demix_core.io.atomic import atomic_write_text
from demix_core.mixing.mixture import Mixture, check_names
from demix_core.workspace.budget import Budget

MANIFEST = "demix.yaml"
DEFAULT_STORAGE = "sqlite:///studies.db"
DEFAULT_HELDOUT_TOKENS = 16_384  # tokens per held-out file unless the workspace says otherwise
MIN_HELDOUT_TOKENS = 128  # one window of the held-out scorer
QUICK_TOKENS = 8_192  # quick suite: held-out tokens split over the datasets when the manifest sets no heldout_tokens
# The manifest's ``defaults``: settings a new study takes when none is given (the CLI's flags, the
# dashboard's form and ``create_study``'s arguments override them), and what each one must be.
STUDY_DEFAULTS: dict[str, Any] = {"sampler": "front", "method": "linear", "seed": 0, "proxy": "merge"}
_DEFAULT_TYPES: dict[str, tuple[tuple[type, ...], str]] = {
    "sampler": ((str,), "a sampler name such as front or tpe"),
    "method": ((str,), "a merge method name such as linear"),
    "seed": ((int,), "a whole number"),
    "proxy": ((str,), "a proxy kind: merge or ensemble"),
    "share": ((int, float), "the fraction of a component's training data from its own dataset (a record)"),
}


@dataclass
class ComponentEntry:
    """One component: a checkpoint trained on one candidate dataset."""

    name: str
    path: str
    domain: str = "general"
    dataset: str = ""
    tokens: int = 0
    drift: float | None = None


@dataclass
class DatasetEntry:
    """A candidate dataset: its domain and train / held-out text files (relative paths).

    ``heldout`` is required; ``train`` is empty for a workspace made from components trained elsewhere.
    ``text_field`` names the JSON field / parquet column with the text (default ``text``).
    """

    name: str
    domain: str
    train: str = ""
    heldout: str = ""
    tokens: int = 0
    source: str = ""
    text_field: str = ""


@dataclass
class ReferenceEntry:
    """A model really trained on a mixture (``kind: reference``) or a compute-matched trained proxy."""

    name: str
    path: str
    mixture: dict[str, float]
    kind: str = "reference"


@dataclass
class Workspace:
    """A loaded workspace. ``root`` is absolute; entries keep relative paths."""

    root: Path
    name: str
    components: list[ComponentEntry]
    base: str | None = None
    tokenizer: str | None = None
    datasets: list[DatasetEntry] = field(default_factory=list)
    references: list[ReferenceEntry] = field(default_factory=list)
    suite: str = "quick"
    storage: str = DEFAULT_STORAGE
    defaults: dict[str, Any] = field(default_factory=dict)
    heldout_tokens: int | None = None  # quick suite: tokens per held-out file (None: QUICK_TOKENS split)
    budget: Budget = field(default_factory=Budget)  # token budget and per-dataset limits (demix_core.workspace.budget)

    @property
    def component_names(self) -> tuple[str, ...]:
        """Component names in manifest order."""
        return tuple(c.name for c in self.components)

    def path(self, rel: str) -> Path:
        """Resolve a manifest path against the workspace folder."""
        p = Path(rel)
        return p if p.is_absolute() else self.root / p

    def component_paths(self) -> list[Path]:
        """Absolute component checkpoint folders."""
        return [self.path(c.path) for c in self.components]

    def base_path(self) -> Path | None:
        """Absolute base checkpoint folder, if the workspace has one."""
        return self.path(self.base) if self.base else None

    def component(self, name: str) -> ComponentEntry:
        """The component called ``name``."""
        return _named(self.components, name, f"workspace {self.root} has no component")

    def dataset(self, name: str) -> DatasetEntry:
        """The dataset called ``name``."""
        return _named(self.datasets, name, f"workspace {self.root} has no dataset")

    def domains(self) -> dict[str, str]:
        """Component name -> domain."""
        return {c.name: c.domain for c in self.components}

    def study_default(self, key: str) -> Any:
        """A new study's setting ``key`` (``sampler``, ``method``, ``seed`` or ``proxy``): the manifest's
        ``defaults``, else :data:`STUDY_DEFAULTS` (a study's proxy also consults validation's pick: see
        :func:`demix_core.search.study.default_proxy`)."""
        return self.defaults.get(key, STUDY_DEFAULTS[key])

    def heldout_slice(self, quick_tokens: int | None = None) -> int:
        """Tokens the quick suite scores per held-out file: the first ones of each file (a deterministic slice).

        ``quick_tokens`` (a total, split over the datasets) when given, else the manifest's ``heldout_tokens``,
        else :data:`QUICK_TOKENS` split evenly over the datasets; at least one 128-token window.
        """
        n = max(1, len(self.datasets))
        if quick_tokens is not None:
            return max(MIN_HELDOUT_TOKENS, quick_tokens // n)
        if self.heldout_tokens is not None:
            return max(MIN_HELDOUT_TOKENS, self.heldout_tokens)
        return max(MIN_HELDOUT_TOKENS, QUICK_TOKENS // n)

    def parse_mixture(self, text: str) -> Mixture:
        """Parse ``name=weight,...`` against this workspace's components."""
        return Mixture.parse(text, self.component_names)

    def storage_url(self) -> str:
        """The Optuna storage URL with a relative SQLite / journal path made absolute."""
        return resolve_storage(self.storage, self.root)

    def to_dict(self) -> dict[str, Any]:
        """The manifest as plain data."""
        out: dict[str, Any] = {"version": 1, "name": self.name}
        if self.base:
            out["base"] = self.base
        if self.tokenizer:
            out["tokenizer"] = self.tokenizer
        out["components"] = [_clean(c.__dict__) for c in self.components]
        if self.datasets:
            out["datasets"] = [_clean(d.__dict__) for d in self.datasets]
        if self.references:
            out["references"] = [_clean(r.__dict__) for r in self.references]
        out["suite"] = self.suite
        out["storage"] = self.storage
        if self.defaults:
            out["defaults"] = self.defaults
        if self.heldout_tokens is not None:
            out["heldout_tokens"] = self.heldout_tokens
        if not self.budget.empty:
            out["budget"] = self.budget.to_dict()
        return out

    def save(self) -> Path:
        """Write ``demix.yaml`` atomically."""
        text = yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True)
        return atomic_write_text(self.root / MANIFEST, text)


_Entry = TypeVar("_Entry", ComponentEntry, DatasetEntry)


def _named(entries: list[_Entry], name: str, missing: str) -> _Entry:
    """The entry called ``name``, else a :class:`WorkspaceError` starting with ``missing`` and listing the names."""
    for entry in entries:
        if entry.name == name:
            return entry
    raise WorkspaceError(f"{missing} {name!r}; it has: {', '.join(e.name for e in entries)}")


def _clean(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v not in (None, "", {}, [])}


def resolve_storage(url: str, root: Path) -> str:
    """Make ``sqlite:///rel.db`` and ``journal:rel.log`` absolute against ``root``; others unchanged."""
    if url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
        rel = url[len("sqlite:///"):]
        return "sqlite:///" + str((root / rel).resolve())
    if url.startswith("journal:"):
        rel = url[len("journal:"):]
        p = Path(rel)
        return "journal:" + str(p if p.is_absolute() else (root / p).resolve())
    return url


# What each manifest field must be: (accepted types, what to write in the error).
_NUMBER = ((int, float), "a number")
_FIELD_TYPES: dict[str, tuple[tuple[type, ...], str]] = {
    "str": ((str,), "a string (quote it, e.g. '123')"),
    "int": ((int,), "a whole number of tokens, e.g. 1000000"),
    "float | None": _NUMBER,
    "dict[str, float]": ((dict,), "a mapping of component name to weight"),
}
_TOP_TYPES = {"name": ((str, int, float), "a string"), "base": ((str,), "a folder path"),
              "tokenizer": ((str,), "a folder path"), "suite": ((str,), "quick, paper or task names"),
              "storage": ((str,), "a storage URL"), "defaults": ((dict,), "a mapping of setting to value"),
              "components": ((list,), "a list of components"), "datasets": ((list,), "a list of datasets"),
              "references": ((list,), "a list of references"),
              "heldout_tokens": ((int,), "a whole number of tokens per held-out file, e.g. 16384"),
              "budget": ((dict,), "a mapping with target_tokens, max_epochs and datasets")}


def _check_top(manifest: Path, data: dict[str, Any]) -> None:
    for key, (types, what) in _TOP_TYPES.items():
        value = data.get(key)
        if value is not None and (not isinstance(value, types) or isinstance(value, bool)):
            raise WorkspaceError(f"{manifest}: '{key}' is {value!r}; it must be {what}")


def _check_defaults(manifest: Path, defaults: dict[str, Any]) -> None:
    for key, value in defaults.items():
        if key not in _DEFAULT_TYPES:
            known = ", ".join(_DEFAULT_TYPES)
            raise WorkspaceError(f"{manifest}: defaults has unknown setting {key!r}; known: {known}")
        types, what = _DEFAULT_TYPES[key]
        if not isinstance(value, types) or isinstance(value, bool) or (key == "proxy" and value not in
                                                                        ("merge", "ensemble")):
            raise WorkspaceError(f"{manifest}: defaults.{key} is {value!r}; it must be {what}")


def _entries(manifest: Path, data: dict[str, Any], key: str, cls: type) -> list[dict[str, Any]]:
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
            types, what = _FIELD_TYPES[str(fields[name].type)]
            if value is None and "None" in str(fields[name].type):
                continue
            if not isinstance(value, types) or isinstance(value, bool):
                raise WorkspaceError(f"{where}: {name} is {value!r}; it must be {what}")
        out.append(entry)
    return out


def load_workspace(folder: str | os.PathLike[str]) -> Workspace:
    """Load and validate ``folder/demix.yaml``.

    Raises:
        WorkspaceError: Missing folder or manifest, malformed YAML, missing or invalid fields.
    """
    try:
        root = Path(folder).resolve()
    except (OSError, RuntimeError) as exc:  # a symlink loop (RuntimeError before Python 3.13)
        raise WorkspaceError(f"workspace folder {folder} cannot be resolved ({exc}); fix the symlinks or give "
                             "the real folder") from None
    if not root.is_dir():
        raise WorkspaceError(f"workspace folder {folder} does not exist; build the demo workspace there "
                             "or give an existing workspace")
    manifest = root / MANIFEST
    if not manifest.exists():
        raise WorkspaceError(f"{folder} is not a DeMix workspace: it has no {MANIFEST}; "
                             "build the demo workspace there or write a manifest")
    try:
        data = yaml.safe_load(manifest.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise WorkspaceError(f"{manifest} is not UTF-8 text (byte {exc.start}: {exc.reason}); save it as "
                             "UTF-8") from None
    except (OSError, yaml.YAMLError) as exc:
        first = str(exc).splitlines()[0]
        raise WorkspaceError(f"{manifest} is not valid YAML ({first}); fix the file") from None
    if not isinstance(data, dict):
        raise WorkspaceError(f"{manifest} must be a mapping with a 'components' list")
    _check_top(manifest, data)
    _check_defaults(manifest, data.get("defaults") or {})
    comps = [ComponentEntry(**c) for c in _entries(manifest, data, "components", ComponentEntry)]
    datasets = [DatasetEntry(**d) for d in _entries(manifest, data, "datasets", DatasetEntry)]
    refs = [ReferenceEntry(**r) for r in _entries(manifest, data, "references", ReferenceEntry)]
    if not comps:
        raise WorkspaceError(f"{manifest} lists no components; add at least one under 'components'")
    for i, d in enumerate(datasets):
        if not d.heldout:
            raise WorkspaceError(f"{manifest}: datasets[{i}] lacks 'heldout'; give its held-out text file")
    heldout_tokens = data.get("heldout_tokens")
    if heldout_tokens is not None and heldout_tokens < MIN_HELDOUT_TOKENS:
        raise WorkspaceError(f"{manifest}: heldout_tokens is {heldout_tokens}; give at least {MIN_HELDOUT_TOKENS} "
                             "(one window of 128 tokens)")
    check_names([c.name for c in comps])
    if len({c.name for c in comps}) != len(comps):
        raise WorkspaceError(f"{manifest}: component names repeat; give each a unique name")
    ws = Workspace(
        root=root, name=str(data.get("name", root.name)), components=comps, base=data.get("base"),
        tokenizer=data.get("tokenizer"), datasets=datasets, references=refs,
        suite=str(data.get("suite", "quick")), storage=str(data.get("storage", DEFAULT_STORAGE)),
        defaults=dict(data.get("defaults") or {}), heldout_tokens=heldout_tokens,
        budget=Budget.from_dict(data.get("budget"), where=f"{manifest}: budget"),
    )
    for c in ws.components:
        if not ws.path(c.path).is_dir():
            raise WorkspaceError(f"component {c.name!r}: folder {ws.path(c.path)} is missing; "
                                 "rebuild the workspace or fix its path in demix.yaml")
    if ws.base and not ws.path(ws.base).is_dir():
        raise WorkspaceError(f"base folder {ws.path(ws.base)} is missing; fix 'base' in {manifest}")
    return ws
