"""Generated math is correct, splits are disjoint and stable, readers and the tokenizer behave."""

from __future__ import annotations

import gzip
import json
import random
import re
import struct
from pathlib import Path

import pytest

from demix_core.data import mathgen
from demix_core.data.rdata import lazyload_index, read_lazyload, unserialize
from demix_core.data.readers import read_texts
from demix_core.data.sources import Document, python_stdlib
from demix_core.data.split import (
    DOC_SEPARATOR,
    cap_documents,
    read_documents,
    split_documents,
    write_documents,
)
from demix_core.data.tokenizer import train_tokenizer
from demix_core.errors import DataError

STEP = re.compile(r"^Step \d+: .*?((?:\d+ [-+*/] )+\d+) = (-?\d+)$")


@pytest.mark.parametrize("seed", range(5))
def test_generated_solutions_are_correct(seed: int) -> None:
    for p in mathgen.problems(400, seed=seed):
        text = p.render()
        lines = text.splitlines()
        assert lines[0].startswith("Question: ") and lines[1] == "Solution:"
        last = None
        for line in lines[2:-1]:
            m = STEP.match(line)
            assert m, f"unparsable step {line!r} in\n{text}"
            value = eval(m.group(1), {"__builtins__": {}})  # noqa: S307 - arithmetic from our own generator
            assert value == int(m.group(2)) and float(value).is_integer(), line
            last = int(m.group(2))
        answer = int(lines[-1].removeprefix("Answer: "))
        assert answer == last == p.answer


def test_generated_word_problems_check_out_independently() -> None:
    """Recompute answers from the question text alone, not from the steps."""
    for p in mathgen.problems(200, seed=11):
        q = p.question
        if p.kind == "equation":
            a, b, rhs = map(int, re.match(r"Solve for x: (\d+)x \+ (\d+) = (\d+)\.", q).groups())
            assert a * p.answer + b == rhs
        elif p.kind == "fraction":
            num, den, whole = map(int, re.match(r"What is (\d+)/(\d+) of (\d+)\?", q).groups())
            assert p.answer * den == num * whole
        elif p.kind == "percent":
            price, pct = map(int, re.match(r"A jacket costs \$(\d+)\. It is on sale for (\d+)% off", q).groups())
            assert p.answer * 100 == price * (100 - pct)


def test_generator_is_deterministic() -> None:
    a = [p.render() for p in mathgen.problems(50, seed=3)]
    b = [p.render() for p in mathgen.problems(50, seed=3)]
    c = [p.render() for p in mathgen.problems(50, seed=4)]
    assert a == b and a != c
    assert {p.kind for p in mathgen.problems(16, seed=0)} == set(mathgen.GENERATORS)


def docs(n: int) -> list[Document]:
    return [Document(f"doc/{i}", f"text {i} " * 5) for i in range(n)]


def test_split_is_disjoint_stable_and_order_independent() -> None:
    corpus = docs(2000)
    train, held = split_documents(corpus, 0.05)
    shuffled = corpus[:]
    random.Random(1).shuffle(shuffled)
    train2, held2 = split_documents(shuffled, 0.05)
    assert [d.id for d in train] == [d.id for d in train2] and [d.id for d in held] == [d.id for d in held2]
    assert not {d.id for d in train} & {d.id for d in held}
    assert len(train) + len(held) == 2000
    assert 50 < len(held) < 150
    # A document's side does not depend on the other documents.
    sub_train, sub_held = split_documents(corpus[:500], 0.05)
    assert {d.id for d in sub_held} == {d.id for d in held if int(d.id.split("/")[1]) < 500}


def test_tiny_corpus_still_gets_a_heldout_document() -> None:
    train, held = split_documents(docs(3), 0.01)
    assert len(held) == 1 and len(train) == 2


def test_cap_is_deterministic_subset() -> None:
    corpus = docs(100)
    a = cap_documents(corpus, 300)
    assert a == cap_documents(list(reversed(corpus)), 300)
    assert 300 <= sum(len(d.text) for d in a) < 300 + 40


def test_write_and_read_documents(tmp_path: Path) -> None:
    corpus = docs(5)
    write_documents(corpus, tmp_path / "x.txt")
    assert read_documents(tmp_path / "x.txt") == [d.text for d in corpus]
    assert read_texts(tmp_path / "x.txt") == [d.text for d in corpus]


