"""The output-ensemble proxy: cached scores equal the ensemble module's (our suites and lm-eval's
simple_evaluate), a one-hot mixture is that component, and the disk cache follows components and suites."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import pytest
import torch

from demix_core.errors import EvaluationError

WORDS = "the a cat dog runs jumps over quick brown fox lazy river tree house red blue green".split()
MIXTURES = [(1.0, 0.0, 0.0), (0.0, 0.0, 1.0), (0.2, 0.3, 0.5), (0.5, 0.5, 0.0)]


def _jsonl(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


@pytest.fixture(scope="module")
def user_tasks(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Few-shot multiple choice (shared prefixes), loglikelihood (greedy acc) and rolling BPB tasks."""
    folder = tmp_path_factory.mktemp("ens tasks")
    r = random.Random(3)

    def s(n: int) -> str:
        return " ".join(r.choice(WORDS) for _ in range(n))

    _jsonl(folder / "mc.jsonl", [{"q": s(5), "opts": [s(2), s(3), s(1)], "label": i % 3} for i in range(8)])
    _jsonl(folder / "ll.jsonl", [{"q": s(6), "a": s(2)} for _ in range(6)])
    _jsonl(folder / "text.jsonl", [{"text": s(20)} for _ in range(4)] + [{"text": s(400)}])
    bodies = {
        "mc": "fewshot_split: train\nnum_fewshot: 3\nfewshot_config:\n  sampler: first_n\n"
              "output_type: multiple_choice\n"
              "doc_to_text: \"Q: {{q}}\\nA:\"\ndoc_to_choice: opts\ndoc_to_target: label\n"
              "metric_list:\n  - metric: acc\n  - metric: acc_norm\n",
        "ll": "output_type: loglikelihood\ndoc_to_text: \"{{q}} =\"\ndoc_to_target: \"{{a}}\"\n"
              "metric_list:\n  - metric: acc\n  - metric: perplexity\n",
        "text": "output_type: loglikelihood_rolling\ndoc_to_text: \"\"\ndoc_to_target: \"{{text}}\"\nmetric_list:\n"
                "  - metric: word_perplexity\n  - metric: byte_perplexity\n  - metric: bits_per_byte\n",
    }
    for name, body in bodies.items():
        data = json.dumps(str(folder / f"{name}.jsonl"))
        (folder / f"ens_{name}.yaml").write_text(
            f"task: ens_{name}\ndataset_path: json\ndataset_kwargs:\n  data_files:\n    train: {data}\n"
            f"    test: {data}\ntest_split: test\n" + body)
    return folder


@pytest.fixture(scope="module")
def models(tiny_components: list[Path]) -> list[torch.nn.Module]:
    from demix_core.io.checkpoints import build_model, open_checkpoint

    return [build_model(open_checkpoint(p)) for p in tiny_components]


def quick_suite(workspace: Path, model: torch.nn.Module, tokenizer, tokens: int = 1536):
    from demix_core.evaluate.suite import build_suite
    from demix_core.workspace.manifest import load_workspace

    return build_suite("quick", model=model, tokenizer=tokenizer, workspace=load_workspace(workspace),
                       quick_tokens=tokens)


def test_quick_cached_equals_ensemble_model(tiny_workspace, tiny_components, models, model_and_tokenizer) -> None:
    from demix_core.evaluate.ensemble import EnsembleModel
    from demix_core.evaluate.ensemble_scorer import EnsembleScorer

    suite = quick_suite(tiny_workspace, models[0], model_and_tokenizer[1])
    scorer = EnsembleScorer.build(suite, tiny_components, names=["alpha", "beta", "gamma"], models=models)
    assert scorer.logprobs.shape == (3, sum(hs.tokens for hs in suite.scorer.sets.values()))
    for w in MIXTURES:
        cached, live = scorer.score(w), suite.score(EnsembleModel(models, w))
        assert set(cached.benchmarks) == set(live.benchmarks) == {"alpha/bpb", "beta/bpb", "gamma/bpb"}
        for key, value in live.benchmarks.items():
            assert cached.benchmarks[key] == pytest.approx(value, rel=1e-6, abs=1e-6), (w, key)
        assert cached.domains == pytest.approx(live.domains, rel=1e-6)
        assert cached.primary == live.primary and cached.higher_is_better == live.higher_is_better
    # the ensemble is not the merge: a 50/50 mixture scores between or below its components' losses
    mixed = scorer.score((0.5, 0.5, 0.0)).benchmarks["alpha/bpb"]
    ends = [scorer.score(w).benchmarks["alpha/bpb"] for w in [(1.0, 0.0, 0.0), (0.0, 1.0, 0.0)]]
    assert mixed <= max(ends) and mixed >= min(ends) - 1.0  # log-mean-exp: never worse than the worse end


