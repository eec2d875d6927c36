"""Routing the turns of a conversation: follow-ups such as "shorter please" or "and in French?" (numpy only).

A follow-up makes sense only after the turn it continues, and the taxonomy
gives it that task's category; alone, "also handle empty input" looks like
nothing in particular. A **context rule** says how turn ``i`` is routed
(user turns only, oldest first); "context rule" names this conversation side,
"decision policy" (:mod:`workbench.core.policy`) the tier decision of one message.

- ``alone``: the message by itself;
- ``previous``: the message read with its ``turns`` earlier user turns, embedded together;
- ``confident``: the message alone and with 1..``turns`` earlier turns, keeping the
  most confident reading (the pool's calibrated probability that its tier is
  right; the message alone on a tie);
- ``lift``: as ``confident``, but a reading with context may only raise a turn's
  tier, never lower it: a fresh question that happens to read more confidently
  with the turns before keeps at least its own tier, so context never adds a
  downgrade to what the message alone decides;
- ``sticky``: the message by itself, but never below the tier of the decisions
  of the previous ``turns`` turns, unless the message is clearly a fresh casual
  one (routed to ``release_category`` with at least ``release_confidence``),
  such as "thanks, that works!";
- ``inherit``: ``lift``, then a short turn (at most ``short_words`` words, see
  :func:`text_words`) that still routes below the previous turn's decision
  continues that task (its category and tier), unless it is released as above:
  "round up", "in F?", "shorter, as bullets";
- ``detector``: a turn that a learned follow-up detector calls a follow-up
  continues the task: it takes the highest tier among the final decisions of
  its ``turns`` earlier turns and its own reading with them (the task may lie
  a turn back, behind an aside or a "thanks"); every other turn is routed
  alone, so a fresh turn is not lifted by the task before it. The detector is
  the pool's own when it stores one (:class:`~workbench.core.follow_up.FollowUpDetector`,
  read from the turn's and the previous turn's vectors, fitted on labelled
  conversations at export); otherwise a small logistic model over the turn's
  decisions (:func:`follow_up_probability`, ``weights``).

``lift``, ``sticky`` and ``inherit`` only raise tiers over the message alone,
so they never add a downgrade; ``previous``, ``confident`` and ``detector`` may.
:meth:`~workbench.core.router.Router.route_conversation` applies the project's
default (:data:`workbench.config.CONTEXT_RULE`); :mod:`workbench.analysis.conversations`
compares them on folds of a labelled set.
"""
from __future__ import annotations

import math
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass, replace

import numpy as np

from .. import config as _config
from ..errors import ConfigError

__all__ = ["CONTEXT_RULES", "ContextRule", "context_texts", "with_previous", "more_confident", "lifted",
           "sticky_decisions", "continued", "text_words", "follow_up_features", "follow_up_probability",
           "decide_turns", "RecentVectors", "CONVERSATION_POLICIES", "ConversationPolicy"]

CONTEXT_RULES = ("alone", "previous", "confident", "lift", "sticky", "inherit", "detector")
#: Features of the follow-up detector, in the order of its weights (after the intercept).
FOLLOW_UP_FEATURES = ("log_words", "alone_confidence", "alone_similarity", "context_gain", "context_agrees",
                      "tier_drop", "alone_casual")


