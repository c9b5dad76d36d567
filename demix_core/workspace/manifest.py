"""The workspace manifest (``demix.yaml``): components, base, datasets, references, suite, storage.

All paths inside a workspace are relative to its folder. Loading validates every entry and reports
the first problem in one line; saving is atomic.

A *table workspace* (``kind: table``, made by ``demix import-runs``) holds past runs instead of checkpoints:
its ``domains`` (the mixture columns of the imported table) stand where components stand, so mixtures,
studies and recommendations work as usual, and its references carry their measured ``scores``. It has no
checkpoints, base or datasets: what needs them fails with a one-line :class:`WorkspaceError`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

from demix_core.errors import WorkspaceError
from demix_core.io.atomic import atomic_write_text
from demix_core.mixing.mixture import Mixture, check_names
from demix_core.workspace.budget import Budget
from demix_core.workspace.checks import check_defaults, check_top, entries

MANIFEST = "demix.yaml"
DEFAULT_STORAGE = "sqlite:///studies.db"
DEFAULT_HELDOUT_TOKENS = 16_384  # tokens per held-out file unless the workspace says otherwise
MIN_HELDOUT_TOKENS = 128  # one window of the held-out scorer
KIND_TABLE = "table"  # the manifest's ``kind`` of a table workspace (left out: a workspace of checkpoints)
QUICK_TOKENS = 8_192  # quick suite: held-out tokens split over the datasets when the manifest sets no heldout_tokens
# The manifest's ``defaults``: settings a new study takes when none is given (the CLI's flags, the
# dashboard's form and ``create_study``'s arguments override them), and what each one must be.
STUDY_DEFAULTS: dict[str, Any] = {"sampler": "front", "method": "linear", "seed": 0, "proxy": "merge"}


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
    scores: dict[str, float] | None = None  # a table workspace's reference: its measured scores, as imported
    seed: int | None = None  # the training seed, when not 0 (left out: seed 0, as every model trained before seeds)


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
    kind: str = ""  # KIND_TABLE for a table workspace (its components are the table's domains, without checkpoints)

    @property
    def is_table(self) -> bool:
        """Whether this is a table workspace (past runs, no checkpoints)."""
        return self.kind == KIND_TABLE

    def require_checkpoints(self, what: str = "this") -> None:
        """Raise a one-line :class:`WorkspaceError` when the workspace has no checkpoints (a table workspace).

        Args:
            what: What needs the checkpoints, for the message (e.g. ``"merging"``).
        """
        if self.is_table:
            raise WorkspaceError(f"workspace {self.root} is a table of past runs and has no checkpoints, so {what} "
                                 "cannot run here; add runs with `demix import-runs`, or use a workspace of "
                                 "component checkpoints")

    def training_problem(self) -> str | None:
        """Why references cannot be trained in this workspace, in one line (None when they can): a reference
        continues the base on the components' training data, so it needs a base and, for every component, a
        dataset with a training file."""
        if self.is_table:
            return f"workspace {self.root} is a table of past runs: it has no checkpoints to train from"
        if not self.datasets:
            return (f"workspace {self.root} has no datasets; training a reference needs the candidate datasets "
                    "(the demo workspace has them)")
        trainable = {d.name for d in self.datasets if d.train}
        for c in self.components:
            if (c.dataset or c.name) not in trainable:
                return (f"component {c.name!r} of workspace {self.root} has no dataset with a training file "
                        "(a dataset's train:); training a reference mixes the components' training data")
        if not self.base:
            return f"workspace {self.root} has no base; a reference continues the base like the components"
        return None

    @property
    def component_names(self) -> tuple[str, ...]:
        """Component names in manifest order."""
        return tuple(c.name for c in self.components)

    def path(self, rel: str) -> Path:
        """Resolve a manifest path against the workspace folder."""
        p = Path(rel)
        return p if p.is_absolute() else self.root / p

    def component_paths(self) -> list[Path]:
        """Absolute component checkpoint folders.

        Raises:
            WorkspaceError: A table workspace (it has no checkpoints).
        """
        self.require_checkpoints("what needs the component checkpoints (merging, scoring, training)")
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
        if self.is_table:
            return self._table_dict()
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

    def _table_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"version": 1, "name": self.name, "kind": KIND_TABLE,
                               "domains": list(self.component_names)}
        if self.references:
            out["references"] = [_clean(r.__dict__) for r in self.references]
        out["storage"] = self.storage
        if self.defaults:
            out["defaults"] = self.defaults
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


def load_workspace(folder: str | os.PathLike[str]) -> Workspace:
    """Load and validate ``folder/demix.yaml`` (a workspace of checkpoints, or a table workspace).

    Raises:
        WorkspaceError: Missing folder or manifest, malformed YAML, missing or invalid fields.
    """
    root, manifest, data = _read_manifest(folder)
    check_top(manifest, data)
    check_defaults(manifest, data.get("defaults") or {})
    if data.get("kind") is not None:
        return _load_table(root, manifest, data)
    comps = [ComponentEntry(**c) for c in entries(manifest, data, "components", ComponentEntry)]
    datasets = [DatasetEntry(**d) for d in entries(manifest, data, "datasets", DatasetEntry)]
    refs = [ReferenceEntry(**r) for r in entries(manifest, data, "references", ReferenceEntry)]
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


def _read_manifest(folder: str | os.PathLike[str]) -> tuple[Path, Path, dict[str, Any]]:
    """(absolute folder, manifest file, its YAML as a mapping), or a one-line :class:`WorkspaceError`."""
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
    return root, manifest, data


def _load_table(root: Path, manifest: Path, data: dict[str, Any]) -> Workspace:
    """A table workspace (``kind: table``): its ``domains`` become components without checkpoints."""
    if data["kind"] != KIND_TABLE:
        raise WorkspaceError(f"{manifest}: kind is {data['kind']!r}; write 'kind: {KIND_TABLE}' for a table of past "
                             "runs, or leave it out for a workspace of checkpoints")
    extra = [k for k in ("components", "base", "tokenizer", "datasets", "heldout_tokens") if data.get(k)]
    if extra:
        raise WorkspaceError(f"{manifest}: a table workspace has no {extra[0]}; remove '{extra[0]}' (its mixture "
                             "columns are listed under 'domains')")
    names = data.get("domains")
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise WorkspaceError(f"{manifest}: a table workspace needs 'domains', the list of its mixture columns "
                             "(e.g. domains: [web, code])")
    if len(set(names)) != len(names):
        raise WorkspaceError(f"{manifest}: domain names repeat; give each domain once")
    check_names(names)
    refs = [ReferenceEntry(**r) for r in entries(manifest, data, "references", ReferenceEntry)]
    for i, ref in enumerate(refs):
        unknown = [k for k in ref.mixture if k not in names]
        if unknown or ref.scores is None:
            why = f"mixes unknown domain {unknown[0]!r}" if unknown else "lacks 'scores'"
            raise WorkspaceError(f"{manifest}: references[{i}] {why}; import the references again with "
                                 "`demix import-runs --references`")
    return Workspace(root=root, name=str(data.get("name", root.name)),
                     components=[ComponentEntry(name=n, path="", domain=n) for n in names], references=refs,
                     suite=KIND_TABLE, storage=str(data.get("storage", DEFAULT_STORAGE)),
                     defaults=dict(data.get("defaults") or {}),
                     budget=Budget.from_dict(data.get("budget"), where=f"{manifest}: budget"), kind=KIND_TABLE)
