"""Context rules compared per turn, on folds of a labelled conversation set split by conversation.

The labelled set (``data/conversations/``) has one conversation per line,
``{"conversation_id", "lang", "turns": [{"id", "text", "category", "kind"}]}``,
user turns only, oldest first; ``kind`` is ``fresh`` (a message that stands
alone, a new task or social talk) or ``follow_up`` (continues an earlier
task and takes its category). A context rule should route follow-ups better
than the message alone without adding downgrades on fresh turns. Rules with
learned parts (the ``inherit`` length, the ``detector`` weights) are fitted on
the training folds and scored on the held-out one, so every rule's number is
held out; folds never split a conversation.
"""
from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import config as _config
from ..core.conversation import (ContextRule, context_texts, decide_turns, detected, follow_up_features,
                                 lifted, more_confident)
from ..core.follow_up import FollowUpDetector, TurnMemory, turn_features
from ..errors import ConfigError, DataError

__all__ = ["KINDS", "CANDIDATE_RULES", "rule_label", "candidate_rules", "read_dev_conversations", "read_conversations", "route_context_rules", "fit_follow_up_detector",
           "fit_follow_up", "fresh_pairs", "follow_up_sets", "shipped_follow_up", "pool_messages", "turn_encoder",
           "compare_context_rules", "choose_context_rule", "context_rule_errors", "threshold_curve", "choose_threshold",
           "context_rule_metrics", "compare_conversation_policies", "choose_conversation_policy"]

log = logging.getLogger(__name__)

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


def rule_label(rule):
    """A rule's label in the comparison: its name and how many earlier turns it reads (``alone`` reads none),
    and a ``detector`` rule's threshold when it is not the default."""
    if rule.name == "alone":
        return rule.name
    label = f"{rule.name}-{rule.turns}"
    if rule.name == "detector" and rule.threshold != _config.FOLLOW_UP_THRESHOLD:
        label += f" p>={rule.threshold:g}"
    return label


def candidate_rules():
    """Every context rule compared (label -> :class:`ContextRule`); learned parts are refitted on each training fold."""
    rules = [ContextRule("alone"), *(ContextRule(n, turns=k) for n in ("previous", "confident") for k in (1, 2)),
             *(ContextRule("lift", turns=k) for k in (1, 2, 3)), ContextRule("sticky", turns=2),
             ContextRule("inherit", turns=2), *(ContextRule("detector", turns=k) for k in (1, 2, 3)),
             *(ContextRule("detector", turns=_config.CONTEXT_TURNS, threshold=t) for t in (0.3, 0.5, 0.55, 0.6)
               if t != _config.FOLLOW_UP_THRESHOLD)]
    return {rule_label(r): r for r in rules}


CANDIDATE_RULES = tuple(candidate_rules())
#: What may read a turn in the pool's follow-up detector (:func:`fit_follow_up`).
FOLLOW_UP_READERS = ("mlp", "regression")
_SHORT_WORDS_GRID = (2, 3, 4, 5, 6, 8, 10)


def _groups(frame):
    groups = [g.index.to_numpy() for _, g in frame.groupby("conversation_id", sort=False)]
    if not (np.concatenate(groups) == np.arange(len(frame))).all():
        raise ConfigError("frame rows must be grouped by conversation, oldest turn first (a fresh index)")
    return groups


def cached_route(router, frame, *, turns, cache_dir=None):
    """``route(texts) -> decisions`` over every text a rule reading up to ``turns`` earlier turns needs.

    Each distinct text (a turn alone, or with its earlier turns) is embedded once, through the cache.
    """
    from ..dataset.embeddings import embed_texts

    texts = frame["text"].tolist()
    needed = dict.fromkeys(texts)
    for g in _groups(frame):
        for window in context_texts([texts[i] for i in g], turns):
            needed.update(dict.fromkeys(window))
    needed = list(needed)
    table = dict(zip(needed, router.route_batch(
        needed, encode=lambda batch: embed_texts(batch, router.embedder, cache_dir=cache_dir))))
    return lambda batch: [table[t] for t in batch]


