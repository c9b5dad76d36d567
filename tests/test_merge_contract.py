"""One contract over every registered merge method, plus exact arithmetic on hand examples."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import pytest
import torch

from demix_core.errors import CompatibilityError, MergeError, MixtureError
from demix_core.io.checkpoints import open_checkpoint
from demix_core.merge import ResidentComponents, get_method, method_class, method_names
from demix_core.merge.registry import Segment

# Parameters that make each method do its characteristic work (mergekit's defaults keep everything).
EXERCISE: dict[str, dict[str, float]] = {
    "ties": {"density": 0.5},
    "dare_linear": {"density": 0.5},
    "dare_ties": {"density": 0.5},
}


@pytest.fixture(scope="module")
def resident(tiny_family: dict[str, Path]) -> ResidentComponents:
    comps = [open_checkpoint(tiny_family[n]) for n in ("alpha", "beta", "gamma")]
    return ResidentComponents(comps, base=open_checkpoint(tiny_family["base"]), device="cpu")


@pytest.fixture(scope="module")
def single(tiny_family: dict[str, Path]) -> ResidentComponents:
    """One component (alpha) and the base."""
    return ResidentComponents([open_checkpoint(tiny_family["alpha"])],
                              base=open_checkpoint(tiny_family["base"]), device="cpu")


def row_state(resident: ResidentComponents, row: torch.Tensor) -> dict[str, torch.Tensor]:
    return {s.name: row[s.offset: s.offset + s.numel].view(s.shape) for s in resident.segments}


def component_state(resident: ResidentComponents, i: int) -> dict[str, torch.Tensor]:
    return row_state(resident, resident.matrix[i])


def base_state(resident: ResidentComponents) -> dict[str, torch.Tensor]:
    assert resident.base is not None
    return row_state(resident, resident.base)


# --- the registry -----------------------------------------------------------------------------------


def test_registry_has_the_six_methods_each_documented() -> None:
    assert set(method_names()) >= {"linear", "task_arithmetic", "ties", "dare_linear", "dare_ties",
                                   "multislerp"}
    for name in method_names():
        cls = method_class(name)
        assert cls.name == name and cls.reference, name
        assert cls.__doc__, name
        for p in cls.params:
            assert p.low <= p.default <= p.high and p.doc, (name, p.name)
        assert get_method(name).values == {p.name: p.default for p in cls.params}


def test_defaults_are_mergekits() -> None:
    """mergekit 0.1.5's defaults: density 1, lambda 1; normalize on for ties only; rescale on for DARE."""
    ta, ties = get_method("task_arithmetic").values, get_method("ties").values
    assert ta == {"lambda": 1.0, "normalize": 0.0}
    assert ties == {"density": 1.0, "lambda": 1.0, "normalize": 1.0, "rescale": 0.0}
    for dare in ("dare_linear", "dare_ties"):
        assert get_method(dare).values == {"density": 1.0, "lambda": 1.0, "normalize": 0.0, "rescale": 1.0}
    assert get_method("multislerp").values == {"eps": 1e-8}
    assert method_class("multislerp").mergekit_globals == {"normalize_weights": True}
    assert method_class("linear").mergekit_globals == {"normalize": True}


# --- the contract, over every method ----------------------------------------------------------------


@pytest.mark.parametrize("method", method_names())
@pytest.mark.parametrize("weights", [(0.5, 0.3, 0.2), (1.0, 0.0, 0.0), (0.0, 0.5, 0.5)])
def test_contract_shapes_dtypes_finite_deterministic(resident: ResidentComponents, method: str,
                                                     weights: tuple[float, ...]) -> None:
    params = EXERCISE.get(method)
    merged = resident.merged_state(weights, method=method, params=params, seed=7)
    again = resident.merged_state(weights, method=method, params=params, seed=7)
    ref = component_state(resident, 0)
    assert list(merged) == list(ref)
    for name, t in merged.items():
        assert t.shape == ref[name].shape, name
        assert t.dtype == ref[name].dtype, name
        assert torch.isfinite(t).all(), name
        assert torch.equal(t, again[name]), f"{method} is not deterministic for a seed ({name})"


@pytest.mark.parametrize("method", method_names())
def test_contract_bfloat16_stays_bfloat16(tiny_family: dict[str, Path], method: str) -> None:
    comps = [open_checkpoint(tiny_family[n]) for n in ("alpha", "beta")]
    r = ResidentComponents(comps, base=open_checkpoint(tiny_family["base"]), device="cpu",
                           dtype=torch.bfloat16)
    merged = r.merged_state((0.7, 0.3), method=method, params=EXERCISE.get(method), seed=1)
    for name, t in merged.items():
        assert t.dtype == torch.bfloat16 and torch.isfinite(t).all(), name


