"""Checkpoints as they come: seven architectures, tied and untied heads, bf16, sharded safetensors.

Each family (a base and three "fine-tunes" of it) is built from a transformers config offline and saved
with a small ``max_shard_size`` so every checkpoint has an index and several shards. For each: the
resident matrix gives component 1 back exactly for (1, 0, 0), a mixed merge equals the torch weighted
average (fp32 accumulation, one rounding to bf16), and the live proxy's logits equal those of the model
``demix merge`` writes, loaded with ``from_pretrained``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from conftest import arch_config, save_family

from demix_core.cli import main
from demix_core.io.checkpoints import open_checkpoint
from demix_core.merge import ResidentComponents

ARCHS = ("llama", "qwen2", "qwen3", "mistral", "gemma2", "gemma3", "olmo2", "gpt_neox")
WEIGHTS = (0.5, 0.3, 0.2)


def stored_tensors(folder: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    out: dict[str, torch.Tensor] = {}
    for f in sorted(folder.glob("*.safetensors")):
        out.update(load_file(str(f)))
    return out


@pytest.fixture(scope="module", params=ARCHS)
def family(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
           tiny_tokenizer) -> tuple[str, list[Path]]:  # noqa: ANN001
    arch = request.param
    return arch, save_family(tmp_path_factory.mktemp(arch), arch, tiny_tokenizer)


def test_family_is_bf16_sharded(family: tuple[str, list[Path]]) -> None:
    arch, folders = family
    for f in folders:
        assert (f / "model.safetensors.index.json").exists() and len(list(f.glob("*.safetensors"))) >= 2, arch
        ck = open_checkpoint(f)
        assert {i.dtype for i in ck.tensors.values()} == {"BF16"}, arch


def test_pure_and_mixed_merges(family: tuple[str, list[Path]]) -> None:
    arch, folders = family
    ckpts = [open_checkpoint(f) for f in folders]
    res = ResidentComponents(ckpts, device="cpu")
    assert res.dtype == torch.bfloat16 and res.matrix.dtype == torch.bfloat16
    tied = bool(getattr(res.config, "tie_word_embeddings", False))
    assert ("lm_head.weight" in {s.name for s in res.segments}) == (not tied), arch

    first = stored_tensors(folders[0])
    pure = res.merged_state((1.0, 0.0, 0.0))
    for name, t in pure.items():
        stored = first[res.stored_name(ckpts[0], name) or name]
        assert torch.equal(t, stored.reshape(t.shape)), (arch, name)

    mixed = res.merged_state(WEIGHTS)
    states = [stored_tensors(f) for f in folders]
    for name, t in mixed.items():
        key = res.stored_name(ckpts[0], name) or name
        ref32 = sum(w * s[key].float() for w, s in zip(WEIGHTS, states)).reshape(t.shape)  # torch weighted average
        # One rounding of the fp32 sum to bf16: within half a bf16 ulp (<= 2^-8 relative), plus fp32 summation
        # order where the terms cancel.
        assert (t.float() - ref32).abs().le(ref32.abs() * 2.0 ** -8 + 1e-7).all(), (arch, name)


def test_proxy_logits_equal_the_exported_merge(family: tuple[str, list[Path]], tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    from transformers import AutoModelForCausalLM

    arch, folders = family
    out = tmp_path / "merged"
    assert main(["merge", "--components", ",".join(map(str, folders)), "--weights", "0.5,0.3,0.2",
                 "--out", str(out), "--device", "cpu"]) == 0
    printed = capsys.readouterr().out
    assert "memory plan: 3+1 x" in printed and "in host memory" in printed
    loaded = AutoModelForCausalLM.from_pretrained(str(out), local_files_only=True, dtype=torch.bfloat16).eval()
    assert json.loads((out / "config.json").read_text())["model_type"] == arch_config(arch).model_type

    res = ResidentComponents([open_checkpoint(f) for f in folders], device="cpu")
    proxy = res.new_proxy()
    res.merge_into(proxy, WEIGHTS)
    ids = torch.randint(0, 320, (2, 24), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        a = proxy.model(input_ids=ids).logits
        b = loaded(input_ids=ids).logits
    assert a.dtype == torch.bfloat16 and torch.equal(a, b), arch
