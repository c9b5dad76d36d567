"""Components resident on a device as one (K, N) matrix, merged in place into a live proxy model.

The proxy is an ordinary transformers model whose parameters are views into one flat buffer (N,);
``merge_into`` overwrites that buffer, so the next forward pass sees the new mixture with no disk I/O
and no allocation.

Memory: before loading, a :class:`MemoryPlan` compares (K+1) x N x bytes (the components, the proxy, and
the base when there is one) with what the device has free. Each stored tensor is read on its own
(safetensors ``safe_open``, shard by shard) straight into its slice of the matrix, so loading peaks at the
matrix + one tensor. When the matrix does not fit a GPU but fits host memory, it stays in (pinned) host
memory and each slice is copied to the device at merge time. Half-precision components are merged with
fp32 accumulation; the proxy keeps the checkpoints' dtype.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from demix_core.errors import CheckpointError, MergeError, MixtureError
from demix_core.io.checkpoints import Checkpoint, require_compatible
from demix_core.io.device import plan_memory, resolve_device
from demix_core.merge.registry import MergeMethod, Segment, get_method
from demix_core.mixing.mixture import Mixture


@dataclass
class Proxy:
    """A live model whose parameters are views into ``flat``; ``mixture`` is what it holds now."""

    model: torch.nn.Module
    flat: torch.Tensor
    mixture: Mixture | None = None
    method: str = ""
    last_merge_seconds: float = 0.0
    extra: dict[str, object] = field(default_factory=dict)


class ResidentComponents:
    """K component checkpoints loaded once onto a device as a (K, N) matrix (plus the base, if any).

    Args:
        components: Opened component checkpoints (checked for compatibility).
        names: One name per component (defaults to the folder names).
        base: The shared base checkpoint, needed by task-vector methods.
        device: ``auto``, ``cpu``, ``cuda``...
        dtype: Storage dtype of the matrix; defaults to the checkpoints' dtype.
        log: Called with the memory plan's line before anything is loaded (e.g. ``print``).
        host_available: Host bytes to plan with (default: measured; tests and benchmarks set it).

    Raises:
        MergeError: Not enough host memory for the matrix (the message says how much is needed).
    """

    def __init__(
        self, components: Sequence[Checkpoint], *, names: Sequence[str] | None = None,
        base: Checkpoint | None = None, device: str | torch.device = "auto",
        dtype: torch.dtype | None = None, log: Callable[[str], None] | None = None,
        host_available: int | None = None,
    ) -> None:
        if len(components) == 0:
            raise MergeError("no components given; pass at least one checkpoint folder")
        require_compatible(components)
        if base is not None:  # a base saved without tokenizer files is fine; a different one is not
            require_compatible([components[0], base], check_tokenizer=bool(base.tokenizer_hash))
        self.checkpoints = list(components)
        self.base_checkpoint = base
        self.names = tuple(names) if names is not None else tuple(c.name for c in components)
        if len(self.names) != len(components):
            raise MixtureError(f"{len(self.names)} names for {len(components)} components")
        if len(set(self.names)) != len(self.names):
            raise MixtureError(f"component names repeat: {list(self.names)}; name each folder uniquely")
        self.device = resolve_device(device)
        self.config = _load_config(components[0])
        self._layout(dtype or _stored_dtype(components[0]))
        for ckpt in [*components, *([base] if base is not None else [])]:
            self._check_shapes(ckpt)
        self.plan = plan_memory(len(components) + (base is not None), self.numel, self.dtype, self.device,
                                host_available=host_available)
        if log is not None:
            log(self.plan.line())
        store = self.device if self.plan.placement == "device" else torch.device("cpu")
        pin = store.type == "cpu" and self.device.type == "cuda"
        # (K, N): one flat row per component, in the model's parameter order.
        self.matrix = _empty((len(components), self.numel), self.dtype, store, pin)
        for i, ckpt in enumerate(components):
            self._fill_row(self.matrix[i], ckpt)
        self.base: torch.Tensor | None = None
        if base is not None:
            self.base = _empty((self.numel,), self.dtype, store, pin)
            self._fill_row(self.base, base)

    @classmethod
    def synthetic(
        cls, config: Any, k: int, *, device: str | torch.device = "auto",
        dtype: torch.dtype = torch.float32, seed: int = 0, with_base: bool = False,
    ) -> ResidentComponents:
        """K random components of ``config``'s architecture built straight on the device (benchmarks).

        Args:
            config: A transformers config.
            k: Number of components.
            device: Where the (K, N) matrix lives.
            dtype: Its dtype.
            seed: Seed for the random values.
            with_base: Also make a random base vector.
        """
        self = cls.__new__(cls)
        self.checkpoints, self.base_checkpoint = [], None
        self.names = tuple(f"c{i + 1}" for i in range(k))
        self.device, self.config = resolve_device(device), config
        self._layout(dtype)
        self.plan = plan_memory(k + with_base, self.numel, dtype, self.device)
        gen = torch.Generator(device=self.device).manual_seed(seed)
        self.matrix = torch.empty((k, self.numel), dtype=dtype, device=self.device)
        for i in range(k):  # row by row keeps the fp32 temporary at one row
            self.matrix[i].copy_(torch.randn(self.numel, generator=gen, device=self.device) * 0.02)
        self.base = None
        if with_base:
            self.base = (torch.randn(self.numel, generator=gen, device=self.device) * 0.02).to(dtype)
        return self

    def _layout(self, dtype: torch.dtype) -> None:
        """Parameter names, shapes and offsets from the architecture on the meta device (no storage)."""
        from transformers import AutoModelForCausalLM

        with torch.device("meta"):
            template = AutoModelForCausalLM.from_config(self.config, dtype=dtype)
        self.dtype = dtype
        self.segments = _segments(template)
        self.numel = sum(s.numel for s in self.segments)
        self._renames = _renames(template)

    def stored_name(self, ckpt: Checkpoint, name: str) -> str | None:
        """The name parameter ``name`` is stored under in ``ckpt``: the same, or the one transformers renames
        to it on loading (e.g. GPT-NeoX's ``embed_out`` -> ``lm_head``); None when it is not there."""
        if name in ckpt.tensors:
            return name
        for stored in ckpt.tensors:
            renamed = stored
            for pattern, target in self._renames:
                renamed = pattern.sub(target, renamed)
            if renamed == name:
                return stored
        return None

    @property
    def k(self) -> int:
        """Number of components."""
        return int(self.matrix.shape[0])

    def _check_shapes(self, ckpt: Checkpoint) -> None:
        """Stored tensors must have the shapes ``config.json`` gives them (read from headers, nothing loaded)."""
        for seg in self.segments:
            stored = self.stored_name(ckpt, seg.name)
            if stored is None:
                raise CheckpointError(f"{ckpt.path} lacks tensor {seg.name}; it is not a sibling checkpoint")
            info = ckpt.tensors[stored]
            if tuple(info.shape) != tuple(seg.shape):
                raise CheckpointError(
                    f"{ckpt.path}: tensor {seg.name} is stored as {list(info.shape)} but its config.json "
                    f"makes it {list(seg.shape)}; restore the checkpoint's config.json or re-save the model")

    def _fill_row(self, row: torch.Tensor, ckpt: Checkpoint) -> None:
        """Read each tensor on its own (shard by shard) straight into its slice of ``row``: memory peaks at
        one tensor, never a whole state dict."""
        from safetensors import SafetensorError, safe_open

        by_file: dict[str, list[tuple[Segment, str]]] = {}
        for seg in self.segments:
            stored = self.stored_name(ckpt, seg.name)
            if stored is None:
                raise CheckpointError(f"{ckpt.path} lacks tensor {seg.name}; it is not a sibling checkpoint")
            by_file.setdefault(ckpt.tensors[stored].file, []).append((seg, stored))
        for file, segs in sorted(by_file.items()):
            try:
                with safe_open(str(ckpt.path / file), framework="pt", device="cpu") as fh:
                    for seg, stored in segs:
                        t = fh.get_tensor(stored)  # (shape) in the stored dtype
                        row[seg.offset: seg.offset + seg.numel].copy_(t.reshape(-1))  # cast, maybe to the GPU
                        del t
            except (SafetensorError, OSError) as exc:
                raise CheckpointError(f"cannot read {ckpt.path / file} ({exc}); copy or save it again") from None

    def new_proxy(self) -> Proxy:
        """A fresh live model on the device, its parameters views into one flat buffer.

        The proxy starts as component 1; call :meth:`merge_into` to set a mixture.
        """
        from transformers import AutoModelForCausalLM
        from transformers.initialization import no_init_weights

        with torch.device(self.device), no_init_weights():
            model = AutoModelForCausalLM.from_config(self.config, dtype=self.dtype)
        model.tie_weights()  # skipped with the init functions; the layout assumes the tying
        flat = torch.empty(self.numel, dtype=self.dtype, device=self.device)
        flat.copy_(self.matrix[0])
        params = dict(model.named_parameters())
        if list(params) != [seg.name for seg in self.segments]:
            raise CheckpointError("the proxy's parameters do not match the components' layout; "
                                  "report this with the model's config")
        for seg in self.segments:
            # Tied parameters are one Parameter object, so both names follow the view.
            params[seg.name].data = flat[seg.offset: seg.offset + seg.numel].view(seg.shape)
        model.eval()
        return Proxy(model, flat)

    def mixture(self, weights: Mixture | Sequence[float] | Mapping[str, float]) -> Mixture:
        """Coerce weights (a Mixture, a sequence in component order, or a name mapping)."""
        if isinstance(weights, Mixture):
            if weights.names != self.names:
                return Mixture.from_mapping(self.names, weights.as_dict())
            return weights
        if isinstance(weights, Mapping):
            return Mixture.from_mapping(self.names, weights)
        return Mixture.from_weights(self.names, list(weights))

    def merge_into(
        self, proxy: Proxy, weights: Mixture | Sequence[float] | Mapping[str, float], *,
        method: str | MergeMethod = "linear", params: Mapping[str, float] | None = None, seed: int = 0,
    ) -> Mixture:
        """Overwrite the proxy's parameters in place with the merge of the components.

        Args:
            proxy: From :meth:`new_proxy`.
            weights: The mixture.
            method: A registered method name or a configured method.
            params: Method parameters (when ``method`` is a name).
            seed: Seed for random masks.

        Returns:
            The validated mixture.
        """
        mix, m, seconds = self._merge(proxy.flat, weights, method=method, params=params, seed=seed)
        proxy.last_merge_seconds = seconds
        proxy.mixture, proxy.method = mix, m.name
        return mix

    def merged_state(
        self, weights: Mixture | Sequence[float] | Mapping[str, float], *, method: str | MergeMethod = "linear",
        params: Mapping[str, float] | None = None, seed: int = 0,
    ) -> dict[str, torch.Tensor]:
        """The merged weights as a fresh ``{name: tensor}`` (exports, tests): the :meth:`merge_into` path."""
        out = torch.empty(self.numel, dtype=self.dtype, device=self.device)
        self._merge(out, weights, method=method, params=params, seed=seed)
        return {s.name: out[s.offset: s.offset + s.numel].view(s.shape) for s in self.segments}

    def _merge(
        self, out: torch.Tensor, weights: Mixture | Sequence[float] | Mapping[str, float], *,
        method: str | MergeMethod, params: Mapping[str, float] | None, seed: int,
    ) -> tuple[Mixture, MergeMethod, float]:
        """The one merge path: write the merge into the flat (N,) buffer ``out``.

        Returns:
            The validated mixture, the configured method, and the seconds the merge itself took.
        """
        mix = self.mixture(weights)
        m = method if isinstance(method, MergeMethod) else get_method(method, seed=seed, params=params)
        w = torch.tensor(mix.weights, dtype=torch.float32, device=self.device)
        start = time.perf_counter()
        with torch.no_grad():
            m.merge_flat(self.matrix, w, self.base, self.segments, out)
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return mix, m, time.perf_counter() - start


def _empty(shape: tuple[int, ...], dtype: torch.dtype, device: torch.device, pin: bool) -> torch.Tensor:
    """An uninitialised tensor; pinned host memory when asked (plain host memory if pinning fails)."""
    if pin:
        try:
            return torch.empty(shape, dtype=dtype, pin_memory=True)
        except RuntimeError:
            pass
    return torch.empty(shape, dtype=dtype, device=device)


def _load_config(ckpt: Checkpoint) -> Any:
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(str(ckpt.path), local_files_only=True)
    except (OSError, ValueError, KeyError) as exc:
        raise CheckpointError(f"cannot read the model config of {ckpt.path} ({exc})") from None


def _stored_dtype(ckpt: Checkpoint) -> torch.dtype:
    table = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16}
    first = next(iter(ckpt.tensors.values())).dtype
    return table.get(first, torch.float32)