@pytest.mark.parametrize("method", method_names())
def test_contract_merge_into_live_proxy_equals_merged_state(resident: ResidentComponents,
                                                            method: str) -> None:
    proxy = resident.new_proxy()
    params = EXERCISE.get(method)
    mix = resident.merge_into(proxy, (0.2, 0.3, 0.5), method=method, params=params, seed=3)
    state = resident.merged_state((0.2, 0.3, 0.5), method=method, params=params, seed=3)
    named = dict(proxy.model.named_parameters())
    for name, t in state.items():
        assert torch.equal(named[name], t), name
    assert proxy.mixture == mix and proxy.method == method
    assert proxy.model.get_output_embeddings().weight.data_ptr() == \
        proxy.model.get_input_embeddings().weight.data_ptr()


@pytest.mark.parametrize("method", method_names())
def test_contract_weights_on_one_component_give_it_back(resident: ResidentComponents, method: str) -> None:
    """With the defaults (nothing trimmed or dropped), weights (1,0,0) give component 1."""
    comp = component_state(resident, 0)
    merged = resident.merged_state((1.0, 0.0, 0.0), method=method)
    for name, t in merged.items():
        if method == "linear":
            assert torch.equal(t, comp[name]), name  # bitwise
        else:
            assert torch.allclose(t, comp[name], atol=1e-6, rtol=0), (method, name)


@pytest.mark.parametrize("method", method_names())
def test_contract_a_single_component_gives_it_back(single: ResidentComponents, method: str) -> None:
    comp = component_state(single, 0)
    for name, t in single.merged_state((1.0,), method=method).items():
        assert torch.allclose(t, comp[name], atol=1e-6, rtol=0), (method, name)


@pytest.mark.parametrize("method", ["ties", "dare_linear", "dare_ties"])
def test_contract_single_component_sparsified_is_sane(single: ResidentComponents, method: str) -> None:
    """Trimming/dropping one task vector: each entry is the base or base + (rescaled) delta."""
    comp, base = component_state(single, 0), base_state(single)
    merged = single.merged_state((1.0,), method=method, params={"density": 0.5}, seed=5)
    kept_total = n_total = 0
    for name, t in merged.items():
        delta, got = comp[name] - base[name], t - base[name]
        kept = got != 0
        ratio = got[kept] / delta[kept]
        # ties: kept entries are the delta itself; DARE: one L1 rescale factor per tensor (~1/density).
        # (got = merged - base loses a few bits to cancellation, hence the loose tolerance)
        assert torch.allclose(ratio, ratio.median().expand_as(ratio), rtol=1e-3), (method, name)
        if method == "ties":
            assert torch.allclose(ratio, torch.ones_like(ratio), rtol=1e-3)
            assert int(kept.sum()) == max(1, int(0.5 * delta.numel()))
        else:
            assert torch.allclose(got.abs().sum(), delta.abs().sum(), rtol=1e-3)  # L1 kept
        kept_total += int(kept.sum())
        n_total += delta.numel()
    assert 0.4 < kept_total / n_total < 0.6


@pytest.mark.parametrize("method", ["dare_linear", "dare_ties"])
def test_dare_masks_follow_the_seed(resident: ResidentComponents, method: str) -> None:
    a = resident.merged_state((0.4, 0.3, 0.3), method=method, params={"density": 0.5}, seed=1)
    b = resident.merged_state((0.4, 0.3, 0.3), method=method, params={"density": 0.5}, seed=2)
    assert any(not torch.equal(a[n], b[n]) for n in a)


@pytest.mark.parametrize("method", [m for m in method_names() if method_class(m).needs_base])
def test_task_vector_methods_need_a_base(tiny_family: dict[str, Path], method: str) -> None:
    comps = [open_checkpoint(tiny_family[n]) for n in ("alpha", "beta")]
    r = ResidentComponents(comps, device="cpu")
    with pytest.raises(MergeError, match=f"method '{method}' needs a base"):
        r.merged_state((0.5, 0.5), method=method)
    with pytest.raises(MergeError, match="needs a base"):
        get_method(method).merge_tensor(torch.zeros(2, 3), torch.tensor([0.5, 0.5]), None, None)
    with pytest.raises(MergeError, match="needs a base"):
        get_method(method).mergekit_config([0.5, 0.5], ["a", "b"], None, "float32")


