"""The promotion gate's page: ``promotion.html`` beside ``promotion.json``, in the report style.

Every piece of text that comes from outside (set names, file paths, reasons)
is escaped: a labelled file may be called anything.
"""
from __future__ import annotations

from html import escape
from pathlib import Path

from ..io import write_json_atomic, write_text_atomic
from .html import head_html, tail_html, write_assets

__all__ = ["write_promotion"]


def _pct(value):
    return "–" if value is None or value != value else f"{100 * value:.1f}%"


def _points(value, interval):
    return f"{100 * value:+.1f} ({100 * interval[0]:+.1f} to {100 * interval[1]:+.1f})"


def _sets_table(sets):
    head = ("set", "messages", "tier accuracy: current", "candidate", "difference (95% CI), points",
            "downgrades: current", "candidate", "difference (95% CI), points", "verdict")
    rows = []
    for s in sets:
        cells = (s["name"], s["n"], _pct(s["current"]["tier_accuracy"]), _pct(s["candidate"]["tier_accuracy"]),
                 _points(s["accuracy_diff"], s["accuracy_ci"]), _pct(s["current"]["downgrade_rate"]),
                 _pct(s["candidate"]["downgrade_rate"]), _points(s["downgrade_diff"], s["downgrade_ci"]),
                 "refused" if s["refusals"] else "ok")
        rows.append("<tr>" + "".join(f"<td>{escape(str(c))}</td>" for c in cells) + "</tr>")
    return ('<table class="wb-table"><thead><tr>' + "".join(f"<th>{escape(h)}</th>" for h in head)
            + "</tr></thead><tbody>" + "".join(rows) + "</tbody></table>")


def _log_section(change):
    if change is None:
        return ""
    money = lambda v: "–" if v is None else f"${v:,.4f}"  # noqa: E731
    moves = "".join(f"<li>{escape(k)}: {v}</li>" for k, v in change["moves"].items()) or "<li>none</li>"
    return (f"<h2>Decision log</h2><p>{change['n']} logged decisions; {change['changed']} change "
            f"({change['toward_cheaper']} toward a cheaper tier, {change['toward_stronger']} toward a stronger one).</p>"
            f"<ul>{moves}</ul><p>Cost at the logged tokens: current {money(change['cost_current'])}, candidate "
            f"{money(change['cost_candidate'])}, change {money(change['cost_change'])}.</p>")


def write_promotion(report, out_dir, *, inputs):
    """Write ``promotion.json`` and ``promotion.html`` (with its assets) into ``out_dir``.

    Parameters
    ----------
    report : dict
        :meth:`~workbench.decisions.promote.Promotion.to_dict`.
    out_dir : path
    inputs : dict
        ``candidate``, ``current`` and the other inputs, shown at the top of the page and stored in the JSON.

    Returns
    -------
    (json_path, html_path)
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    report = dict(report, inputs={k: str(v) for k, v in inputs.items()})
    json_path, html_path = out / "promotion.json", out / "promotion.html"
    write_json_atomic(json_path, report)
    promoted = report["verdict"] == "promote"
    reasons = "".join(f"<li>{escape(r)}</li>" for r in report["reasons"])
    given = "".join(f"<li>{escape(k)}: <code>{escape(v)}</code></li>" for k, v in report["inputs"].items())
    body = (f"<h1>Promotion gate: {'PROMOTE' if promoted else 'REFUSE'}</h1><ul>{given}</ul>"
            + ("" if promoted else f"<h2>Why it is refused</h2><ul>{reasons}</ul>")
            + "<p>Differences are candidate minus current, with a paired bootstrap interval over messages. "
              f"A set refuses the candidate when tier accuracy falls by more than "
              f"{100 * report['rules']['max_accuracy_drop']:g} point(s) with the interval below 0, or downgrades "
              "rise with the interval above 0.</p>"
            + _sets_table(report["sets"]) + _log_section(report["decision_log"]))
    write_assets(out)
    write_text_atomic(html_path, f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
                                 f"<title>Promotion gate</title>{head_html()}</head><body><main>{body}</main>"
                                 f"{tail_html()}</body></html>\n")
    return json_path, html_path
