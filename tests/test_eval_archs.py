"""The fast scorer equals ``lm_eval.simple_evaluate`` on four architectures, few-shot sampling included.

Each model is built in memory from a config (no download): Llama with an untied head and grouped-query
attention; GPT-2, whose 128-token window truncates the 5-shot prompts; Mistral with a 48-token sliding
window, shorter than the shared few-shot prefixes; Qwen2 with ``use_sliding_window`` (a hybrid of full and
sliding layers).
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROLLING_TASK_YAML

from demix_core.errors import EvaluationError

WORDS = "the a cat dog runs jumps over quick brown fox lazy river tree house red blue green".split()
MC_METRICS = ("acc", "acc_norm", "acc_bytes", "acc_mutual_info", "brier_score")
ROOT = Path(__file__).resolve().parent.parent


def sentence(r: random.Random, n: int) -> str:
    return " ".join(r.choice(WORDS) for _ in range(n))


def write_task(folder: Path, name: str, rows: list[dict], body: str) -> None:
    data = folder / f"{name}.jsonl"
    data.write_text("".join(json.dumps(row) + "\n" for row in rows))
    path = json.dumps(str(data))
    (folder / f"{name}.yaml").write_text(
        f"task: {name}\ndataset_path: json\ndataset_kwargs:\n  data_files:\n    train: {path}\n    test: {path}\n"
        f"test_split: test\n" + body)


@pytest.fixture(scope="module")
def arch_tasks(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Multiple choice with lm-eval's default (random) few-shot sampler and 5 shots; loglikelihood; rolling."""
    folder = tmp_path_factory.mktemp("arch tasks")
    r = random.Random(7)
    mc = [{"q": sentence(r, 6), "opts": [sentence(r, r.randint(1, 3)) for _ in range(3)], "label": i % 3}
          for i in range(16)]
    metrics = "".join(f"  - metric: {m}\n" for m in MC_METRICS)
    write_task(folder, "arch_mc", mc, f"""fewshot_split: train
num_fewshot: 5
output_type: multiple_choice
doc_to_text: "Question: {{{{q}}}}\\nAnswer:"
doc_to_choice: opts
doc_to_target: label
metric_list:
{metrics}""")
    ll = [{"q": sentence(r, 8), "a": sentence(r, 2)} for _ in range(8)]
    write_task(folder, "arch_ll", ll, """fewshot_split: train
num_fewshot: 3
output_type: loglikelihood
doc_to_text: "{{q}} ="
doc_to_target: " {{a}}"
metric_list:
  - metric: acc
  - metric: perplexity
""")
    texts = [sentence(r, 20) for _ in range(4)] + [sentence(r, 120)]  # the last spans several windows on GPT-2
    write_task(folder, "arch_text", [{"text": t} for t in texts], ROLLING_TASK_YAML)
    return folder


