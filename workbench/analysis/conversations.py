"""Conversation routing compared per turn: the message alone, with the previous user turn, or a sticky tier.

The labelled set (``data/conversations/``) has one conversation per line,
``{"conversation_id", "lang", "turns": [{"id", "text", "category", "kind"}]}``,
user turns only, oldest first; ``kind`` is ``fresh`` (a message that stands
alone, a new task or social talk) or ``follow_up`` (continues an earlier
task and takes its category). A policy should route follow-ups better than
the message alone without adding downgrades on fresh turns.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .. import config as _config
from ..core.conversation import (CONVERSATION_POLICIES, ConversationPolicy, lifted, more_confident, sticky_decisions,
                                 with_previous)
from ..errors import ConfigError, DataError

__all__ = ["KINDS", "read_conversations", "route_policies", "compare_conversation_policies", "choose_conversation_policy"]

KINDS = ("fresh", "follow_up")


def read_conversations(paths=None, taxonomy=None):
    """Every turn of the labelled conversation files (default: ``data/conversations/*.jsonl``), checked line by line.

    Returns
    -------
    pandas.DataFrame, one row per turn: ``conversation_id, lang, turn, id, text, category, kind, file``.
    """
    import pandas as pd

    from ..core.taxonomy import load_taxonomy
    from ..io import read_jsonl

    taxonomy = taxonomy if taxonomy is not None else load_taxonomy()
    paths = [Path(p) for p in ([paths] if isinstance(paths, (str, Path)) else paths or [_config.CONVERSATIONS_DIR])]
    files = [f for p in paths for f in (sorted(p.glob("*.jsonl")) if p.is_dir() else [p])]
    if not files:
        raise DataError(paths[0], None, "no conversation files (*.jsonl)")
    rows, seen = [], {}
    for f in files:
        for n, obj in read_jsonl(f):
            cid, turns = obj.get("conversation_id"), obj.get("turns")
            if not isinstance(cid, str) or not cid:
                raise DataError(f, n, "missing 'conversation_id'")
            if not isinstance(turns, list) or not turns:
                raise DataError(f, n, "'turns' must be a non-empty list")
            for i, t in enumerate(turns):
                text = t.get("text") if isinstance(t, dict) else None
                if not isinstance(text, str) or not text.strip():
                    raise DataError(f, n, f"turn {i + 1}: missing or empty 'text'")
                if t.get("category") not in taxonomy.tier_map:
                    raise DataError(f, n, f"turn {i + 1}: unknown category {t.get('category')!r}")
                if t.get("kind") not in KINDS or (i == 0 and t["kind"] != "fresh"):
                    raise DataError(f, n, f"turn {i + 1}: kind must be one of {KINDS} (the first turn fresh)")
                tid = str(t.get("id", ""))
                if not tid or tid in seen:
                    raise DataError(f, n, f"turn {i + 1}: missing or duplicate id {tid!r}"
                                    + (f" (first at {seen[tid]})" if tid in seen else ""))
                seen[tid] = f"{f}:{n}"
                rows.append({"conversation_id": cid, "lang": obj.get("lang"), "turn": i + 1, "id": tid, "text": text,
                             "category": t["category"], "kind": t["kind"], "file": f.name})
    return pd.DataFrame(rows)


def route_policies(router, frame, policies, *, cache_dir=None):
    """Each policy's decisions for every turn of ``frame`` (rows grouped by conversation, oldest first).

    Every text is embedded once (cached); the sticky rules reuse the messages' own decisions.

    Returns
    -------
    dict policy label -> list of RouteDecision, aligned with ``frame``'s rows.
    """
    from ..dataset.embeddings import embed_texts

    groups = [g.index.to_numpy() for _, g in frame.groupby("conversation_id", sort=False)]
    order = np.concatenate(groups)
    if not (order == np.arange(len(frame))).all():
        raise ConfigError("frame rows must be grouped by conversation, oldest turn first")
    texts = frame["text"].tolist()
    alone = router.route_vectors(embed_texts(texts, router.embedder, cache_dir=cache_dir))
    previous = None
    out = {}
    for label, policy in policies.items():
        if policy.name == "alone":
            out[label] = alone
        elif policy.name in ("previous", "confident", "lift"):
            if previous is None:
                ctx = [t for g in groups for t in with_previous([texts[i] for i in g])]
                previous = router.route_vectors(embed_texts(ctx, router.embedder, cache_dir=cache_dir))
            combine = {"confident": more_confident,
                       "lift": lambda a, p: lifted(a, p, router.tiers)}.get(policy.name)
            out[label] = previous if combine is None else \
                [d for g in groups for d in combine([alone[i] for i in g], [previous[i] for i in g])]
        else:
            out[label] = [d for g in groups for d in sticky_decisions([alone[i] for i in g], router.tiers, policy)]
    return out


def _outcomes(frame, decisions, taxonomy):
    rank = {t: i for i, t in enumerate(taxonomy.tiers)}
    true = np.array([rank[taxonomy.tier_map[c]] for c in frame["category"]])
    routed = np.array([rank[d.tier] for d in decisions])
    return true, routed


def compare_conversation_policies(router, frame, policies=None, *, cache_dir=None):
    """Tier accuracy, downgrades and upgrades per policy and turn kind.

    Parameters
    ----------
    router : Router
    frame : pandas.DataFrame from :func:`read_conversations`
    policies : dict label -> ConversationPolicy, optional
        Default: every policy, with the project's sticky parameters.

    Returns
    -------
    pandas.DataFrame indexed by policy label, with ``<kind>_tier_accuracy``,
    ``<kind>_downgrade_rate``, ``<kind>_upgrade_rate`` for ``all``, ``fresh`` and ``follow_up``.
    """
    import pandas as pd

    from ..core.taxonomy import Taxonomy

    if policies is None:
        policies = {name: ConversationPolicy(name) for name in CONVERSATION_POLICIES}
    taxonomy = Taxonomy.from_metadata(router.metadata)
    decided = route_policies(router, frame, policies, cache_dir=cache_dir)
    rows = []
    for label, decisions in decided.items():
        true, routed = _outcomes(frame, decisions, taxonomy)
        row = {"policy": label}
        for kind, mask in (("all", np.ones(len(frame), bool)), *((k, (frame["kind"] == k).to_numpy()) for k in KINDS)):
            row[f"{kind}_n"] = int(mask.sum())
            row[f"{kind}_tier_accuracy"] = float((routed[mask] == true[mask]).mean())
            row[f"{kind}_downgrade_rate"] = float((routed[mask] < true[mask]).mean())
            row[f"{kind}_upgrade_rate"] = float((routed[mask] > true[mask]).mean())
        rows.append(row)
    return pd.DataFrame(rows).set_index("policy")


def choose_conversation_policy(table, *, baseline="alone"):
    """The policy to ship: the best tier accuracy over all turns among those that route follow-ups better than
    ``baseline`` without more fresh-turn downgrades (ties: fewer downgrades); ``baseline`` when none does.

    Returns
    -------
    dict with ``policy`` (label), ``beats_baseline`` and ``summary`` (one sentence).
    """
    base = table.loc[baseline]
    ok = table[(table["fresh_downgrade_rate"] <= base["fresh_downgrade_rate"] + 1e-12)
               & (table["follow_up_tier_accuracy"] > base["follow_up_tier_accuracy"])]
    best = baseline if ok.empty else ok.assign(_key=-ok["all_tier_accuracy"].round(9)).sort_values(
        ["_key", "all_downgrade_rate"], kind="stable").index[0]
    r = table.loc[best]
    summary = (f"{best}: {100 * r['all_tier_accuracy']:.1f}% tier accuracy over all turns "
               f"({100 * base['all_tier_accuracy']:.1f}% {baseline}); follow-ups {100 * r['follow_up_tier_accuracy']:.1f}% "
               f"({100 * base['follow_up_tier_accuracy']:.1f}%); fresh turns {100 * r['fresh_tier_accuracy']:.1f}% "
               f"({100 * base['fresh_tier_accuracy']:.1f}%) with {100 * r['fresh_downgrade_rate']:.1f}% downgrades "
               f"({100 * base['fresh_downgrade_rate']:.1f}%).")
    return {"policy": best, "beats_baseline": best != baseline, "summary": summary}