@dataclass(frozen=True)
class ContextRule:
    """How a conversation's turns are routed (see the module docstring for each ``name``).

    Parameters
    ----------
    name : str
        One of :data:`CONTEXT_RULES`.
    turns : int
        Earlier user turns read with a message (``previous``, ``confident``, ``lift``,
        ``inherit``, ``detector``), or the sticky window.
    release_category : str
        A turn routed here with ``release_confidence`` or more never inherits (a fresh casual turn).
    release_confidence : float
        In [0, 1]; compared with the turn's own ``confidence``.
    short_words : float
        ``inherit``: a turn of at most this many words (:func:`text_words`) continues the task.
    weights : tuple of float
        ``detector`` without the pool's detector: intercept then one weight per :data:`FOLLOW_UP_FEATURES`.
    threshold : float
        ``detector``: the pool's detector's follow-up probability from which a turn continues the task.
    hand_threshold : float
        The same for the hand-weighted detector (``weights``), used when the pool stores none.
    """

    name: str = _config.CONTEXT_RULE
    turns: int = _config.CONTEXT_TURNS
    release_category: str = _config.STICKY_RELEASE_CATEGORY
    release_confidence: float = _config.STICKY_RELEASE_CONFIDENCE
    short_words: float = _config.INHERIT_SHORT_WORDS
    weights: tuple = _config.FOLLOW_UP_WEIGHTS
    threshold: float = _config.FOLLOW_UP_THRESHOLD
    hand_threshold: float = _config.FOLLOW_UP_HAND_THRESHOLD

    def __post_init__(self):
        if self.name not in CONTEXT_RULES:
            raise ConfigError(f"context rule must be one of {CONTEXT_RULES}; got {self.name!r}")
        if not isinstance(self.turns, int) or self.turns < 1:
            raise ConfigError(f"turns must be an integer >= 1; got {self.turns!r}")
        for what in ("release_confidence", "threshold", "hand_threshold"):
            if not 0.0 <= float(getattr(self, what)) <= 1.0:
                raise ConfigError(f"{what} must be in [0, 1]; got {getattr(self, what)!r}")
        if not float(self.short_words) >= 0:
            raise ConfigError(f"short_words must be >= 0; got {self.short_words!r}")
        if len(self.weights) != len(FOLLOW_UP_FEATURES) + 1 or not all(map(math.isfinite, self.weights)):
            raise ConfigError(f"weights must be {len(FOLLOW_UP_FEATURES) + 1} finite numbers (intercept, "
                              f"{', '.join(FOLLOW_UP_FEATURES)}); got {self.weights!r}")

    @property
    def reads_context(self) -> bool:
        """Whether the rule embeds messages together with earlier turns."""
        return self.name not in ("alone", "sticky")


#: The names before "context rule" (kept for one release).
ConversationPolicy = ContextRule
CONVERSATION_POLICIES = CONTEXT_RULES


def context_texts(texts, turns, *, separator="\n"):
    """Per window ``k`` in 1..``turns``: each message preceded by its ``k`` earlier user turns (fewer at the start).

    Returns
    -------
    list of ``turns`` lists, each aligned with ``texts``.
    """
    texts = [str(t) for t in texts]
    return [[separator.join(texts[max(0, i - k):i + 1]) for i in range(len(texts))] for k in range(1, turns + 1)]


def with_previous(texts, *, separator="\n"):
    """Each message preceded by the previous user turn (the first message alone)."""
    return context_texts(texts, 1, separator=separator)[0]


def _rank(tiers):
    return {t: i for i, t in enumerate(tiers)}


def more_confident(alone, *readings):
    """Per turn, the most confident of the readings (the message alone on a tie, and always for the first turn)."""
    out = []
    for i, a in enumerate(alone):
        best = a
        for r in readings:
            if i > 0 and r[i].confidence > best.confidence:
                best = r[i]
        out.append(best)
    return out


def lifted(alone, *readings, tiers):
    """Per turn, the most confident reading with context that is more confident *and* routes to a higher tier.

    Otherwise the message alone (always for the first turn): no turn is ever
    routed below the tier its message alone gets.
    """
    rank = _rank(tiers)
    out = []
    for i, a in enumerate(alone):
        best = a
        for r in readings:
            p = r[i]
            if i > 0 and p.confidence > best.confidence and rank[p.tier] > rank[a.tier]:
                best = p
        out.append(best)
    return out


def sticky_decisions(decisions, tiers, policy):
    """Apply the sticky-tier rule to a conversation's own decisions (oldest first).

    Parameters
    ----------
    decisions : list of RouteDecision
        Each turn routed alone.
    tiers : sequence of str
        Tier names, cheapest first.
    policy : ContextRule

    Returns
    -------
    list of RouteDecision: a turn below the floor gets the category and tier of
    the recent decision that set it (the latest one on a tie); others are unchanged.
    """
    rank = _rank(tiers)
    out = []
    for i, d in enumerate(decisions):
        recent = out[max(0, i - policy.turns):i]
        if recent and not _released(d, policy):
            floor = max(reversed(recent), key=lambda p: rank[p.tier])  # latest among the highest
            if rank[floor.tier] > rank[d.tier]:
                d = _take_task(d, floor)
        out.append(d)
    return out


