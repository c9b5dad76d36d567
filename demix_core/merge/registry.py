"""One registry of merge methods: each is a small class declaring its parameters and a reference.

A method merges one parameter tensor at a time from a (K, n) stack of component tensors, mixture
weights (K,) and, when it needs one, the base tensor (n,). The resident merger calls it per parameter
tensor on views into the (K, N) component matrix; ``linear`` overrides :meth:`MergeMethod.merge_flat`
with one matrix-vector product over the whole buffer.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from demix_core.errors import MergeError, near_matches


@dataclass(frozen=True)
class ParamDef:
    """A method parameter: its name, default, allowed range and meaning."""

    name: str
    default: float
    low: float = -math.inf
    high: float = math.inf
    doc: str = ""
    per_model: bool = False  # mergekit writes it under each model's ``parameters`` (e.g. density)
    boolean: bool = False  # 0/1 here, false/true in mergekit's YAML


@dataclass(frozen=True)
class Segment:
    """Where one parameter tensor lives in the flat buffer."""

    name: str
    offset: int
    numel: int
    shape: tuple[int, ...]


class MergeMethod(ABC):
    """A merge method. Subclasses set ``name``, ``needs_base``, ``reference``, ``params`` and
    implement :meth:`merge_tensor`.

    Attributes:
        values: The method's parameter values (defaults filled in).
        seed: Seed for methods that draw random masks.
    """

    name: ClassVar[str]
    needs_base: ClassVar[bool] = False
    optional_base: ClassVar[bool] = False  # uses the base when one is given (multislerp)
    reference: ClassVar[str] = ""
    params: ClassVar[tuple[ParamDef, ...]] = ()
    mergekit_name: ClassVar[str] = ""  # when mergekit calls it differently
    mergekit_globals: ClassVar[dict[str, Any]] = {}  # fixed global parameters mergekit needs spelled out

    def __init__(self, *, seed: int = 0, **values: float) -> None:
        known = {p.name: p for p in self.params}
        for key in values:
            if key not in known:
                raise MergeError(
                    f"method {self.name!r} has no parameter {key!r}; "
                    + (f"its parameters are: {', '.join(known)}" if known else "it takes no parameters")
                )
        self.values: dict[str, float] = {}
        for p in self.params:
            v = float(values.get(p.name, p.default))
            if not (p.low <= v <= p.high) or math.isnan(v):
                raise MergeError(f"{self.name} parameter {p.name}={v} is outside [{p.low}, {p.high}]")
            self.values[p.name] = v
        self.seed = int(seed)

    @abstractmethod
    def merge_tensor(
        self, stack: torch.Tensor, weights: torch.Tensor, base: torch.Tensor | None,
        generator: torch.Generator | None,
    ) -> torch.Tensor:
        """Merge one parameter.

        Args:
            stack: (K, n) the components' values of this parameter, flattened.
            weights: (K,) mixture weights, on the same device, float32.
            base: (n,) the base's values, or None when the method needs no base.
            generator: A seeded generator on the stack's device (for random masks).

        Returns:
            (n,) the merged values (any float dtype; the caller casts).
        """

    def merge_flat(
        self, components: torch.Tensor, weights: torch.Tensor, base: torch.Tensor | None,
        segments: Sequence[Segment], out: torch.Tensor,
    ) -> None:
        """Merge every parameter into ``out`` (N,), one segment at a time.

        Each segment is moved to ``out``'s device (components may live in host memory for a GPU proxy) and
        half-precision values are merged in fp32; the result is cast once into ``out``.

        Args:
            components: (K, N) the components, one flat row each.
            weights: (K,) mixture weights.
            base: (N,) the base or None.
            segments: Where each parameter lives in the rows.
            out: (N,) destination, written in place.
        """
        if self.needs_base and base is None:
            raise self.missing_base()
        gen = torch.Generator(device=out.device)
        gen.manual_seed(self.seed)
        use_base = base is not None and (self.needs_base or self.optional_base)
        for seg in segments:
            sl = slice(seg.offset, seg.offset + seg.numel)
            stack = _work(components[:, sl], out.device)
            merged = self.merge_tensor(
                stack, weights.to(out.device), _work(base[sl], out.device) if use_base and base is not None else None,
                gen,
            )
            out[sl].copy_(merged)

    def mergekit_config(
        self, weights: Sequence[float], models: Sequence[str], base: str | None, dtype: str
    ) -> dict[str, Any]:
        """The mergekit YAML (as a dict) that performs the same merge.

        Args:
            weights: Mixture weights, one per model.
            models: Model folder paths, one per weight.
            base: Base model folder (required when ``needs_base``).
            dtype: ``float32``, ``bfloat16`` or ``float16``.
        """
        def value(p: ParamDef) -> float | bool:
            return bool(self.values[p.name]) if p.boolean else self.values[p.name]

        per_model = {p.name: value(p) for p in self.params if p.per_model}
        global_ = {p.name: value(p) for p in self.params if not p.per_model}
        cfg: dict[str, Any] = {
            "merge_method": self.mergekit_name or self.name,
            "dtype": dtype,
            "models": [
                {"model": m, "parameters": {"weight": float(w), **per_model}}
                for m, w in zip(models, weights)
            ],
        }
        if self.needs_base and base is None:
            raise self.missing_base()
        if base is not None and (self.needs_base or self.optional_base):
            cfg["base_model"] = base
        global_.update(self.mergekit_globals)
        if global_:
            cfg["parameters"] = global_
        return cfg

    def missing_base(self) -> MergeError:
        """The error for a merge that needs a base and was given none (says what to change, no CLI flag)."""
        return MergeError(f"method {self.name!r} needs a base model; give the base checkpoint the components "
                          "were trained from, or choose a method without one such as linear")

    def describe(self) -> dict[str, Any]:
        """Method name, parameter values and seed (for recipes)."""
        return {"method": self.name, "parameters": dict(self.values), "seed": self.seed}


def _work(values: torch.Tensor, device: torch.device) -> torch.Tensor:
    """``values`` on ``device``, half precision promoted to fp32 (the merge's working precision)."""
    values = values.to(device, non_blocking=values.device.type == "cpu" and values.is_pinned())
    return values.float() if values.dtype in (torch.float16, torch.bfloat16) else values


_REGISTRY: dict[str, type[MergeMethod]] = {}


def register(cls: type[MergeMethod]) -> type[MergeMethod]:
    """Class decorator adding a method to the registry under ``cls.name``."""
    if cls.name in _REGISTRY:
        raise MergeError(f"merge method {cls.name!r} is registered twice")
    _REGISTRY[cls.name] = cls
    return cls


def method_names() -> list[str]:
    """Every registered method name, sorted."""
    return sorted(_REGISTRY)


def method_class(name: str) -> type[MergeMethod]:
    """The class registered as ``name``.

    Raises:
        MergeError: Unknown name (the message lists the known methods).
    """
    if name not in _REGISTRY:
        raise MergeError(f"unknown merge method {name!r}; known methods: {', '.join(method_names())}"
                         + ("" if not near_matches(name, method_names()).startswith("did") else
                            f" ({near_matches(name, method_names())})"))
    return _REGISTRY[name]


def get_method(name: str, *, seed: int = 0, params: Mapping[str, float] | None = None) -> MergeMethod:
    """Build a configured method.

    Args:
        name: A registered method name.
        seed: Seed for random masks (DARE).
        params: Method parameters; unknown keys are an error.
    """
    return method_class(name)(seed=seed, **dict(params or {}))
