"""Scoring an exported pool on labelled messages it never saw: one number per source, and where it fails.

Leave-one-out answers "how well does the pool route itself"; users deploy a
pool to route other people's messages. This module routes every labelled
set of a folder (``data/eval/``: public benchmark prompts) through the
production :class:`~workbench.core.router.Router`, with the pool's own head
and decision policy, and reports per source: tier accuracy, downgrades,
upgrades, the abstain rate and the accuracy on the messages the router
answers itself, and the worst cross-tier confusions with example messages.

Each file is one *source*. At most ``per_source`` messages are sampled per
file (seeded per file name, so adding a file leaves the other samples
alone), so a 1,000-prompt set does not drown an 80-prompt one.

**Accepted-alternative rule.** A routed category equal to a row's
``alt_category`` counts as correct, and its tier is then judged against the
alternative's tier; otherwise the routed tier is judged against
``category``'s. Tier accuracy uses the tier the router returns (which a
cost-aware policy may move away from the winning category's tier), on every
message: an abstained message is judged by the router's best guess. The
headline also gives the accuracy on answered messages and the accuracy when
abstained messages go to the categorizer (counted right, as the operating
point of :mod:`workbench.decisions.operating_point` counts them).
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import config as _config
from ..errors import ConfigError, DataError

__all__ = ["ACCEPTED_ALTERNATIVE_RULE", "read_labelled", "read_eval_dir", "tier_outcomes", "Generalisation",
           "score_frame", "score_dir", "format_generalisation"]

ACCEPTED_ALTERNATIVE_RULE = ("a routed category equal to alt_category counts as correct (its tier judged against the "
                             "alternative's tier); otherwise the routed tier is judged against category's tier")


def read_labelled(path, taxonomy):
    """Rows of one labelled JSONL file (``text``, ``category``, optional ``alt_category``), checked line by line.

    Returns
    -------
    pandas.DataFrame with every field of the file plus ``line``; ``alt_category`` is None where absent.
    """
    import pandas as pd

    from ..core.text import message_problem
    from ..io import read_jsonl

    rows = []
    for n, obj in read_jsonl(path):
        problem = message_problem(obj, labelled=True, taxonomy=taxonomy)  # the one rule of every message reader
        if problem:
            raise DataError(path, n, problem)
        rows.append(dict(obj, alt_category=obj.get("alt_category") or None, line=n))
    if not rows:
        raise DataError(path, None, "no labelled messages")
    return pd.DataFrame(rows)


def read_eval_dir(folder=None, taxonomy=None, *, per_source=_config.EVAL_PER_SOURCE, seed=_config.SEED):
    """Every ``*.jsonl`` of ``folder`` (default ``data/eval``), at most ``per_source`` rows each, seeded.

    Returns
    -------
    pandas.DataFrame with a ``set`` column (the file's stem), in file order then line order.
    """
    import pandas as pd

    from ..core.taxonomy import load_taxonomy

    folder = Path(folder or _config.EVAL_DIR)
    taxonomy = taxonomy if taxonomy is not None and not isinstance(taxonomy, (str, Path)) else load_taxonomy(taxonomy)
    if per_source is not None and per_source < 1:
        raise ConfigError(f"per_source must be >= 1 or None; got {per_source!r}")
    files = sorted(folder.glob("*.jsonl")) if folder.is_dir() else []
    if not files:
        raise DataError(folder, None, "no labelled *.jsonl files in this folder")
    frames = []
    for f in files:
        rows = read_labelled(f, taxonomy)
        if per_source is not None and len(rows) > per_source:
            rng = np.random.default_rng([seed, zlib.crc32(f.stem.encode())])
            rows = rows.iloc[np.sort(rng.choice(len(rows), per_source, replace=False))]
        frames.append(rows.assign(set=f.stem))
    return pd.concat(frames, ignore_index=True)


def tier_outcomes(category, alt_category, routed_category, routed_tier, taxonomy):
    """Accepted category, true tier rank and routed tier rank per message (the accepted-alternative rule).

    Returns
    -------
    accepted : object array of category names
    true_rank, routed_rank : int arrays
    """
    cat = np.asarray(list(category), dtype=object)
    alt = np.asarray([a if isinstance(a, str) and a else None for a in alt_category], dtype=object)
    routed = np.asarray(list(routed_category), dtype=object)
    accepted = np.where((alt != None) & (routed == alt), alt, cat)  # noqa: E711 - elementwise
    rank = {t: i for i, t in enumerate(taxonomy.tiers)}
    true_rank = np.array([rank[taxonomy.tier_map[c]] for c in accepted], np.int64)
    routed_rank = np.array([rank[t] for t in routed_tier], np.int64)
    return accepted, true_rank, routed_rank


def _rates(frame):
    import pandas as pd

    ok, answered = frame["tier_correct"], ~frame["abstain"]
    return pd.Series({"n": len(frame), "tier_accuracy": ok.mean(), "category_accuracy": frame["correct"].mean(),
                      "downgrade_rate": frame["downgrade"].mean(), "upgrade_rate": frame["upgrade"].mean(),
                      "abstain_rate": frame["abstain"].mean(),
                      "answered_tier_accuracy": ok[answered].mean() if answered.any() else float("nan"),
                      "with_categorizer_tier_accuracy": (ok | frame["abstain"]).mean(),
                      "alternative_accepted": frame["alternative_used"].mean()})


@dataclass
class Generalisation:
    """A pool scored on labelled sets it never saw.

    ``routed`` has one row per message (its set, text, labels, decision and
    outcome); ``per_source`` one row per set; ``confusions`` the worst
    cross-tier (true category, routed category) pairs with example messages.
    """

    routed: object        # pandas.DataFrame
    per_source: object    # pandas.DataFrame indexed by set
    confusions: object    # pandas.DataFrame: pair, count, direction, cost, then one row per example
    pool: dict            # backend, head, policy of the scored pool

    @property
    def tier_accuracy(self) -> float:
        return float(self.routed["tier_correct"].mean())

    def headline(self) -> dict:
        """What metrics.json records: overall (all sampled messages), macro and worst source."""
        ps = self.per_source
        total = _rates(self.routed)
        return {"n": int(total["n"]), "sources": int(len(ps)), "tier_accuracy": float(total["tier_accuracy"]),
                "category_accuracy": float(total["category_accuracy"]),
                "downgrade_rate": float(total["downgrade_rate"]), "upgrade_rate": float(total["upgrade_rate"]),
                "abstain_rate": float(total["abstain_rate"]),
                "answered_tier_accuracy": float(total["answered_tier_accuracy"]),
                "with_categorizer_tier_accuracy": float(total["with_categorizer_tier_accuracy"]),
                "macro_tier_accuracy": float(ps["tier_accuracy"].mean()),
                "min_source_tier_accuracy": float(ps["tier_accuracy"].min()),
                "worst_source": str(ps["tier_accuracy"].idxmin()), **{f"pool_{k}": v for k, v in self.pool.items()}}


def _confusions(routed, taxonomy, *, top, examples):
    """The costliest (label, routed category, routed tier) triples; the routed tier may differ from the routed
    category's own tier when the pool's policy weighs the cost of a mistake."""
    import pandas as pd

    wrong = routed[~routed["tier_correct"]]
    cols = ["true", "true_tier", "routed", "tier", "direction", "count", "set", "text"]
    if wrong.empty:
        return pd.DataFrame(columns=cols)
    cost = taxonomy.cost_matrix()
    rank = {t: i for i, t in enumerate(taxonomy.tiers)}
    keys = ["accepted", "category_routed", "tier_routed"]
    groups = wrong.groupby(keys, sort=False)
    pairs = groups.size().rename("count").reset_index()
    pairs["cost"] = [c * cost[rank[taxonomy.tier_map[a]], rank[t]] for a, t, c in
                     zip(pairs["accepted"], pairs["tier_routed"], pairs["count"])]
    pairs = pairs.sort_values(["cost", "count"], ascending=False, kind="stable").head(top)
    rows = []
    for _, p in pairs.iterrows():
        true_tier = taxonomy.tier_map[p["accepted"]]
        direction = "downgrade" if rank[p["tier_routed"]] < rank[true_tier] else "upgrade"
        for _, r in groups.get_group(tuple(p[k] for k in keys)).head(examples).iterrows():
            rows.append({"true": p["accepted"], "true_tier": true_tier, "routed": p["category_routed"],
                         "tier": p["tier_routed"], "direction": direction, "count": int(p["count"]),
                         "set": r["set"], "text": r["text"]})
    return pd.DataFrame(rows, columns=cols)


def score_frame(router, frame, *, cache_dir=None, top_confusions=5, examples=5):
    """Route the labelled rows of ``frame`` with ``router`` and score them (see the module docstring).

    Parameters
    ----------
    router : Router
    frame : pandas.DataFrame with ``text``, ``category``, ``alt_category`` and ``set``
    cache_dir : path or False, optional
        Embedding cache (default ``data/interim/embeddings``).
    top_confusions, examples : int
        Cross-tier confusion pairs listed, and example messages per pair.

    Returns
    -------
    Generalisation
    """
    from ..core.taxonomy import Taxonomy
    from ..dataset.embeddings import embed_texts

    taxonomy = Taxonomy.from_metadata(router.metadata)
    vectors, questions = router.embed(frame["text"].tolist(),
                                      encode=lambda texts: embed_texts(texts, router.embedder, cache_dir=cache_dir))
    decisions = router.route_vectors(vectors, questions=questions)
    cats = [d.category for d in decisions]
    tiers = [d.tier for d in decisions]
    accepted, t, r = tier_outcomes(frame["category"], frame["alt_category"], cats, tiers, taxonomy)
    routed = frame.assign(category_routed=cats, tier_routed=tiers, confidence=[d.confidence for d in decisions],
                          abstain=[d.abstain for d in decisions], accepted=accepted,
                          correct=np.asarray(cats, dtype=object) == accepted, tier_correct=t == r,
                          downgrade=r < t, upgrade=r > t,
                          alternative_used=(accepted != np.asarray(frame["category"], dtype=object)))
    per_source = routed.groupby("set", sort=False).apply(_rates, include_groups=False)
    per_source["n"] = per_source["n"].astype(int)
    meta = router.metadata
    pool = {"backend": meta["backend"], "head": meta.get("head", "knn"),
            "policy": (meta.get("policy") or {}).get("name", "vote"),
            "abstains": bool(router.abstains)}
    return Generalisation(routed, per_source, _confusions(routed, taxonomy, top=top_confusions, examples=examples),
                          pool)


def score_dir(router, folder=None, *, per_source=_config.EVAL_PER_SOURCE, seed=_config.SEED, cache_dir=None,
              top_confusions=5, examples=5):
    """Score ``router`` on every labelled set of ``folder`` (default ``data/eval``); see :func:`score_frame`."""
    from ..core.taxonomy import Taxonomy

    frame = read_eval_dir(folder, Taxonomy.from_metadata(router.metadata), per_source=per_source, seed=seed)
    return score_frame(router, frame, cache_dir=cache_dir, top_confusions=top_confusions, examples=examples)


def format_generalisation(g, *, title=""):
    """A readable plain-text report: overall, per source, and the worst confusions with examples."""
    pct = lambda v: "   –  " if v != v else f"{100 * v:5.1f}%"  # noqa: E731
    h = g.headline()
    out = [title] if title else []
    out.append(f"messages {h['n']} from {h['sources']} source(s)   tier accuracy {pct(h['tier_accuracy'])}   "
               f"(macro {pct(h['macro_tier_accuracy'])}, worst {h['worst_source']} {pct(h['min_source_tier_accuracy'])})"
               f"   downgrades {pct(h['downgrade_rate'])}   upgrades {pct(h['upgrade_rate'])}")
    out.append(f"pool: {g.pool['backend']}, head {g.pool['head']}, policy {g.pool['policy']}; abstain rate "
               f"{pct(h['abstain_rate'])}, tier accuracy on answered messages {pct(h['answered_tier_accuracy'])}, "
               f"with the categorizer on abstained ones {pct(h['with_categorizer_tier_accuracy'])}")
    out.append(f"rule: {ACCEPTED_ALTERNATIVE_RULE}")
    out.append(f"\n  {'source':<26} {'n':>5} {'tier acc':>9} {'cat acc':>8} {'down':>7} {'up':>7} {'abstain':>8} "
               f"{'answered':>9} {'alt used':>9}")
    for name, r in g.per_source.iterrows():
        out.append(f"  {name:<26} {int(r['n']):>5} {pct(r['tier_accuracy']):>9} {pct(r['category_accuracy']):>8} "
                   f"{pct(r['downgrade_rate']):>7} {pct(r['upgrade_rate']):>7} {pct(r['abstain_rate']):>8} "
                   f"{pct(r['answered_tier_accuracy']):>9} {pct(r['alternative_accepted']):>9}")
    if len(g.confusions):
        out.append("\nworst cross-tier confusions (with examples):")
        for (true, routed, tier), grp in g.confusions.groupby(["true", "routed", "tier"], sort=False):
            first = grp.iloc[0]
            out.append(f"  {true} ({first['true_tier']}) -> {routed}, routed {tier} ({first['direction']}, "
                       f"{first['count']} messages)")
            for _, r in grp.iterrows():
                text = " ".join(str(r["text"]).split())
                out.append(f"      [{r['set']}] {text[:110] + ('…' if len(text) > 110 else '')}")
    return "\n".join(out)