def _released(d, rule):
    return d.category == rule.release_category and d.confidence >= rule.release_confidence


def _take_task(d, task):
    return replace(d, category=task.category, tier=task.tier, vote_tier=task.vote_tier)


def continued(decisions, follows, tiers, rule):
    """Turns marked in ``follows`` continue the previous turn's final decision when it is higher (oldest first).

    A turn released as a clear casual one (``rule.release_*``) keeps its own decision.
    """
    rank = _rank(tiers)
    out = []
    for i, (d, follow) in enumerate(zip(decisions, follows)):
        if i > 0 and follow and not _released(d, rule) and rank[out[-1].tier] > rank[d.tier]:
            d = _take_task(d, out[-1])
        out.append(d)
    return out


_CJK = re.compile("[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]")
_WORD = re.compile(r"\w+")


def text_words(text) -> float:
    """Words in ``text``, comparable across scripts: runs of letters or digits, and two CJK characters a word."""
    cjk = len(_CJK.findall(text))
    return len(_WORD.findall(_CJK.sub(" ", text))) + cjk / 2


def follow_up_features(text, alone, best, previous, tiers, *, release_category=_config.STICKY_RELEASE_CATEGORY):
    """The detector's inputs for one turn (see :data:`FOLLOW_UP_FEATURES`).

    ``alone`` is the turn's own decision, ``best`` its most confident reading
    with context, ``previous`` the previous turn's final decision.
    """
    rank = _rank(tiers)
    return (math.log1p(text_words(text)), alone.confidence, alone.similarities[0] if alone.similarities else 0.0,
            best.confidence - alone.confidence, float(best.category == previous.category),
            float(rank[previous.tier] - rank[alone.tier]),
            float(alone.category == release_category) * alone.confidence)


def follow_up_probability(features, weights) -> float:
    """Logistic model: ``sigmoid(weights[0] + sum(weights[1:] * features))``."""
    z = weights[0] + sum(w * f for w, f in zip(weights[1:], features))
    return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, z))))


def decide_turns(rule, texts, route, tiers, *, encode=None, detector=None):
    """One decision per turn of one conversation under ``rule``.

    Parameters
    ----------
    rule : ContextRule
    texts : list of str
        User turns, oldest first.
    route : callable
        ``route(list of str) -> list of RouteDecision`` (e.g. ``Router.route_batch``), with every distinct
        text the rule reads: once, or with the pool's detector once for the turns, then once per follow-up whose
        reading with context could matter (see :func:`detected`).
    tiers : sequence of str
        Tier names, cheapest first.
    encode : callable, optional
        ``encode(list of str) -> vectors``; with ``detector``, the ``detector`` rule reads the turns' vectors.
    detector : FollowUpDetector, optional
        The pool's follow-up detector (``detector`` rule); None: the hand-weighted one of ``rule``.
    """
    if rule.name == "detector" and detector is not None and encode is not None:
        return _detected_by(detector, rule, texts, route, tiers, encode)
    windows = context_texts(texts, rule.turns) if rule.reads_context and len(texts) > 1 else []
    if rule.name == "previous" and windows:
        windows = windows[-1:]
    distinct = list(dict.fromkeys([*texts, *(t for w in windows for t in w[1:])]))
    decided = dict(zip(distinct, route(distinct)))
    alone = [decided[t] for t in texts]
    readings = [[decided[t] for t in w] for w in windows]
    if rule.name == "alone" or not (readings or rule.name == "sticky"):
        return alone
    if rule.name == "previous":
        return readings[0]
    if rule.name == "confident":
        return more_confident(alone, *readings)
    if rule.name == "sticky":
        return sticky_decisions(alone, tiers, rule)
    lift = lifted(alone, *readings, tiers=tiers)
    if rule.name == "lift":
        return lift
    if rule.name == "inherit":
        return continued(lift, [text_words(t) <= rule.short_words for t in texts], tiers, rule)
    return detected(rule, texts, alone, tiers, readings=readings)


