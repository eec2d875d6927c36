"""index.html of a report folder: headline numbers (with the change since the previous report),
the recorded figures and tables, and links to every notebook and artifact.

The page loads the report folder's shared files (``assets/``, see
:mod:`workbench.report.html`) and the recorded figures (``figures/*.js``,
the copies the notebook pages show too) by relative path: no network, no
second copy of plotly.js or of a figure. Every string that came from data is
HTML-escaped; tables are sortable with every row reachable.
"""
from __future__ import annotations

import html
import json
import logging
import re
from pathlib import Path

from .. import config as _config
from ..errors import require
from ..io import write_text_atomic
from ..plots.table import table_html
from .gate import gate_sentence
from .html import head_html, tail_html, write_assets

log = logging.getLogger(__name__)

__all__ = ["HEADLINES", "flatten_metrics", "is_report_folder", "find_previous", "headline_rows", "generalisation_gap",
           "slice_flags", "traffic_drift", "write_index"]
#: The table 03_evaluate records of every language and source with enough messages (analysis.slices).
SLICES_TABLE = "03_slices"

#: (section, key, label, format, better): format "pct" (a share, change in points), "int" or "float";
#: better "up", "down" or None (no judgement).
HEADLINES = (
    ("evaluate", "tier_accuracy", "Tier accuracy (leave-one-out, k-NN vote)", "pct", "up"),
    ("evaluate", "category_accuracy", "Category accuracy (leave-one-out, k-NN vote)", "pct", "up"),
    ("evaluate", "downgrade_rate", "Downgrade rate", "pct", "down"),
    ("evaluate", "upgrade_rate", "Upgrade rate", "pct", "down"),
    ("evaluate", "ldgo_tier_accuracy", "Tier accuracy (leave-duplicate-group-out)", "pct", "up"),
    ("evaluate", "inflation", "LDGO inflation (LOO minus LDGO tier accuracy)", "pct", "down"),
    ("decisions", "tier_accuracy", "Tier accuracy at the operating point (abstained: categorizer)", "pct", "up"),
    ("decisions", "downgrade_rate", "Downgrade rate at the operating point", "pct", "down"),
    ("decisions", "abstain_rate", "Abstain rate at the operating point", "pct", "down"),
    ("generalisation", "tier_accuracy", "Tier accuracy out of distribution (data/eval, exported pool)", "pct", "up"),
    ("generalisation", "min_source_tier_accuracy", "Worst source's tier accuracy out of distribution", "pct", "up"),
    ("generalisation", "downgrade_rate", "Downgrade rate out of distribution", "pct", "down"),
    ("generalisation", "abstain_rate", "Abstain rate out of distribution", "pct", None),
    ("export", "head_oof_tier_accuracy", "Exported head (what ships): out-of-fold tier accuracy", "pct", "up"),
    ("export", "ece", "Expected calibration error of tier confidence (exported pool)", "pct", "down"),
    ("conversations", "all_tier_accuracy", "Conversations: tier accuracy over all turns (shipped policy)", "pct", "up"),
    ("conversations", "follow_up_tier_accuracy", "Conversations: follow-up turns (shipped policy)", "pct", "up"),
    ("shadow", "tier_agreement", "Shadow log: router vs label source, tier agreement", "pct", "up"),
    ("traffic", "saving_vs_strong", "Traffic: cost saved against all-strong (logged tokens)", "pct", "up"),
    ("traffic", "uncovered_share", "Traffic: share the pool does not cover (below its 5th percentile)", "pct", "down"),
    ("traffic", "abstain_rate", "Traffic: abstain rate", "pct", None),
    ("traffic", "fallback_rate", "Traffic: fallback rate", "pct", "down"),
    ("traffic", "down_rate", "Traffic: feedback down-rate", "pct", "down"),
    ("pool", "n", "Pool size (messages)", "int", None),
    ("clusters", "near_duplicate_share", "Share of messages with a near-duplicate", "pct", "down"),
    ("clusters", "mean_nn_similarity", "Mean nearest-neighbour similarity", "float", None),
    ("clusters", "clusters", "Distinct clusters", "int", None),
    ("export", "size_kib", "pool.npz size (KiB)", "float", None),
    ("run", "seconds", "Run time (s)", "float", None),
)
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def flatten_metrics(metrics):
    """``{"section.key": number}`` for every numeric scalar of a metrics dict (one level deep)."""
    out = {}
    for section, values in metrics.items():
        if isinstance(values, dict):
            for key, v in values.items():
                if isinstance(v, (int, float)) and not isinstance(v, bool):
                    out[f"{section}.{key}"] = v
    return out


def is_report_folder(path):
    """A dated report folder (``YYYY-MM-DD``, not a link) with a metrics.json."""
    path = Path(path)
    return (path.is_dir() and not path.is_symlink() and bool(_DATE.fullmatch(path.name))
            and (path / "metrics.json").exists())