def read_dev_conversations(dev_dir=None, taxonomy=None):
    """The development conversations (``conversations*.jsonl`` of ``dev_dir``, default ``data/dev``); None when absent.

    Their errors are the ones to read when deciding what to change; ``data/eval`` only reports.
    """
    folder = Path(dev_dir) if dev_dir is not None else _config.DEV_DIR
    files = sorted(folder.glob("conversations*.jsonl")) if folder.is_dir() else []
    return read_conversations(files, taxonomy) if files else None


def route_context_rules(frame, rules, route, tiers, *, encode=None, detector=None):
    """Each rule's decisions for every turn of ``frame`` (rows grouped by conversation, oldest first).

    ``encode`` and ``detector`` as :func:`~workbench.core.conversation.decide_turns` takes them.

    Returns
    -------
    dict label -> list of RouteDecision, aligned with ``frame``'s rows.
    """
    texts = frame["text"].tolist()
    groups = _groups(frame)
    return {label: [d for g in groups for d in decide_turns(rule, [texts[i] for i in g], route, tiers,
                                                            encode=encode, detector=detector)]
            for label, rule in rules.items()}


def _detector_rows(frame, route, tiers, rule):
    """Features and follow-up labels of every turn but the first of each conversation."""
    texts, kinds = frame["text"].tolist(), frame["kind"].tolist()
    x, y = [], []
    for g in _groups(frame):
        t = [texts[i] for i in g]
        alone = route(t)
        readings = [route(w) for w in context_texts(t, rule.turns)]
        best, lift = more_confident(alone, *readings), lifted(alone, *readings, tiers=tiers)
        for j in range(1, len(g)):
            x.append(follow_up_features(t[j], alone[j], best[j], lift[j - 1], tiers,
                                        release_category=rule.release_category))
            y.append(kinds[g[j]] == "follow_up")
    return np.array(x, float), np.array(y)


def fit_follow_up_detector(frame, route, tiers, *, turns=_config.CONTEXT_TURNS, c=1.0):
    """Weights of the follow-up detector (intercept first, then :data:`FOLLOW_UP_FEATURES`), by logistic regression.

    Returns
    -------
    tuple of float, what :class:`ContextRule` takes as ``weights``.
    """
    from sklearn.linear_model import LogisticRegression

    x, y = _detector_rows(frame, route, tiers, ContextRule("detector", turns=turns))
    if len(set(y)) < 2:
        raise ConfigError("fitting the follow-up detector needs both fresh and follow-up turns after the first")
    model = LogisticRegression(C=c, max_iter=2000).fit(x, y)
    return (float(model.intercept_[0]), *map(float, model.coef_[0]))


def turn_encoder(texts, embedder, *, cache_dir=None):
    """``encode(batch) -> vectors`` over ``texts``, each embedded once (through the cache)."""
    from ..dataset.embeddings import embed_texts

    texts = list(dict.fromkeys(texts))
    table = dict(zip(texts, embed_texts(texts, embedder, cache_dir=cache_dir))) if texts else {}
    return lambda batch: np.stack([table[t] for t in batch])


