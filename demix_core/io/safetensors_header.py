"""Read and check the JSON header of a safetensors file (no tensors loaded, nothing executed)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from demix_core.errors import CheckpointError


def read_header(file: Path) -> dict[str, tuple[tuple[int, ...], str]]:
    """Parse a safetensors header and check it: an object of entries with shapes, dtypes and offsets, and a
    file as long as the header says.

    Returns:
        Tensor name -> (shape, dtype name).

    Raises:
        CheckpointError: Unreadable, truncated or corrupt file, naming what is wrong.
    """
    try:
        size = file.stat().st_size
        with open(file, "rb") as fh:
            raw = fh.read(8)
            if len(raw) < 8:
                raise ValueError("file shorter than its 8-byte header length")
            n = int.from_bytes(raw, "little")
            if n <= 0 or 8 + n > size:
                raise ValueError("header length runs past the end of the file")
            header = json.loads(fh.read(n))
    except (OSError, ValueError) as exc:
        raise CheckpointError(
            f"{file} is not a readable safetensors file ({exc}); it may be truncated: copy or save it again"
        ) from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{file}: its safetensors header is a JSON {type(header).__name__}, not an object; "
                              "the file is corrupt: copy or save it again")
    out: dict[str, tuple[tuple[int, ...], str]] = {}
    end = 0
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        shape, dtype, stop = _header_entry(file, name, meta)
        out[name] = (shape, dtype)
        end = max(end, stop)
    if 8 + n + end > size:
        raise CheckpointError(
            f"{file} is truncated ({size} bytes, its header needs {8 + n + end}); copy or save it again"
        )
    return out


def _header_entry(file: Path, name: str, meta: Any) -> tuple[tuple[int, ...], str, int]:
    """Shape, dtype and end offset of one header entry, checked (a corrupt header names what is wrong)."""
    try:
        shape = meta["shape"]
        offsets = meta["data_offsets"]
        if not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape):
            raise ValueError(f"shape {shape!r} is not a list of sizes")
        if (not isinstance(offsets, list) or len(offsets) != 2 or not all(isinstance(o, int) for o in offsets)
                or not 0 <= offsets[0] <= offsets[1]):
            raise ValueError(f"data_offsets {offsets!r} is not [start, end]")
        dtype = meta["dtype"]
        if not isinstance(dtype, str):
            raise ValueError(f"dtype {dtype!r} is not a name")
    except (TypeError, KeyError, ValueError) as exc:
        what = f"has no {exc}" if isinstance(exc, KeyError) else str(exc)
        raise CheckpointError(f"{file}: header entry {name!r} {what}; the file is corrupt: copy or save it "
                              "again") from None
    return tuple(shape), dtype, offsets[1]