def test_unknown_method_lists_every_known_one() -> None:
    with pytest.raises(MergeError) as info:
        get_method("tie")
    msg = str(info.value)
    assert "unknown merge method 'tie'" in msg and "\n" not in msg
    for name in method_names():
        assert name in msg


def test_unknown_and_out_of_range_parameters() -> None:
    with pytest.raises(MergeError, match="no parameter 'dens'.*density"):
        get_method("ties", params={"dens": 0.5})
    with pytest.raises(MergeError, match="no parameter 'density'; it takes no parameters"):
        get_method("linear", params={"density": 0.5})
    with pytest.raises(MergeError, match="density=1.5"):
        get_method("ties", params={"density": 1.5})
    with pytest.raises(MergeError, match="density=nan"):
        get_method("dare_ties", params={"density": math.nan})


def test_bad_weights_are_refused(resident: ResidentComponents) -> None:
    with pytest.raises(MixtureError, match="negative"):
        resident.merged_state((-0.1, 0.6, 0.5))
    with pytest.raises(MixtureError, match="2 weights for 3"):
        resident.merged_state((0.5, 0.5))
    with pytest.raises(MixtureError, match="sum to 0"):
        resident.merged_state((0.0, 0.0, 0.0))


# --- exact arithmetic ---------------------------------------------------------------------------------


def test_linear_equals_hand_computed_average(resident: ResidentComponents) -> None:
    w = (0.6, 0.15, 0.25)
    merged = resident.merged_state(w, method="linear")
    states = [component_state(resident, i) for i in range(3)]
    for name, t in merged.items():
        expected = sum(wi * s[name].double() for wi, s in zip(w, states))
        assert torch.allclose(t.double(), expected, atol=1e-6, rtol=0), name


def test_task_arithmetic_by_hand(resident: ResidentComponents) -> None:
    w = (0.6, 0.15, 0.25)
    states, base = [component_state(resident, i) for i in range(3)], base_state(resident)
    merged = resident.merged_state(w, method="task_arithmetic", params={"lambda": 0.5})
    for name, t in merged.items():
        b = base[name].double()
        expected = b + 0.5 * sum(wi * (s[name].double() - b) for wi, s in zip(w, states))
        assert torch.allclose(t.double(), expected, atol=1e-6, rtol=0), name


def test_linear_proxy_parameters_are_views_of_one_buffer(resident: ResidentComponents) -> None:
    proxy = resident.new_proxy()
    ptr_before = proxy.flat.data_ptr()
    resident.merge_into(proxy, (0.1, 0.2, 0.7))
    assert proxy.flat.data_ptr() == ptr_before
    embed = proxy.model.get_input_embeddings().weight
    assert embed.data_ptr() == proxy.flat.data_ptr() + resident.segments[0].offset * 4


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


def test_ties_sign_election_drops_the_minority() -> None:
    """No trimming: entry 0 has +2*0.25 vs -1*0.75 -> negative wins; only the minus survives."""
    base = torch.ones(2)
    stack = base + torch.tensor([[2.0, 1.0], [-1.0, 2.0]])
    w = torch.tensor([0.25, 0.75])
    out = get_method("ties").merge_tensor(stack, w, base, None)
    # entry 0: only b (-1, weight .75) agrees -> -0.75/0.75 = -1; entry 1: both agree -> (.25+1.5)/1
    assert torch.allclose(out, base + torch.tensor([-1.0, 1.75]))
    raw = get_method("ties", params={"normalize": 0}).merge_tensor(stack, w, base, None)
    assert torch.allclose(raw, base + torch.tensor([-0.75, 1.75]))


def test_ties_rescale_keeps_l1_norm() -> None:
    base = torch.zeros(4)
    stack = torch.tensor([[4.0, -1.0, 1.0, 2.0]])
    out = get_method("ties", params={"density": 0.5, "rescale": 1}).merge_tensor(
        stack, torch.tensor([1.0]), base, None)
    assert torch.allclose(out, torch.tensor([4.0, 0.0, 0.0, 2.0]) * (8 / 6))


