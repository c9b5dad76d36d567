"""The fast scorer equals lm-eval's simple_evaluate: our nine tasks' YAML and users' own tasks, on a tiny model."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from conftest import ROLLING_TASK_YAML

from demix_core.errors import EvaluationError

WORDS = "the a cat dog runs jumps over quick brown fox lazy river tree house red blue green".split()


def sentence(r: random.Random, n: int) -> str:
    return " ".join(r.choice(WORDS) for _ in range(n))


def write_jsonl(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


@pytest.fixture()
def bench_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Synthetic rows for our real task YAML (as `demix data benchmarks` writes them), in a private cache."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache dir"))  # a space: paths in YAML must be quoted
    from demix_core.evaluate.benchdata import benchmarks_dir

    out = benchmarks_dir()
    out.mkdir(parents=True)
    r = random.Random(0)
    mc = []
    for i in range(12):
        choices = [" " + sentence(r, r.randint(1, 4)) for _ in range(4)]
        if i % 3 == 0:  # two choices differing only in their last token
            choices[1] = choices[0] + " fox"
            choices[2] = choices[0] + " dog"
        gold = r.randrange(4)
        mc.append({"id": str(i), "context": "Question: " + sentence(r, 6) + "?\nAnswer:", "choices": choices,
                   "gold": gold, "gold_text": choices[gold]})
    write_jsonl(out / "arc_easy.jsonl", mc)
    write_jsonl(out / "winogrande.jsonl", [
        {"id": str(i), "contexts": [sentence(r, 5) + " cat", sentence(r, 5) + " dog"], "continuation": c,
         "gold": i % 2, "gold_text": c} for i, c in enumerate(" " + sentence(r, 4) + "." for _ in range(10))])
    gold = [{"id": str(i), "context": "Question: " + sentence(r, 8) + "\nAnswer:",
             "target": " " + sentence(r, r.randint(3, 12))} for i in range(9)]
    gold.append({"id": "long", "context": sentence(r, 400) + "\nAnswer:", "target": " " + sentence(r, 30)})  # truncated
    write_jsonl(out / "gsm8k.jsonl", gold)
    return out


@pytest.fixture()
def user_tasks(tmp_path: Path) -> Path:
    """A user's YAML folder: lm-eval's default multiple choice (few-shot), loglikelihood and rolling BPB."""
    folder = tmp_path / "my tasks"
    folder.mkdir()
    r = random.Random(1)
    write_jsonl(folder / "mc.jsonl", [{"q": sentence(r, 5), "opts": [sentence(r, 2), sentence(r, 3), sentence(r, 1)],
                                       "label": i % 3} for i in range(10)])
    write_jsonl(folder / "ll.jsonl", [{"q": sentence(r, 6), "a": sentence(r, 2)} for _ in range(8)])
    texts = [sentence(r, 20) for _ in range(5)] + [sentence(r, 500)]  # the last needs several rolling windows
    write_jsonl(folder / "text.jsonl", [{"text": t} for t in texts])

    def task_yaml(name: str, body: str) -> None:
        data = json.dumps(str(folder / f"{name}.jsonl"))
        (folder / f"my_{name}.yaml").write_text(
            f"task: my_{name}\ndataset_path: json\ndataset_kwargs:\n  data_files:\n    train: {data}\n"
            f"    test: {data}\ntest_split: test\n" + body)

    task_yaml("mc", """fewshot_split: train
num_fewshot: 2
fewshot_config:
  sampler: first_n
output_type: multiple_choice
doc_to_text: "Q: {{q}}\\nA:"
doc_to_choice: opts
doc_to_target: label
metric_list:
  - metric: acc
  - metric: acc_norm
metadata:
  domain: reasoning
""")
    task_yaml("ll", """output_type: loglikelihood
doc_to_text: "{{q}} ="
doc_to_target: "{{a}}"
metric_list:
  - metric: acc
  - metric: perplexity