def fit_follow_up(frame, encode, *, reader=_config.FOLLOW_UP_READER, c=_config.FOLLOW_UP_C, standalone=None,
                  seed=_config.SEED, memory=True, k=_config.FOLLOW_UP_K, memory_dims=_config.FOLLOW_UP_MEMORY_DIMS):
    """The follow-up detector (:class:`~workbench.core.follow_up.FollowUpDetector`) fitted on every turn but the
    first of each conversation of ``frame`` to read its ``kind``, with the turns as its memory.

    Parameters
    ----------
    frame : pandas.DataFrame from :func:`read_conversations`
    encode : callable
        ``encode(list of str) -> vectors`` with the pool's backend (:func:`turn_encoder`).
    reader : {"mlp", "regression"}
        What reads the turn and the previous turn: a bag of networks (:func:`~workbench.analysis.heads.fit_mlp_head`,
        the ``mlp`` head's sizes, seeded ``seed``) or a logistic regression.
    c : float
        Inverse regularisation of the regression.
    standalone : (vectors, texts), optional
        Pool messages: as many seeded pairs of them as there are turns are added to the reader's turns as fresh ones
        (a message that stands alone is fresh whatever came before it), so it does not learn the labelled
        conversations' habit of following "thanks" or an aside with a return to the task.
    seed : int
        Which pairs, and the networks' seeds.
    memory : bool
        Keep every turn of ``frame`` (first turns as fresh) for the detector's k-NN votes; False: the reader
        alone.
    k : int
        Neighbours of each vote.
    memory_dims : int or None
        Keep the memory in its this many leading principal directions (:func:`~workbench.core.follow_up.memory_projection`);
        None: in the full embedding space.
    """
    from sklearn.linear_model import LogisticRegression

    from .heads import fit_mlp_head

    if reader not in FOLLOW_UP_READERS:
        raise ConfigError(f"follow-up reader must be one of {FOLLOW_UP_READERS}; got {reader!r}")
    frame = frame.reset_index(drop=True)
    if memory and len(frame) > _config.FOLLOW_UP_MAX_TURNS:
        raise ConfigError(f"the follow-up detector keeps at most {_config.FOLLOW_UP_MAX_TURNS} labelled turns "
                          f"(workbench.config.FOLLOW_UP_MAX_TURNS); got {len(frame)}")
    texts, kinds = frame["text"].tolist(), frame["kind"].to_numpy()
    vectors = encode(texts).astype(np.float64)
    center = vectors.mean(axis=0)
    x, y, previous = [], [], np.full(len(frame), -1)
    for g in _groups(frame):
        x.append(turn_features(vectors[g], [texts[i] for i in g], center))
        y.extend(kinds[g[1:]] == "follow_up")
        previous[g[1:]] = g[:-1]
    if standalone is not None:
        x.append(fresh_pairs(standalone, center, len(y), seed))
        y.extend([False] * len(x[-1]))
    x, y = np.vstack(x), np.array(y)
    if len(set(y)) < 2:
        raise ConfigError("fitting the follow-up detector needs both fresh and follow-up turns after the first")
    if reader == "mlp":
        read = {"coef": None, "intercept": None, "networks": fit_mlp_head(x, y.astype(int), 2, seed=seed)}
    else:
        model = LogisticRegression(C=c, max_iter=5000).fit(x, y)
        read = {"coef": model.coef_[0], "intercept": float(model.intercept_[0])}
    if not memory:
        return FollowUpDetector(center, **read)
    follows = (kinds == "follow_up") & (previous >= 0)
    return FollowUpDetector(center, memory=TurnMemory.fit(vectors - center, previous, follows, dims=memory_dims),
                            k=min(k, len(frame)), **read)