def test_dare_uses_the_generator_it_is_given() -> None:
    base = torch.zeros(1000)
    stack = torch.randn(2, 1000, generator=torch.Generator().manual_seed(0))
    dare = get_method("dare_linear", params={"density": 0.3})
    w = torch.tensor([0.5, 0.5])
    a = dare.merge_tensor(stack, w, base, torch.Generator().manual_seed(11))
    b = dare.merge_tensor(stack, w, base, torch.Generator().manual_seed(11))
    assert torch.equal(a, b)
    # Redo by hand: masks drawn component by component from the same stream, L1-rescaled, summed.
    gen = torch.Generator().manual_seed(11)
    expected = torch.zeros(1000)
    for row in stack:
        kept = row * torch.bernoulli(torch.full_like(row, 0.3), generator=gen)
        expected += 0.5 * kept * (row.abs().sum() / kept.abs().sum())
    assert torch.allclose(a, expected, atol=1e-6)


def test_multislerp_of_two_orthogonal_unit_vectors_is_their_bisector() -> None:
    stack = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    out = get_method("multislerp").merge_tensor(stack, torch.tensor([0.5, 0.5]), None, None)
    assert torch.allclose(out, torch.tensor([1.0, 1.0, 0.0]) / math.sqrt(2), atol=1e-6)
    # Scaled inputs: the direction is the same, the norm is the weighted mean norm (1*.5 + 3*.5).
    out = get_method("multislerp").merge_tensor(stack * torch.tensor([[1.0], [3.0]]),
                                                torch.tensor([0.5, 0.5]), None, None)
    assert torch.allclose(out.norm(), torch.tensor(2.0), atol=1e-6)


def test_multislerp_with_base_works_on_deltas_and_handles_unchanged_tensors() -> None:
    base = torch.tensor([5.0, 5.0, 5.0])
    stack = base + torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    out = get_method("multislerp").merge_tensor(stack, torch.tensor([1.0, 1.0, 1.0]), base, None)
    assert torch.allclose(out, base + torch.ones(3) / math.sqrt(3), atol=1e-6)
    # Every component equals the base here: the barycentre of zero deltas is the base.
    same = get_method("multislerp").merge_tensor(base.expand(3, 3).clone(), torch.ones(3) / 3, base, None)
    assert torch.equal(same, base)


def test_multislerp_cancelling_directions_are_an_error() -> None:
    a = torch.tensor([1.0, 0.0])
    stack = torch.stack([a, -a, a, -a])
    with pytest.raises(MergeError, match="cancel out"):
        get_method("multislerp").merge_tensor(stack, torch.full((4,), 0.25), None, None)
    two = get_method("multislerp").merge_tensor(stack[:2], torch.tensor([0.5, 0.5]), None, None)
    assert torch.allclose(two, torch.zeros(2))  # two antipodal vectors: linear fallback


def test_mergekit_config_shape() -> None:
    ties = get_method("ties", params={"density": 0.4}).mergekit_config([0.7, 0.3], ["a", "b"], "base", "float32")
    assert ties == {
        "merge_method": "ties", "dtype": "float32",
        "models": [{"model": "a", "parameters": {"weight": 0.7, "density": 0.4}},
                   {"model": "b", "parameters": {"weight": 0.3, "density": 0.4}}],
        "base_model": "base",
        "parameters": {"lambda": 1.0, "normalize": True, "rescale": False},
    }
    slerp = get_method("multislerp").mergekit_config([0.5, 0.5], ["a", "b"], None, "bfloat16")
    assert "base_model" not in slerp and slerp["parameters"] == {"eps": 1e-8, "normalize_weights": True}
    linear = get_method("linear").mergekit_config([0.5, 0.5], ["a", "b"], "base", "float32")
    assert "base_model" not in linear and linear["parameters"] == {"normalize": True}


def test_a_base_without_tokenizer_files_is_accepted_a_different_one_is_not(
    tmp_path: Path, tiny_family: dict[str, Path]
) -> None:
    bare = tmp_path / "bare"
    bare.mkdir()
    for f in ("config.json", "model.safetensors"):
        shutil.copy(tiny_family["base"] / f, bare / f)
    comps = [open_checkpoint(tiny_family[n]) for n in ("alpha", "beta")]
    r = ResidentComponents(comps, base=open_checkpoint(bare), device="cpu")
    assert r.base is not None
    other = tmp_path / "othertok"
    shutil.copytree(tiny_family["base"], other)
    (other / "tokenizer.json").write_text((other / "tokenizer.json").read_text().replace("quick", "quack"))
    with pytest.raises(CompatibilityError, match="tokenizer differs"):
        ResidentComponents(comps, base=open_checkpoint(other), device="cpu")
