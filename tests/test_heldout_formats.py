"""Held-out text in the formats teams have, sliced deterministically; one rule for every task's domain."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from demix_core.data.readers import read_prefix, read_texts
from demix_core.data.split import DOC_SEPARATOR
from demix_core.errors import DataError
from demix_core.evaluate.heldout import build_heldout

DOCS = [f"document {i}: " + "the quick brown fox jumps over the lazy dog " * (5 + i % 7) for i in range(60)]


def write_all(folder: Path, field: str = "text") -> dict[str, Path]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    out = {".txt": folder / "h.txt", ".jsonl": folder / "h.jsonl", ".jsonl.gz": folder / "h.jsonl.gz",
           ".parquet": folder / "h.parquet"}
    out[".txt"].write_text(DOC_SEPARATOR.join(DOCS), encoding="utf-8")
    rows = "".join(json.dumps({field: d, "id": i}) + "\n" for i, d in enumerate(DOCS))
    out[".jsonl"].write_text(rows, encoding="utf-8")
    with gzip.open(out[".jsonl.gz"], "wt", encoding="utf-8") as fh:
        fh.write(rows)
    pq.write_table(pa.table({field: DOCS}), out[".parquet"], row_group_size=7)  # several row groups
    return out


def test_every_format_reads_the_same_documents(tmp_path: Path) -> None:
    for suffix, path in write_all(tmp_path).items():
        assert read_texts(path) == DOCS, suffix
    other = tmp_path / "other"
    other.mkdir()
    for suffix, path in write_all(other, field="body").items():
        if suffix != ".txt":
            assert read_texts(path, text_field="body") == DOCS, suffix
            with pytest.raises(DataError, match="pass --text-field NAME"):
                read_texts(path)


def test_prefix_reads_only_the_start_and_says_when_there_is_more(tmp_path: Path) -> None:
    for suffix, path in write_all(tmp_path).items():
        texts, more = read_prefix(path, max_chars=500)
        assert more and sum(map(len, texts)) == 500 and "".join(texts) == "".join(DOCS)[:500], suffix
        texts, more = read_prefix(path, max_chars=10**9)
        assert not more and texts == DOCS, suffix


def test_heldout_slice_is_the_same_first_tokens_whatever_the_format(tmp_path: Path, tiny_tokenizer) -> None:  # noqa: ANN001
    sets = {s: build_heldout(tiny_tokenizer, p, seq_len=32, max_tokens=256) for s, p in write_all(tmp_path).items()}
    first = sets[".txt"]
    assert first.tokens == 256 and first.windows.shape == (8, 33)
    for suffix, hs in sets.items():
        assert hs.windows.equal(first.windows) and hs.nbytes == first.nbytes, suffix
    again = build_heldout(tiny_tokenizer, tmp_path / "h.parquet", seq_len=32, max_tokens=256)
    assert again.windows.equal(first.windows)  # deterministic


def test_a_long_file_without_separators_is_read_in_part(tmp_path: Path, tiny_tokenizer) -> None:  # noqa: ANN001
    big = tmp_path / "big.txt"
    big.write_text("the quick brown fox jumps over the lazy dog. " * 200_000, encoding="utf-8")  # 9 MB, one document
    hs = build_heldout(tiny_tokenizer, big, seq_len=128, max_tokens=1024)
    head = tmp_path / "head.txt"
    head.write_text("the quick brown fox jumps over the lazy dog. " * 2_000, encoding="utf-8")  # the same start
    assert hs.tokens == 1024 and hs.windows.equal(build_heldout(tiny_tokenizer, head, seq_len=128,
                                                                max_tokens=1024).windows)
    texts, more = read_prefix(big, max_chars=100_000)
    assert more and len(texts) == 1 and len(texts[0]) == 100_000


def test_bad_heldout_files_are_one_line(tmp_path: Path) -> None:
    (tmp_path / "e.jsonl.gz").write_bytes(gzip.compress(b"\n  \n"))
    with pytest.raises(DataError, match="is empty"):
        read_texts(tmp_path / "e.jsonl.gz")
    (tmp_path / "bad.jsonl.gz").write_bytes(b"not gzip")
    with pytest.raises(DataError, match="cannot read data file"):
        read_texts(tmp_path / "bad.jsonl.gz")
    (tmp_path / "x.txt.gz").write_bytes(b"")
    with pytest.raises(DataError, match="unknown format .gz"):
        read_texts(tmp_path / "x.txt.gz")


def test_paper_tasks_carry_their_domain_in_yaml_and_no_table_maps_them() -> None:
    import yaml

    from demix_core.evaluate import benchdata
    from demix_core.evaluate.benchdata import BENCHMARKS, paper_domains

    domains = paper_domains()
    assert domains == {"arc_easy": "general", "hellaswag": "general", "piqa": "general", "socialiqa": "general",
                       "winogrande": "general", "mbpp": "code", "humaneval": "code", "gsm8k": "math", "math": "math"}
    for name in BENCHMARKS:
        text = (benchdata.TASKS_SRC / f"{name}.yaml").read_text()
        assert f"domain: {domains[name]}" in text and "version: 1.0" in text
        assert "metadata" in yaml.safe_load(text.replace("!function", ""))
    assert all(len(entry) == 2 for entry in BENCHMARKS.values())  # variants and kind only: no domain column
