"""Read R's lazy-load data bases (``Rdata.rdx`` / ``Rdata.rdb``) with the standard library only.

The ``.rdx`` index is a gzip-compressed RDS file holding a list whose ``variables`` entry maps each
object name to ``(offset, length)`` in the ``.rdb`` file; each ``.rdb`` record is a 4-byte big-endian
length followed by a zlib stream of one serialized R object (XDR format, version 2 or 3). Only the
types that data packages use for text are decoded: NULL, character / logical / integer / double
vectors, generic vectors (lists, data frames), pairlists (attributes), symbols, environments by
reference, and the ALTREP wrappers R 3.5+ writes for vectors.
"""

from __future__ import annotations

import gzip
import io
import os
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from demix_core.errors import DataError

NILVALUE, SYMSXP, LISTSXP, CLOSXP, ENVSXP = 254, 1, 2, 3, 4
CHARSXP, LGLSXP, INTSXP, REALSXP, CPLXSXP, STRSXP, VECSXP, EXPRSXP = 9, 10, 13, 14, 15, 16, 19, 20
REFSXP, EMPTYENV, BASEENV, GLOBALENV, UNBOUND, MISSINGARG, BASENAMESPACE = 255, 242, 241, 253, 252, 251, 247
PACKAGESXP, NAMESPACESXP, PERSISTSXP, ALTREP = 250, 249, 248, 238
NA_INT = -(2**31)


@dataclass
class RObject:
    """A decoded R value with its attributes (names, class, dim...)."""

    value: Any
    attributes: dict[str, Any] = field(default_factory=dict)


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.buf = io.BytesIO(data)
        self.refs: list[Any] = []

    def int(self) -> int:
        raw = self.buf.read(4)
        if len(raw) < 4:
            raise DataError("R serialization ended early; the data file is truncated")
        return int(struct.unpack(">i", raw)[0])

    def header(self) -> None:
        if self.buf.read(2) != b"X\n":
            raise DataError("not an XDR R serialization (only binary XDR format is supported)")
        version = self.int()
        self.int()  # writer's R version
        self.int()  # minimal R version to read
        if version == 3:
            n = self.int()
            self.buf.read(n)  # native encoding name
        elif version != 2:
            raise DataError(f"R serialization version {version} is not supported")

    def item(self) -> Any:
        flags = self.int()
        kind, has_attr, has_tag = flags & 0xFF, bool(flags & (1 << 9)), bool(flags & (1 << 10))
        if kind == NILVALUE:
            return None
        if kind in (EMPTYENV, BASEENV, GLOBALENV, UNBOUND, MISSINGARG, BASENAMESPACE):
            return RObject(f"<special {kind}>")
        if kind == REFSXP:
            index = flags >> 8 or self.int()
            return self.refs[index - 1]
        if kind in (PACKAGESXP, NAMESPACESXP, PERSISTSXP):
            self.int()  # always 0
            names = [self.charsxp() for _ in range(self.int())]
            obj = RObject(f"<namespace {names}>")
            self.refs.append(obj)
            return obj
        if kind == SYMSXP:
            sym = self.item()  # a CHARSXP
            self.refs.append(sym)
            return sym
        if kind == ENVSXP:
            obj = RObject("<environment>")
            self.refs.append(obj)
            self.int()  # locked
            self.item()  # enclosure
            self.item()  # frame
            self.item()  # hash table
            self.item()  # attributes
            return obj
        if kind in (LISTSXP, CLOSXP):
            return self.pairlist(has_attr, has_tag)
        if kind == CHARSXP:
            return self.charsxp_body()
        if kind == ALTREP:
            return self.altrep()
        attrs: dict[str, Any] = {}
        if kind in (LGLSXP, INTSXP):
            n = self.int()
            values: Any = [None if v == NA_INT else v for v in struct.unpack(f">{n}i", self.buf.read(4 * n))]
        elif kind == REALSXP:
            n = self.int()
            values = list(struct.unpack(f">{n}d", self.buf.read(8 * n)))
        elif kind == CPLXSXP:
            n = self.int()
            values = list(struct.unpack(f">{2 * n}d", self.buf.read(16 * n)))
        elif kind == STRSXP:
            values = [self.item() for _ in range(self.int())]
        elif kind in (VECSXP, EXPRSXP):
            values = [self.item() for _ in range(self.int())]
        else:
            raise DataError(f"R object type {kind} is not supported by this reader")
        if has_attr:
            attrs = _pairs(self.item())
        return RObject(values, attrs)

    def charsxp(self) -> str | None:
        self.int()  # flags of the CHARSXP
        return self.charsxp_body()

    def charsxp_body(self) -> str | None:
        n = self.int()
        if n == -1:
            return None
        return self.buf.read(n).decode("utf-8", errors="replace")

    def pairlist(self, has_attr: bool, has_tag: bool) -> RObject:
        items: list[tuple[Any, Any]] = []
        while True:
            if has_attr:
                self.item()
            tag = self.item() if has_tag else None
            items.append((tag, self.item()))
            flags = self.int()
            kind = flags & 0xFF
            if kind == NILVALUE:
                break
            if kind != LISTSXP:
                # the tail is another kind of object: push it back by decoding it here
                self.buf.seek(-4, io.SEEK_CUR)
                items.append((None, self.item()))
                break
            has_attr, has_tag = bool(flags & (1 << 9)), bool(flags & (1 << 10))
        return RObject(items)

    def altrep(self) -> Any:
        info = self.item()
        state = self.item()
        attr = self.item()
        cls = info.value[0][1] if isinstance(info, RObject) and info.value else None
        attrs = _pairs(attr)
        if cls == "compact_intseq" and isinstance(state, RObject):
            n, start, step = (int(v) for v in state.value[:3])
            return RObject(list(range(start, start + n * step, step)), attrs)
        if cls == "compact_realseq" and isinstance(state, RObject):
            n, start, step = state.value[:3]
            return RObject([start + i * step for i in range(int(n))], attrs)
        if cls and str(cls).startswith("wrap_") and isinstance(state, RObject):
            inner = state.value[0]
            return RObject(inner.value, {**inner.attributes, **attrs})
        if cls == "deferred_string" and isinstance(state, RObject):
            arg = state.value[0][1]
            return RObject([None if v is None else _num_str(v) for v in arg.value], attrs)
        raise DataError(f"R ALTREP class {cls!r} is not supported by this reader")


