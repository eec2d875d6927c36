"""Near-duplicates: in embedding space (pairs, groups, clusters) and in wording (shared opening frames)."""
from __future__ import annotations

import re
import unicodedata

import numpy as np

from .. import config as _config
from ..core.knn import top_k
from ..core.search import nearest_neighbors
from ..errors import require

__all__ = ["near_duplicate_pairs", "duplicate_groups", "diversity_summary", "count_clusters", "opening_frame",
           "shared_openings", "max_similarity", "first_of_near_duplicates"]

_NO_SPACES = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\u0e00-\u0e7f]")  # kana, CJK ideographs, Thai


def opening_frame(text, *, words=3, chars=5):
    """The opening of a message used to catch template-like frames.

    The first ``words`` words, case-folded, punctuation dropped; for text that
    starts in a script written without spaces (Chinese, Japanese, Thai), the
    first ``chars`` word characters instead.
    """
    tokens = re.findall(r"\w+", unicodedata.normalize("NFKC", text).casefold())
    if not tokens:
        return text.strip()[:chars]
    if _NO_SPACES.match(tokens[0]):
        return "".join(tokens)[:chars]
    return " ".join(tokens[:words])


def shared_openings(texts, **kw):
    """Opening frames that more than one text shares: ``{frame: [indices]}``."""
    seen = {}
    for i, t in enumerate(texts):
        seen.setdefault(opening_frame(t, **kw), []).append(i)
    return {f: idx for f, idx in seen.items() if len(idx) > 1}


def near_duplicate_pairs(x, threshold=_config.DUP_THRESHOLD, *, block_rows=None):
    """All pairs ``(i, j, sim)`` with ``i < j`` and cosine similarity >= ``threshold``.

    Computed in row blocks so large pools fit in memory.
    """
    x = np.asarray(x, np.float32)
    n = len(x)
    block_rows = block_rows or max(1, (16 << 20) // max(n, 1))
    ii, jj, ss = [], [], []
    for s in range(0, n, block_rows):
        S = x[s:s + block_rows] @ x.T
        r, c = np.nonzero(S >= threshold)
        keep = c > r + s
        ii.append(r[keep] + s)
        jj.append(c[keep])
        ss.append(S[r[keep], c[keep]])
    if not ii:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32)
    return np.concatenate(ii), np.concatenate(jj), np.concatenate(ss)


def duplicate_groups(x, threshold=_config.DUP_THRESHOLD):
    """Group label per row: connected components of the near-duplicate graph.

    Rows without a near-duplicate form groups of one.
    """
    sparse = require("scipy.sparse", purpose="near-duplicate groups")
    from scipy.sparse.csgraph import connected_components

    n = len(x)
    i, j, _ = near_duplicate_pairs(x, threshold)
    graph = sparse.coo_matrix((np.ones(len(i), np.int8), (i, j)), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    return labels


def count_clusters(x, threshold=_config.CLUSTER_THRESHOLD):
    """Number of distinct semantic clusters in a set of vectors.

    Average-linkage agglomerative clustering, cut where the mean cosine
    similarity between two clusters falls below ``threshold``. Average
    linkage does not chain the way connected components do, so the count
    reflects how much of the space a set of messages really covers
    (template-made sets collapse into far fewer clusters).
    """
    hierarchy = require("scipy.cluster.hierarchy", purpose="cluster counts")

    x = np.asarray(x, np.float64)
    if len(x) < 2:
        return len(x)
    z = hierarchy.linkage(x, method="average", metric="cosine")
    return int(hierarchy.fcluster(z, t=1.0 - threshold, criterion="distance").max())


def diversity_summary(x, threshold=_config.DUP_THRESHOLD, cluster_threshold=_config.CLUSTER_THRESHOLD):
    """Headline diversity figures of a set of vectors.

    Returns
    -------
    dict with ``n``, ``near_duplicate_share`` (rows with a neighbour at
    >= threshold), ``mean_nn_similarity``, ``groups`` (near-duplicate groups
    of size > 1), ``largest_group`` and ``clusters`` (components at
    ``cluster_threshold``).
    """
    x = np.asarray(x, np.float32)
    n = len(x)
    if n < 2:
        return {"n": n, "near_duplicate_share": 0.0, "mean_nn_similarity": float("nan"),
                "groups": 0, "largest_group": n, "clusters": n}
    _, sim = top_k(x, x, 1, exclude=lambda rows: rows[:, None] == np.arange(n)[None, :])
    labels = duplicate_groups(x, threshold)
    sizes = np.bincount(labels)
    return {
        "n": int(n),
        "near_duplicate_share": float((sim[:, 0] >= threshold).mean()),
        "mean_nn_similarity": float(sim[:, 0].mean()),
        "groups": int((sizes > 1).sum()),
        "largest_group": int(sizes.max()),
        "clusters": count_clusters(x, cluster_threshold),
    }


def _uses_ann(n, ann):
    return _config.ANN_THRESHOLD <= n if ann is None else bool(ann)


def max_similarity(queries, pool, *, ann=None):
    """Each query's highest cosine similarity to a pool row.

    Exact blocked search, or HNSW when :func:`workbench.core.search.choose_search`
    estimates it cheaper (``ann`` forces either); for the neighbours
    themselves and the recall of an approximate search, use
    :func:`workbench.core.search.nearest_neighbors`.
    """
    queries, pool = np.asarray(queries, np.float32), np.asarray(pool, np.float32)
    if not len(pool):
        return np.full(len(queries), -np.inf, np.float32)
    return nearest_neighbors(queries, pool, 1, ann=ann).sim[:, 0]


def first_of_near_duplicates(x, threshold=_config.DUP_THRESHOLD, *, ann=None, neighbors=16):
    """Keep mask: a row is kept unless an earlier *kept* row is a near-duplicate of it (cosine >= ``threshold``).

    Exact for a small set; from ``ANN_THRESHOLD`` rows each row looks only
    at its ``neighbors`` approximate nearest rows.
    """
    x = np.asarray(x, np.float32)
    n = len(x)
    keep = np.ones(n, bool)
    if not _uses_ann(n, ann):
        kept = []
        for i in range(n):
            if kept and float((x[kept] @ x[i]).max()) >= threshold:
                keep[i] = False
            else:
                kept.append(i)
        return keep
    from ..core.ann import HNSWIndex

    idx, sim = HNSWIndex.build(x).search(x, neighbors + 1)
    earlier = (idx >= 0) & (idx < np.arange(n)[:, None]) & (sim >= threshold)
    for i in np.flatnonzero(earlier.any(axis=1)):  # in row order: a row's fate depends on earlier ones
        keep[i] = not keep[idx[i][earlier[i]]].any()
    return keep
