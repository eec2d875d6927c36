"""Coverage of logged traffic by the pool: which messages lie farther from every pool message than the pool's own do.

A pool message's nearest *other* pool message (leave-one-out) sets the
scale of "close" for this pool; a logged message whose nearest pool
message is less similar than the pool's ``quantile`` (5th percentile) of
those similarities is *uncovered*. :func:`coverage_of` measures that;
:func:`uncovered_clusters` groups the uncovered messages with scikit-learn's
HDBSCAN (deterministic: it has no random step, and the rows it sees are a
seeded sample when there are more than ``max_points``) and describes each
group by its size, languages, routed tiers and example messages.

Vectors are L2-normalised rows of one backend for pool and traffic alike:
:func:`coverage_space`, the space of the near-duplicate threshold
(``config.DUP_BACKEND``), so the traffic section's "uncovered" is the review
queue's, and it stays comparable when the routing backend changes (and the
search over a million logged messages stays cheap: 384 dimensions, not the
ensemble's 896; ``benchmarks/search.py``). The searches go through :func:`workbench.core.search.self_top_k` and
:func:`workbench.dataset.duplicates.max_similarity`, so a faster search there
speeds this up too.
"""
from __future__ import annotations

from collections import Counter
from typing import NamedTuple

import numpy as np

from .. import config as _config
from ..core.search import self_top_k
from ..dataset.duplicates import max_similarity
from ..errors import ConfigError, require

__all__ = ["Coverage", "coverage_space", "pool_neighbour_similarities", "coverage_of", "uncovered_clusters", "traffic_map_coords",
           "map_rows", "UNCOVERED_QUANTILE"]

#: Logged messages less similar to the pool than this quantile of the pool's own leave-one-out similarities are
#: "uncovered" (issue 19: the pool's 5th percentile).
UNCOVERED_QUANTILE = _config.COVERAGE_LEVEL  # the same share the router's confidence cap scales down


def coverage_space():
    """The embedder coverage is measured with: ``config.DUP_BACKEND`` (see the module docstring)."""
    from ..core.embed import get_embedder

    return get_embedder(_config.DUP_BACKEND)


class Coverage(NamedTuple):
    """What :func:`coverage_of` returns."""

    similarity: np.ndarray       # (n_traffic,) each logged message's similarity to its nearest pool message
    uncovered: np.ndarray        # (n_traffic,) bool: similarity below ``threshold``
    threshold: float             # the pool's ``quantile`` of its own leave-one-out similarities
    share: float                 # uncovered.mean() (nan for no traffic)
    pool_similarity: np.ndarray  # (n_pool,) each pool message's similarity to its nearest other pool message


def pool_neighbour_similarities(pool_vectors):
    """Each pool row's cosine similarity to its nearest *other* pool row (leave-one-out).

    The two nearest rows are searched and the row itself is skipped, so an
    exact duplicate elsewhere in the pool still counts (similarity 1).
    """
    x = np.asarray(pool_vectors, np.float32)
    if len(x) < 2:
        raise ConfigError(f"the pool needs at least 2 rows for leave-one-out similarities; got {len(x)}")
    return self_top_k(x, 1)[1][:, 0]


def coverage_of(pool_vectors, traffic_vectors, *, quantile=UNCOVERED_QUANTILE, ann=None):
    """Nearest-pool similarity of each logged message and whether it is uncovered.

    Parameters
    ----------
    pool_vectors : array (n_pool, dim), L2-normalised rows
    traffic_vectors : array (n_traffic, dim), same backend
    quantile : float in (0, 1)
        Of the pool's leave-one-out similarities; below it a message is uncovered.
    ann : bool, optional
        Force (True) or forbid (False) the approximate search; default by pool size.

    Returns
    -------
    Coverage
    """
    if not 0 < quantile < 1:
        raise ConfigError(f"quantile must be in (0, 1); got {quantile!r}")
    pool = np.asarray(pool_vectors, np.float32)
    traffic = np.asarray(traffic_vectors, np.float32).reshape(-1, pool.shape[1] if pool.ndim == 2 else 0)
    pool_sim = pool_neighbour_similarities(pool)
    threshold = float(np.quantile(pool_sim, quantile))
    sim = max_similarity(traffic, pool, ann=ann) if len(traffic) else np.zeros(0, np.float32)
    uncovered = sim < threshold
    share = float(uncovered.mean()) if len(uncovered) else float("nan")
    return Coverage(sim.astype(np.float32), uncovered, threshold, share, pool_sim)


def _langid(text):
    return require("langid", purpose="language detection").classify(text)[0]