def fresh_pairs(standalone, center, n, seed):
    """``n`` pairs of pool messages read as (previous turn, turn): a message that stands alone is fresh whatever
    came before it.

    Pairs are drawn by the messages' texts, not their positions: in round ``r`` the messages are ordered by a
    seeded hash of ``(r, text)`` and each is paired with the next, rounds following one another until there are
    ``n`` pairs. A message added to the pool changes only the pairs beside it in each round (and the last pairs
    taken), so two pools that differ by a batch are compared with nearly the same detector instead of one fitted
    on a reshuffled sample.
    """
    vectors, texts = standalone
    if len(texts) < 2 or n < 1:
        return np.zeros((0, 2 * center.shape[0] + 2))
    pairs = []
    for r in range(-(-n // (len(texts) - 1))):
        keys = np.array([_text_key(seed, r, t) for t in texts], np.uint64)
        order = np.lexsort((np.arange(len(texts)), keys))  # equal texts keep their order
        pairs.extend(zip(order[:-1], order[1:]))
    return np.vstack([turn_features(vectors[[a, b]], [texts[a], texts[b]], center) for a, b in pairs[:n]])


def _text_key(seed, round_, text):
    return int.from_bytes(hashlib.blake2b(f"{seed}\x1f{round_}\x1f{text}".encode(), digest_size=8).digest(), "little")


def follow_up_sets(conversations_dir=None, dev_dir=None, taxonomy=None):
    """What the shipped detector is fitted on: the labelled conversations and the development conversations."""
    import pandas as pd

    frames = [read_conversations(conversations_dir, taxonomy), read_dev_conversations(dev_dir, taxonomy)]
    return pd.concat([f for f in frames if f is not None], ignore_index=True)


def pool_messages(router, pool_dir=None, taxonomy=None, *, cache_dir=None):
    """``(vectors, texts)`` of the router's pool messages whose ids the pool files (default ``data/pool``) still
    hold: the ``standalone`` of :func:`fit_follow_up` for a pool.npz (which stores no texts).

    The texts are embedded again with the router's backend (through the cache in ``cache_dir``), as an export
    embeds them: the artifact's vectors are centred on the pool's own mean, so a detector fitted on them would
    not be the one the export stores, and would move with every message added to the pool.
    """
    from ..core.taxonomy import Taxonomy
    from ..dataset.pool import load_pool

    frame = load_pool(pool_dir, taxonomy if taxonomy is not None else Taxonomy.from_metadata(router.metadata)).frame
    text_of = dict(zip(frame["id"].astype(str), frame["text"]))
    texts = [text_of[str(m)] for m in router.artifact.ids if str(m) in text_of]
    if not texts:
        return np.zeros((0, router.embedder.dim), np.float32), []
    return turn_encoder(texts, router.embedder, cache_dir=cache_dir)(texts), texts


def shipped_follow_up(pool, *, conversations_dir=None, dev_dir=None, cache_dir=None):
    """The detector an export of ``pool`` (an EmbeddedPool) stores: :func:`fit_follow_up` on
    :func:`follow_up_sets` and the pool's own messages (``standalone``), with the pool's backend.

    Returns
    -------
    (FollowUpDetector, pandas.DataFrame): the detector and the turns it was fitted on.
    """
    frame = follow_up_sets(conversations_dir, dev_dir, pool.taxonomy)
    detector = fit_follow_up(frame, turn_encoder(frame["text"], pool.embedder, cache_dir=cache_dir),
                             standalone=(pool.vectors, pool.frame["text"].tolist()))
    log.info("follow-up detector fitted on %d turns of %d conversations", len(frame),
             frame["conversation_id"].nunique())
    return detector, frame


def _accuracy(frame, decisions, tiers):
    rank = {t: i for i, t in enumerate(tiers)}
    return float(np.mean([rank[d.tier] == rank[t] for d, t in zip(decisions, frame["tier"])]))


def fit_rule(rule, frame, route, tiers):
    """``rule`` with its learned parts fitted on ``frame`` (the training folds); other rules come back unchanged.

    ``inherit`` picks its word limit by tier accuracy over the training turns (``frame`` has a ``tier``
    column, the labelled category's tier); the ``detector`` rule's detector is fitted per fold by
    :func:`compare_context_rules`.
    """
    from dataclasses import replace

    if rule.name == "inherit":
        grid = [replace(rule, short_words=w) for w in _SHORT_WORDS_GRID]
    else:
        return rule
    scores = [_accuracy(frame, route_context_rules(frame, {"r": r}, route, tiers)["r"], tiers) for r in grid]
    return grid[int(np.argmax(scores))]


def conversation_folds(frame, folds=_config.CONTEXT_FOLDS, *, seed=_config.SEED):
    """Fold number of each row: conversations shuffled with ``seed`` and dealt round-robin (never split)."""
    ids = frame["conversation_id"].unique()
    if not 2 <= folds <= len(ids):
        raise ConfigError(f"folds must be in [2, {len(ids)}] (the conversations); got {folds!r}")
    order = np.random.default_rng(seed).permutation(len(ids))
    fold_of = {ids[j]: n % folds for n, j in enumerate(order)}
    return frame["conversation_id"].map(fold_of).to_numpy()


@dataclass
class ContextComparison:
    """Held-out results of every context rule: ``table`` (one row a rule), ``decisions`` (label -> list aligned with
    ``frame``), ``fitted`` (label -> the rule fitted on all of ``frame``, what would ship), ``per_fold`` and
    ``follow_up_probability`` (each turn's probability under its fold's detector, aligned with ``frame``; None when no
    rule fits one), which :func:`threshold_curve` replays."""

    table: object
    decisions: dict
    fitted: dict
    per_fold: object
    follow_up_probability: object = None


def _metrics(frame, decisions, rank):
    true = frame["tier"].map(rank).to_numpy()
    routed = np.array([rank[d.tier] for d in decisions])
    row = {}
    for kind, mask in (("all", np.ones(len(frame), bool)), *((k, (frame["kind"] == k).to_numpy()) for k in KINDS)):
        row[f"{kind}_n"] = int(mask.sum())
        row[f"{kind}_tier_accuracy"] = float((routed[mask] == true[mask]).mean()) if mask.any() else float("nan")
        row[f"{kind}_downgrade_rate"] = float((routed[mask] < true[mask]).mean()) if mask.any() else float("nan")
        row[f"{kind}_upgrade_rate"] = float((routed[mask] > true[mask]).mean()) if mask.any() else float("nan")
    return row


def compare_context_rules(router, frame, rules=None, *, folds=_config.CONTEXT_FOLDS, seed=_config.SEED,
                          cache_dir=None, also_train=None, standalone=None):
    """Tier accuracy, downgrades and upgrades per context rule and turn kind, on held-out folds by conversation.

    Parameters
    ----------
    router : Router
    frame : pandas.DataFrame from :func:`read_conversations`
    rules : dict label -> ContextRule, optional
        Default :func:`candidate_rules`.
    folds : int
        Each rule's learned parts are fitted on the other folds; a fold's turns are decided by that fit.
    also_train : pandas.DataFrame, optional
        More labelled conversations (the development ones) the follow-up detector is also fitted on in every
        fold; they are never scored.
    standalone : (vectors, texts), optional
        Pool messages for the detector's fit (:func:`fit_follow_up`); default :func:`pool_messages` of ``router``.

    Returns
    -------
    ContextComparison; its ``table`` is indexed by rule label, with ``<kind>_tier_accuracy``,
    ``<kind>_downgrade_rate``, ``<kind>_upgrade_rate`` for ``all``, ``fresh`` and ``follow_up``, and the spread of
    the follow-up accuracy over folds.
    """
    import pandas as pd

    from ..core.taxonomy import Taxonomy

    rules = rules or candidate_rules()
    tiers = list(router.tiers)
    rank = {t: i for i, t in enumerate(tiers)}
    frame = frame.reset_index(drop=True).assign(tier=lambda f: f["category"].map(
        Taxonomy.from_metadata(router.metadata).tier_map))
    route = cached_route(router, frame, turns=max(r.turns for r in rules.values()), cache_dir=cache_dir)
    extra = also_train.reset_index(drop=True) if also_train is not None else frame.iloc[:0]
    learns = any(r.name == "detector" for r in rules.values())  # only the detector rules fit a detector per fold
    encode = turn_encoder([*frame["text"], *extra["text"]], router.embedder, cache_dir=cache_dir) if learns else None
    standalone = pool_messages(router, cache_dir=cache_dir) if standalone is None and learns else standalone
    fold = conversation_folds(frame, folds, seed=seed)
    held = {label: [None] * len(frame) for label in rules}
    probability = np.full(len(frame), np.nan) if learns else None
    per_fold = []
    for k in range(folds):
        train, test = frame[fold != k].reset_index(drop=True), frame[fold == k]
        fitted = {label: fit_rule(rule, train, route, tiers) for label, rule in rules.items()}
        detector = _AskedOnce(fit_follow_up(pd.concat([train, extra], ignore_index=True), encode,
                                            standalone=standalone, seed=seed)) if learns else None
        decided = route_context_rules(test.reset_index(drop=True), fitted, route, tiers, encode=encode,
                                      detector=detector)
        if learns:
            probability[test.index.to_numpy()] = _probabilities(test.reset_index(drop=True), detector, encode)
        for label, decisions in decided.items():
            for row, d in zip(test.index, decisions):
                held[label][row] = d
            per_fold.append({"rule": label, "fold": k, **_metrics(test, decisions, rank)})
    per_fold = pd.DataFrame(per_fold)
    spread = per_fold.groupby("rule")[["follow_up_tier_accuracy", "fresh_tier_accuracy"]].agg(["min", "std"])
    spread.columns = [f"{a}_fold_{b}" for a, b in spread.columns]
    table = pd.DataFrame([{"rule": label, **_metrics(frame, held[label], rank)} for label in rules]).set_index("rule")
    table = table.join(spread)
    shipped = {label: fit_rule(rule, frame, route, tiers) for label, rule in rules.items()}
    return ContextComparison(table, held, shipped, per_fold, probability)


class _AskedOnce:
    """A fold's detector asked once per conversation: every detector rule (and :func:`threshold_curve`'s
    probabilities) reads the same turns through the same detector, whatever its threshold or window."""

    def __init__(self, detector):
        self.detector, self.answers = detector, {}

    def predict_proba(self, vectors, texts):
        key = tuple(texts)
        if key not in self.answers:
            self.answers[key] = self.detector.predict_proba(vectors, texts)
        return self.answers[key]


def _probabilities(frame, detector, encode):
    texts, out = frame["text"].tolist(), np.zeros(len(frame))
    for g in _groups(frame):
        out[g] = detector.predict_proba(encode([texts[i] for i in g]), [texts[i] for i in g])
    return out


def threshold_curve(router, frame, probability, thresholds=_config.FOLLOW_UP_THRESHOLDS, *,
                    turns=_config.CONTEXT_TURNS, cache_dir=None):
    """The ``detector`` rule at every threshold, replayed from held-out follow-up probabilities.

    A threshold only decides which turns continue their task, so one detector per fold
    (:func:`compare_context_rules`, its ``follow_up_probability``) gives the rule's held-out decisions at every
    threshold without fitting again; at a threshold the comparison also ran, the two agree turn for turn.

    Parameters
    ----------
    router : Router
    frame : pandas.DataFrame
        The turns the comparison was run on (:func:`read_conversations`), in its order.
    probability : array (n_turns,)
        Each turn's held-out follow-up probability.
    thresholds : sequence of float
    turns : int
        Earlier turns the rule reads.

    Returns
    -------
    pandas.DataFrame indexed by ``threshold``: ``follow_up_share`` (turns after the first read as follow-ups), the
    rates of :func:`compare_context_rules`' table for ``all``, ``fresh`` and ``follow_up`` turns, and
    ``expected_cost`` (mean cost per turn under the taxonomy's cost matrix).
    """
    import pandas as pd

    from ..core.taxonomy import Taxonomy

    frame = frame.reset_index(drop=True)
    probability = np.asarray(probability, dtype=float)
    if probability.shape != (len(frame),) or not np.isfinite(probability).all():
        raise ConfigError(f"threshold curve: need one finite follow-up probability per turn ({len(frame)}); got "
                          f"shape {probability.shape}")
    taxonomy = Taxonomy.from_metadata(router.metadata)
    tiers = list(router.tiers)
    rank = {t: i for i, t in enumerate(tiers)}
    frame = frame.assign(tier=frame["category"].map(taxonomy.tier_map))
    route = cached_route(router, frame, turns=turns, cache_dir=cache_dir)
    texts, groups = frame["text"].tolist(), _groups(frame)
    read = [(g, [texts[i] for i in g]) for g in groups]
    read = [(g, t, route(t), context_texts(t, turns)[-1]) for g, t in read]
    later = np.ones(len(frame), bool)
    later[[g[0] for g in groups]] = False
    true = frame["tier"].map(rank).to_numpy()
    cost = taxonomy.cost_matrix()
    rows = []
    for threshold in thresholds:
        rule = ContextRule("detector", turns=turns, threshold=float(threshold))
        decisions = [None] * len(frame)
        for g, t, alone, widest in read:
            follows = probability[g] >= rule.threshold
            for i, d in zip(g, detected(rule, t, alone, tiers, follows=follows,
                                        reading=lambda j, w=widest: route([w[j]])[0])):
                decisions[i] = d
        routed = np.array([rank[d.tier] for d in decisions])
        rows.append({"threshold": rule.threshold,
                     "follow_up_share": float((probability[later] >= rule.threshold).mean()) if later.any() else np.nan,
                     **_metrics(frame, decisions, rank), "expected_cost": float(cost[true, routed].mean())})
    return pd.DataFrame(rows).set_index("threshold")


def choose_threshold(curve, *, tie=_config.FOLLOW_UP_THRESHOLD_TIE):
    """The threshold of a :func:`threshold_curve` to ship: the lowest expected cost among those whose tier accuracy
    over all turns lies within ``tie`` of the best (a downgrade costs more than an upgrade), the lower threshold on
    equal cost."""
    accuracy = curve["all_tier_accuracy"]
    near = curve[accuracy >= accuracy.max() - tie - 1e-12]
    return float(near.sort_values("expected_cost", kind="stable").index[0])


def choose_context_rule(table, *, baseline="alone"):
    """The rule to ship: the best tier accuracy over all turns among those that route follow-ups better than
    ``baseline`` without more fresh-turn downgrades than ``baseline`` plus one binomial standard error of its rate
    (ties: fewer downgrades); ``baseline`` when none does.

    A rule that reads context may turn a fresh turn into a follow-up; the tolerance keeps one or two such turns
    in a few hundred from outweighing every follow-up it routes right.

    Returns
    -------
    dict with ``rule`` (label), ``beats_baseline`` and ``summary`` (one sentence).
    """
    base = table.loc[baseline]
    rate, n = base["fresh_downgrade_rate"], max(int(base["fresh_n"]), 1)
    tolerance = np.sqrt(rate * (1 - rate) / n)
    ok = table[(table["fresh_downgrade_rate"] <= rate + tolerance + 1e-12)
               & (table["follow_up_tier_accuracy"] > base["follow_up_tier_accuracy"])]
    best = baseline if ok.empty else ok.assign(_key=-ok["all_tier_accuracy"].round(9)).sort_values(
        ["_key", "all_downgrade_rate"], kind="stable").index[0]
    r = table.loc[best]
    summary = (f"{best}: {100 * r['all_tier_accuracy']:.1f}% tier accuracy over all turns "
               f"({100 * base['all_tier_accuracy']:.1f}% {baseline}); follow-ups {100 * r['follow_up_tier_accuracy']:.1f}% "
               f"with {100 * r['follow_up_downgrade_rate']:.1f}% downgrades "
               f"({100 * base['follow_up_tier_accuracy']:.1f}%); fresh turns {100 * r['fresh_tier_accuracy']:.1f}% "
               f"({100 * base['fresh_tier_accuracy']:.1f}%) with {100 * r['fresh_downgrade_rate']:.1f}% downgrades "
               f"({100 * base['fresh_downgrade_rate']:.1f}%); held-out folds by conversation.")
    return {"rule": best, "policy": best, "beats_baseline": best != baseline, "summary": summary}


def context_rule_errors(frame, decisions, taxonomy):
    """The turns ``decisions`` route to the wrong tier: text, kind, labelled and routed category and tier.

    Read these on the development conversations (``data/dev``), never on ``data/eval``. ``frame`` None (no
    such set) gives None.
    """
    if frame is None:
        return None
    frame = frame.reset_index(drop=True)
    out = frame.assign(tier=frame["category"].map(taxonomy.tier_map), routed_category=[d.category for d in decisions],
                       routed_tier=[d.tier for d in decisions], confidence=[d.confidence for d in decisions])
    rank = {t: i for i, t in enumerate(taxonomy.tiers)}
    out = out[out["tier"] != out["routed_tier"]]
    out = out.assign(error=np.where(out["routed_tier"].map(rank) < out["tier"].map(rank), "downgrade", "upgrade"))
    return out[["conversation_id", "turn", "kind", "text", "category", "routed_category", "tier", "routed_tier",
                "confidence", "error"]]


def compare_conversation_policies(router, frame, policies=None, *, cache_dir=None):
    """The name before :func:`compare_context_rules` (kept for one release): its ``table``."""
    return compare_context_rules(router, frame, policies, cache_dir=cache_dir).table


choose_conversation_policy = choose_context_rule


def context_rule_metrics(table, shipped_label, *, baseline="alone"):
    """What a report records of a comparison: the shipped rule's rates, the best rule and the baseline's rates."""
    shipped = table.loc[shipped_label]
    keys = ("all_tier_accuracy", "follow_up_tier_accuracy", "follow_up_downgrade_rate", "fresh_tier_accuracy",
            "fresh_downgrade_rate")
    return {"shipped_rule": shipped_label, "best_rule": choose_context_rule(table, baseline=baseline)["rule"],
            "turns": int(shipped["all_n"]), **{k: float(shipped[k]) for k in keys},
            f"{baseline}_follow_up_tier_accuracy": float(table.loc[baseline, "follow_up_tier_accuracy"]),
            f"{baseline}_fresh_downgrade_rate": float(table.loc[baseline, "fresh_downgrade_rate"])}