def _renames(template: torch.nn.Module) -> list[tuple[re.Pattern[str], str]]:
    """The plain key renames transformers applies when loading this architecture (stored -> parameter name).

    Architectures whose checkpoints need real conversions (e.g. experts packed on loading) are not listed:
    their stored tensors do not match the parameters and loading fails with a one-line error.
    """
    try:
        from transformers.conversion_mapping import get_model_conversion_mapping
        from transformers.core_model_loading import WeightRenaming
    except ImportError:  # an older or newer transformers without the mapping: names are used as stored
        return []
    try:
        transforms = get_model_conversion_mapping(template)  # type: ignore[arg-type]
    except Exception:  # noqa: BLE001 - a mapping that cannot be built means no renames
        return []
    out: list[tuple[re.Pattern[str], str]] = []
    for t in transforms:
        if type(t) is WeightRenaming:
            out.extend((re.compile(src), tgt) for src, tgt in zip(t.source_patterns, t.target_patterns))
    return out


def _segments(model: torch.nn.Module) -> list[Segment]:
    """Parameters in registration order (tied ones once), with their offsets in a flat buffer."""
    segs, offset = [], 0
    for name, p in model.named_parameters():
        segs.append(Segment(name, offset, p.numel(), tuple(p.shape)))
        offset += p.numel()
    return segs
