"""Opening checkpoints, the compatibility report, and refusing unsafe or broken folders."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from demix_core.errors import CheckpointError, CompatibilityError
from demix_core.io.checkpoints import check_compatibility, open_checkpoint, require_compatible
from demix_core.train.tiny import save_tiny, tiny_config


def test_open_reads_metadata(tiny_family: dict[str, Path]) -> None:
    ck = open_checkpoint(tiny_family["alpha"])
    assert ck.architecture == "Qwen2ForCausalLM"
    assert "model.embed_tokens.weight" in ck.tensors
    assert ck.tensors["model.embed_tokens.weight"].shape == (320, 32)
    assert ck.tokenizer_hash and len(ck.tokenizer_hash) == 64
    assert ck.num_params > 30_000


def test_family_is_compatible(tiny_family: dict[str, Path]) -> None:
    report = check_compatibility([open_checkpoint(p) for p in tiny_family.values()])
    assert report.ok, report.mismatches
    assert report.lines()[-1].startswith("compatible")


def test_shape_mismatch_is_named(tmp_path: Path, tiny_family: dict[str, Path], tiny_tokenizer) -> None:
    other = save_tiny(tmp_path / "wide", seed=5, config=tiny_config(hidden=64), tokenizer=tiny_tokenizer)
    report = check_compatibility([open_checkpoint(tiny_family["alpha"]), open_checkpoint(other)])
    assert not report.ok
    assert any("hidden_size" in m for m in report.mismatches)
    assert any("shape of model.embed_tokens.weight" in m for m in report.mismatches)
    with pytest.raises(CompatibilityError, match="hidden_size"):
        require_compatible([open_checkpoint(tiny_family["alpha"]), open_checkpoint(other)])


def test_tokenizer_mismatch_is_named(tmp_path: Path, tiny_family: dict[str, Path]) -> None:
    other = tmp_path / "othertok"
    shutil.copytree(tiny_family["beta"], other)
    tj = other / "tokenizer.json"
    tj.write_text(tj.read_text().replace("quick", "quack"))
    report = check_compatibility([open_checkpoint(tiny_family["alpha"]), open_checkpoint(other)])
    assert any("tokenizer differs" in m for m in report.mismatches)


def test_pickle_checkpoint_is_refused(tmp_path: Path, tiny_family: dict[str, Path]) -> None:
    folder = tmp_path / "pickled"
    folder.mkdir()
    shutil.copy(tiny_family["alpha"] / "config.json", folder)
    (folder / "pytorch_model.bin").write_bytes(b"\x80\x04not really")
    with pytest.raises(CheckpointError, match="pickle"):
        open_checkpoint(folder)


def test_truncated_safetensors_is_refused(tmp_path: Path, tiny_family: dict[str, Path]) -> None:
    folder = tmp_path / "trunc"
    shutil.copytree(tiny_family["alpha"], folder)
    f = folder / "model.safetensors"
    f.write_bytes(f.read_bytes()[:-100])
    with pytest.raises(CheckpointError, match="truncated"):
        open_checkpoint(folder)


def test_missing_folder_and_config(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="does not exist"):
        open_checkpoint(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="config.json"):
        open_checkpoint(tmp_path / "empty")


def test_sharded_checkpoint_opens(tmp_path: Path, tiny_tokenizer) -> None:
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_config(tiny_config())
    model.save_pretrained(str(tmp_path / "sharded"), max_shard_size="20KB")
    files = sorted(p.name for p in (tmp_path / "sharded").iterdir())
    assert "model.safetensors.index.json" in files
    ck = open_checkpoint(tmp_path / "sharded")
    assert len({i.file for i in ck.tensors.values()}) > 1
    assert ck.num_params == sum(p.numel() for p in model.parameters())
