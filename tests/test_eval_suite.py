"""Suites: benchmarks -> domains -> Scores on a live proxy; quick suite; tokenizer checks; the eval CLI."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import torch

from demix_core.errors import EvaluationError
from demix_core.evaluate.scores import Scores, composite, percentile_ranks

WORDS = "the a cat dog runs jumps over quick brown fox lazy river tree house red blue green".split()


@pytest.fixture()
def bench_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Synthetic rows for three of our benchmarks (one per domain), in a private cache."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    from demix_core.evaluate.benchdata import benchmarks_dir

    out = benchmarks_dir()
    out.mkdir(parents=True)
    r = random.Random(0)

    def s(n: int) -> str:
        return " ".join(r.choice(WORDS) for _ in range(n))

    rows = {"arc_easy": [], "gsm8k": [], "mbpp": []}
    for i in range(8):
        choices = [" " + s(r.randint(1, 3)) for _ in range(3)]
        rows["arc_easy"].append({"id": str(i), "context": s(5) + "?", "choices": choices, "gold": i % 3,
                                 "gold_text": choices[i % 3]})
        rows["gsm8k"].append({"id": str(i), "context": "Q: " + s(6) + "\nA:", "target": " " + s(5)})
        rows["mbpp"].append({"id": str(i), "context": s(4) + "\n", "target": "def f(x):\n    return x + 1\n"})
    for name, docs in rows.items():
        (out / f"{name}.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs))
    return out


def test_domains_average_sign_flipped_primary_metrics(bench_cache: Path, model_and_tokenizer) -> None:
    from demix_core.evaluate.suite import build_suite

    model, tok = model_and_tokenizer
    s = build_suite(tasks=["arc_easy", "gsm8k", "mbpp"], model=model, tokenizer=tok, limit=5).score(model)
    assert set(s.benchmarks) == {"arc_easy/acc", "arc_easy/acc_norm", "arc_easy/bpb", "gsm8k/bpb", "mbpp/bpb"}
    assert s.higher_is_better["arc_easy/acc"] and not s.higher_is_better["gsm8k/bpb"]
    assert s.domains == pytest.approx({"general": -s.benchmarks["arc_easy/bpb"], "math": -s.benchmarks["gsm8k/bpb"],
                                       "code": -s.benchmarks["mbpp/bpb"]})
    assert s.primary == ["arc_easy/bpb", "gsm8k/bpb", "mbpp/bpb"] and s.seconds > 0
    acc = build_suite(tasks=["arc_easy", "gsm8k"], model=model, tokenizer=tok, limit=5, primary_metric="acc")
    a = acc.score(model)
    assert a.domains["general"] == a.benchmarks["arc_easy/acc"]  # acc where the task has it, else its first metric
    assert a.domains["math"] == -a.benchmarks["gsm8k/bpb"]
    with pytest.raises(EvaluationError, match="unknown primary metric 'f1'"):
        build_suite(tasks=["arc_easy"], model=model, tokenizer=tok, primary_metric="f1")


def test_domain_aggregation_is_the_mean_over_benchmarks() -> None:
    from demix_core.evaluate.suite import _domain_scores

    values = {"a/bpb": 1.0, "b/bpb": 3.0, "c/acc": 0.25}
    hib = {"a/bpb": False, "b/bpb": False, "c/acc": True}
    got = _domain_scores(values, {"a": "a/bpb", "b": "b/bpb", "c": "c/acc"}, hib,
                         {"a": "code", "b": "code", "c": "general"})
    assert got == {"code": -2.0, "general": 0.25}


def test_live_proxy_merged_in_place_is_rescored(bench_cache: Path, tiny_components, tiny_tokenizer) -> None:
    """The suite is built once; each merge into the live proxy changes the scores, as a fresh model would."""
    from demix_core.evaluate.suite import build_suite
    from demix_core.io.checkpoints import build_model, open_checkpoint
    from demix_core.merge import ResidentComponents

    resident = ResidentComponents([open_checkpoint(p) for p in tiny_components], device="cpu")
    proxy = resident.new_proxy()
    suite = build_suite(tasks=["gsm8k", "mbpp"], model=proxy.model, tokenizer=tiny_tokenizer, limit=4)
    seen = []
    for i in range(3):
        resident.merge_into(proxy, [1.0 if j == i else 0.0 for j in range(3)])
        seen.append(suite.score(proxy.model).benchmarks)
        alone = suite.score(build_model(open_checkpoint(tiny_components[i])))
        assert seen[-1] == pytest.approx(alone.benchmarks, rel=1e-5)
    assert seen[0] != seen[1] != seen[2]


def test_user_task_domain_from_yaml_metadata(bench_cache: Path, model_and_tokenizer, tmp_path: Path) -> None:
    from demix_core.evaluate.suite import build_suite

    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "d.jsonl").write_text("".join(json.dumps({"text": f"{w} jumps over the dog"}) + "\n" for w in WORDS))
    (folder / "mine.yaml").write_text(f"""task: my_prose
dataset_path: json
dataset_kwargs:
  data_files:
    test: {json.dumps(str(folder / "d.jsonl"))}
