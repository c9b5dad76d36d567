"""Components resident on a device as one (K, N) matrix, merged in place into a live proxy model.

The proxy is an ordinary transformers model whose parameters are views into one flat buffer (N,);
``merge_into`` overwrites that buffer, so the next forward pass sees the new mixture with no disk I/O
and no allocation.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from demix_core.checkpoints import Checkpoint, load_tensors, require_compatible
from demix_core.errors import CheckpointError, MergeError, MixtureError
from demix_core.merge.registry import MergeMethod, Segment, get_method
from demix_core.mixture import Mixture


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``auto`` picks CUDA when present, else CPU; anything else is passed to torch.

    Raises:
        MergeError: CUDA asked for but not available, or an unknown device string.
    """
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise MergeError(f"unknown device {device!r}; use auto, cpu, cuda or cuda:N") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise MergeError(f"device {device!r} asked for but no CUDA GPU is available; use the cpu device")
    return dev


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
    """

    def __init__(
        self, components: Sequence[Checkpoint], *, names: Sequence[str] | None = None,
        base: Checkpoint | None = None, device: str | torch.device = "auto",
        dtype: torch.dtype | None = None,
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
        # (K, N): one flat row per component, in the model's parameter order.
        self.matrix = torch.empty((len(components), self.numel), dtype=self.dtype, device=self.device)
        for i, ckpt in enumerate(components):
            self._fill_row(self.matrix[i], ckpt)
        self.base: torch.Tensor | None = None
        if base is not None:
            self.base = torch.empty(self.numel, dtype=self.dtype, device=self.device)
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

    @property
    def k(self) -> int:
        """Number of components."""
        return int(self.matrix.shape[0])

    def _check_shapes(self, ckpt: Checkpoint) -> None:
        """Stored tensors must have the shapes ``config.json`` gives them (read from headers, nothing loaded)."""
        for seg in self.segments:
            info = ckpt.tensors.get(seg.name)
            if info is None:
                raise CheckpointError(f"{ckpt.path} lacks tensor {seg.name}; it is not a sibling checkpoint")
            if tuple(info.shape) != tuple(seg.shape):
                raise CheckpointError(
                    f"{ckpt.path}: tensor {seg.name} is stored as {list(info.shape)} but its config.json "
                    f"makes it {list(seg.shape)}; restore the checkpoint's config.json or re-save the model")

    def _fill_row(self, row: torch.Tensor, ckpt: Checkpoint) -> None:
        state = load_tensors(ckpt, device="cpu")
        for seg in self.segments:
            t = state.get(seg.name)
            if t is None:
                raise CheckpointError(f"{ckpt.path} lacks tensor {seg.name}; it is not a sibling checkpoint")
            row[seg.offset: seg.offset + seg.numel].copy_(t.reshape(-1))

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


def _segments(model: torch.nn.Module) -> list[Segment]:
    """Parameters in registration order (tied ones once), with their offsets in a flat buffer."""
    segs, offset = [], 0
    for name, p in model.named_parameters():
        segs.append(Segment(name, offset, p.numel(), tuple(p.shape)))
        offset += p.numel()
    return segs
