"""Exports reload with transformers, match the in-memory proxy, reproduce through mergekit, and are
written atomically."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
import torch
import yaml

from demix_core.errors import CheckpointError, MergeError, OutputExistsError
from demix_core.export.merged import MERGEKIT_FILE, RECIPE_FILE, export_merged
from demix_core.io.checkpoints import open_checkpoint
from demix_core.merge import ResidentComponents
from demix_core.mixing.mixture import Mixture


@pytest.fixture(scope="module")
def resident(tiny_family: dict[str, Path]) -> ResidentComponents:
    comps = [open_checkpoint(tiny_family[n]) for n in ("alpha", "beta", "gamma")]
    return ResidentComponents(comps, base=open_checkpoint(tiny_family["base"]), device="cpu")


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize(("method", "params"), [("linear", {}), ("ties", {"density": 0.5}),
                                                ("multislerp", {})])
def test_export_reloads_with_same_logits(tmp_path: Path, resident: ResidentComponents, method: str,
                                         params: dict[str, float]) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    mix = Mixture.from_weights(resident.names, (0.5, 0.3, 0.2))
    out = export_merged(resident, mix, tmp_path / "merged", method=method, params=params)
    proxy = resident.new_proxy()
    resident.merge_into(proxy, mix, method=method, params=params)
    model = AutoModelForCausalLM.from_pretrained(str(out), local_files_only=True)
    tok = AutoTokenizer.from_pretrained(str(out), local_files_only=True)
    ids = tok("the quick brown fox", return_tensors="pt").input_ids
    with torch.no_grad():
        ours, reloaded = proxy.model(ids).logits, model(ids).logits
    assert torch.allclose(reloaded, ours, atol=1e-6, rtol=0)
    assert model.get_output_embeddings().weight.data_ptr() == model.get_input_embeddings().weight.data_ptr()
    assert not list(tmp_path.glob(".merged.*"))


def test_recipe_names_components_paths_hashes_weights_and_method(
    tmp_path: Path, resident: ResidentComponents, tiny_family: dict[str, Path]
) -> None:
    mix = Mixture.from_weights(resident.names, (0.5, 0.3, 0.2))
    out = export_merged(resident, mix, tmp_path / "merged", method="dare_ties",
                        params={"density": 0.7}, seed=4)
    rec = json.loads((out / RECIPE_FILE).read_text())
    assert rec["method"] == "dare_ties" and rec["seed"] == 4
    assert rec["parameters"] == {"density": 0.7, "lambda": 1.0, "normalize": 0.0, "rescale": 1.0}
    assert rec["mixture"] == pytest.approx({"alpha": 0.5, "beta": 0.3, "gamma": 0.2})
    assert rec["dtype"] == "float32"
    for entry, name, w in zip(rec["components"], ("alpha", "beta", "gamma"), (0.5, 0.3, 0.2)):
        folder = tiny_family[name]
        assert entry["name"] == name and entry["weight"] == pytest.approx(w)
        assert Path(entry["path"]) == folder.resolve()
        assert entry["sha256"] == sha256(folder / "model.safetensors")
        assert len(entry["tokenizer_sha256"]) == 64
    assert Path(rec["base"]["path"]) == tiny_family["base"].resolve()
    assert rec["base"]["sha256"] == sha256(tiny_family["base"] / "model.safetensors")


def test_a_mixture_in_another_order_is_recorded_in_component_order(
    tmp_path: Path, resident: ResidentComponents
) -> None:
    shuffled = Mixture.from_weights(("gamma", "alpha", "beta"), (0.2, 0.5, 0.3))
    out = export_merged(resident, shuffled, tmp_path / "merged")
    rec = json.loads((out / RECIPE_FILE).read_text())
    assert [c["name"] for c in rec["components"]] == ["alpha", "beta", "gamma"]
    assert [c["weight"] for c in rec["components"]] == pytest.approx([0.5, 0.3, 0.2])
    models = yaml.safe_load((out / MERGEKIT_FILE).read_text())["models"]
    assert [(Path(m["model"]).name, m["parameters"]["weight"]) for m in models] == \
        [("alpha", pytest.approx(0.5)), ("beta", pytest.approx(0.3)), ("gamma", pytest.approx(0.2))]


@pytest.mark.parametrize(("method", "params"), [("linear", {}), ("ties", {"density": 0.5})])
def test_exported_mergekit_yaml_reproduces_weights(tmp_path: Path, resident: ResidentComponents,
                                                   method: str, params: dict[str, float]) -> None:
    pytest.importorskip("mergekit")
    from mergekit.config import MergeConfiguration
    from mergekit.merge import MergeOptions, run_merge
    from safetensors.torch import load_file

    mix = Mixture.from_weights(resident.names, (0.25, 0.25, 0.5))
    out = export_merged(resident, mix, tmp_path / "merged", method=method, params=params)
    cfg = MergeConfiguration.model_validate(yaml.safe_load((out / MERGEKIT_FILE).read_text()))
    run_merge(cfg, str(tmp_path / "mk"), options=MergeOptions(copy_tokenizer=False, quiet=True,
                                                              write_model_card=False))
    ours = load_file(str(out / "model.safetensors"))
    theirs = load_file(str(tmp_path / "mk" / "model.safetensors"))
    assert set(ours) == set(theirs)
    for name, t in ours.items():
        assert torch.allclose(t, theirs[name], atol=1e-6, rtol=0), name


def test_existing_output_is_refused_and_untouched(tmp_path: Path, resident: ResidentComponents) -> None:
    out = tmp_path / "merged"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    mix = Mixture.from_weights(resident.names, (1, 1, 1))
    with pytest.raises(OutputExistsError, match="--force"):
        export_merged(resident, mix, out)
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt"] and (out / "keep.txt").read_text() == "mine"
    export_merged(resident, mix, out, force=True)
    assert not (out / "keep.txt").exists() and (out / "config.json").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["merged"]


def test_bad_method_parameters_leave_nothing(tmp_path: Path, resident: ResidentComponents) -> None:
    mix = Mixture.from_weights(resident.names, (1, 1, 1))
    with pytest.raises(MergeError, match="no parameter 'bogus'"):
        export_merged(resident, mix, tmp_path / "bad", method="ties", params={"bogus": 1.0})
    assert list(tmp_path.iterdir()) == []


@pytest.fixture()
def broken_source(tmp_path: Path, tiny_family: dict[str, Path]) -> ResidentComponents:
    """Components loaded fine, but the first one's tokenizer.json turns unreadable (a folder) before
    the export copies it: the failure comes after the weights are written into the temporary folder."""
    src = tmp_path / "src"
    for name in ("alpha", "beta"):
        shutil.copytree(tiny_family[name], src / name)
    r = ResidentComponents([open_checkpoint(src / "alpha"), open_checkpoint(src / "beta")], device="cpu")
    (src / "alpha" / "tokenizer.json").unlink()
    (src / "alpha" / "tokenizer.json").mkdir()
    return r


def test_a_failure_mid_export_leaves_no_partial_folder(tmp_path: Path, broken_source: ResidentComponents) -> None:
    dest = tmp_path / "exports"
    dest.mkdir()
    mix = Mixture.from_weights(broken_source.names, (0.5, 0.5))
    with pytest.raises(CheckpointError, match="nothing was written"):
        export_merged(broken_source, mix, dest / "merged")
    assert list(dest.iterdir()) == []


def test_a_failure_mid_export_with_force_keeps_the_old_folder(tmp_path: Path,
                                                               broken_source: ResidentComponents) -> None:
    dest = tmp_path / "exports"
    (dest / "merged").mkdir(parents=True)
    (dest / "merged" / "old.txt").write_text("previous export")
    mix = Mixture.from_weights(broken_source.names, (0.5, 0.5))
    with pytest.raises(CheckpointError, match="exporting to"):
        export_merged(broken_source, mix, dest / "merged", force=True)
    assert [p.name for p in dest.iterdir()] == ["merged"]
    assert [p.name for p in (dest / "merged").iterdir()] == ["old.txt"]
