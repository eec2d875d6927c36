"""k-nearest-neighbour voting over cosine similarity (numpy only).

One predict path: :func:`predict` (top-k, then vote, then decide) serves the
production router, leave-one-out, the sweep, the baselines and the curves,
so what is evaluated is what is deployed. :func:`center` is the one
mean-centering helper.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from .. import config as _config
from ..errors import ConfigError
from .search import exact_top_k

__all__ = ["VOTE_RULES", "KNNConfig", "Prediction", "check_params", "center", "top_k", "vote", "decide",
           "predict_from_neighbors", "predict"]

VOTE_RULES = ("majority", "distance", "softmax")


def check_params(k, vote_rule, temperature):
    """Validate k-NN parameters; messages name the parameter, the rule and the value."""
    if not isinstance(k, (int, np.integer)) or k < 1:
        raise ConfigError(f"k must be an integer >= 1; got {k!r}")
    if vote_rule not in VOTE_RULES:
        raise ConfigError(f"vote must be one of {VOTE_RULES}; got {vote_rule!r}")
    if not temperature > 0:
        raise ConfigError(f"temperature must be > 0; got {temperature!r}")


@dataclass(frozen=True)
class KNNConfig:
    """k-NN voting parameters: what a pool.npz records for its router.

    Parameters
    ----------
    k : int
        Neighbours that vote.
    vote : {"majority", "distance", "softmax"}
    temperature : float
        Softmax-vote temperature.
    center : bool
        Mean-centre (and re-normalise) the vectors before comparing them.
    """

    k: int = _config.K
    vote: str = _config.VOTE
    temperature: float = _config.TEMPERATURE
    center: bool = _config.CENTER

    def __post_init__(self):
        check_params(self.k, self.vote, self.temperature)

    def to_dict(self):
        return asdict(self)

    @classmethod
    def from_dict(cls, d):
        """From pool.npz metadata (or any mapping with ``k``, ``vote``, ``temperature``, ``center``)."""
        return cls(int(d["k"]), str(d["vote"]), float(d["temperature"]), bool(d["center"]))


@dataclass
class Prediction:
    """k-NN predictions, one row per query."""

    pred: np.ndarray         # winning category index
    confidence: np.ndarray   # vote share of the winner
    margin: np.ndarray       # winner's share minus the runner-up's
    shares: np.ndarray       # (n, n_categories) vote shares
    neighbors: np.ndarray    # (n, k) pool row indices, most similar first
    similarities: np.ndarray  # (n, k) cosine similarities (-inf where masked)


def center(x, mean=None):
    """Subtract ``mean`` (default: the rows' own mean) and re-normalise rows to unit length.

    E5 similarities sit in a narrow band (about 0.7-0.95); removing the
    common direction spreads them out, which matters for weighted votes.
    """
    x = np.asarray(x, np.float32)
    x = x - (x.mean(axis=0) if mean is None else np.asarray(mean, np.float32))
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def top_k(queries, pool, k, *, exclude=None, block_rows=None):
    """Indices and cosine similarities of the ``k`` most similar pool rows.

    Parameters
    ----------
    queries, pool : float32 arrays of L2-normalised rows
    k : int
    exclude : callable, optional
        ``exclude(rows) -> bool array (len(rows), n_pool)`` of pairs to mask
        (leave-one-out passes the diagonal, or whole duplicate groups).
    block_rows : int, optional
        Query rows per block; default keeps a block's similarity matrix near 64 MB.

    Returns
    -------
    idx, sim : arrays of shape (n_queries, k), most similar first, ties to the
        lower pool index (:func:`workbench.core.search.block_top_k`).
    """
    return exact_top_k(queries, pool, k, exclude=exclude, block_rows=block_rows)


def vote(neighbor_labels, neighbor_sims, n_classes, *, rule="majority", temperature=0.05):
    """Per-class vote shares from the neighbours' labels.

    ``majority`` counts; ``distance`` weights by 1 / cosine distance (as
    scikit-learn's ``weights="distance"`` with the cosine metric);
    ``softmax`` weights by ``exp(sim / temperature)``. Neighbours masked out
    (similarity ``-inf``) get no vote.

    Returns
    -------
    float array (n, n_classes), rows summing to 1.
    """
    labels = np.asarray(neighbor_labels)
    sims = np.asarray(neighbor_sims, np.float64)
    valid = np.isfinite(sims)
    if rule == "majority":
        w = valid.astype(np.float64)
    elif rule == "distance":
        d = np.clip(1.0 - sims, 0.0, None)
        with np.errstate(divide="ignore"):
            w = np.where(valid, 1.0 / d, 0.0)
        exact = valid & (d == 0)
        # like scikit-learn: an exact match outvotes everything else
        has_exact = exact.any(axis=1)
        w[has_exact] = exact[has_exact].astype(np.float64)
    elif rule == "softmax":
        z = np.where(valid, sims / temperature, -np.inf)
        z = z - z.max(axis=1, keepdims=True)
        w = np.where(valid, np.exp(z), 0.0)
    else:
        raise ConfigError(f"vote must be one of {VOTE_RULES}; got {rule!r}")
    scores = np.zeros((len(labels), n_classes))
    np.add.at(scores, (np.repeat(np.arange(len(labels)), labels.shape[1]), labels.ravel()), w.ravel())
    total = scores.sum(axis=1, keepdims=True)
    return scores / np.where(total > 0, total, 1.0)


def decide(shares, class_tier_rank):
    """Winning class per row, with ties broken toward the stronger tier.

    Returns
    -------
    pred : int array
        Winning class index (ties among classes of one tier: lower index).
    confidence : float array
        Vote share of the winner.
    margin : float array
        Winner's share minus the runner-up's.
    """
    shares = np.asarray(shares)
    n_classes = shares.shape[1]
    rank = np.asarray(class_tier_rank)
    best = shares.max(axis=1, keepdims=True)
    tied = shares >= best - 1e-9
    key = np.where(tied, rank[None, :] * n_classes + (n_classes - 1 - np.arange(n_classes))[None, :], -1)
    pred = key.argmax(axis=1)
    srt = np.sort(shares, axis=1)
    conf = shares[np.arange(len(pred)), pred]
    margin = srt[:, -1] - (srt[:, -2] if n_classes > 1 else 0.0)
    return pred, conf, margin


def predict_from_neighbors(idx, sim, labels, config, class_tier_rank, *, n_classes=None):
    """Vote and decide from precomputed neighbours (the first ``config.k`` columns are used).

    Parameters
    ----------
    idx, sim : (n, >= k) neighbour indices and similarities, most similar first
    labels : (n_pool,) category index per pool row
    config : KNNConfig
    class_tier_rank : (n_categories,) tier rank per category
    n_classes : int, optional
        Default ``len(class_tier_rank)``.

    Returns
    -------
    Prediction
    """
    k = config.k
    idx, sim = np.asarray(idx)[:, :k], np.asarray(sim)[:, :k]
    n_classes = n_classes or len(class_tier_rank)
    shares = vote(np.asarray(labels)[idx], sim, n_classes, rule=config.vote, temperature=config.temperature)
    pred, conf, margin = decide(shares, class_tier_rank)
    return Prediction(pred, conf, margin, shares, idx, sim)


def predict(queries, pool, labels, config, class_tier_rank, *, exclude=None):
    """k-NN prediction of every query against a pool: top-k, vote, decide.

    Vectors must already be prepared the same way (centred with the pool's
    mean when ``config.center``; see :func:`center`).

    Parameters
    ----------
    queries : (n, d) float32, L2-normalised rows
    pool : (m, d) float32, L2-normalised rows
    labels : (m,) category index per pool row
    config : KNNConfig
    class_tier_rank : (n_categories,) tier rank per category (ties go to the stronger tier)
    exclude : callable, optional
        Pairs to mask, as in :func:`top_k` (leave-one-out passes the diagonal).

    Returns
    -------
    Prediction
    """
    idx, sim = top_k(queries, pool, config.k, exclude=exclude)
    return predict_from_neighbors(idx, sim, labels, config, class_tier_rank)
