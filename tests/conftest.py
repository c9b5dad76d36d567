"""Shared fixtures: tiny Qwen2 checkpoints (hidden 32) built offline once per session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["TOKENIZERS_PARALLELISM"] = "false"
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")



# The body of a user task's YAML that scores whole texts (perplexities and bits per byte), shared by tests.
ROLLING_TASK_YAML = """output_type: loglikelihood_rolling
doc_to_text: ""
doc_to_target: "{{text}}"
metric_list:
  - metric: word_perplexity
  - metric: byte_perplexity
  - metric: bits_per_byte
"""

# Tiny checkpoints of other architectures, bf16 and sharded, as teams bring them (test_resident_archs,
# test_own_components).
ARCH_COMMON = {"vocab_size": 320, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
               "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 256}


def arch_config(arch: str, **overrides):  # noqa: ANN201, ANN003 - a transformers config
    """A tiny config (hidden 32) of one of seven architectures, offline; ``overrides`` change its fields."""
    import transformers as tf

    config = {
        "llama": lambda: tf.LlamaConfig(**ARCH_COMMON, tie_word_embeddings=False),
        "qwen2": lambda: tf.Qwen2Config(**ARCH_COMMON, tie_word_embeddings=True),
        "qwen3": lambda: tf.Qwen3Config(**ARCH_COMMON, head_dim=8, tie_word_embeddings=True),
        "mistral": lambda: tf.MistralConfig(**ARCH_COMMON, tie_word_embeddings=False),
        "gemma2": lambda: tf.Gemma2Config(**ARCH_COMMON, head_dim=8),  # tied, soft-capped logits
        "gemma3": lambda: tf.Gemma3TextConfig(**ARCH_COMMON, head_dim=8),  # tied, sliding + global layers
        "olmo2": lambda: tf.Olmo2Config(**ARCH_COMMON, tie_word_embeddings=False),
        # Untied; stored as ``embed_out``, which transformers renames to ``lm_head`` on loading.
        "gpt_neox": lambda: tf.GPTNeoXConfig(vocab_size=320, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                             num_attention_heads=4, max_position_embeddings=256, eos_token_id=0,
                                             bos_token_id=0, tie_word_embeddings=False),
    }[arch]()
    for key, value in overrides.items():
        setattr(config, key, value)
    return config


def save_family(root: Path, arch: str, tokenizer, *, n: int = 3, **overrides) -> list[Path]:  # noqa: ANN001, ANN003
    """A bf16 base and ``n`` components (base + seeded noise), each sharded (``max_shard_size`` 20KB)."""
    import torch
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    base = AutoModelForCausalLM.from_config(arch_config(arch, **overrides), dtype=torch.bfloat16)
    out = []
    for i in range(n):
        torch.manual_seed(i + 1)
        model = AutoModelForCausalLM.from_config(arch_config(arch, **overrides), dtype=torch.bfloat16)
        model.load_state_dict(base.state_dict())
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p) * 0.05)
        folder = root / f"{arch}-c{i + 1}"
        model.save_pretrained(str(folder), max_shard_size="20KB")
        tokenizer.save_pretrained(str(folder))
        out.append(folder)
    return out


@pytest.fixture(scope="session")
def tiny_tokenizer():
    from demix_core.train.tiny import byte_tokenizer

    return byte_tokenizer()


@pytest.fixture(scope="session")
def tiny_family(tmp_path_factory: pytest.TempPathFactory, tiny_tokenizer) -> dict[str, Path]:
    """A base and three components fine-tuned from it (base + seeded noise), same tokenizer."""
    from demix_core.train.tiny import save_tiny

    root = tmp_path_factory.mktemp("family")
    base = save_tiny(root / "base", seed=0, tokenizer=tiny_tokenizer)
    out = {"base": base}
    for i, name in enumerate(["alpha", "beta", "gamma"]):
        out[name] = save_tiny(root / name, seed=i + 1, base=base, tokenizer=tiny_tokenizer, noise=0.05)
    return out


@pytest.fixture(scope="session")
def tiny_components(tiny_family: dict[str, Path]) -> list[Path]:
    """The three component folders, in order."""
    return [tiny_family[n] for n in ("alpha", "beta", "gamma")]


def make_tiny_workspace(root: Path, family: dict[str, Path], storage: str | None = None) -> Path:
    """A workspace over the tiny family with three small held-out datasets (one per component)."""
    from demix_core.workspace.manifest import ComponentEntry, DatasetEntry, Workspace

    root.mkdir(parents=True, exist_ok=True)
    texts = {
        "alpha": "the quick brown fox jumps over the lazy dog. " * 120,
        "beta": "def f(x): return x + 1\nprint(f(2))\n" * 120,
        "gamma": "2 + 2 = 4. 3 * 7 = 21. 10 - 4 = 6. " * 120,
    }
    domains = {"alpha": "general", "beta": "code", "gamma": "math"}
    for name, text in texts.items():
        (root / f"{name}.txt").write_text(text)
    ws = Workspace(
        root=root, name="tiny",
        components=[ComponentEntry(name=n, path=str(family[n]), domain=domains[n], dataset=n, tokens=1000 * (i + 1))
                    for i, n in enumerate(texts)],
        base=str(family["base"]),
        datasets=[DatasetEntry(name=n, domain=domains[n], train=f"{n}.txt", heldout=f"{n}.txt") for n in texts],
        storage=storage or "sqlite:///studies.db",
    )
    ws.save()
    return root


@pytest.fixture()
def tiny_workspace(tmp_path: Path, tiny_family: dict[str, Path]) -> Path:
    """A fresh tiny workspace (its own SQLite storage) per test."""
    return make_tiny_workspace(tmp_path / "ws", tiny_family)


@pytest.fixture(scope="module")
def model_and_tokenizer(tiny_family):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(str(tiny_family["alpha"]), local_files_only=True)
    model.eval()
    return model, AutoTokenizer.from_pretrained(str(tiny_family["alpha"]), local_files_only=True)


@pytest.fixture
def one_torch_thread():
    """One torch thread (tests that run workers use it): on 2 shared cores, 2 spinning threads made a
    tiny-model trial ~40x slower."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def one_hot_references(root: Path) -> None:
    """Give a workspace one reference per component, the component itself (a one-hot mixture): every proxy of
    such a mixture equals it exactly."""
    from demix_core.workspace.manifest import ReferenceEntry, load_workspace

    ws = load_workspace(root)
    names = list(ws.component_names)
    ws.references = [ReferenceEntry(name=f"ref-{m}", path=c.path, mixture={n: float(n == m) for n in names})
                     for m, c in zip(names, ws.components)]
    ws.save()


TINY_TRAINING = ["--steps", "3", "--batch", "2", "--seq-len", "16"]  # a reference trained in a second on CPU


def loop_study(root: Path, *, trials: int) -> None:
    """Ready a tiny workspace for ``demix recommend --train``: a trained reference (``seed-ref``, the recipe the loop
    copies), the first two components as one-hot references, and an ensemble-proxy study ``loop`` with ``trials``
    complete trials."""
    from demix_core.cli import main
    from demix_core.search.study import create_study
    from demix_core.search.worker import Worker
    from demix_core.workspace.manifest import ReferenceEntry, load_workspace

    assert main(["workspace", "train-reference", str(root), "--mixture", "alpha=0.5,beta=0.5", "--name", "seed-ref",
                 *TINY_TRAINING]) == 0
    ws = load_workspace(root)
    ws.references += [ReferenceEntry(name=f"ref-{c.name}", path=c.path, mixture={n: float(n == c.name) for n in
                                                                                  ws.component_names})
                      for c in ws.components[:2]]
    ws.save()
    create_study(ws, "loop", sampler="random", proxy="ensemble")
    Worker(ws, "loop", device="cpu", log=lambda s: None).run(trials)
