"""Our merges equal mergekit's on the same tiny checkpoints (mergekit is a test-only dependency)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

from demix_core.checkpoints import open_checkpoint
from demix_core.export import mergekit_yaml
from demix_core.merge import ResidentComponents
from demix_core.mixture import Mixture

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


@pytest.fixture(scope="module")
def resident(tiny_family: dict[str, Path]) -> ResidentComponents:
    comps = [open_checkpoint(tiny_family[n]) for n in ("alpha", "beta", "gamma")]
    return ResidentComponents(comps, base=open_checkpoint(tiny_family["base"]), device="cpu")


CASES = [
    ("linear", {}, (0.5, 0.3, 0.2)),
    ("task_arithmetic", {}, (0.5, 0.3, 0.2)),
    ("task_arithmetic", {"lambda": 0.8}, (0.2, 0.2, 0.6)),
    ("ties", {"density": 0.5}, (0.5, 0.3, 0.2)),
    ("ties", {"density": 0.3, "normalize": 0.0}, (0.4, 0.4, 0.2)),
    ("multislerp", {}, (0.5, 0.3, 0.2)),
    ("multislerp", {}, (0.1, 0.0, 0.9)),
]


@pytest.mark.parametrize(("method", "params", "weights"), CASES)
def test_equals_mergekit(tmp_path: Path, resident: ResidentComponents, method: str,
                         params: dict[str, float], weights: tuple[float, ...]) -> None:
    mix = Mixture.from_weights(resident.names, weights)
    ours = resident.merged_state(mix, method=method, params=params)
    theirs = run_mergekit(mergekit_yaml(resident, mix, method=method, params=params), tmp_path / "mk")
    assert set(ours) <= set(theirs) | {"lm_head.weight"}
    for name, t in ours.items():
        assert torch.allclose(t, theirs[name].to(t.dtype), atol=1e-5, rtol=0), (
            f"{method} {name}: max diff {(t - theirs[name]).abs().max().item():.3g}")


@pytest.mark.parametrize("method", ["dare_linear", "dare_ties"])
def test_dare_runs_in_mergekit_with_same_shapes(tmp_path: Path, resident: ResidentComponents,
                                                method: str) -> None:
    """mergekit draws DARE masks from torch's global RNG: compare shapes and the kept fraction."""
    mix = Mixture.from_weights(resident.names, (0.5, 0.3, 0.2))
    ours = resident.merged_state(mix, method=method, params={"density": 0.5})
    theirs = run_mergekit(mergekit_yaml(resident, mix, method=method, params={"density": 0.5}),
                          tmp_path / "mk")
    for name, t in ours.items():
        assert t.shape == theirs[name].shape
    w = "model.layers.0.mlp.up_proj.weight"
    base = resident.base
    assert base is not None
    seg = next(s for s in resident.segments if s.name == w)
    base_w = base[seg.offset: seg.offset + seg.numel].view(seg.shape)
    ours_changed = (ours[w] != base_w).float().mean().item()
    theirs_changed = (theirs[w] != base_w).float().mean().item()
    assert abs(ours_changed - theirs_changed) < 0.1
