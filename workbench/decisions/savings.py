"""What routing saves on a traffic mix: always-strong, always-medium, the label source, the router.

Prices are per million tokens per tier; every message is assumed to cost
``tokens_per_message`` tokens whatever its tier (a parameter, since real
answers differ in length). The router's behaviour is its out-of-sample
(leave-one-out) tier confusion, reweighted per *true* tier to the traffic
mix: the pool's own mix by default, or a user's (e.g. cheap 85% / medium
6% / strong 9%). Abstained messages go to the label source: they are routed
correctly and pay one categorizer call. The label source itself routes
every message correctly and pays a categorizer call for each.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .. import config as _config
from ..errors import ConfigError

__all__ = ["Pricing", "normalize_mix", "pool_mix", "routing_cost", "savings_table", "savings_curve"]


@dataclass(frozen=True)
class Pricing:
    """What a message costs: prices per million tokens per tier, tokens per message and per categorizer call."""

    prices: dict = field(default_factory=lambda: dict(_config.PRICES))
    tokens_per_message: int = _config.TOKENS_PER_MESSAGE
    categorizer_tokens: int = _config.CATEGORIZER_TOKENS

    def __post_init__(self):
        if not isinstance(self.prices, dict) or not all(
                isinstance(v, (int, float)) and v >= 0 for v in self.prices.values()):
            raise ConfigError(f"prices must map tier -> price >= 0; got {self.prices!r}")
        for name in ("tokens_per_message", "categorizer_tokens"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < (1 if name == "tokens_per_message" else 0):
                raise ConfigError(f"{name} must be an integer >= {1 if name == 'tokens_per_message' else 0}; "
                                  f"got {value!r}")


def normalize_mix(mix, tiers):
    """A traffic mix (tier -> share, any positive scale) as an array over ``tiers`` summing to 1."""
    unknown = set(mix) - set(tiers)
    if unknown:
        raise ConfigError(f"traffic_mix names unknown tier(s) {sorted(unknown)} (tiers: {list(tiers)})")
    w = np.array([float(mix.get(t, 0.0)) for t in tiers])
    if (w < 0).any() or not w.sum() > 0:
        raise ConfigError(f"traffic_mix must have non-negative shares with a positive sum; got {dict(mix)}")
    return w / w.sum()


def pool_mix(true_rank, tiers):
    """The pool's own tier mix: tier -> share of messages."""
    counts = np.bincount(np.asarray(true_rank), minlength=len(tiers))
    return {t: float(c / counts.sum()) for t, c in zip(tiers, counts)}


def _price_array(prices, tiers):
    missing = [t for t in tiers if t not in prices]
    if missing:
        raise ConfigError(f"prices need every tier {list(tiers)}; missing {missing}")
    p = np.array([float(prices[t]) for t in tiers])
    if (p < 0).any():
        raise ConfigError(f"prices must be >= 0; got {dict(prices)}")
    return p


def routing_cost(true_rank, routed_rank, abstain, tiers, prices, *, traffic_mix=None,
                 tokens_per_message=_config.TOKENS_PER_MESSAGE, categorizer_tokens=_config.CATEGORIZER_TOKENS):
    """Expected cost per 1,000 messages of one router operating point on a traffic mix.

    Parameters
    ----------
    true_rank, routed_rank : int arrays (n,)
        Out-of-sample decisions on the pool (tier ranks).
    abstain : bool array (n,) or None
    tiers : sequence of str, cheapest first
    prices : dict tier -> price per million tokens
    traffic_mix : dict tier -> share, optional
        Default: the pool's own mix.
    tokens_per_message : int
    categorizer_tokens : int
        Tokens per categorizer call, priced at the cheapest tier.

    Returns
    -------
    dict: ``cost`` (per 1,000 messages), ``perfect_cost`` (same mix routed
    perfectly, no categorizer), ``upgrade_cost`` (paid extra for upgrades),
    ``downgrade_saving`` (not paid because of downgrades: a quality loss,
    not a saving), ``categorizer_cost``, ``abstain_rate``, ``downgrade_rate``,
    ``upgrade_rate``, ``tier_accuracy``, all weighted by the mix.
    """
    t, r = np.asarray(true_rank), np.asarray(routed_rank)
    a = np.zeros(len(t), bool) if abstain is None else np.asarray(abstain, bool)
    n_t = len(tiers)
    price = _price_array(prices, tiers) * tokens_per_message / 1e6 * 1000  # per 1,000 messages
    cat = price[0] * categorizer_tokens / tokens_per_message
    mix = normalize_mix(traffic_mix or pool_mix(t, tiers), tiers)
    r_eff = np.where(a, t, r)
    out = dict.fromkeys(("cost", "upgrade_cost", "downgrade_saving", "abstain_rate", "downgrade_rate",
                         "upgrade_rate", "tier_accuracy"), 0.0)
    for i in range(n_t):
        rows = t == i
        if not rows.any():
            if mix[i] > 0:
                raise ConfigError(f"traffic_mix gives tier {tiers[i]!r} a share but the pool has no message of it")
            continue
        ri, ai = r_eff[rows], a[rows]
        share = mix[i]
        routed_price = price[ri]
        out["cost"] += share * (routed_price.mean() + cat * ai.mean())
        out["upgrade_cost"] += share * np.where(ri > i, routed_price - price[i], 0.0).mean()
        out["downgrade_saving"] += share * np.where(ri < i, price[i] - routed_price, 0.0).mean()
        out["abstain_rate"] += share * ai.mean()
        out["downgrade_rate"] += share * (ri < i).mean()
        out["upgrade_rate"] += share * (ri > i).mean()
        out["tier_accuracy"] += share * (ri == i).mean()
    out["perfect_cost"] = float(mix @ price)
    out["categorizer_cost"] = float(cat * out["abstain_rate"])
    return {k: float(v) for k, v in out.items()}