def test_one_hot_mixture_is_the_component_exactly(tiny_workspace, tiny_components, models,
                                                  model_and_tokenizer) -> None:
    from demix_core.evaluate.ensemble_scorer import EnsembleScorer, component_logprobs

    suite = quick_suite(tiny_workspace, models[0], model_and_tokenizer[1])
    scorer = EnsembleScorer.build(suite, tiny_components, models=models)
    for i, model in enumerate(models):
        w = [0.0, 0.0, 0.0]
        w[i] = 1.0
        own = component_logprobs(model, suite)
        assert torch.equal(scorer.token_logprobs(w), own)  # bit for bit
        alone = EnsembleScorer(suite, own[None, :], [scorer.names[i]]).score([1.0])
        assert scorer.score(w).benchmarks == alone.benchmarks  # exactly the component's own cached scores
        direct = suite.score(model).benchmarks  # and its merge-free suite scores, to float32 summation
        assert scorer.score(w).benchmarks == pytest.approx(direct, rel=1e-6)


def test_tasks_cached_equal_simple_evaluate_on_ensemble_model(user_tasks, tiny_components, models,
                                                               model_and_tokenizer) -> None:
    from lm_eval import simple_evaluate
    from lm_eval.models.huggingface import HFLM

    from demix_core.evaluate.ensemble import EnsembleModel
    from demix_core.evaluate.ensemble_scorer import EnsembleScorer
    from demix_core.evaluate.lmeval import FastTaskScorer, load_tasks, task_manager
    from demix_core.evaluate.suite import TaskSuite

    tok = model_and_tokenizer[1]
    names = ["ens_mc", "ens_ll", "ens_text"]
    fast = FastTaskScorer(load_tasks(names, include_paths=[user_tasks], builtin=False), models[0], tok, limit=6,
                          batch_tokens=600, min_prefix=4, min_saved=8)
    assert fast.groups  # the few-shot prompts are shared prefixes: that path is cached too
    suite = TaskSuite(fast, {n: "custom" for n in names}, "bits_per_byte", "custom")
    scorer = EnsembleScorer.build(suite, tiny_components, models=models)
    assert scorer.unavailable == ["ens_ll/acc"]  # greedy decoding needs the full distribution
    for w in [(0.2, 0.3, 0.5)]:
        ours = scorer.score(w).benchmarks
        theirs = simple_evaluate(model=HFLM(pretrained=EnsembleModel(models, w), tokenizer=tok, batch_size=4),
                                 tasks=names, task_manager=task_manager([user_tasks]), limit=6,
                                 bootstrap_iters=0)["results"]
        compared = set()
        for task, metrics in theirs.items():
            for key, value in metrics.items():
                metric, _, filt = key.partition(",")
                if filt != "none" or metric.endswith("_stderr") or metric == "alias":
                    continue
                short = "bpb" if metric == "bits_per_byte" else metric
                if f"{task}/{metric}" in scorer.unavailable:
                    assert f"{task}/{short}" not in ours
                    exact = scorer.exact(w).benchmarks[f"{task}/{short}"]  # the ensemble model gives it exactly
                    assert exact == pytest.approx(value, abs=1e-9)
                else:
                    assert ours[f"{task}/{short}"] == pytest.approx(value, rel=1e-6, abs=1e-6), (w, task, metric)
                compared.add(f"{task}/{metric}")
        assert compared == {"ens_mc/acc", "ens_mc/acc_norm", "ens_ll/acc", "ens_ll/perplexity",
                            "ens_text/word_perplexity", "ens_text/byte_perplexity", "ens_text/bits_per_byte"}


