"""Near-duplicates in embedding space: pairs, groups and diversity figures."""
from __future__ import annotations

import numpy as np

__all__ = ["near_duplicate_pairs", "duplicate_groups", "diversity_summary", "count_clusters"]


def near_duplicate_pairs(x, threshold=0.95, *, block_rows=None):
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


def duplicate_groups(x, threshold=0.95):
    """Group label per row: connected components of the near-duplicate graph.

    Rows without a near-duplicate form groups of one.
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    n = len(x)
    i, j, _ = near_duplicate_pairs(x, threshold)
    graph = coo_matrix((np.ones(len(i), np.int8), (i, j)), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    return labels


def count_clusters(x, threshold=0.9):
    """Number of distinct semantic clusters: connected components at ``threshold``.

    A single-linkage count, used to compare how much of the space a set of
    messages really covers (template sets collapse into few components).
    """
    return int(len(np.unique(duplicate_groups(x, threshold))))


def diversity_summary(x, threshold=0.95, cluster_threshold=0.9):
    """Headline diversity figures of a set of vectors.

    Returns
    -------
    dict with ``n``, ``near_duplicate_share`` (rows with a neighbour at
    >= threshold), ``mean_nn_similarity``, ``groups`` (near-duplicate groups
    of size > 1), ``largest_group`` and ``clusters`` (components at
    ``cluster_threshold``).
    """
    x = np.asarray(x, np.float32)
    from .knn import top_k

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
