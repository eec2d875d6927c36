"""Routing the turns of a conversation: follow-ups such as "shorter please" or "and in French?" (numpy only).

A follow-up makes sense only after the turn it continues, and the taxonomy
gives it that task's category; alone, "also handle empty input" looks like
nothing in particular. Four ways to route turn ``i`` (user turns only,
oldest first):

- ``alone``: the message by itself;
- ``previous``: the previous user turn and the message, embedded together;
- ``confident``: both readings, keeping the one whose decision is more
  confident (the pool's calibrated probability that its tier is right;
  the message alone on a tie). A fresh question reads confidently alone; a
  follow-up reads confidently only with the turn it continues. No parameter;
- ``lift``: as ``confident``, but the reading with the previous turn may only
  raise a turn's tier, never lower it. A follow-up is short and reads as
  little alone ("also handle empty input" looks casual), so the task it
  continues lifts it; a fresh question that happens to read more
  confidently with the previous turn keeps at least its own tier, so the
  context never adds a downgrade to what the message alone decides;
- ``sticky``: the message by itself, but never below the tier of the
  decisions of the previous ``turns`` turns: a turn that would drop below
  that floor continues the task that set it (its category and tier), unless
  the message is clearly a fresh casual one (routed to ``release_category``
  with at least ``release_confidence``), such as "thanks, that works!".
  Sticky rules only raise tiers, so they never add a downgrade.

:class:`~workbench.core.router.Router.route_conversation` applies the
project's default (:data:`workbench.config.CONVERSATION_POLICY`);
:mod:`workbench.analysis.conversations` compares them on a labelled set.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

from .. import config as _config
from ..errors import ConfigError

__all__ = ["CONVERSATION_POLICIES", "ConversationPolicy", "with_previous", "more_confident", "lifted",
           "sticky_decisions"]

CONVERSATION_POLICIES = ("alone", "previous", "confident", "lift", "sticky")


@dataclass(frozen=True)
class ConversationPolicy:
    """How a conversation's turns are routed.

    Parameters
    ----------
    name : {"alone", "previous", "confident", "lift", "sticky"}
    turns : int
        Sticky window: the floor is the highest tier decided in the previous ``turns`` turns.
    release_category : str
        A turn routed here with ``release_confidence`` or more escapes the floor (a fresh casual turn).
    release_confidence : float
        In [0, 1]; compared with the turn's own ``confidence``.
    """

    name: str = _config.CONVERSATION_POLICY
    turns: int = _config.STICKY_TURNS
    release_category: str = _config.STICKY_RELEASE_CATEGORY
    release_confidence: float = _config.STICKY_RELEASE_CONFIDENCE

    def __post_init__(self):
        if self.name not in CONVERSATION_POLICIES:
            raise ConfigError(f"conversation policy must be one of {CONVERSATION_POLICIES}; got {self.name!r}")
        if not isinstance(self.turns, int) or self.turns < 1:
            raise ConfigError(f"turns must be an integer >= 1; got {self.turns!r}")
        if not 0.0 <= float(self.release_confidence) <= 1.0:
            raise ConfigError(f"release_confidence must be in [0, 1]; got {self.release_confidence!r}")


def with_previous(texts, *, separator="\n"):
    """Each message preceded by the previous user turn (the first message alone)."""
    texts = [str(t) for t in texts]
    return [t if i == 0 else texts[i - 1] + separator + t for i, t in enumerate(texts)]


def more_confident(alone, previous):
    """Per turn, the more confident of the two readings (the message alone on a tie, and always for the first turn)."""
    return [a if i == 0 or a.confidence >= p.confidence else p for i, (a, p) in enumerate(zip(alone, previous))]


def lifted(alone, previous, tiers):
    """Per turn, the reading with the previous turn when it is more confident *and* routes to a higher tier.

    Otherwise the message alone (always for the first turn): no turn is ever
    routed below the tier its message alone gets.
    """
    rank = {t: i for i, t in enumerate(tiers)}
    return [p if i > 0 and p.confidence > a.confidence and rank[p.tier] > rank[a.tier] else a
            for i, (a, p) in enumerate(zip(alone, previous))]


def sticky_decisions(decisions, tiers, policy):
    """Apply the sticky-tier rule to a conversation's own decisions (oldest first).

    Parameters
    ----------
    decisions : list of RouteDecision
        Each turn routed alone.
    tiers : sequence of str
        Tier names, cheapest first.
    policy : ConversationPolicy

    Returns
    -------
    list of RouteDecision: a turn below the floor gets the category and tier of
    the recent decision that set it (the latest one on a tie); others are unchanged.
    """
    rank = {t: i for i, t in enumerate(tiers)}
    out = []
    for i, d in enumerate(decisions):
        recent = out[max(0, i - policy.turns):i]
        released = d.category == policy.release_category and d.confidence >= policy.release_confidence
        if recent and not released:
            floor = max(reversed(recent), key=lambda p: rank[p.tier])  # latest among the highest
            if rank[floor.tier] > rank[d.tier]:
                d = replace(d, category=floor.category, tier=floor.tier, vote_tier=floor.vote_tier)
        out.append(d)
    return out
