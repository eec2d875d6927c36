"""The promotion gate: is a candidate pool.npz better than the one serving, by more than noise?

Both pools route every labelled set they are given (evaluation sets,
labelled conversations routed turn by turn through
:meth:`~workbench.core.router.Router.route_conversation`, any labelled
JSONL). Per set the gate compares tier accuracy and the downgrade rate of the
two pools message by message: the paired difference (candidate minus current)
and its confidence interval from a seeded paired bootstrap over messages.

The candidate is refused when, on any set, tier accuracy falls by more than
``max_accuracy_drop`` with the interval's upper end below 0, or downgrades
rise with the interval's lower end above 0: a loss that is both real (the
interval excludes 0) and, for accuracy, large enough to matter. A decision
log adds what would change on live traffic (numbers only: it has no labels).
"""
from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field

import numpy as np

from .. import config as _config
from ..core.text import has_visible_text
from ..errors import ConfigError

__all__ = ["GateRules", "LabelledSet", "SetComparison", "Promotion", "paired_bootstrap", "route_labelled",
           "route_conversation_set", "compare_set", "decision_log_change", "promote", "labelled_sets"]

log = logging.getLogger(__name__)

#: Resamples drawn per block of the bootstrap (bounds memory at BLOCK x messages indices).
BLOCK = 256


@dataclass(frozen=True)
class GateRules:
    """When a candidate is refused, and how its intervals are drawn.

    Parameters
    ----------
    max_accuracy_drop : float
        A tier-accuracy fall larger than this (a share: 0.01 is 1 point) whose
        interval lies below 0 refuses the candidate.
    confidence : float
        Level of the paired bootstrap interval.
    n_boot : int
        Bootstrap resamples.
    seed : int
        Seed of the resamples: the same inputs give the same intervals.
    """

    max_accuracy_drop: float = 0.01
    confidence: float = 0.95
    n_boot: int = 2000
    seed: int = _config.SEED

    def __post_init__(self):
        if not 0 <= self.max_accuracy_drop < 1:
            raise ConfigError(f"max_accuracy_drop must be in [0, 1); got {self.max_accuracy_drop!r}")
        if not 0 < self.confidence < 1:
            raise ConfigError(f"confidence must be between 0 and 1; got {self.confidence!r}")
        if isinstance(self.n_boot, bool) or not isinstance(self.n_boot, int) or self.n_boot < 100:
            raise ConfigError(f"n_boot must be an integer >= 100; got {self.n_boot!r}")


@dataclass
class LabelledSet:
    """One labelled set routed by one pool: per message, whether its tier was right and whether it was downgraded."""

    name: str
    ids: list
    tier_correct: np.ndarray
    downgrade: np.ndarray
    texts: list = field(default_factory=list)


@dataclass
class SetComparison:
    """Both pools on one labelled set; differences are candidate minus current, as shares."""

    name: str
    n: int
    current: dict
    candidate: dict
    accuracy_diff: float
    accuracy_ci: tuple
    downgrade_diff: float
    downgrade_ci: tuple
    refusals: list

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Promotion:
    """The gate's verdict, every set's comparison and the decision-log change (or None)."""

    promoted: bool
    sets: list
    rules: GateRules
    decision_log: dict | None = None

    @property
    def reasons(self) -> list:
        """One line per refusal: which set, which figure, by how much."""
        return [r for s in self.sets for r in s.refusals]

    def to_dict(self) -> dict:
        return {"verdict": "promote" if self.promoted else "refuse", "reasons": self.reasons,
                "rules": asdict(self.rules), "sets": [s.to_dict() for s in self.sets],
                "decision_log": self.decision_log}