def find_previous(run_dir):
    """The newest sibling report folder (``YYYY-MM-DD``) older than ``run_dir`` with a metrics.json."""
    run_dir = Path(run_dir)
    older = [p for p in run_dir.parent.iterdir() if is_report_folder(p) and p.name < run_dir.name]
    return max(older, key=lambda p: p.name) if older else None


def _fmt(v, fmt):
    if v is None:
        return "–"
    return {"pct": f"{100 * v:.1f}%", "int": f"{int(v):,}"}.get(fmt, f"{v:.3f}" if abs(v) < 10 else f"{v:,.1f}")


def _change(v, old, fmt, better):
    if v is None or old is None:
        return "", ""
    d = v - old
    if abs(d) < 1e-12:
        return "no change", "same"
    text = f"{'+' if d > 0 else '−'}{100 * abs(d):.1f} pts" if fmt == "pct" else (
        f"{'+' if d > 0 else '−'}{_fmt(abs(d), fmt)}")
    if better is None:
        return text, "neutral"
    return text, "better" if (d > 0) == (better == "up") else "worse"


def headline_rows(metrics, previous=None):
    """Rows ``(label, value, previous value, change, judgement)`` of the headline numbers present."""
    flat, old = flatten_metrics(metrics), flatten_metrics(previous or {})
    rows = []
    for section, key, label, fmt, better in HEADLINES:
        name = f"{section}.{key}"
        if name in flat:
            change, judgement = _change(flat[name], old.get(name), fmt, better)
            rows.append((label, _fmt(flat[name], fmt), _fmt(old.get(name), fmt) if name in old else "", change, judgement))
    return rows


def generalisation_gap(metrics, *, threshold=_config.OOD_GAP_FLAG):
    """A warning when the shipped pool's in-pool and out-of-distribution tier accuracy differ by more than
    ``threshold``, else None.

    Both sides judge the head that ships: its out-of-fold tier accuracy in the pool (``export``) against its tier
    accuracy on the evaluation sets (``generalisation``). Only a report without the export's number falls back to
    the k-NN vote's leave-one-out (and says so).
    """
    flat = flatten_metrics(metrics)
    inside, ood = flat.get("export.head_oof_tier_accuracy"), flat.get("generalisation.tier_accuracy")
    what = "The shipped head's out-of-fold tier accuracy in the pool"
    if inside is None:
        inside, what = flat.get("evaluate.tier_accuracy"), "Leave-one-out tier accuracy (k-NN vote)"
    if inside is None or ood is None or abs(inside - ood) <= threshold:
        return None
    return (f"{what} ({100 * inside:.1f}%) and its out-of-distribution tier accuracy on "
            f"{flat.get('generalisation.n', 0):.0f} evaluation prompts ({100 * ood:.1f}%) differ by "
            f"{100 * abs(inside - ood):.1f} points (more than {100 * threshold:.0f}): the pool "
            + ("routes itself better than the messages it will meet; see 08_generalisation for the sources and "
               "confusions." if inside > ood else "scores itself lower than unseen prompts; check its labels."))


def traffic_drift(metrics):
    """The traffic section's drift line for the index: ``(raised, sentence)``, or None without a traffic section."""
    traffic = metrics.get("traffic")
    if not isinstance(traffic, dict) or "drift" not in traffic:
        return None
    day = traffic.get("latest_day") or "the latest day"
    if traffic["drift"]:
        return True, f"{day}: {traffic.get('drift_reasons', '')} (see 09_traffic)"
    return False, f"{day}: the tier mix and the uncovered share are within bounds of the days before (see 09_traffic)"


def slice_flags(run_dir):
    """Sentences for the slices (languages, sources) the report's ``03_slices`` table flags, else []."""
    from ..analysis.slices import slice_sentences

    path = Path(run_dir) / "tables" / f"{SLICES_TABLE}.json"
    if not path.exists():
        return []
    payload = json.loads(path.read_text(encoding="utf-8"))
    records = [dict(zip(payload["columns"], row)) for row in payload["rows"]]
    return slice_sentences([r for r in records if r.get("flagged")])


def _table_html(payload):
    import pandas as pd

    frame = pd.DataFrame(payload["rows"], columns=payload["columns"])
    return table_html(frame, title=payload.get("title", ""), index=False)


_CSS = """body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1200px;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left;
vertical-align:top;max-width:600px}th{background:#f3f3f3}.better{color:#1a7f37}.worse{color:#c62828}
.failed{background:#fde8e8;border:1px solid #c62828;padding:.6em}.ok{color:#1a7f37}.figure{margin:1em 0}"""


