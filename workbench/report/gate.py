"""The nightly's promotion gate: tonight's exported pool against the last pool the gate let through.

The nightly keeps that pool as ``<reports>/previous-pool.npz`` with
``previous-pool.json`` (the run that exported it and its SHA-256) beside it.
After the notebooks, :func:`nightly_gate` runs :func:`workbench.decisions.promote.promote`
of ``<run>/pool.npz`` against it on the labelled sets (and, given the gateway's
decision log, what it would change on that traffic), writes
``promotion.json`` and ``promotion.html`` into the run folder and records the
verdict in the ``gate`` section of ``metrics.json`` (the index shows it). A
promoted pool replaces the kept one (an atomic rename, checked to load); a
refused one does not, so a bad night is compared with the same good pool
again the next night instead of becoming the new bar. A fresh clone keeps no
pool: the first night's pool is kept and the index says "no previous pool".
"""
from __future__ import annotations

import hashlib
import logging
from pathlib import Path

from .. import config as _config
from ..errors import WorkbenchError
from ..io import atomic_file, write_json_atomic
from .record import record_metrics

log = logging.getLogger(__name__)

__all__ = ["nightly_gate", "keep_pool", "KEPT_POOL", "gate_sentence"]

#: The pool the next night's gate compares with, under the reports folder.
KEPT_POOL = "previous-pool.npz"


def _sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def keep_pool(pool, reports_dir, *, run):
    """Make ``pool`` the kept pool (atomically, checked to load) and note which run exported it."""
    from ..core.artifact import load_pool_npz

    target = Path(reports_dir) / KEPT_POOL
    with open(pool, "rb") as src, atomic_file(target, check=load_pool_npz) as dst:
        while chunk := src.read(1 << 20):
            dst.write(chunk)
    write_json_atomic(target.with_suffix(".json"), {"run": str(run), "sha256": _sha256(target)})
    return target


def _kept_from(reports_dir):
    import json

    side = (Path(reports_dir) / KEPT_POOL).with_suffix(".json")
    return json.loads(side.read_text(encoding="utf-8")).get("run", "?") if side.exists() else "?"


def _verdict(run_dir, kept, sets, decision_log=None):
    """Run the gate of ``run_dir/pool.npz`` against ``kept``; the promotion dict (written to the run folder)."""
    from ..core.router import Router
    from ..decisions.promote import decision_log_change, labelled_sets, promote
    from ..traffic.decision_log import logged_decisions
    from .promotion import write_promotion

    current = Router.load(kept)
    candidate = Router.load(Path(run_dir) / "pool.npz", embedder=current.embedder)
    change = decision_log_change(current, candidate, logged_decisions(decision_log), cache_dir=sets["cache_dir"]) \
        if decision_log is not None else None
    result = promote(labelled_sets(current, **sets), labelled_sets(candidate, **sets), decision_log=change)
    report = result.to_dict()
    inputs = {"candidate": "pool.npz (tonight's export)",
              "current": f"{KEPT_POOL} (kept from {_kept_from(Path(kept).parent)})"}
    write_promotion(report, run_dir, inputs={**inputs, **({"decision_log": decision_log} if decision_log else {})})
    return report


def nightly_gate(run_dir, reports_dir, *, eval_dir=None, conversations_dir=None, labelled=(),
                 per_source=_config.EVAL_PER_SOURCE, seed=_config.SEED, cache_dir=None, decision_log=None):
    """Gate tonight's pool against the kept one, record the verdict, rotate the kept pool when promoted.

    ``decision_log`` (a folder of the gateway's ``decisions-*.jsonl``) adds to the promotion page what tonight's
    pool would change on that traffic: decisions moved, toward which tier, and the cost at the logged tokens. It
    informs; the verdict stays the labelled sets'.

    Returns the ``gate`` metrics: ``status`` (``promote``, ``refuse``, ``no_previous``, ``no_pool`` or
    ``error``), ``previous`` (the run whose pool was compared with), ``reasons`` and ``sets``.
    """
    run_dir, reports_dir = Path(run_dir), Path(reports_dir)
    pool, kept = run_dir / "pool.npz", reports_dir / KEPT_POOL
    sets = dict(eval_dir=eval_dir, conversations_dir=conversations_dir, labelled=labelled, per_source=per_source,
                seed=seed, cache_dir=cache_dir)
    if not pool.exists():
        gate = {"status": "no_pool"}
    elif not kept.exists():
        keep_pool(pool, reports_dir, run=run_dir.name)
        gate = {"status": "no_previous"}
    else:
        previous = _kept_from(reports_dir)
        try:
            report = _verdict(run_dir, kept, sets, decision_log)
        except WorkbenchError as e:  # the report still shows the notebooks; the index says why there is no verdict
            log.error("nightly gate: %s", e)
            gate = {"status": "error", "previous": previous, "error": str(e)}
        else:
            gate = {"status": report["verdict"], "previous": previous, "reasons": "; ".join(report["reasons"]),
                    "sets": len(report["sets"])}
            if report["verdict"] == "promote":
                keep_pool(pool, reports_dir, run=run_dir.name)
    record_metrics(run_dir, "gate", gate, replace=True)
    return gate


def gate_sentence(gate):
    """``(css class, text, link to promotion.html or None)`` for the index, from the ``gate`` metrics."""
    status = (gate or {}).get("status")
    previous = (gate or {}).get("previous", "?")
    if status == "promote":
        return "ok", (f"Promotion gate: PROMOTE. Tonight's pool is no worse than the pool kept from {previous} on "
                      f"{gate.get('sets')} labelled set(s); it is now the pool the next night compares with."), \
            "promotion.html"
    if status == "refuse":
        return "failed", (f"Promotion gate: REFUSE against the pool kept from {previous}: {gate.get('reasons')}. "
                          "The kept pool stays."), "promotion.html"
    if status == "no_previous":
        return "", ("Promotion gate: no previous pool (a first run, or a fresh clone); tonight's pool is kept for "
                    "the next night's gate."), None
    if status == "error":
        return "failed", f"Promotion gate: no verdict: {gate.get('error')}", None
    if status == "no_pool":
        return "", "Promotion gate: no pool.npz was exported tonight.", None
    return None
