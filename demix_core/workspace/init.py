"""Make and extend a workspace from checkpoints trained elsewhere (``demix init``, ``demix workspace add-*``).

Each change is prepared first (every input checked, the compatibility report computed, nothing written)
and saved second, so the CLI can print the report and the dashboard can show it before saving. A change
whose checkpoints cannot be merged is refused at save time with one line naming the first mismatches;
the manifest is written atomically, and the checkpoints are referenced where they are, never copied.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from demix_core.data.readers import read_prefix
from demix_core.errors import CompatibilityError, ConfigError, WorkspaceError
from demix_core.io.checkpoints import Checkpoint, CompatibilityReport, check_compatibility, open_checkpoint
from demix_core.mixing.mixture import check_names
from demix_core.workspace.manifest import (
    DEFAULT_HELDOUT_TOKENS,
    MANIFEST,
    MIN_HELDOUT_TOKENS,
    ComponentEntry,
    DatasetEntry,
    ReferenceEntry,
    Workspace,
    load_workspace,
)


@dataclass
class Prepared:
    """A checked, not yet saved workspace and the compatibility report of its checkpoints."""

    workspace: Workspace
    report: CompatibilityReport
    action: str  # what saving does, for messages: "create", "add component x", ...

    def save(self, *, force: bool = False) -> Path:
        """Write the manifest atomically.

        Raises:
            CompatibilityError: The checkpoints cannot be merged (nothing is written).
            WorkspaceError: ``create`` into a folder that already holds a workspace, without ``force``.
        """
        if not self.report.ok:
            raise CompatibilityError(f"cannot {self.action}: the checkpoints cannot be merged: "
                                     + "; ".join(self.report.mismatches[:3])
                                     + "; use checkpoints fine-tuned from the same base (nothing was written)")
        if self.action == "create":
            _refuse_existing(self.workspace.root, force)
        return self.workspace.save()


def split_list(text: str | Sequence[str] | None) -> list[str]:
    """``"a, b"`` or ``["a", "b"]`` -> ``["a", "b"]`` (empty entries dropped)."""
    if text is None:
        return []
    items = text.split(",") if isinstance(text, str) else list(text)
    return [s.strip() for s in items if s and s.strip()]


def manifest_path(root: Path, path: str | os.PathLike[str]) -> str:
    """How a path given by a person (absolute, or relative to the current folder) is written in the manifest:
    relative to the workspace when it lies inside it, else absolute."""
    p = Path(path).expanduser().resolve()
    try:
        return str(p.relative_to(root.resolve()))
    except ValueError:
        return str(p)


def check_heldout(path: str | os.PathLike[str], text_field: str = "text") -> None:
    """Read the start of a held-out file: it must exist, be of a known format, hold text in ``text_field``.

    Raises:
        DataError: Missing, empty, malformed, or without the text field / column.
    """
    read_prefix(path, text_field=text_field, max_chars=1 << 16)


def _refuse_existing(root: Path, force: bool) -> None:
    if (root / MANIFEST).exists() and not force:
        raise WorkspaceError(f"{root} already holds a workspace ({MANIFEST}); pass --force to replace its manifest, "
                             "or add to it with `demix workspace add-component`")


def _report(components: Sequence[Checkpoint], base: Checkpoint | None = None) -> CompatibilityReport:
    """The components' report, with the base checked against the first component (its tokenizer only when it
    has one)."""
    report = check_compatibility(components)
    if base is None:
        return report
    with_base = check_compatibility([components[0], base], check_tokenizer=bool(base.tokenizer_hash))
    return CompatibilityReport([*components, base], report.mismatches + with_base.mismatches)


def prepare_init(
    root: str | os.PathLike[str], components: Sequence[str], *, names: Sequence[str] = (),
    domains: Sequence[str] = (), base: str | None = None, heldout: Sequence[str] = (), text_field: str = "text",
    heldout_tokens: int = DEFAULT_HELDOUT_TOKENS, tokenizer: str | None = None, force: bool = False,
) -> Prepared:
    """Check everything a new workspace needs; write nothing.

    Args:
        root: The workspace folder (created when saved).
        components: Checkpoint folders (absolute, or relative to the current folder).
        names: One name per component (default: the folder names).
        domains: One domain per component (default: the component's name, an objective of its own).
        base: The components' shared base checkpoint.
        heldout: One held-out text file per component (``.txt``, ``.jsonl``, ``.jsonl.gz``, ``.parquet``).
        text_field: The JSON field / parquet column holding the text.
        heldout_tokens: Tokens per held-out file the quick suite scores (the first ones of each file).
        tokenizer: A tokenizer folder, when the first component has none.
        force: Replace an existing manifest.

    Raises:
        WorkspaceError: The folder already holds a workspace (without ``force``).
        ConfigError: Counts of names / domains / held-out files do not match the components.
        CheckpointError: A checkpoint cannot be opened.
        DataError: A held-out file is missing, empty or lacks the text field.
        MixtureError: A component name is invalid.
    """
    folder = Path(root).expanduser().resolve()
    _refuse_existing(folder, force)
    if folder.exists() and not folder.is_dir():
        raise WorkspaceError(f"{folder} is a file; give a folder for the workspace")
    paths, names, domains, heldout = _lists(components, names, domains, heldout)
    if heldout_tokens < MIN_HELDOUT_TOKENS:
        raise ConfigError(f"held-out tokens {heldout_tokens:,} is too few; give at least {MIN_HELDOUT_TOKENS:,}")
    ckpts = [open_checkpoint(p) for p in paths]
    names = names or [c.name for c in ckpts]
    check_names(names)
    if len(set(names)) != len(names):
        raise ConfigError(f"component names repeat ({', '.join(names)}); pass --names a,b,... with unique names")
    domains = domains or list(names)
    for f in heldout:
        check_heldout(f, text_field)
    base_ckpt = open_checkpoint(base) if base else None
    if tokenizer is None and not ckpts[0].tokenizer_hash:
        raise ConfigError(f"{ckpts[0].path} has no tokenizer files; pass --tokenizer DIR (the components' tokenizer)")
    if tokenizer is not None and not Path(tokenizer).is_dir():
        raise ConfigError(f"tokenizer folder {tokenizer} does not exist; give the folder saved with save_pretrained")
    ws = Workspace(
        root=folder, name=folder.name,
        components=[ComponentEntry(name=n, path=manifest_path(folder, p), domain=d, dataset=n if heldout else "")
                    for n, p, d in zip(names, paths, domains)],
        base=manifest_path(folder, base) if base else None,
        tokenizer=manifest_path(folder, tokenizer) if tokenizer else None,
        datasets=[DatasetEntry(name=n, domain=d, heldout=manifest_path(folder, f),
                               text_field="" if text_field == "text" else text_field)
                  for n, d, f in zip(names, domains, heldout)],
        suite="quick" if heldout else "paper",
        heldout_tokens=heldout_tokens if heldout else None,
    )
    return Prepared(ws, _report(ckpts, base_ckpt), "create")


def _lists(components: Sequence[str], names: Sequence[str], domains: Sequence[str],
           heldout: Sequence[str]) -> tuple[list[str], list[str], list[str], list[str]]:
    """The comma lists of ``demix init`` split, with one entry per component where given.

    Raises:
        ConfigError: No components, or a list whose length is not the components'.
    """
    paths = split_list(components)
    if not paths:
        raise ConfigError("no components given; pass --components DIR1,DIR2,... (checkpoint folders)")
    lists = split_list(names), split_list(domains), split_list(heldout)
    for what, values in zip(("--names", "--domains", "--heldout"), lists):
        if values and len(values) != len(paths):
            raise ConfigError(f"{what} gives {len(values)} entries for {len(paths)} components; give one per component")
    return paths, *lists


def prepare_component(root: str | os.PathLike[str], name: str, path: str, *, domain: str | None = None,
                      heldout: str | None = None, text_field: str = "text") -> Prepared:
    """Check a new component against the workspace's (name, compatibility, held-out file); write nothing.

    Raises:
        WorkspaceError: No workspace at ``root``, or the name is taken.
        CheckpointError: The checkpoint cannot be opened.
        DataError: The held-out file is missing, empty or lacks the text field.
    """
    ws = load_workspace(root)
    check_names([name])
    if name in ws.component_names or name in {d.name for d in ws.datasets}:
        raise WorkspaceError(f"workspace {ws.root} already has a component or dataset {name!r}; choose another name")
    if heldout:
        check_heldout(heldout, text_field)
    existing = [open_checkpoint(p) for p in ws.component_paths()]
    new = open_checkpoint(path)
    domain = domain or name
    ws = dataclasses.replace(ws, components=[*ws.components, ComponentEntry(
        name=name, path=manifest_path(ws.root, path), domain=domain, dataset=name if heldout else "")],
        datasets=list(ws.datasets))
    if heldout:
        ws.datasets.append(DatasetEntry(name=name, domain=domain, heldout=manifest_path(ws.root, heldout),
                                        text_field="" if text_field == "text" else text_field))
        if ws.heldout_tokens is None and len(ws.datasets) == 1:
            ws.heldout_tokens = DEFAULT_HELDOUT_TOKENS
    return Prepared(ws, check_compatibility([*existing, new]), f"add component {name!r}")


def prepare_reference(root: str | os.PathLike[str], name: str, path: str, mixture: str) -> Prepared:
    """Check a reference model (trained on ``mixture``) against the workspace's components; write nothing.

    Raises:
        WorkspaceError: No workspace at ``root``, or the name is taken.
        MixtureError: The mixture names unknown components or is invalid.
        CheckpointError: The checkpoint cannot be opened.
    """
    ws = load_workspace(root)
    if not name.strip():
        raise ConfigError("reference name is empty; pass --name NAME")
    if name in {r.name for r in ws.references}:
        raise WorkspaceError(f"workspace {ws.root} already has a reference {name!r}; choose another name")
    mix = ws.parse_mixture(mixture)
    ref = open_checkpoint(path)
    first = open_checkpoint(ws.component_paths()[0])
    ws = dataclasses.replace(ws, references=[*ws.references, ReferenceEntry(
        name=name, path=manifest_path(ws.root, path), mixture=mix.as_dict())])
    return Prepared(ws, check_compatibility([first, ref]), f"add reference {name!r}")