def paired_bootstrap(current, candidate, *, rules):
    """Mean paired difference (candidate minus current) and its bootstrap interval.

    Parameters
    ----------
    current, candidate : array of bool or float, one value per message (same order)
    rules : GateRules
        ``n_boot``, ``confidence`` and ``seed``.

    Returns
    -------
    diff : float
    interval : (low, high)
    """
    a, b = np.asarray(current, np.float64), np.asarray(candidate, np.float64)
    if a.shape != b.shape or a.ndim != 1 or len(a) == 0:
        raise ConfigError(f"paired outcomes must be two 1-D arrays of one non-zero length; got {a.shape} and {b.shape}")
    delta = b - a
    rng = np.random.default_rng(rules.seed)
    means = np.empty(rules.n_boot)
    for start in range(0, rules.n_boot, BLOCK):
        stop = min(start + BLOCK, rules.n_boot)
        means[start:stop] = delta[rng.integers(0, len(delta), (stop - start, len(delta)))].mean(axis=1)
    tail = (1 - rules.confidence) / 2
    low, high = np.quantile(means, [tail, 1 - tail])
    return float(delta.mean()), (float(low), float(high))


def _outcomes(name, frame, decisions, taxonomy):
    from ..analysis.generalisation import tier_outcomes

    cats = [d.category for d in decisions]
    tiers = [d.tier for d in decisions]
    alt = frame["alt_category"] if "alt_category" in frame else [None] * len(frame)
    _, true_rank, routed_rank = tier_outcomes(frame["category"], alt, cats, tiers, taxonomy)
    ids = frame["id"].astype(str).tolist() if "id" in frame else [str(i) for i in range(len(frame))]
    return LabelledSet(name=name, ids=ids, tier_correct=true_rank == routed_rank, downgrade=routed_rank < true_rank,
                       texts=frame["text"].tolist())


def route_labelled(router, frame, *, name, cache_dir=None):
    """Route the labelled rows of ``frame`` (``text``, ``category``, optional ``alt_category``) one by one."""
    from ..core.taxonomy import Taxonomy
    from ..dataset.embeddings import embed_texts

    decisions = router.route_batch(frame["text"].tolist(),
                                   encode=lambda texts: embed_texts(texts, router.embedder, cache_dir=cache_dir))
    return _outcomes(name, frame, decisions, Taxonomy.from_metadata(router.metadata))


class _KnownVectors:
    """An embedder that answers from vectors computed beforehand (through the embedding cache), else encodes."""

    def __init__(self, embedder, texts, vectors):
        self.embedder, self.spec, self.name = embedder, embedder.spec, getattr(embedder, "name", "")
        self.known = dict(zip(texts, vectors))

    def encode(self, texts):
        missing = [t for t in texts if t not in self.known]
        if missing:
            self.known.update(zip(missing, self.embedder.encode(missing)))
        return np.stack([self.known[t] for t in texts])


def route_conversation_set(router, frame, *, name, cache_dir=None):
    """Route labelled conversation turns (rows of :func:`~workbench.analysis.conversations.read_conversations`)
    conversation by conversation with the router's conversation handling
    (:meth:`~workbench.core.router.Router.route_conversation`); outcomes in ``frame``'s row order.

    Every text the handling may embed (each turn, each turn with the one before) is embedded once through the
    embedding cache first, so a second pool on the same set costs no encoding. The pool's follow-up detector routes
    them without its memory of these turns (:meth:`~workbench.core.follow_up.FollowUpDetector.without`): it was
    fitted on the labelled conversations, and would otherwise find each turn itself.
    """
    from ..core.conversation import with_previous
    from ..core.router import Router
    from ..core.taxonomy import Taxonomy
    from ..dataset.embeddings import embed_texts

    conversations = [turns.sort_values("turn") for _, turns in frame.groupby("conversation_id", sort=False)]
    texts = list(dict.fromkeys(t for c in conversations for t in (*c["text"], *with_previous(c["text"].tolist()))))
    vectors = embed_texts(texts, router.embedder, cache_dir=cache_dir)
    cached = Router(router.artifact, _KnownVectors(router.embedder, texts, vectors))
    if cached.follow_up is not None:
        cached.follow_up = cached.follow_up.without(cached.embedder.encode(frame["text"].tolist()))
    decisions = [None] * len(frame)
    for turns in conversations:
        for row, d in zip(turns.index, cached.route_conversation(turns["text"].tolist())):
            decisions[frame.index.get_loc(row)] = d
    return _outcomes(name, frame, decisions, Taxonomy.from_metadata(router.metadata))


