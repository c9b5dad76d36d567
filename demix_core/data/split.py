"""Deterministic train / held-out split by document, and the dataset files the trainer reads.

A document goes to held-out when a hash of its id falls below the held-out fraction, so the split does
not depend on document order, on the other documents, or on the machine. Files hold documents
separated by the end-of-text token on its own line (:data:`DOC_SEPARATOR`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from pathlib import Path

from demix_core.data.sources import Document

DOC_SEPARATOR = "\n<|endoftext|>\n"


def is_heldout(doc_id: str, fraction: float, *, salt: str = "demix") -> bool:
    """Stable membership of ``doc_id`` in the held-out split."""
    digest = hashlib.sha256(f"{salt}:{doc_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < fraction


def split_documents(docs: Iterable[Document], heldout_fraction: float = 0.05) -> tuple[list[Document], list[Document]]:
    """(train, held-out), each sorted by id. At least one document goes to each side when possible."""
    train: list[Document] = []
    held: list[Document] = []
    for d in docs:
        (held if is_heldout(d.id, heldout_fraction) else train).append(d)
    train.sort(key=lambda d: d.id)
    held.sort(key=lambda d: d.id)
    if not held and len(train) > 1:  # tiny corpora: move the document with the smallest hash
        pick = min(train, key=lambda d: hashlib.sha256(f"demix:{d.id}".encode()).digest())
        train.remove(pick)
        held.append(pick)
    return train, held


def cap_documents(docs: Sequence[Document], max_bytes: int | None) -> list[Document]:
    """A deterministic subset of about ``max_bytes``: documents in hash order until the budget is met."""
    if max_bytes is None:
        return list(docs)
    ordered = sorted(docs, key=lambda d: hashlib.sha256(f"cap:{d.id}".encode()).digest())
    out, total = [], 0
    for d in ordered:
        if total >= max_bytes:
            break
        out.append(d)
        total += len(d.text.encode("utf-8"))
    return out


def write_documents(docs: Sequence[Document], path: Path) -> int:
    """Write documents separated by :data:`DOC_SEPARATOR`; return the bytes written."""
    text = DOC_SEPARATOR.join(d.text for d in docs)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return len(text.encode("utf-8"))


def read_documents(path: Path) -> list[str]:
    """Documents of a file written by :func:`write_documents`."""
    return [d for d in path.read_text(encoding="utf-8").split(DOC_SEPARATOR) if d.strip()]