def write_index(run_dir, *, previous=None):
    """Write ``<run_dir>/index.html`` from its metrics.json, figures/ and tables/.

    Parameters
    ----------
    run_dir : path
    previous : path or False, optional
        Report folder to compare with (default: :func:`find_previous`; ``False``: none).
    """
    esc = html.escape
    run_dir = Path(run_dir)
    mpath = run_dir / "metrics.json"
    metrics = json.loads(mpath.read_text(encoding="utf-8")) if mpath.exists() else {}
    if previous is None:
        previous = find_previous(run_dir)
    prev_metrics = json.loads((Path(previous) / "metrics.json").read_text(encoding="utf-8")) if previous else None
    run = metrics.get("run", {})
    parts = [f"<h1>workbench report {esc(run_dir.name)}</h1>"]
    if run.get("status") == "failed":
        parts.append(f"<p class='failed'><b>The run failed:</b> {esc(str(run.get('error', '')))}</p>")
    elif run.get("status"):
        parts.append("<p class='ok'>All notebooks ran.</p>")
    parts.append(f"<p>Compared with: {esc(Path(previous).name) if previous else 'no previous report'}</p>")
    gate = gate_sentence(metrics.get("gate"))
    if gate:
        link = f" <a href='{esc(gate[2])}'>{esc(gate[2])}</a>" if gate[2] else ""
        parts.append(f"<p class='{esc(gate[0])}'>{esc(gate[1])}{link}</p>")
    gap = generalisation_gap(metrics)
    if gap:
        parts.append(f"<p class='failed'><b>Generalisation gap:</b> {esc(gap)}</p>")
    drift = traffic_drift(metrics)
    if drift:
        parts.append(f"<p class='failed'><b>Traffic drift:</b> {esc(drift[1])}</p>" if drift[0]
                     else f"<p class='ok'>Traffic: no drift. {esc(drift[1])}</p>")
    weak = slice_flags(run_dir)
    if weak:
        parts.append(f"<div class='failed'><b>Slices more than {100 * _config.SLICE_MAX_GAP:.0f} points under the pool:</b><ul>"
                     + "".join(f"<li>{esc(w)}</li>" for w in weak) + "</ul></div>")
    rows = headline_rows(metrics, prev_metrics)
    if rows:
        parts.append("<h2>Headline numbers</h2><table><tr><th>measure</th><th>value</th><th>previous</th>"
                     "<th>change</th></tr>" + "".join(
                         f"<tr><td>{esc(a)}</td><td>{esc(b)}</td><td>{esc(c)}</td><td class='{esc(j)}'>{esc(d)}</td></tr>"
                         for a, b, c, d, j in rows) + "</table>")
    links = []
    for nb in sorted(run_dir.glob("[0-9][0-9]_*.ipynb")):
        done = next((r for r in run.get("notebooks", []) if r["notebook"] == nb.stem), None)
        status = f"{done['status']} in {done['seconds']:.0f} s" if done else ""
        html_link = f"<a href='{esc(nb.stem)}.html'>{esc(nb.stem)}</a>" if nb.with_suffix(".html").exists() else esc(nb.stem)
        links.append(f"<li>{html_link} (<a href='{esc(nb.name)}'>ipynb</a>) {esc(status)}</li>")
    for name in ("pool.npz", "metrics.json"):
        if (run_dir / name).exists():
            links.append(f"<li><a href='{name}'>{name}</a> ({(run_dir / name).stat().st_size / 1024:,.0f} KiB)</li>")
    parts.append("<h2>Notebooks and artifacts</h2><ul>" + "".join(links) + "</ul>")
    figures = sorted(p.stem for p in (run_dir / "figures").glob("*.js"))
    if figures:
        parts.append("<h2>Figures</h2>" + "".join(
            f"<div class='wb-figure' data-figure='{esc(name)}'></div><script src='figures/{esc(name)}.js'></script>"
            for name in figures))
    tables = sorted((run_dir / "tables").glob("*.json"))
    if tables:
        parts.append("<h2>Tables</h2>")
    for t in tables:
        parts.append(_table_html(json.loads(t.read_text(encoding="utf-8"))))
    details = [(f"{s}.{k}", v) for s, vals in metrics.items() if isinstance(vals, dict)
               for k, v in vals.items() if isinstance(v, (str, bool)) and k != "error"]
    if details:
        parts.append("<h2>Configuration</h2><table>" + "".join(
            f"<tr><td>{esc(k)}</td><td>{esc(str(v))}</td></tr>" for k, v in details) + "</table>")
    more = flatten_metrics(metrics)
    if more:
        parts.append("<h2>All numbers</h2><table>" + "".join(
            f"<tr><td>{esc(k)}</td><td>{v:.4g}</td></tr>" for k, v in sorted(more.items())) + "</table>")
    write_assets(run_dir)
    page = (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>workbench report "
            f"{esc(run_dir.name)}</title>{head_html()}<style>{_CSS}</style></head><body>{''.join(parts)}"
            f"{tail_html()}</body></html>")
    write_text_atomic(run_dir / "index.html", page)
    return run_dir / "index.html"