def _summary(outcome):
    return {"tier_accuracy": float(np.mean(outcome.tier_correct)), "downgrade_rate": float(np.mean(outcome.downgrade)),
            "tier_correct": int(np.sum(outcome.tier_correct)), "downgrades": int(np.sum(outcome.downgrade))}


def compare_set(current, candidate, *, rules):
    """Compare two pools' outcomes on one set (:class:`LabelledSet` each, same messages) and apply the gate."""
    if current.ids != candidate.ids:
        raise ConfigError(f"set {current.name!r}: the two pools were scored on different messages")
    acc, acc_ci = paired_bootstrap(current.tier_correct, candidate.tier_correct, rules=rules)
    down, down_ci = paired_bootstrap(current.downgrade, candidate.downgrade, rules=rules)
    level = f"{100 * rules.confidence:g}%"
    refusals = []
    if acc < -rules.max_accuracy_drop and acc_ci[1] < 0:
        refusals.append(f"{current.name}: tier accuracy falls by {-100 * acc:.1f} points ({level} interval "
                        f"{100 * acc_ci[0]:+.1f} to {100 * acc_ci[1]:+.1f}; allowed {100 * rules.max_accuracy_drop:g})")
    if down > 0 and down_ci[0] > 0:
        refusals.append(f"{current.name}: downgrades rise by {100 * down:.1f} points ({level} interval "
                        f"{100 * down_ci[0]:+.1f} to {100 * down_ci[1]:+.1f})")
    return SetComparison(name=current.name, n=len(current.ids), current=_summary(current),
                         candidate=_summary(candidate), accuracy_diff=acc, accuracy_ci=acc_ci, downgrade_diff=down,
                         downgrade_ci=down_ci, refusals=refusals)


def _price_per_token(records):
    """Dollars per token of each upstream tier, as logged (tiers with no priced traffic are absent)."""
    import pandas as pd

    df = pd.DataFrame(records)
    df = df[(df["tokens"] > 0) & df["cost"].notna() & df["upstream_tier"].notna()]
    sums = df.groupby("upstream_tier")[["cost", "tokens"]].sum()
    return (sums["cost"] / sums["tokens"]).to_dict()


def decision_log_change(current, candidate, records, *, cache_dir=None):
    """What the candidate changes on logged traffic: decisions moved, toward which tier, cost at the logged tokens.

    Parameters
    ----------
    current, candidate : Router
    records : list of dict
        One per logged decision with ``text``, ``tokens`` (prompt + completion), ``cost`` and ``upstream_tier``.

    Returns
    -------
    dict: ``n``, ``changed``, ``moves`` (``"from -> to"``: count), ``toward_cheaper``, ``toward_stronger``,
    ``cost_current``, ``cost_candidate``, ``cost_change`` (dollars at each tier's logged price per token;
    None when a routed tier has no priced traffic in the log), ``price_per_token``.
    """
    from ..dataset.embeddings import embed_texts

    records = [r for r in records if has_visible_text(r["text"])]  # nothing to route: the router refuses it
    if not records:
        return {"n": 0, "changed": 0, "moves": {}, "toward_cheaper": 0, "toward_stronger": 0, "cost_current": None,
                "cost_candidate": None, "cost_change": None, "price_per_token": {}}
    texts = [r["text"] for r in records]
    routed = {}
    for label, router in (("current", current), ("candidate", candidate)):
        encode = lambda batch, router=router: embed_texts(batch, router.embedder, cache_dir=cache_dir)  # noqa: E731
        routed[label] = [d.tier for d in router.route_batch(texts, encode=encode)]
    rank = {t: i for i, t in enumerate(current.tiers)}
    moves, cheaper, stronger = {}, 0, 0
    for a, b in zip(routed["current"], routed["candidate"]):
        if a != b:
            moves[f"{a} -> {b}"] = moves.get(f"{a} -> {b}", 0) + 1
            cheaper, stronger = cheaper + (rank[b] < rank[a]), stronger + (rank[b] > rank[a])
    price = _price_per_token(records)
    tokens = np.array([r["tokens"] for r in records], np.float64)
    cost = {k: (float(sum(price[t] * n for t, n in zip(v, tokens))) if set(v) <= set(price) else None)
            for k, v in routed.items()}
    change = None if None in cost.values() else cost["candidate"] - cost["current"]
    return {"n": len(records), "changed": sum(moves.values()), "moves": dict(sorted(moves.items())),
            "toward_cheaper": cheaper, "toward_stronger": stronger, "cost_current": cost["current"],
            "cost_candidate": cost["candidate"], "cost_change": change, "price_per_token": price}


