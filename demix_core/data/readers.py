"""Read users' text: plain text, JSONL (optionally gzipped) with a text field, parquet with a text column.

Files are read lazily, document by document, so a prefix of a large file (a held-out slice) costs only
what it reads.
"""

from __future__ import annotations

import gzip
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from demix_core.data.split import DOC_SEPARATOR
from demix_core.errors import DataError

FORMATS = (".txt", ".text", ".md", ".jsonl", ".jsonl.gz", ".parquet")
_CHUNK = 1 << 20  # characters read at a time from a text file


def file_format(path: str | os.PathLike[str]) -> str:
    """The format suffix of a data file (``.jsonl.gz`` counts as one), lower case."""
    name = Path(path).name.lower()
    return ".jsonl.gz" if name.endswith(".jsonl.gz") else Path(name).suffix


def read_texts(path: str | os.PathLike[str], *, text_field: str = "text") -> list[str]:
    """The documents of a data file.

    ``.txt`` files are split on the end-of-text separator line when present (else one document);
    ``.jsonl`` / ``.jsonl.gz`` rows give ``row[text_field]``; ``.parquet`` gives the ``text_field`` column.

    Raises:
        DataError: Missing, unreadable, empty, malformed, or of an unknown format.
    """
    return read_prefix(path, text_field=text_field)[0]


def read_prefix(path: str | os.PathLike[str], *, text_field: str = "text",
                max_chars: int | None = None) -> tuple[list[str], bool]:
    """The first documents of a data file, up to ``max_chars`` characters in all (the last one cut).

    Args:
        path: A ``.txt``, ``.jsonl``, ``.jsonl.gz`` or ``.parquet`` file.
        text_field: The JSON field or parquet column holding the text.
        max_chars: Stop after this many characters (None: the whole file).

    Returns:
        The documents (empty ones dropped) and whether the file has more than was read.

    Raises:
        DataError: Missing, unreadable, empty, malformed, or of an unknown format.
    """
    p = Path(path)
    if not p.exists():
        raise DataError(f"data file {p} does not exist; check the path")
    if p.is_dir():
        raise DataError(f"data path {p} is a folder; give the data files themselves")
    suffix = file_format(p)
    if suffix not in FORMATS:
        raise DataError(f"data file {p} has unknown format {suffix or '(none)'}; use .txt, .jsonl or .jsonl.gz "
                        "(a 'text' field) or .parquet (a 'text' column)")
    texts: list[str] = []
    used, more = 0, False
    try:
        for text in _documents(p, suffix, text_field, max_chars):
            if not text.strip():
                continue
            if max_chars is not None and used + len(text) > max_chars:
                texts.append(text[: max_chars - used])
                more = True
                break
            texts.append(text)
            used += len(text)
    except (OSError, UnicodeDecodeError, EOFError) as exc:
        raise DataError(f"cannot read data file {p} ({exc.__class__.__name__}: {exc}); "
                        "is it UTF-8 text (gzip for .jsonl.gz)?") from None
    texts = [t for t in texts if t.strip()]
    if not texts:
        raise DataError(f"data file {p} is empty; give a file with text in it")
    return texts, more


def _documents(p: Path, suffix: str, field: str, max_chars: int | None) -> Iterator[str]:
    if suffix == ".jsonl":
        with open(p, encoding="utf-8") as fh:
            yield from _jsonl(fh, p, field)
    elif suffix == ".jsonl.gz":
        with gzip.open(p, "rt", encoding="utf-8") as fh:
            yield from _jsonl(fh, p, field)
    elif suffix == ".parquet":
        yield from _parquet(p, field)
    else:
        with open(p, encoding="utf-8") as fh:
            yield from _split_text(fh, max_chars)


def _split_text(fh: IO[str], max_chars: int | None) -> Iterator[str]:
    """Documents separated by :data:`DOC_SEPARATOR` (the whole file when there is none), read in chunks.

    Stops reading once the document being read is longer than ``max_chars`` (the caller cuts it).
    """
    buf = ""
    while chunk := fh.read(_CHUNK):
        buf += chunk
        parts = buf.split(DOC_SEPARATOR)
        buf = parts.pop()  # maybe cut mid-separator: kept for the next chunk
        yield from parts
        if max_chars is not None and len(buf) > max_chars:
            break
    yield buf


def _jsonl(fh: IO[str], p: Path, field: str) -> Iterator[str]:
    for n, line in enumerate(fh, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            raise DataError(f"{p} line {n} is not valid JSON; fix the line or convert the file") from None
        if not isinstance(row, dict) or field not in row:
            raise DataError(f"{p} line {n} has no {field!r} field; pass --text-field NAME")
        if row[field] is not None:
            yield str(row[field])


def _parquet(p: Path, field: str) -> Iterator[str]:
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(p)
        names = pf.schema_arrow.names
    except Exception as exc:  # pyarrow raises several unrelated types for a broken file
        raise DataError(f"cannot read parquet file {p} ({exc.__class__.__name__}); is it a parquet file?") from None
    if field not in names:
        raise DataError(f"{p} has no {field!r} column (columns: {', '.join(names)}); pass --text-field NAME")
    for batch in pf.iter_batches(columns=[field], batch_size=1024):
        yield from (str(v) for v in batch.column(0).to_pylist() if v is not None)
