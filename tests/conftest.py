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


@pytest.fixture(scope="session")
def tiny_tokenizer():
    from demix_core.tiny import byte_tokenizer

    return byte_tokenizer()


@pytest.fixture(scope="session")
def tiny_family(tmp_path_factory: pytest.TempPathFactory, tiny_tokenizer) -> dict[str, Path]:
    """A base and three components fine-tuned from it (base + seeded noise), same tokenizer."""
    from demix_core.tiny import save_tiny

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
