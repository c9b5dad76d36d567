"""Our merges equal mergekit 0.1.5's on the same tiny checkpoints (mergekit is a test-only dependency).

mergekit runs through its Python API on CPU, offline, from the YAML our exporter writes
(:func:`demix_core.export.merged.mergekit_yaml`), so what is tested is what a user would run.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

from demix_core.export.merged import mergekit_yaml
from demix_core.io.checkpoints import open_checkpoint
from demix_core.merge import ResidentComponents
from demix_core.mixing.mixture import Mixture

mergekit = pytest.importorskip("mergekit")


def run_mergekit(config_text: str, out: Path) -> dict[str, torch.Tensor]:
    from mergekit.config import MergeConfiguration
    from mergekit.merge import MergeOptions, run_merge

    cfg = MergeConfiguration.model_validate(yaml.safe_load(config_text))
    run_merge(cfg, str(out), options=MergeOptions(cuda=False, copy_tokenizer=False, quiet=True,
                                                  write_model_card=False, random_seed=0))
    state: dict[str, torch.Tensor] = {}
    for f in sorted(out.glob("*.safetensors")):
        state.update(load_file(str(f)))
    return state


def assert_same(ours: dict[str, torch.Tensor], theirs: dict[str, torch.Tensor], what: str,
                atol: float = 1e-5) -> None:
    # Tied embeddings: the checkpoints store no lm_head; mergekit skips that optional weight, we never
    # had it. Every stored tensor is merged by both.
    assert set(ours) == set(theirs), (what, set(ours) ^ set(theirs))
    for name, t in ours.items():
        assert torch.allclose(t, theirs[name].to(t.dtype), atol=atol, rtol=0), (
            f"{what} {name}: max diff {(t - theirs[name]).abs().max().item():.3g}")


@pytest.fixture(scope="module")
def resident(tiny_family: dict[str, Path]) -> ResidentComponents:
    comps = [open_checkpoint(tiny_family[n]) for n in ("alpha", "beta", "gamma")]
    return ResidentComponents(comps, base=open_checkpoint(tiny_family["base"]), device="cpu")


CASES = [
    ("linear", {}, (0.5, 0.3, 0.2)),
    ("task_arithmetic", {}, (0.5, 0.3, 0.2)),
    ("task_arithmetic", {"lambda": 0.8, "normalize": 1}, (0.2, 0.2, 0.6)),
    ("ties", {}, (0.5, 0.3, 0.2)),
    ("ties", {"density": 0.5}, (0.5, 0.3, 0.2)),
    ("ties", {"density": 0.3, "normalize": 0, "rescale": 1, "lambda": 1.5}, (0.4, 0.4, 0.2)),
    ("ties", {"density": 0.2}, (0.0, 0.7, 0.3)),
    ("dare_linear", {}, (0.5, 0.3, 0.2)),  # density 1: nothing dropped, so no RNG and exact
    ("dare_ties", {"normalize": 1}, (0.5, 0.3, 0.2)),
    ("multislerp", {}, (0.5, 0.3, 0.2)),
    ("multislerp", {}, (0.1, 0.0, 0.9)),
]


@pytest.mark.parametrize(("method", "params", "weights"), CASES,
                         ids=[f"{m}-{i}" for i, (m, _, _) in enumerate(CASES)])
def test_equals_mergekit(tmp_path: Path, resident: ResidentComponents, method: str,
                         params: dict[str, float], weights: tuple[float, ...]) -> None:
    mix = Mixture.from_weights(resident.names, weights)
    ours = resident.merged_state(mix, method=method, params=params)
    theirs = run_mergekit(mergekit_yaml(resident, mix, method=method, params=params), tmp_path / "mk")
    assert_same(ours, theirs, method)


def test_multislerp_without_base_equals_mergekit(tmp_path: Path, tiny_family: dict[str, Path]) -> None:
    r = ResidentComponents([open_checkpoint(tiny_family[n]) for n in ("alpha", "beta", "gamma")], device="cpu")
    mix = Mixture.from_weights(r.names, (0.3, 0.3, 0.4))
    text = mergekit_yaml(r, mix, method="multislerp")
    assert "base_model" not in yaml.safe_load(text)
    assert_same(r.merged_state(mix, method="multislerp"), run_mergekit(text, tmp_path / "mk"), "multislerp")


@pytest.fixture(scope="module")
def untied_family(tmp_path_factory: pytest.TempPathFactory, tiny_tokenizer) -> dict[str, Path]:
    """A family with a separate lm_head, which mergekit merges like any other tensor."""
    from demix_core.train.tiny import save_tiny, tiny_config

    root = tmp_path_factory.mktemp("untied")
    base = save_tiny(root / "base", seed=0, config=tiny_config(tie=False), tokenizer=tiny_tokenizer)
    out = {"base": base}
    for i, name in enumerate(["alpha", "beta"]):
        out[name] = save_tiny(root / name, seed=i + 1, base=base, tokenizer=tiny_tokenizer, noise=0.05)
    return out


@pytest.mark.parametrize("method", ["ties", "multislerp"])
def test_untied_lm_head_equals_mergekit(tmp_path: Path, untied_family: dict[str, Path], method: str) -> None:
    r = ResidentComponents([open_checkpoint(untied_family[n]) for n in ("alpha", "beta")],
                           base=open_checkpoint(untied_family["base"]), device="cpu")
    mix = Mixture.from_weights(r.names, (0.6, 0.4))
    params = {"density": 0.5} if method == "ties" else {}
    ours = r.merged_state(mix, method=method, params=params)
    assert "lm_head.weight" in ours
    assert_same(ours, run_mergekit(mergekit_yaml(r, mix, method=method, params=params), tmp_path / "mk"), method)


@pytest.mark.parametrize("method", ["dare_linear", "dare_ties"])
def test_dare_with_drops_matches_mergekit_in_shape_and_rate(tmp_path: Path, resident: ResidentComponents,
                                                            method: str) -> None:
    """mergekit draws DARE masks from torch's global RNG in its own order: compare shapes and rates."""
    mix = Mixture.from_weights(resident.names, (0.5, 0.3, 0.2))
    ours = resident.merged_state(mix, method=method, params={"density": 0.5})
    theirs = run_mergekit(mergekit_yaml(resident, mix, method=method, params={"density": 0.5}),
                          tmp_path / "mk")
    assert set(ours) == set(theirs)
    for name, t in ours.items():
        assert t.shape == theirs[name].shape and t.dtype == theirs[name].dtype, name
    base = resident.base
    assert base is not None
    for seg in resident.segments:
        if seg.numel < 1000:
            continue
        base_w = base[seg.offset: seg.offset + seg.numel].view(seg.shape)
        ours_changed = (ours[seg.name] != base_w).float().mean().item()
        theirs_changed = (theirs[seg.name] != base_w).float().mean().item()
        assert abs(ours_changed - theirs_changed) < 0.05, seg.name
