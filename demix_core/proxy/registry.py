"""One registry of proxy kinds: what stands in for a model trained on a mixture, one small file per kind.

A kind is a small class declaring its name, its labels (the Mixer's column of its scores, its method's name in a
validation report), a line for ``--help``, and how an engine scores a mixture with it (:meth:`ProxyKind.score`).
The engine makes one instance of each kind it scores (:meth:`demix_core.engine.Engine.kind`), which keeps what
the kind builds once (the output ensemble's log-prob cache). Names are listed the default (``merge``) first, then
in registration order: the order people see.

Adding a kind: one file with a ``@register`` class, and its import in :mod:`demix_core.proxy`. Kinds import
heavy modules (torch, lm-eval) inside their methods, so the CLI can list them at once.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import TYPE_CHECKING, ClassVar, Protocol

from demix_core.errors import ConfigError, near_matches

if TYPE_CHECKING:
    import os
    import threading

    import torch

    from demix_core.evaluate.scores import Scores
    from demix_core.evaluate.suite import QuickSuite, TaskSuite
    from demix_core.merge.resident import Proxy, ResidentComponents
    from demix_core.mixing.mixture import Mixture
    from demix_core.workspace.manifest import Workspace

DEFAULT_KIND = "merge"  # what a study, the CLI and the dashboard score unless told otherwise


class ProxyHost(Protocol):
    """What a proxy kind may use of the engine that scores it."""

    workspace: Workspace
    resident: ResidentComponents  # the components, on the device
    proxy: Proxy  # the one live proxy module, merged in place
    suite: QuickSuite | TaskSuite
    device: torch.device
    ensemble_cache: str | os.PathLike[str] | None  # the output ensemble's cache folder (None: the workspace's)

    @property
    def lock(self) -> threading.RLock:
        """Held while the live proxy or the suite is in use (one request at a time)."""


class ProxyKind(ABC):
    """A proxy kind. Subclasses set the class attributes and implement :meth:`score`.

    Attributes:
        host: The engine this instance scores for.
    """

    name: ClassVar[str]
    label: ClassVar[str]  # the Mixer's column of its scores, e.g. "merged weights"
    report_name: ClassVar[str]  # its method's name in a validation report, e.g. "merged proxies (DeMix)"
    help: ClassVar[str]  # what it is, for --help, e.g. "weights merged into one model"
    merges: ClassVar[bool] = False  # whether a merge method, its parameters and seed apply
    preparing: ClassVar[str] = ""  # what prepare() builds, for a progress line ("": nothing to build)

    def __init__(self, host: ProxyHost) -> None:
        self.host = host

    @property
    def ready(self) -> bool:
        """Whether scoring needs nothing built first (asking builds nothing and writes nothing)."""
        return True

    def prepare(self) -> None:  # noqa: B027 - a hook: most kinds build nothing
        """Build what scoring needs, once (nothing by default)."""

    def how(self, method: str) -> str:
        """How a mixture is scored, for people: the merge method, or the kind's own way."""
        return method

    @abstractmethod
    def score(self, mix: Mixture, *, method: str, params: Mapping[str, float] | None,
              seed: int) -> tuple[Scores, float]:
        """Score the mixture's proxy; the caller holds the host's lock.

        Args:
            mix: The mixture.
            method: The merge method (kinds that do not merge get their own name).
            params: The merge method's parameters.
            seed: The merge method's seed.

        Returns:
            (the scores, the seconds its merge took; 0.0 when nothing is merged).
        """


_REGISTRY: dict[str, type[ProxyKind]] = {}


def register(cls: type[ProxyKind]) -> type[ProxyKind]:
    """Class decorator adding a proxy kind to the registry under ``cls.name``."""
    if cls.name in _REGISTRY:
        raise ConfigError(f"proxy kind {cls.name!r} is registered twice")
    _REGISTRY[cls.name] = cls
    return cls


def kind_names() -> list[str]:
    """Every registered proxy kind: the default first, then in registration order."""
    return sorted(_REGISTRY, key=lambda n: n != DEFAULT_KIND)


def get_kind(name: str) -> type[ProxyKind]:
    """The proxy kind registered as ``name``.

    Raises:
        ConfigError: Unknown name (one line listing the kinds, and the near matches).
    """
    if name not in _REGISTRY:
        close = near_matches(str(name), kind_names())
        raise ConfigError(f"unknown proxy kind {name!r}; use one of: {', '.join(kind_names())}"
                          + (f" ({close})" if close.startswith("did") else ""))
    return _REGISTRY[name]


def describe() -> str:
    """``merge (weights merged into one model) or ensemble (...)``: the kinds for a ``--help`` line."""
    return " or ".join(f"{n} ({_REGISTRY[n].help})" for n in kind_names())
