"""One contract over every registered merge method, plus exact linear arithmetic."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from demix_core.checkpoints import open_checkpoint
from demix_core.errors import MergeError, MixtureError
from demix_core.merge import ResidentComponents, get_method, method_names
from demix_core.merge.registry import Segment


@pytest.fixture(scope="module")
def resident(tiny_family: dict[str, Path]) -> ResidentComponents:
    comps = [open_checkpoint(tiny_family[n]) for n in ("alpha", "beta", "gamma")]
    return ResidentComponents(comps, base=open_checkpoint(tiny_family["base"]), device="cpu")


def component_state(resident: ResidentComponents, i: int) -> dict[str, torch.Tensor]:
    row = resident.matrix[i]
    return {s.name: row[s.offset: s.offset + s.numel].view(s.shape) for s in resident.segments}


def test_registry_has_the_six_methods() -> None:
    assert set(method_names()) >= {"linear", "task_arithmetic", "ties", "dare_linear", "dare_ties",
                                   "multislerp"}


@pytest.mark.parametrize("method", method_names())
@pytest.mark.parametrize("weights", [(0.5, 0.3, 0.2), (1.0, 0.0, 0.0), (0.0, 0.5, 0.5)])
def test_contract_shapes_dtypes_finite_deterministic(resident: ResidentComponents, method: str,
                                                     weights: tuple[float, ...]) -> None:
    merged = resident.merged_state(weights, method=method, seed=7)
    again = resident.merged_state(weights, method=method, seed=7)
    ref = component_state(resident, 0)
    assert merged.keys() == ref.keys()
    for name, t in merged.items():
        assert t.shape == ref[name].shape, name
        assert t.dtype == ref[name].dtype, name
        assert torch.isfinite(t).all(), name
        assert torch.equal(t, again[name]), f"{method} is not deterministic for a seed ({name})"


@pytest.mark.parametrize("method", method_names())
def test_contract_merge_into_live_proxy_equals_merged_state(resident: ResidentComponents,
                                                            method: str) -> None:
    proxy = resident.new_proxy()
    resident.merge_into(proxy, (0.2, 0.3, 0.5), method=method, seed=3)
    state = resident.merged_state((0.2, 0.3, 0.5), method=method, seed=3)
    params = dict(proxy.model.named_parameters())
    for name, t in state.items():
        assert torch.equal(params[name], t), name
    assert proxy.mixture is not None and proxy.method == method


def test_contract_single_component_gives_it_back(resident: ResidentComponents) -> None:
    """Weights (1,0,0): linear and task arithmetic give component 1 (linear bitwise)."""
    comp = component_state(resident, 0)
    linear = resident.merged_state((1.0, 0.0, 0.0), method="linear")
    for name, t in linear.items():
        assert torch.equal(t, comp[name]), name
    ta = resident.merged_state((1.0, 0.0, 0.0), method="task_arithmetic")
    for name, t in ta.items():
        assert torch.allclose(t, comp[name], atol=1e-6), name


def test_linear_equals_hand_computed_average(resident: ResidentComponents) -> None:
    w = (0.6, 0.15, 0.25)
    merged = resident.merged_state(w, method="linear")
    states = [component_state(resident, i) for i in range(3)]
    for name, t in merged.items():
        expected = sum(wi * s[name].double() for wi, s in zip(w, states))
        assert torch.allclose(t.double(), expected, atol=1e-6, rtol=0), name


def test_linear_proxy_parameters_are_views_of_one_buffer(resident: ResidentComponents) -> None:
    proxy = resident.new_proxy()
    ptr_before = proxy.flat.data_ptr()
    resident.merge_into(proxy, (0.1, 0.2, 0.7))
    assert proxy.flat.data_ptr() == ptr_before
    embed = proxy.model.get_input_embeddings().weight
    assert embed.data_ptr() == proxy.flat.data_ptr() + resident.segments[0].offset * 4
    # Tied embeddings: the output head is the same storage.
    assert proxy.model.get_output_embeddings().weight.data_ptr() == embed.data_ptr()


def test_task_vector_methods_need_a_base(tiny_family: dict[str, Path]) -> None:
    comps = [open_checkpoint(tiny_family[n]) for n in ("alpha", "beta")]
    r = ResidentComponents(comps, device="cpu")
    with pytest.raises(MergeError, match="needs a base"):
        r.merged_state((0.5, 0.5), method="ties")


def test_unknown_method_lists_known_ones() -> None:
    with pytest.raises(MergeError) as info:
        get_method("tie")
    msg = str(info.value)
    assert "unknown merge method 'tie'" in msg
    for name in ("linear", "ties", "multislerp"):
        assert name in msg


def test_unknown_and_out_of_range_parameters() -> None:
    with pytest.raises(MergeError, match="no parameter 'dens'"):
        get_method("ties", params={"dens": 0.5})
    with pytest.raises(MergeError, match="density=1.5"):
        get_method("ties", params={"density": 1.5})


def test_bad_weights_are_refused(resident: ResidentComponents) -> None:
    with pytest.raises(MixtureError, match="negative"):
        resident.merged_state((-0.1, 0.6, 0.5))
    with pytest.raises(MixtureError, match="2 weights for 3"):
        resident.merged_state((0.5, 0.5))


def test_ties_trims_and_elects_sign_on_a_hand_example() -> None:
    """Two task vectors on 4 entries, density 0.5 (keep the top 2 by magnitude of each)."""
    base = torch.zeros(4)
    stack = torch.tensor([[1.0, -2.0, 0.1, 3.0], [-1.5, 1.0, 2.0, 0.2]])
    ties = get_method("ties", params={"density": 0.5})
    # trimmed: a=[0,-2,0,3], b=[-1.5,0,2,0]; weighted by 0.5: a=[0,-1,0,1.5], b=[-.75,0,1,0]
    # sums: [-.75,-1,1,1.5] -> signs [-,-,+,+]; every kept entry agrees; divisor = 0.5 where kept.
    out = ties.merge_tensor(stack, torch.tensor([0.5, 0.5]), base, None)
    assert torch.allclose(out, torch.tensor([-1.5, -2.0, 2.0, 3.0]))
    seg = [Segment("x", 0, 4, (4,))]
    flat = torch.empty(4)
    ties.merge_flat(stack, torch.tensor([0.5, 0.5]), base, seg, flat)
    assert torch.equal(flat, out)