def build(arch: str):  # noqa: ANN201 - a transformers model
    import torch
    from transformers import AutoModelForCausalLM, GPT2Config, LlamaConfig, MistralConfig, Qwen2Config

    common = {"vocab_size": 320, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
              "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 512}
    configs = {
        "llama": lambda: LlamaConfig(**common, tie_word_embeddings=False),
        "gpt2": lambda: GPT2Config(vocab_size=320, n_embd=32, n_layer=2, n_head=4, n_positions=128),
        "mistral": lambda: MistralConfig(**common, sliding_window=48),
        "qwen2": lambda: Qwen2Config(**common, use_sliding_window=True, sliding_window=40, max_window_layers=1),
    }
    torch.manual_seed(3)
    model = AutoModelForCausalLM.from_config(configs[arch](), dtype=torch.float32)
    with torch.no_grad():  # a random init is near-uniform; sharpen it so that choices really differ
        for p in model.parameters():
            p.mul_(2.0 if p.dim() > 1 else 1.0)
    return model.eval()


@pytest.mark.parametrize("arch", ["llama", "gpt2", "mistral", "qwen2"])
def test_equals_simple_evaluate(arch: str, arch_tasks: Path, tiny_tokenizer) -> None:
    from lm_eval import simple_evaluate
    from lm_eval.models.huggingface import HFLM

    from demix_core.evaluate.lmeval import FastTaskScorer, load_tasks, task_manager

    model = build(arch)
    names = ["arch_mc", "arch_ll", "arch_text"]
    fast = FastTaskScorer(load_tasks(names, include_paths=[arch_tasks], builtin=False), model, tiny_tokenizer,
                          limit=12, batch_tokens=700, min_prefix=56, min_saved=8)
    if arch in ("mistral", "qwen2"):  # the shared few-shot prefixes are longer than the sliding window
        assert fast.groups and max(len(g.prefix) for g in fast.groups) > 48
    if arch == "gpt2":
        assert max(len(u.tokens) for u in fast.units) == fast.max_length == 128
    ours = fast.score(model)
    theirs = simple_evaluate(model=HFLM(pretrained=model, tokenizer=tiny_tokenizer, batch_size=4), tasks=names,
                             task_manager=task_manager([arch_tasks]), limit=12, bootstrap_iters=0)["results"]
    compared = set()
    for task, metrics in theirs.items():
        for key, value in metrics.items():
            metric, _, filt = key.partition(",")
            if filt == "none" and not metric.endswith("_stderr"):
                assert ours[task][metric] == pytest.approx(value, rel=1e-6, abs=1e-6), (arch, task, metric)
                compared.add(f"{task}/{metric}")
    assert compared == {*(f"arch_mc/{m}" for m in MC_METRICS), "arch_ll/acc", "arch_ll/perplexity",
                        "arch_text/word_perplexity", "arch_text/byte_perplexity", "arch_text/bits_per_byte"}


def test_sliding_window_prefix_cache_equals_full_pass(tiny_tokenizer) -> None:
    """Per-token log-probs with a 100-token shared prefix equal one full pass, on sliding and hybrid models."""
    import torch

    from demix_core.evaluate.forward import cache_kwargs, prefix_cache

    for arch in ("mistral", "qwen2"):
        model = build(arch)
        torch.manual_seed(0)
        prefix = torch.randint(0, 320, (1, 100))
        suffix = torch.randint(0, 320, (3, 20))
        with torch.no_grad():
            full = model(input_ids=torch.cat([prefix.expand(3, -1), suffix], dim=1)).logits[:, 100:]
            kv = prefix_cache(model, prefix)
            cached = model(input_ids=suffix, **cache_kwargs(kv, 3)).logits
        assert torch.allclose(cached, full, atol=1e-5), arch


def score_in_subprocess(model_dir: Path, tasks: Path) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "demix_core", "eval", "--model", str(model_dir), "--tasks", "arch_mc,arch_ll",
           "--include-path", str(tasks), "--limit", "8", "--device", "cpu", "--json"]
    return subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_two_processes_give_identical_numbers(arch_tasks: Path, tiny_family: dict[str, Path]) -> None:
    """The default few-shot sampler is seeded as simple_evaluate seeds it: the same numbers in every process."""
    procs = [score_in_subprocess(tiny_family["alpha"], arch_tasks) for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err for _, err in outs]
    first, second = (json.loads(out)["benchmarks"] for out, _ in outs)
    assert first == second
    assert {"arch_mc/acc_mutual_info", "arch_mc/brier_score", "arch_ll/perplexity"} <= set(first)


def test_lm_eval_metric_error_is_one_line(tmp_path: Path, model_and_tokenizer) -> None:
    """brier_score over questions with different numbers of choices: lm-eval cannot aggregate it."""
    from demix_core.evaluate.lmeval import FastTaskScorer, load_tasks

    r = random.Random(2)
    rows = [{"q": sentence(r, 4), "opts": [sentence(r, 2) for _ in range(2 + i % 2)], "label": 0} for i in range(6)]
    write_task(tmp_path, "ragged", rows, """output_type: multiple_choice
doc_to_text: "{{q}}"
doc_to_choice: opts
doc_to_target: label
metric_list:
  - metric: acc
  - metric: brier_score
""")
    model, tok = model_and_tokenizer
    fast = FastTaskScorer(load_tasks(["ragged"], include_paths=[tmp_path], builtin=False), model, tok)
    with pytest.raises(EvaluationError, match=r"task 'ragged'.*metric 'brier_score'") as info:
        fast.score(model)
    assert "\n" not in str(info.value)


def test_unsupported_output_type_is_one_cli_line(tmp_path: Path, tiny_family: dict[str, Path]) -> None:
    write_task(tmp_path, "gen", [{"q": "a", "a": "b"}] * 3, """output_type: generate_until
doc_to_text: "{{q}}"
doc_to_target: "{{a}}"
metric_list:
  - metric: exact_match
""")
    cmd = [sys.executable, "-m", "demix_core", "eval", "--model", str(tiny_family["alpha"]), "--tasks", "gen",
           "--include-path", str(tmp_path), "--device", "cpu"]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: task 'gen'") and "generate_until" in lines[0]
