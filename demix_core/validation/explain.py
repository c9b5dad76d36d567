"""A validation report in words: the summary table and why the proxies win or lose, from plain data.

Both read a report's :meth:`~demix_core.validation.report.ValidationReport.to_json` (or its record file), so
the CLI, the record and the Validate page say the same thing.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from demix_core.validation.methods import NULL
from demix_core.validation.stats import Figure


def summary_frame(data: Mapping[str, Any]) -> Any:
    """The report's table as a DataFrame: one row per metric, one column per method (``value [low, high]``).

    Args:
        data: A report's :meth:`ValidationReport.to_json` (or the record file).
    """
    import pandas as pd

    def text(f: Mapping[str, Any]) -> str:
        return Figure(float(f["value"]), float(f["low"]), float(f["high"]), bool(f.get("meaningful", True))).text()

    rows: dict[str, dict[str, str]] = {}
    for m in data["methods"]:
        col = m["name"]
        for d in data["domains"]:
            rows.setdefault(f"rho {d}", {})[col] = text(m["rho"][d])
        rows.setdefault("macro rho", {})[col] = text(m["macro"])
        for d in data["domains"]:
            rows.setdefault(f"top-25% rho {d}", {})[col] = text(m["top25"][d])
        rows.setdefault("top-25% macro rho", {})[col] = text(m["top25_macro"])
        rows.setdefault("rho overall average", {})[col] = text(m["average_rho"])
        for d in data["domains"]:
            rows.setdefault(f"recovery {d}", {})[col] = text(m["recovery"][d])
    return pd.DataFrame.from_dict(rows, orient="index")


def explanation(data: Mapping[str, Any]) -> list[str]:
    """Why the proxies win or lose against the baselines here, in words a data team reads, from the report's
    numbers (:meth:`ValidationReport.to_json`): per domain, the best proxy's rho against the weight-only null's;
    the merged weights against the output ensemble; and what the trained recommendation showed."""
    methods = {m["name"]: m for m in data.get("methods", [])}
    proxies = dict(data.get("proxies") or {})
    if not proxies or NULL not in methods:
        return []
    kinds = {k: methods[n] for k, n in proxies.items() if n in methods}
    out = _domain_lines(data["domains"], kinds, methods[NULL])
    out.extend(_kind_lines(kinds, data.get("drift") or {}))
    if data.get("suite") == "paper":
        out.append("- The nine paper benchmarks cut across the datasets (a science question draws on prose, docs and "
                   "math alike), so one domain's weight predicts them less well than it predicts held-out text: "
                   "compare this suite's null rho with the quick suite's to see where proxies add information.")
    loop = data.get("loop")
    if loop and loop.get("entries"):
        text = _loop_line(loop, kinds, data["domains"], data.get("pick") or {})
        if text:
            out.append(text)
    return ["Why, in words:", *out] if out else []


def _domain_lines(domains: list[str], kinds: Mapping[str, Any], null: Mapping[str, Any]) -> list[str]:
    """Per domain: does the best proxy rank the references better than the share of that domain's data?"""
    out = []
    for d in domains:
        rho_null = float(null["rho"][d]["value"])
        best_kind, best = max(((k, float(m["rho"][d]["value"])) for k, m in kinds.items()),
                              key=lambda kv: -math.inf if math.isnan(kv[1]) else kv[1])
        if math.isnan(best) or math.isnan(rho_null):
            continue
        if rho_null >= best - 0.05:
            out.append(f"- {d}: how much {d} data a mixture holds already ranks the references as well as the best "
                       f"proxy (weight alone rho {rho_null:.2f}, {best_kind} proxy {best:.2f}). Scores on a "
                       f"well-separated domain follow the share of that domain's data, so a proxy adds little there.")
        else:
            out.append(f"- {d}: the {best_kind} proxy ranks the references better than the weight alone (rho "
                       f"{best:.2f} against {rho_null:.2f}): the datasets interact on this domain (several of them "
                       f"help it, or hurt it), which the share of {d} data cannot see.")
    return out


def _kind_lines(kinds: Mapping[str, Any], drift: Mapping[str, Any]) -> list[str]:
    """Merged weights against the output ensemble, when both were validated and differ by 0.1 or more."""
    if "merge" not in kinds or "ensemble" not in kinds:
        return []
    m, e = float(kinds["merge"]["macro"]["value"]), float(kinds["ensemble"]["macro"]["value"])
    if math.isnan(m) or math.isnan(e) or abs(m - e) < 0.1:
        return []
    far_values = [v for v in drift.values() if v is not None]
    far = f" (components drifted {max(far_values):.0%} from the base at most)" if far_values else ""
    if e > m:
        return [f"- Averaging the components' weights ranks worse than mixing their predictions (macro rho "
                f"{m:.2f} against {e:.2f}){far}: a merged model is not the model a mixture trains, while "
                "the ensemble mixes what each component predicts, as a model that saw all the data does."]
    return [f"- Merged weights rank better than the output ensemble (macro rho {m:.2f} against "
            f"{e:.2f}): merging captures interactions between the datasets that mixing predictions misses."]


def _loop_line(loop: Mapping[str, Any], kinds: Mapping[str, Any], domains: list[str],
               pick: Mapping[str, Any]) -> str | None:
    """Where the trained recommendation ranks, whom it beats, and whether its proxy was one to trust."""
    rec = next((e for e in loop["entries"] if e["role"] == "recommended"), None)
    if rec is None:
        return None
    n = len(loop["references"]) + 1
    beaten = [e["role"] for e in loop["entries"] if e.get("outcome") == "beat"]
    lost = [e["role"] for e in loop["entries"] if e.get("outcome") == "not beat"]
    text = (f"- Trained, the recommended mixture ranks {rec['rank']} of {n} "
            f"({'better than every reference' if rec['rank'] == 1 else 'behind ' + str(rec['rank'] - 1)}"
            f"{'' if rec['rank'] == 1 else ' reference(s)'}).")
    if beaten:
        text += f" It beats {', '.join(beaten)} beyond noise."
    if lost:
        text += f" It loses to {', '.join(lost)} beyond noise: that simpler choice was the better mixture here."
    if not beaten and not lost:
        text += " No baseline is separated from it beyond the noise of this many references."
    kind = str(loop.get("proxy"))
    if kind in kinds:
        weak = [d for d in domains if float(kinds[kind]["rho"][d]["value"]) < 0.5]
        if weak:
            text += (f" It was fitted on trials of the {kind} proxy, which ranks the references poorly on "
                     f"{', '.join(weak)} (rho " + ", ".join(f"{float(kinds[kind]['rho'][d]['value']):.2f}"
                                                            for d in weak)
                     + "): there the recommendation chases scores that trained models do not follow.")
            if pick.get("proxy") and pick["proxy"] != kind:
                text += f" Run the study with the {pick['proxy']} proxy that validation picked."
    return text