def _counts(values):
    """``"en 5, de 2"``: the values by count, most frequent first (ties by name)."""
    counts = Counter(str(v) for v in values if v is not None and v == v)
    return ", ".join(f"{k} {n}" for k, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def _examples(vectors, rows, texts, n):
    """The ``n`` members nearest their cluster's mean direction (distinct texts), most typical first."""
    centre = vectors[rows].mean(axis=0)
    order = rows[np.argsort(-(vectors[rows] @ centre), kind="stable")]
    seen, out = set(), []
    for r in order:
        if texts[r] not in seen:
            seen.add(texts[r])
            out.append(texts[r])
        if len(out) == n:
            break
    return out


def uncovered_clusters(vectors, frame, *, min_cluster_size=5, examples=5, max_points=20_000, seed=_config.SEED,
                       language=None):
    """Clusters of (uncovered) logged messages with HDBSCAN, each described for a reader.

    Parameters
    ----------
    vectors : array (n, dim), L2-normalised rows of the messages to cluster (e.g. the uncovered ones)
    frame : pandas.DataFrame, one row per vector, with ``text`` and optionally ``tier`` (routed) and ``lang``
    min_cluster_size : int
        HDBSCAN's smallest cluster.
    examples : int
        Example messages per cluster (the most typical ones).
    max_points : int
        Above this many rows a seeded sample of ``max_points`` is clustered; the other rows get label -1.
    seed : int
    language : callable, optional
        ``text -> language code``, used when ``frame`` has no ``lang`` column (default: langid).

    Returns
    -------
    labels : int array (n,), cluster per row, -1 for noise (or not sampled)
    clusters : pandas.DataFrame, one row per cluster, largest first: ``cluster, size, languages, tiers, examples``
    """
    import pandas as pd

    if min_cluster_size < 2:
        raise ConfigError(f"min_cluster_size must be >= 2; got {min_cluster_size}")
    x = np.asarray(vectors, np.float32)
    if len(x) != len(frame):
        raise ConfigError(f"vectors and frame must have the same rows; got {len(x)} and {len(frame)}")
    labels = np.full(len(x), -1, np.int64)
    columns = ["cluster", "size", "languages", "tiers", "examples"]
    if len(x) < min_cluster_size:
        return labels, pd.DataFrame(columns=columns)
    seen = np.arange(len(x))
    if len(x) > max_points:  # HDBSCAN's cost grows faster than linearly: cluster a seeded sample
        seen = np.sort(np.random.default_rng(seed).choice(len(x), max_points, replace=False))
    cluster = require("sklearn.cluster", purpose="clusters of uncovered traffic")
    # euclidean distance on unit rows orders pairs as cosine does
    labels[seen] = cluster.HDBSCAN(min_cluster_size=min_cluster_size, copy=True).fit_predict(x[seen])
    texts = frame["text"].astype(str).to_numpy()
    langs = frame["lang"].to_numpy() if "lang" in frame else None
    detect = language or _langid
    rows_out = []
    for c in sorted(set(labels[labels >= 0].tolist())):
        rows = np.flatnonzero(labels == c)
        lang = langs[rows] if langs is not None else [detect(texts[r]) for r in rows]
        tiers = frame["tier"].to_numpy()[rows] if "tier" in frame else []
        rows_out.append({"cluster": c, "size": len(rows), "languages": _counts(lang), "tiers": _counts(tiers),
                         "examples": _examples(x, rows, texts, examples)})
    out = pd.DataFrame(rows_out, columns=columns)
    return labels, out.sort_values(["size", "cluster"], ascending=[False, True], kind="stable").reset_index(drop=True)


def traffic_map_coords(pool_vectors, traffic_vectors, *, n_neighbors=_config.UMAP_NEIGHBORS,
                       min_dist=_config.UMAP_MIN_DIST, random_state=_config.SEED):
    """The pool's 2-D map and logged messages placed on it by the *same* UMAP (``transform``, not a refit).

    The pool's layout is the one :func:`workbench.analysis.projection.project_2d` draws with the same parameters
    (same seed, same fit), so the traffic lands on the pool map the other pages show.

    Returns
    -------
    pool_coords, traffic_coords : float32 arrays (n_pool, 2), (n_traffic, 2)
    """
    pool = np.asarray(pool_vectors, np.float32)
    traffic = np.asarray(traffic_vectors, np.float32).reshape(-1, pool.shape[1])
    if len(pool) < 4:
        raise ConfigError(f"the pool map needs at least 4 pool rows; got {len(pool)}")
    umap = require("umap", purpose="the traffic map")
    reducer = umap.UMAP(n_components=2, n_jobs=1, n_neighbors=int(min(n_neighbors, len(pool) - 1)),
                        min_dist=float(min_dist), metric="cosine", random_state=int(random_state))
    pool_coords = reducer.fit_transform(pool).astype(np.float32)
    traffic_coords = reducer.transform(traffic).astype(np.float32) if len(traffic) else np.zeros((0, 2), np.float32)
    return pool_coords, traffic_coords


def map_rows(uncovered, n, *, seed=_config.SEED):
    """Rows of logged messages to draw on a map of at most ``n`` of them: every uncovered one (up to ``n``), then a
    seeded sample of the covered ones; sorted."""
    uncovered = np.asarray(uncovered, bool)
    if n < 0:
        raise ConfigError(f"n must be >= 0; got {n}")
    rng = np.random.default_rng(seed)
    hit, rest = np.flatnonzero(uncovered), np.flatnonzero(~uncovered)
    hit = hit if len(hit) <= n else rng.choice(hit, n, replace=False)
    rest = rest if len(rest) <= n - len(hit) else rng.choice(rest, n - len(hit), replace=False)
    return np.sort(np.concatenate([hit, rest]).astype(np.int64))
