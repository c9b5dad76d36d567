"""Numbers as people read them in messages: thousands separators, no exponents for large counts."""

from __future__ import annotations

import math


def readable(x: float, *, digits: int = 3, up: bool = False) -> str:
    """``x`` to ``digits`` significant digits, with thousands separators and no exponent.

    ``396123456.7`` -> ``"396,000,000"``, ``5501.3`` -> ``"5,500"``, ``2.7`` -> ``"2.7"``, ``0.00029`` -> ``"0.00029"``;
    with ``up`` the digits round up (advice such as "allow 5,510 epochs" then suffices): ``5501.3`` -> ``"5,510"``.
    """
    if not math.isfinite(x):
        return str(x)
    if x == 0:
        return "0"
    exponent = math.floor(math.log10(abs(x)))
    scale = 10.0 ** (digits - 1 - exponent)
    rounded = math.ceil(x * scale - 1e-9) / scale if up else round(x, digits - 1 - exponent)
    if exponent >= digits - 1:
        return f"{rounded:,.0f}"
    return f"{rounded:,.{max(0, digits - 1 - exponent)}f}".rstrip("0").rstrip(".")