""")
    task_yaml("text", ROLLING_TASK_YAML)
    return folder


def test_fast_scores_equal_simple_evaluate(bench_cache: Path, user_tasks: Path, model_and_tokenizer) -> None:
    from lm_eval import simple_evaluate
    from lm_eval.models.huggingface import HFLM

    from demix_core.evaluate.lmeval import FastTaskScorer, load_tasks, task_manager

    model, tok = model_and_tokenizer
    names = ["arc_easy", "winogrande", "gsm8k", "my_mc", "my_ll", "my_text"]
    fast = FastTaskScorer(load_tasks(names, include_paths=[user_tasks], builtin=False), model, tok, limit=10,
                          batch_tokens=600, min_prefix=4, min_saved=8)
    assert len(fast.batches) > 2  # several length buckets
    # answer choices share their question, few-shot requests their examples: computed once per group
    assert fast.groups and fast.tokens < fast.tokens_unshared
    assert max(len(u.tokens) for u in fast.units) == fast.max_length  # left truncation and full rolling windows
    ours = fast.score(model)
    theirs = simple_evaluate(model=HFLM(pretrained=model, tokenizer=tok, batch_size=3),
                             tasks=[f"demix_{n}" if n in names[:3] else n for n in names],
                             task_manager=task_manager([user_tasks]), limit=10, bootstrap_iters=0)["results"]
    compared = set()
    for task, metrics in theirs.items():
        for key, value in metrics.items():
            metric, _, filt = key.partition(",")
            if filt == "none" and not metric.endswith("_stderr"):
                assert ours[task][metric] == pytest.approx(value, rel=1e-6, abs=1e-6), (task, metric)
                compared.add(f"{task}/{metric}")
    assert compared == {
        "demix_arc_easy/acc", "demix_arc_easy/acc_norm", "demix_arc_easy/bits_per_byte",
        "demix_winogrande/acc", "demix_winogrande/bits_per_byte", "demix_gsm8k/bits_per_byte",
        "my_mc/acc", "my_mc/acc_norm", "my_ll/acc", "my_ll/perplexity",
        "my_text/word_perplexity", "my_text/byte_perplexity", "my_text/bits_per_byte"}
    # a second call on the same scorer (what each trial does) gives the same numbers
    assert fast.score(model) == ours
    fast.head_only = False  # full logits, as lm-eval computes them: the same numbers
    full = fast.score(model)
    assert all(full[t][m] == pytest.approx(v, rel=1e-6, abs=1e-6) for t, ms in ours.items() for m, v in ms.items())
    plain = FastTaskScorer(fast.tasks, model, tok, limit=10, batch_tokens=600, share_prefixes=False)
    assert not plain.groups and plain.tokens == plain.tokens_unshared == fast.tokens_unshared
    unshared = plain.score(model)
    assert all(unshared[t][m] == pytest.approx(v, rel=1e-6, abs=1e-6) for t, ms in ours.items() for m, v in ms.items())


def test_bpb_is_bits_over_bytes_weighted_across_docs(bench_cache: Path, model_and_tokenizer) -> None:
    """lm-eval's bits_per_byte: -sum over docs of ll / sum over docs of UTF-8 bytes / ln 2."""
    import math

    from demix_core.evaluate.lmeval import FastTaskScorer, load_tasks

    model, tok = model_and_tokenizer
    fast = FastTaskScorer(load_tasks(["gsm8k"], builtin=False), model, tok, limit=4)
    lls, _ = fast.loglikelihoods(model)
    rows = fast.instances["demix_gsm8k"]
    nbytes = sum(len(inst.doc["target"].encode()) for inst, _ in rows)
    expected = -sum(lls[u[0]] for _, u in rows) / nbytes / math.log(2)
    assert fast.score(model)["demix_gsm8k"]["bits_per_byte"] == pytest.approx(expected, rel=1e-12)


def test_unknown_task_lists_near_matches(bench_cache: Path) -> None:
    from demix_core.evaluate.lmeval import load_tasks

    with pytest.raises(EvaluationError, match=r"unknown task 'arc_esy'.*did you mean: arc_easy") as info:
        load_tasks(["arc_esy"], builtin=False)
    assert "\n" not in str(info.value)


def test_missing_data_names_the_setup_command(bench_cache: Path) -> None:
    from demix_core.evaluate.lmeval import load_tasks

    with pytest.raises(EvaluationError, match=r"benchmark 'piqa' has no data .*run `demix data benchmarks`"):
        load_tasks(["piqa"], builtin=False)


def test_empty_subsample_is_refused(bench_cache: Path, model_and_tokenizer, tmp_path: Path) -> None:
    from demix_core.evaluate.lmeval import FastTaskScorer, load_tasks

    model, tok = model_and_tokenizer
    with pytest.raises(EvaluationError, match="at least 1 document"):
        FastTaskScorer(load_tasks(["arc_easy"], builtin=False), model, tok, limit=0)
    (bench_cache / "arc_easy.jsonl").write_text("")  # converted, but nothing in it
    with pytest.raises(EvaluationError, match=r"'arc_easy' has an empty data file .*demix data benchmarks --force"):
        load_tasks(["arc_easy"], builtin=False)


def test_bad_include_path(bench_cache: Path, tmp_path: Path) -> None:
    from demix_core.evaluate.lmeval import load_tasks

    with pytest.raises(EvaluationError, match="is not a folder"):
        load_tasks(["arc_easy"], include_paths=[tmp_path / "nope"])