def test_readers_jsonl_parquet_and_errors(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    (tmp_path / "a.jsonl").write_text('{"text": "hello"}\n\n{"text": "world", "id": 2}\n')
    assert read_texts(tmp_path / "a.jsonl") == ["hello", "world"]
    (tmp_path / "b.jsonl").write_text('{"content": "x"}\n')
    assert read_texts(tmp_path / "b.jsonl", text_field="content") == ["x"]
    with pytest.raises(DataError, match="no 'text' field"):
        read_texts(tmp_path / "b.jsonl")
    (tmp_path / "c.jsonl").write_text("{not json\n")
    with pytest.raises(DataError, match="line 1 is not valid JSON"):
        read_texts(tmp_path / "c.jsonl")
    pq.write_table(pa.table({"text": ["one", "two"]}), tmp_path / "d.parquet")
    assert read_texts(tmp_path / "d.parquet") == ["one", "two"]
    (tmp_path / "e.parquet").write_bytes(b"garbage")
    with pytest.raises(DataError, match="cannot read parquet"):
        read_texts(tmp_path / "e.parquet")
    (tmp_path / "f.txt").write_text("  \n")
    with pytest.raises(DataError, match="is empty"):
        read_texts(tmp_path / "f.txt")
    (tmp_path / "g.csv").write_text("a,b")
    with pytest.raises(DataError, match="unknown format .csv"):
        read_texts(tmp_path / "g.csv")
    (tmp_path / "h.txt").write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(DataError, match="cannot read"):
        read_texts(tmp_path / "h.txt")
    with pytest.raises(DataError, match="does not exist"):
        read_texts(tmp_path / "missing.txt")


def _xdr_strsxp(values: list[str]) -> bytes:
    out = struct.pack(">ii", 16, len(values))
    for v in values:
        raw = v.encode()
        out += struct.pack(">ii", 9 | (1 << 15), len(raw)) + raw
    return out


def test_r_serialization_reader_on_a_constructed_database(tmp_path: Path) -> None:
    """A lazy-load DB built by hand: index (gzip RDS) + one zlib record holding a character vector."""
    import zlib

    header = b"X\n" + struct.pack(">iii", 2, 0x040000, 0x020300)
    record_obj = header + _xdr_strsxp(["It is a truth universally acknowledged", "", "CHAPTER 2"])
    record = struct.pack(">i", len(record_obj)) + zlib.compress(record_obj)
    (tmp_path / "Rdata.rdb").write_bytes(record)
    # index: list(variables = list(book = c(0L, len))) with names attributes
    def named_list(names: list[str], items: list[bytes]) -> bytes:
        body = struct.pack(">ii", 19 | (1 << 9), len(items)) + b"".join(items)
        attr = struct.pack(">i", 2 | (1 << 10)) + struct.pack(">i", 1) + struct.pack(">ii", 9, 5) + b"names"
        return body + attr + _xdr_strsxp(names) + struct.pack(">i", 254)
    ints = struct.pack(">ii", 13, 2) + struct.pack(">ii", 0, len(record))
    index = header + named_list(["variables"], [named_list(["book"], [ints])])
    (tmp_path / "Rdata.rdx").write_bytes(gzip.compress(index))
    assert lazyload_index(tmp_path / "Rdata.rdx") == {"book": (0, len(record))}
    objs = read_lazyload(tmp_path / "Rdata.rdb", tmp_path / "Rdata.rdx")
    assert objs["book"].value == ["It is a truth universally acknowledged", "", "CHAPTER 2"]
    with pytest.raises(DataError, match="XDR"):
        unserialize(b"A\n")


def test_stdlib_source_always_works() -> None:
    docs_ = list(python_stdlib())
    assert len(docs_) > 100
    assert all(d.id.startswith("stdlib/") for d in docs_)


def test_tokenizer_round_trip_and_determinism(tmp_path: Path) -> None:
    from transformers import AutoTokenizer

    f = tmp_path / "t.txt"
    write_documents([Document(str(i), p.render()) for i, p in enumerate(mathgen.problems(200, seed=0))], f)
    a = train_tokenizer([f], tmp_path / "a", vocab_size=400)
    b = train_tokenizer([f], tmp_path / "b", vocab_size=400)
    assert (a / "tokenizer.json").read_bytes() == (b / "tokenizer.json").read_bytes()
    tok = AutoTokenizer.from_pretrained(str(a), local_files_only=True)
    text = "Question: What is 3/4 of 48?\n  def f(x): return x  # ünïcode"
    assert tok.decode(tok(text).input_ids) == text
    assert tok.eos_token == "<|endoftext|>" and len(tok) == 400
    assert json.loads((a / "tokenizer.json").read_text())["model"]["type"] == "BPE"
    assert DOC_SEPARATOR.strip() == tok.eos_token
