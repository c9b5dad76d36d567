"""Evaluation: our fast scores equal lm-eval's simple_evaluate; suites, domains and one-line errors."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import torch

from demix_core.errors import EvaluationError
from demix_core.evaluate.scores import Scores, composite, percentile_ranks

WORDS = "the a cat dog runs jumps over quick brown fox lazy river tree house red blue green".split()


def sentence(r: random.Random, n: int) -> str:
    return " ".join(r.choice(WORDS) for _ in range(n))


@pytest.fixture()
def bench_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Synthetic data for our real task YAML, in a private cache folder."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    from demix_core.evaluate.benchdata import benchmarks_dir, write_task_dir

    out = benchmarks_dir()
    out.mkdir(parents=True)
    r = random.Random(0)
    with open(out / "arc_easy.jsonl", "w") as fh:
        for i in range(12):
            choices = [" " + sentence(r, r.randint(1, 4)) for _ in range(4)]
            gold = r.randrange(4)
            fh.write(json.dumps({"id": str(i), "context": "Question: " + sentence(r, 6) + "?\nAnswer:",
                                 "choices": choices, "gold": gold, "gold_text": choices[gold]}) + "\n")
    with open(out / "winogrande.jsonl", "w") as fh:
        for i in range(10):
            contexts = [sentence(r, 5) + " cat", sentence(r, 5) + " dog"]
            cont = " " + sentence(r, 4) + "."
            fh.write(json.dumps({"id": str(i), "contexts": contexts, "continuation": cont, "gold": i % 2,
                                 "gold_text": cont}) + "\n")
    with open(out / "gsm8k.jsonl", "w") as fh:
        for i in range(9):
            fh.write(json.dumps({"id": str(i), "context": "Question: " + sentence(r, 8) + "\nAnswer:",
                                 "target": " " + sentence(r, r.randint(3, 12))}) + "\n")
    write_task_dir()
    return out


@pytest.fixture(scope="module")
def model_and_tokenizer(tiny_family):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(str(tiny_family["alpha"]), local_files_only=True)
    model.eval()
    return model, AutoTokenizer.from_pretrained(str(tiny_family["alpha"]), local_files_only=True)


def test_fast_scores_equal_simple_evaluate(bench_cache: Path, model_and_tokenizer) -> None:
    from lm_eval import simple_evaluate
    from lm_eval.models.huggingface import HFLM

    from demix_core.evaluate.lmeval import FastTaskScorer, load_tasks, task_manager

    model, tok = model_and_tokenizer
    names = ["arc_easy", "winogrande", "gsm8k"]
    fast = FastTaskScorer(load_tasks(names), model, tok, limit=8, batch_tokens=300)
    assert len(fast.batches) > 1  # several length buckets
    ours = fast.score(model)
    theirs = simple_evaluate(model=HFLM(pretrained=model, tokenizer=tok, batch_size=4),
                             tasks=[f"demix_{n}" for n in names], task_manager=task_manager(), limit=8)["results"]
    compared = 0
    for task, metrics in theirs.items():
        for key, value in metrics.items():
            metric = key.split(",")[0]
            if metric in ("acc", "bits_per_byte"):
                assert ours[task][metric] == pytest.approx(value, abs=1e-6), (task, metric)
                compared += 1
    assert compared == 5  # acc + bpb for two MC tasks, bpb for gsm8k


def test_suite_domains_and_signs(bench_cache: Path, model_and_tokenizer) -> None:
    from demix_core.evaluate.suite import build_suite

    model, tok = model_and_tokenizer
    suite = build_suite(tasks=["arc_easy", "gsm8k"], model=model, tokenizer=tok, limit=5)
    s = suite.score(model)
    assert set(s.benchmarks) == {"arc_easy/acc", "arc_easy/bpb", "gsm8k/bpb"}
    assert s.higher_is_better["arc_easy/acc"] and not s.higher_is_better["gsm8k/bpb"]
    assert s.domains["general"] == pytest.approx(-s.benchmarks["arc_easy/bpb"])
    assert s.domains["math"] == pytest.approx(-s.benchmarks["gsm8k/bpb"])
    acc = build_suite(tasks=["arc_easy"], model=model, tokenizer=tok, limit=5, primary_metric="acc").score(model)
    assert acc.domains["general"] == pytest.approx(acc.benchmarks["arc_easy/acc"])


def test_unknown_task_lists_near_matches(bench_cache: Path) -> None:
    from demix_core.evaluate.lmeval import load_tasks

    with pytest.raises(EvaluationError, match=r"unknown task 'arc_esy'.*arc_easy"):
        load_tasks(["arc_esy"])


def test_missing_data_names_the_setup_command(bench_cache: Path) -> None:
    from demix_core.evaluate.lmeval import load_tasks

    with pytest.raises(EvaluationError, match="demix data benchmarks"):
        load_tasks(["piqa"])


def test_empty_subsample_is_refused(bench_cache: Path, model_and_tokenizer) -> None:
    from demix_core.evaluate.lmeval import FastTaskScorer, load_tasks

    model, tok = model_and_tokenizer
    with pytest.raises(EvaluationError, match="at least 1"):
        FastTaskScorer(load_tasks(["arc_easy"]), model, tok, limit=0)


def test_model_tokenizer_mismatch(bench_cache: Path, model_and_tokenizer, tmp_path: Path) -> None:
    from demix_core.data.tokenizer import train_tokenizer
    from demix_core.evaluate.suite import build_suite
    from demix_core.train import load_tokenizer

    model, _ = model_and_tokenizer
    (tmp_path / "t.txt").write_text("hello world " * 200 + " ".join(WORDS) * 50)
    big = load_tokenizer(train_tokenizer([tmp_path / "t.txt"], tmp_path / "tok", vocab_size=400))
    with pytest.raises(EvaluationError, match=r"tokenizer has 3[2-9]\d tokens but the model's vocabulary is 320"):
        build_suite(tasks=["arc_easy"], model=model, tokenizer=big)


def test_quick_suite_scores_heldout(tmp_path: Path, tiny_family, model_and_tokenizer) -> None:
    from demix_core.evaluate.suite import build_suite
    from demix_core.workspace import ComponentEntry, DatasetEntry, Workspace

    model, tok = model_and_tokenizer
    (tmp_path / "a.txt").write_text("the quick brown fox jumps over the lazy dog. " * 200)
    (tmp_path / "b.txt").write_text("def f(x): return x + 1\n" * 200)
    ws = Workspace(root=tmp_path, name="t", components=[ComponentEntry("alpha", str(tiny_family["alpha"]))],
                   datasets=[DatasetEntry("a", "general", "a.txt", "a.txt"),
                             DatasetEntry("b", "code", "b.txt", "b.txt")])
    s = build_suite("quick", model=model, tokenizer=tok, workspace=ws, quick_tokens=512).score(model)
    assert set(s.benchmarks) == {"a/bpb", "b/bpb"} and set(s.domains) == {"general", "code"}
    assert all(v > 0 for v in s.benchmarks.values())
    assert s.domains["code"] == pytest.approx(-s.benchmarks["b/bpb"])
    with pytest.raises(EvaluationError, match="unknown suite 'quik'"):
        build_suite("quik", model=model, tokenizer=tok, workspace=ws)


def test_heldout_bpb_hand_computed(model_and_tokenizer, tmp_path: Path) -> None:
    """bpb = total NLL in bits / bytes of the predicted text, from one forward pass done by hand."""
    from demix_core.evaluate.heldout import HeldoutScorer

    model, tok = model_and_tokenizer
    (tmp_path / "x.txt").write_text("the quick brown fox jumps over the lazy dog " * 30)
    scorer = HeldoutScorer(tok, {"x": tmp_path / "x.txt"}, seq_len=16, max_tokens=32)
    windows = scorer.sets["x"].windows
    with torch.no_grad():
        logits = model(input_ids=windows[:, :-1]).logits
    nll = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), windows[:, 1:].reshape(-1),
                                            reduction="sum").item()
    nbytes = len(tok.decode(windows[:, 1:].reshape(-1).tolist()).encode())
    got = scorer.score(model)["x"]
    assert got["loss"] == pytest.approx(nll / windows[:, 1:].numel(), rel=1e-6)
    assert got["bpb"] == pytest.approx(nll / 0.6931471805599453 / nbytes, rel=1e-6)


def test_percentile_ranks_and_composite() -> None:
    assert list(percentile_ranks([3.0, 1.0, 2.0])) == [1.0, 0.0, 0.5]
    assert list(percentile_ranks([1.0, 1.0, 2.0])) == [0.25, 0.25, 1.0]
    scores = [{"a": 1.0, "b": 10.0}, {"a": 2.0, "b": 5.0}, {"a": 3.0, "b": 0.0}]
    assert list(composite(scores)) == [0.5, 0.5, 0.5]
    assert list(composite(scores, {"a": 1.0, "b": 0.0})) == [0.0, 0.5, 1.0]
    s = Scores({"x/bpb": 1.0}, {"x/bpb": False}, {"general": -1.0, "math": -3.0})
    assert s.average == -2.0 and s.to_json()["domains"] == {"general": -1.0, "math": -3.0}