def promote(current_sets, candidate_sets, *, rules=None, decision_log=None):
    """The gate over every labelled set (lists of :class:`LabelledSet`, one per set, in the same order).

    Parameters
    ----------
    current_sets, candidate_sets : list of LabelledSet
    rules : GateRules, optional
    decision_log : dict, optional
        :func:`decision_log_change`'s result, carried into the report.

    Returns
    -------
    Promotion
    """
    rules = rules or GateRules()
    if not current_sets:
        raise ConfigError("no labelled set to compare the pools on")
    if [s.name for s in current_sets] != [s.name for s in candidate_sets]:
        raise ConfigError("the two pools were scored on different sets")
    sets = [compare_set(a, b, rules=rules) for a, b in zip(current_sets, candidate_sets)]
    for s in sets:
        log.info("%s: accuracy %+.3f %s, downgrades %+.3f %s", s.name, s.accuracy_diff, s.accuracy_ci,
                 s.downgrade_diff, s.downgrade_ci)
    return Promotion(promoted=not any(s.refusals for s in sets), sets=sets, rules=rules, decision_log=decision_log)


def labelled_sets(router, *, eval_dir=None, conversations_dir=None, labelled=(), per_source=_config.EVAL_PER_SOURCE,
                  seed=_config.SEED, cache_dir=None):
    """Every labelled set given, routed by ``router``: one :class:`LabelledSet` per evaluation file
    (``eval/<stem>``), per conversations file (``conversations/<stem>``) and per labelled JSONL (its path).

    ``None`` (or empty) leaves a kind out; ``promote`` and the nightly gate call this with each pool in turn.
    """
    from pathlib import Path

    from ..analysis.conversations import read_conversations
    from ..analysis.generalisation import read_eval_dir, read_labelled
    from ..core.taxonomy import Taxonomy

    taxonomy = Taxonomy.from_metadata(router.metadata)
    sets = []
    if eval_dir is not None:
        frame = read_eval_dir(eval_dir, taxonomy, per_source=per_source, seed=seed)
        for stem, rows in frame.groupby("set", sort=False):
            sets.append(route_labelled(router, rows.reset_index(drop=True), name=f"eval/{stem}", cache_dir=cache_dir))
    if conversations_dir is not None:
        frame = read_conversations(conversations_dir, taxonomy)
        for stem, rows in frame.groupby("file", sort=False):
            sets.append(route_conversation_set(router, rows.reset_index(drop=True),
                                               name=f"conversations/{Path(stem).stem}", cache_dir=cache_dir))
    for path in labelled or []:
        sets.append(route_labelled(router, read_labelled(path, taxonomy), name=str(path), cache_dir=cache_dir))
    return sets
