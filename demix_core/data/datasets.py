"""The demo's candidate datasets: which sources make each, and how they are prepared on disk.

| dataset | domain  | sources                              |
|---------|---------|--------------------------------------|
| prose   | general | Austen, Moby-Dick, State of the Union (also the general data mixed into components) |
| code    | code    | the running Python's standard library |
| docs    | code    | Python 3.11 documentation sources    |
| formal  | math    | Metamath set.mm (no proofs), PARI/GP manuals |
| math    | math    | generated worked problems (mathgen)  |

As in real corpora, web-like text is far larger than code or math: the demo keeps at most ``max_train_bytes`` of
training text for every dataset but the general one (held-out text is split off first, so it stays as large), so
the natural mixture (weights proportional to training tokens) leans on prose the way a team's mixture leans on web
text, and "can we beat the mixture we train today?" is a real question.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from demix_core.data import mathgen
from demix_core.data.sources import SOURCES, Document, load_source
from demix_core.data.split import cap_documents, split_documents, write_documents
from demix_core.errors import DataError

GENERAL = "prose"


@dataclass(frozen=True)
class DatasetDef:
    """A candidate dataset made of sources (or of generated math when ``generated``)."""

    name: str
    domain: str
    sources: tuple[str, ...] = ()
    generated: bool = False


@dataclass(frozen=True)
class DatasetSpec:
    """A prepared dataset: its files and size."""

    name: str
    domain: str
    train: Path
    heldout: Path
    train_bytes: int
    heldout_bytes: int
    documents: int
    sources: tuple[str, ...]
    licenses: tuple[str, ...]


DEMO_DATASETS = (
    DatasetDef("prose", "general", ("austen", "mobydick", "sotu")),
    DatasetDef("code", "code", ("stdlib",)),
    DatasetDef("docs", "code", ("pydocs",)),
    DatasetDef("formal", "math", ("metamath", "pari")),
    DatasetDef("math", "math", generated=True),
)


def prepare_datasets(
    out_dir: Path, *, max_bytes_per_source: int | None = 4_000_000, heldout_fraction: float = 0.05,
    max_train_bytes: int | None = None, seed: int = 0, definitions: tuple[DatasetDef, ...] = DEMO_DATASETS,
    log: Callable[[str], None] = print,
) -> list[DatasetSpec]:
    """Fetch the sources, split by document, and write ``<name>.train.txt`` / ``<name>.heldout.txt``.

    ``max_train_bytes`` caps the training text of every dataset but :data:`GENERAL` (after the held-out split, a
    deterministic subset of its training documents); None keeps all of it.

    A source that cannot be fetched is reported through ``log`` and skipped; a dataset left with no
    source is skipped. Files already written are reused (delete the folder to rebuild).

    Returns:
        The prepared datasets, in definition order.
    """
    specs = []
    for d in definitions:
        train_path, held_path = out_dir / f"{d.name}.train.txt", out_dir / f"{d.name}.heldout.txt"
        docs: list[Document] = []
        used: list[str] = []
        if d.generated:
            budget = max_bytes_per_source or 4_000_000
            docs = list(mathgen.documents(budget, seed=seed))
            used = ["mathgen"]
        else:
            for name in d.sources:
                try:
                    docs.extend(cap_documents(load_source(name), max_bytes_per_source))
                    used.append(name)
                except DataError as exc:
                    log(f"warning: skipping source {name!r} of dataset {d.name!r}: {exc}")
        if not docs:
            log(f"warning: dataset {d.name!r} has no data and is left out")
            continue
        train, held = split_documents(docs, heldout_fraction)
        if d.name != GENERAL:
            train = cap_documents(train, max_train_bytes)
        tb = write_documents(train, train_path) if not train_path.exists() else train_path.stat().st_size
        hb = write_documents(held, held_path) if not held_path.exists() else held_path.stat().st_size
        licenses = tuple(sorted({SOURCES[s].license for s in used if s in SOURCES} | (
            {"generated (this project)"} if d.generated else set())))
        specs.append(DatasetSpec(d.name, d.domain, train_path, held_path, tb, hb, len(docs), tuple(used), licenses))
        log(f"dataset {d.name:<7} ({d.domain}): {len(train):,} train / {len(held):,} held-out documents, "
            f"{tb / 1e6:.1f} MB + {hb / 1e6:.2f} MB from {', '.join(used)}")
    if not any(s.name == GENERAL for s in specs):
        raise DataError("no general prose could be prepared; the demo needs it to train the base")
    return specs