def _detected_by(detector, rule, texts, route, tiers, encode):
    """The ``detector`` rule with the pool's detector. Only a follow-up is read with its earlier turns, and only
    when that reading could matter (its task is below the top tier): a fresh turn costs one text to embed (its
    own), a follow-up at most two (its own and its widest window)."""
    distinct = list(dict.fromkeys(texts))
    decided = dict(zip(distinct, route(distinct)))
    widest = context_texts(texts, rule.turns)[-1]
    return detected(rule, texts, [decided[t] for t in texts], tiers,
                    follows=detector.predict_proba(encode(list(texts)), texts) >= rule.threshold,
                    reading=lambda i: route([widest[i]])[0])


def detected(rule, texts, alone, tiers, *, follows=None, reading=None, readings=None):
    """The ``detector`` rule: a turn read as a follow-up takes the task, others stay alone.

    ``follows`` marks the follow-ups (the pool's detector, which learned reactions such as "thanks, ordering the
    second one" as fresh turns, so no release rule overrides it); None: the hand-weighted detector of ``rule``,
    which reads ``readings`` (per window, the turns read with context) and never flags a turn released as clearly
    casual (``rule.release_*``). A follow-up takes the highest tier among the
    final decisions of its ``rule.turns`` earlier turns (the latest on a tie) and its widest reading with context
    (``reading(i)``, default the last of ``readings``; asked only when the task is below the top tier, and taken
    only when strictly higher).
    """
    rank = _rank(tiers)
    reading = reading or (lambda i: readings[-1][i])
    if follows is None:  # the hand weights were fitted on the reading with one earlier turn
        best = more_confident(alone, readings[0])
    out = []
    for i, d in enumerate(alone):  # the hand-weighted detector reads the previous turn's *final* decision
        if i > 0 and (follows[i] if follows is not None else not _released(d, rule) and follow_up_probability(
                follow_up_features(texts[i], d, best[i], out[-1], tiers, release_category=rule.release_category),
                rule.weights) >= rule.hand_threshold):
            task = max(reversed(out[max(0, i - rule.turns):]), key=lambda p: rank[p.tier])
            wider = reading(i) if rank[task.tier] < len(tiers) - 1 else task
            d = wider if rank[wider.tier] > rank[task.tier] else _take_task(d, task)
        out.append(d)
    return out


class RecentVectors:
    """The vectors of the most recently embedded texts (a bounded LRU, thread-safe), in front of an embedder.

    A conversation is routed again at every turn with all its turns: the
    earlier turns, alone and with their context, were embedded the time
    before, so a new turn costs its own texts only.

    Parameters
    ----------
    embedder : Embedder
    size : int
        Texts remembered (the oldest is forgotten first).
    """

    def __init__(self, embedder, size=_config.CONTEXT_MEMORY):
        self.embedder = embedder
        self.size = size
        self._vectors = OrderedDict()
        self._lock = threading.Lock()

    def encode(self, texts):
        """``(len(texts), dim)`` vectors, as ``embedder.encode`` returns them; only unseen texts are embedded."""
        prepare = getattr(self.embedder, "prepare", str)
        keys = [prepare(t) for t in texts]
        if not keys:
            return np.zeros((0, self.embedder.dim), np.float32)
        with self._lock:
            known = {k: self._vectors[k] for k in keys if k in self._vectors}
        missing = [k for k in dict.fromkeys(keys) if k not in known]
        if missing:
            known.update(zip(missing, self.embedder.encode(missing)))
        with self._lock:
            for k in dict.fromkeys(keys):
                self._vectors[k] = known[k]
                self._vectors.move_to_end(k)
            while len(self._vectors) > self.size:
                self._vectors.popitem(last=False)
        return np.stack([known[k] for k in keys])