test_split: test
output_type: loglikelihood_rolling
doc_to_text: ""
doc_to_target: "{{{{text}}}}"
metric_list:
  - metric: bits_per_byte
metadata:
  domain: prose
""")
    model, tok = model_and_tokenizer
    s = build_suite(tasks=["my_prose", "gsm8k"], include_paths=[folder], model=model, tokenizer=tok).score(model)
    assert set(s.domains) == {"prose", "math"} and s.domains["prose"] == -s.benchmarks["my_prose/bpb"]


def test_quick_suite_scores_heldout(tmp_path: Path, tiny_family, model_and_tokenizer) -> None:
    from demix_core.evaluate.suite import build_suite
    from demix_core.workspace.manifest import ComponentEntry, DatasetEntry, Workspace

    model, tok = model_and_tokenizer
    (tmp_path / "a.txt").write_text("the quick brown fox jumps over the lazy dog. " * 200)
    (tmp_path / "b.txt").write_text("def f(x): return x + 1\n" * 200)
    (tmp_path / "c.txt").write_text("print(f(2))\n" * 200)
    ws = Workspace(root=tmp_path, name="t", components=[ComponentEntry("alpha", str(tiny_family["alpha"]))],
                   datasets=[DatasetEntry("a", "general", "a.txt", "a.txt"),
                             DatasetEntry("b", "code", "b.txt", "b.txt"), DatasetEntry("c", "code", "c.txt", "c.txt")])
    s = build_suite("quick", model=model, tokenizer=tok, workspace=ws, quick_tokens=768).score(model)
    assert set(s.benchmarks) == {"a/bpb", "b/bpb", "c/bpb"} and set(s.domains) == {"general", "code"}
    assert all(v > 0 for v in s.benchmarks.values())
    assert s.domains["code"] == pytest.approx(-(s.benchmarks["b/bpb"] + s.benchmarks["c/bpb"]) / 2)
    with pytest.raises(EvaluationError, match=r"unknown suite 'quik'; did you mean: quick"):
        build_suite("quik", model=model, tokenizer=tok, workspace=ws)
    with pytest.raises(EvaluationError, match="give a workspace with datasets or use the paper suite"):
        build_suite("quick", model=model, tokenizer=tok)


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


def test_model_tokenizer_mismatch(bench_cache: Path, model_and_tokenizer, tmp_path: Path, tiny_family) -> None:
    from demix_core.data.tokenizer import check_tokenizer, load_tokenizer, train_tokenizer
    from demix_core.evaluate.suite import build_suite
    from demix_core.train.tiny import byte_tokenizer

    model, _ = model_and_tokenizer
    (tmp_path / "t.txt").write_text("hello world " * 200 + " ".join(WORDS) * 50)
    big = load_tokenizer(train_tokenizer([tmp_path / "t.txt"], tmp_path / "tok", vocab_size=400))
    with pytest.raises(EvaluationError, match=r"tokenizer has 3[2-9]\d tokens but the model's vocabulary is 320"):
        build_suite(tasks=["arc_easy"], model=model, tokenizer=big)
    other = byte_tokenizer(vocab=300)  # fits the vocabulary, but is another tokenizer
    other.save_pretrained(str(tmp_path / "other"))
    with pytest.raises(EvaluationError, match=r"tokenizer in .*other \(hash \w+\) differs from the one saved") as e:
        check_tokenizer(model, other, model_dir=tiny_family["alpha"], tokenizer_dir=tmp_path / "other")
    assert "\n" not in str(e.value)
    check_tokenizer(model, other, model_dir=tiny_family["alpha"], tokenizer_dir=tiny_family["beta"])  # same: fine


def test_eval_cli_json(bench_cache: Path, tiny_family, capsys: pytest.CaptureFixture[str]) -> None:
    from demix_core.cli import main

    assert main(["eval", "--model", str(tiny_family["alpha"]), "--tasks", "gsm8k,arc_easy", "--limit", "3",
                 "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out["benchmarks"]) >= {"gsm8k/bpb", "arc_easy/acc"} and set(out["domains"]) == {"math", "general"}
    assert out["seconds"] > 0
    assert main(["eval", "--model", str(tiny_family["alpha"]), "--tasks", "gsm8k", "--limit", "0"]) == 2
    assert "at least 1" in capsys.readouterr().err


def test_percentile_ranks_and_composite() -> None:
    assert list(percentile_ranks([3.0, 1.0, 2.0])) == [1.0, 0.0, 0.5]
    assert list(percentile_ranks([1.0, 1.0, 2.0])) == [0.25, 0.25, 1.0]
    scores = [{"a": 1.0, "b": 10.0}, {"a": 2.0, "b": 5.0}, {"a": 3.0, "b": 0.0}]
    assert list(composite(scores)) == [0.5, 0.5, 0.5]
    assert list(composite(scores, {"a": 1.0, "b": 0.0})) == [0.0, 0.5, 1.0]
    s = Scores({"x/bpb": 1.0}, {"x/bpb": False}, {"general": -1.0, "math": -3.0})
    assert s.average == -2.0 and s.to_json()["domains"] == {"general": -1.0, "math": -3.0}