def savings_table(true_rank, points, tiers, prices, *, traffic_mix=None, tokens_per_message=_config.TOKENS_PER_MESSAGE,
                  categorizer_tokens=_config.CATEGORIZER_TOKENS):
    """Cost per 1,000 messages of the fixed strategies and of each router operating point.

    Parameters
    ----------
    true_rank : int array (n,)
    points : dict name -> (routed_rank, abstain or None)
        Router operating points (out-of-sample decisions on the pool).
    tiers, prices, traffic_mix, tokens_per_message, categorizer_tokens
        As in :func:`routing_cost`.

    Returns
    -------
    pandas.DataFrame, one row per strategy: ``strategy, cost_per_1k,
    saved_vs_strong`` (share of the always-strong cost saved),
    ``misrouting_cost`` (upgrades paid on top of perfect routing),
    ``downgrade_saving``, ``categorizer_cost``, ``tier_accuracy``,
    ``downgrade_rate``, ``upgrade_rate``, ``abstain_rate``.
    """
    import pandas as pd

    t = np.asarray(true_rank)
    kw = dict(traffic_mix=traffic_mix, tokens_per_message=tokens_per_message,
              categorizer_tokens=categorizer_tokens)
    strategies = {"always strong": (np.full_like(t, len(tiers) - 1), None),
                  "always medium": (np.full_like(t, min(1, len(tiers) - 1)), None),
                  "label source (LLM categorizer on every message)": (t, np.ones(len(t), bool))}
    strategies.update(points)
    rows = []
    for name, (routed, abstain) in strategies.items():
        c = routing_cost(t, routed, abstain, tiers, prices, **kw)
        rows.append({"strategy": name, "cost_per_1k": c["cost"], "misrouting_cost": c["upgrade_cost"],
                     "downgrade_saving": c["downgrade_saving"], "categorizer_cost": c["categorizer_cost"],
                     "tier_accuracy": c["tier_accuracy"], "downgrade_rate": c["downgrade_rate"],
                     "upgrade_rate": c["upgrade_rate"], "abstain_rate": c["abstain_rate"]})
    table = pd.DataFrame(rows)
    strong = float(table.loc[0, "cost_per_1k"])
    table.insert(2, "saved_vs_strong", 1.0 - table["cost_per_1k"] / strong if strong > 0 else np.nan)
    return table


def savings_curve(true_rank, routed_rank, scores, tiers, prices, *, thresholds=None, **kw):
    """Cost and saved share of one policy at a series of abstain thresholds.

    ``scores`` is the policy's abstain score per message (abstain when
    below the threshold); ``thresholds`` default to 21 quantiles of it.
    Other keywords as in :func:`routing_cost`.

    Returns
    -------
    pandas.DataFrame with ``threshold, abstain_rate, cost_per_1k,
    saved_vs_strong, tier_accuracy, downgrade_rate, upgrade_rate``.
    """
    import pandas as pd

    s = np.asarray(scores, np.float64)
    t = np.asarray(true_rank)
    if thresholds is None:
        thresholds = np.unique(np.concatenate([[0.0], np.quantile(s, np.linspace(0, 1, 21))]))
    strong = routing_cost(t, np.full_like(t, len(tiers) - 1), None, tiers, prices, **kw)["cost"]
    rows = []
    for thr in thresholds:
        c = routing_cost(t, routed_rank, s < thr, tiers, prices, **kw)
        rows.append({"threshold": float(thr), "abstain_rate": c["abstain_rate"], "cost_per_1k": c["cost"],
                     "saved_vs_strong": 1.0 - c["cost"] / strong if strong > 0 else np.nan,
                     "tier_accuracy": c["tier_accuracy"], "downgrade_rate": c["downgrade_rate"],
                     "upgrade_rate": c["upgrade_rate"]})
    return pd.DataFrame(rows)