def _num_str(v: float | int) -> str:
    return str(int(v)) if float(v).is_integer() else repr(v)


def _pairs(obj: Any) -> dict[str, Any]:
    if not isinstance(obj, RObject) or not isinstance(obj.value, list):
        return {}
    return {str(tag): val for tag, val in obj.value if tag is not None}


def unserialize(data: bytes) -> Any:
    """Decode one XDR-serialized R object."""
    reader = _Reader(data)
    reader.header()
    return reader.item()


def lazyload_index(rdx: str | os.PathLike[str]) -> dict[str, tuple[int, int]]:
    """Object name -> (offset, length) in the matching ``.rdb`` file."""
    try:
        raw = gzip.decompress(Path(rdx).read_bytes())
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"cannot read R index {rdx} ({exc}); re-download the package") from None
    index = unserialize(raw)
    entries = _names_to_values(index)
    variables = _names_to_values(entries["variables"])
    return {name: (int(v.value[0]), int(v.value[1])) for name, v in variables.items()}


def _names_to_values(obj: RObject) -> dict[str, Any]:
    names = obj.attributes.get("names")
    if names is None:
        raise DataError("R list without names where names were expected")
    return dict(zip(names.value, obj.value))


def read_lazyload(rdb: str | os.PathLike[str], rdx: str | os.PathLike[str]) -> dict[str, RObject]:
    """Every object of a lazy-load data base, decoded."""
    index = lazyload_index(rdx)
    blob = Path(rdb).read_bytes()
    out = {}
    for name, (offset, length) in index.items():
        record = blob[offset: offset + length]
        try:
            out[name] = unserialize(zlib.decompress(record[4:]))
        except zlib.error as exc:
            raise DataError(f"cannot decompress {name!r} in {rdb} ({exc}); re-download the package") from None
    return out