def test_disk_cache_follows_components_and_suite(tiny_workspace, tiny_family, tmp_path, model_and_tokenizer) -> None:
    from demix_core.evaluate.ensemble_scorer import EnsembleScorer, workspace_scorer
    from demix_core.train.tiny import save_tiny
    from demix_core.workspace.manifest import load_workspace

    ws = load_workspace(tiny_workspace)
    first = workspace_scorer(ws, device="cpu")
    assert set(first.provenance.source.values()) == {"computed"}
    again = workspace_scorer(ws, device="cpu")
    assert set(again.provenance.source.values()) == {"disk"}
    assert torch.equal(again.logprobs, first.logprobs)
    assert again.score((0.2, 0.3, 0.5)).benchmarks == first.score((0.2, 0.3, 0.5)).benchmarks

    # a component re-trained in place: only its entry is recomputed, and its old entry goes
    beta = Path(ws.component_paths()[1])
    moved = tmp_path / "beta"
    shutil.copytree(beta, moved)
    ws.components[1].path = str(moved)
    save_tiny(moved, seed=9, base=tiny_family["base"], noise=0.05)
    changed = workspace_scorer(ws, device="cpu")
    assert changed.provenance.source == {"alpha": "disk", "beta": "computed", "gamma": "disk"}
    assert not torch.equal(changed.logprobs[1], first.logprobs[1])
    assert torch.equal(changed.logprobs[0], first.logprobs[0])
    suite_folders = [p for p in (tiny_workspace / "cache" / "ensemble").iterdir() if p.is_dir()]
    assert len(suite_folders) == 1
    assert len(list(suite_folders[0].glob("beta-*"))) == 1

    # another suite (more held-out tokens): every component recomputed
    model, tok = model_and_tokenizer
    suite = quick_suite(tiny_workspace, model, tok, tokens=3072)
    other = EnsembleScorer.build(suite, ws.component_paths(), names=ws.component_names,
                                 cache_dir=tiny_workspace / "cache" / "ensemble")
    assert set(other.provenance.source.values()) == {"computed"}
    assert other.logprobs.shape[1] != first.logprobs.shape[1]


def test_bad_mixtures_are_one_line_errors(tiny_workspace, tiny_components, models, model_and_tokenizer) -> None:
    from demix_core.evaluate.ensemble import EnsembleModel
    from demix_core.evaluate.ensemble_scorer import EnsembleScorer

    suite = quick_suite(tiny_workspace, models[0], model_and_tokenizer[1])
    scorer = EnsembleScorer.build(suite, tiny_components, models=models)
    for bad, match in [((0.5, 0.5), "2 weights but there are 3 components"),
                       ((0.5, 0.6, -0.1), "must be non-negative and sum to 1"),
                       ((0.3, 0.3, 0.3), "must be non-negative and sum to 1")]:
        with pytest.raises(EvaluationError, match=match) as info:
            scorer.score(bad)
        assert "\n" not in str(info.value)
    with pytest.raises(EvaluationError, match="at least one component"):
        EnsembleModel([])
    with pytest.raises(EvaluationError, match="keep_models=True"):
        EnsembleScorer(suite, scorer.logprobs, scorer.names).exact((1.0, 0.0, 0.0))


def test_cache_entries_are_checked_before_use(tmp_path: Path) -> None:
    from demix_core.evaluate.ensemble_cache import LogprobCache

    cache = LogprobCache(tmp_path, "s" * 64)
    row = torch.randn(10, dtype=torch.float64)
    first = cache.save("alpha", "a" * 64, row)
    assert torch.equal(cache.load("alpha", "a" * 64, 10), row)
    assert cache.load("alpha", "a" * 64, 11) is None  # another suite size
    assert cache.load("alpha", "b" * 64, 10) is None  # another checkpoint
    assert LogprobCache(tmp_path, "s" * 24 + "t" * 40).load("alpha", "a" * 64, 10) is None  # same folder, other suite
    cache.save("alpha-b", "c" * 64, row)  # a name that starts like another is not its older entry
    second = cache.save("alpha", "b" * 64, row + 1)
    assert not first.exists() and second.exists() and cache.entry("alpha-b", "c" * 64).exists()
    (second / "logprobs.safetensors").write_bytes(b"\x00" * 12)  # damaged: recomputed, never an error
    assert cache.load("alpha", "b" * 64, 10) is None
    assert not [p for p in tmp_path.rglob("*") if "demix-partial" in p.name]
