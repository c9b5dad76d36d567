"""Where the components live: the device choice (``auto`` picks CUDA when present) and the memory plan
((K + 1) x N x bytes against what the device or the host can still give)."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from demix_core.errors import MergeError


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


GIB = 1024 ** 3
DEVICE_HEADROOM = 0.9  # share of a GPU's free memory the matrix and proxy may take (activations need the rest)


def host_available_bytes() -> int:
    """Memory the host can still give without swapping: ``MemAvailable`` of ``/proc/meminfo`` (Linux), else
    psutil's ``available``, else the physical pages."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except ImportError:
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))


@dataclass(frozen=True)
class MemoryPlan:
    """Where the (K, N) matrix goes, decided before anything is loaded.

    Attributes:
        rows: Component rows (K) plus the base's row when there is one.
        numel: N, parameters per model.
        itemsize: Bytes per parameter in the matrix's dtype.
        device: The merge device (the proxy lives there).
        device_free: Free bytes on a GPU (None on CPU).
        host_available: Bytes the host can still give.
        placement: ``device`` (matrix on the merge device) or ``host`` (pinned host memory, slices
            copied to the GPU at merge time).
    """

    rows: int
    numel: int
    itemsize: int
    device: torch.device
    device_free: int | None
    host_available: int
    placement: str

    @property
    def matrix_bytes(self) -> int:
        """The component matrix (and base row)."""
        return self.rows * self.numel * self.itemsize

    @property
    def proxy_bytes(self) -> int:
        """One proxy's parameters."""
        return self.numel * self.itemsize

    @property
    def needed_bytes(self) -> int:
        """(rows + 1) x N x bytes: the matrix and one proxy."""
        return self.matrix_bytes + self.proxy_bytes

    def line(self) -> str:
        """The plan in one printable line."""
        n = f"{self.rows}+1 x {self.numel:,} x {self.itemsize} B = {self.needed_bytes / GIB:.2f} GiB"
        host = f"host available {self.host_available / GIB:.1f} GiB"
        if self.device.type == "cpu":
            return f"memory plan: {n} in host memory ({host})"
        free = f"{self.device} free {(self.device_free or 0) / GIB:.1f} GiB"
        if self.placement == "device":
            return f"memory plan: {n} on {self.device} ({free})"
        return (f"memory plan: {n} does not fit {self.device} ({free}); components in pinned host memory "
                f"({self.matrix_bytes / GIB:.2f} GiB, {host}), proxy on {self.device}, slices copied at merge time")


def plan_memory(rows: int, numel: int, dtype: torch.dtype, device: torch.device, *,
                device_free: int | None = None, host_available: int | None = None) -> MemoryPlan:
    """Decide where the matrix goes; raise when not even host memory can hold it.

    Args:
        rows: Components (plus one when a base is loaded).
        numel: Parameters per model.
        dtype: The matrix's dtype.
        device: The merge device.
        device_free: Free GPU bytes (default: ``torch.cuda.mem_get_info``).
        host_available: Host bytes available (default: :func:`host_available_bytes`).

    Raises:
        MergeError: The host cannot hold what must live there (one line: needed and available).
    """
    itemsize = torch.empty((), dtype=dtype).element_size()
    host = host_available_bytes() if host_available is None else host_available
    free: int | None = None
    placement = "device"
    if device.type == "cuda":
        free = int(torch.cuda.mem_get_info(device)[0]) if device_free is None else device_free
        if (rows + 1) * numel * itemsize > free * DEVICE_HEADROOM:
            placement = "host"
    elif device.type != "cpu":
        free = device_free
    plan = MemoryPlan(rows, numel, itemsize, device, free, host, placement)
    on_host = plan.needed_bytes if device.type == "cpu" else plan.matrix_bytes if placement == "host" else 0
    if on_host > host:
        what = "components + proxy" if device.type == "cpu" else "components"
        raise MergeError(
            f"not enough host memory for {rows} x {numel:,} parameters: the {what} need {on_host / GIB:.2f} GiB "
            f"and {host / GIB:.2f} GiB is available; use fewer components, free memory, or a larger machine")
    return plan


