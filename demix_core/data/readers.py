"""Read users' training data: plain text, JSONL with a text field, parquet with a text column."""

from __future__ import annotations

import json
import os
from pathlib import Path

from demix_core.data.split import DOC_SEPARATOR
from demix_core.errors import DataError

FORMATS = (".txt", ".text", ".md", ".jsonl", ".parquet")


def read_texts(path: str | os.PathLike[str], *, text_field: str = "text") -> list[str]:
    """The documents of a data file.

    ``.txt`` files are split on the end-of-text separator line when present (else one document);
    ``.jsonl`` rows give ``row[text_field]``; ``.parquet`` gives the ``text_field`` column.

    Raises:
        DataError: Missing, unreadable, empty, malformed, or of an unknown format.
    """
    p = Path(path)
    if not p.exists():
        raise DataError(f"data file {p} does not exist; check the path")
    if p.is_dir():
        raise DataError(f"data path {p} is a folder; give the data files themselves")
    suffix = p.suffix.lower()
    if suffix not in FORMATS:
        raise DataError(f"data file {p} has unknown format {suffix or '(none)'}; "
                        "use .txt, .jsonl (a 'text' field) or .parquet (a 'text' column)")
    try:
        if suffix == ".jsonl":
            texts = _jsonl(p, text_field)
        elif suffix == ".parquet":
            texts = _parquet(p, text_field)
        else:
            raw = p.read_text(encoding="utf-8")
            texts = raw.split(DOC_SEPARATOR) if DOC_SEPARATOR in raw else [raw]
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read data file {p} ({exc.__class__.__name__}: {exc}); "
                        "is it UTF-8 text?") from None
    texts = [t for t in texts if t and t.strip()]
    if not texts:
        raise DataError(f"data file {p} is empty; give a file with text in it")
    return texts


def _jsonl(p: Path, field: str) -> list[str]:
    out = []
    with open(p, encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                raise DataError(f"{p} line {n} is not valid JSON; fix the line or convert the file") from None
            if not isinstance(row, dict) or field not in row:
                raise DataError(f"{p} line {n} has no {field!r} field; pass --text-field NAME")
            out.append(str(row[field]))
    return out


def _parquet(p: Path, field: str) -> list[str]:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(p)
    except Exception as exc:  # pyarrow raises several unrelated types for a broken file
        raise DataError(f"cannot read parquet file {p} ({exc.__class__.__name__}); is it a parquet file?") from None
    if field not in table.column_names:
        raise DataError(f"{p} has no {field!r} column (columns: {', '.join(table.column_names)}); "
                        "pass --text-field NAME")
    return [str(v) for v in table.column(field).to_pylist() if v is not None]
