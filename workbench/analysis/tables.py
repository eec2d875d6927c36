"""Tables the notebooks show: source checks, counts, near-duplicate groups, diversity, examples.

Each function takes a pool (frame + vectors) and returns a DataFrame or a
dict; the notebooks only call these and display the result.
"""
from __future__ import annotations

import numpy as np

from .. import config as _config

__all__ = ["dropped_duplicates", "length_bucket", "nearest_neighbors", "largest_duplicate_groups", "sample_rows",
           "compare_diversity", "stack_sets", "inflation_table", "confusion_examples", "accuracy_by_length",
           "ERROR_KINDS", "map_frame"]

LENGTH_EDGES = (40, 100, 250)


def dropped_duplicates(pool):
    """The exact duplicates that loading ``pool`` (an EmbeddedPool or LoadedPool) dropped, as a table."""
    import pandas as pd

    from ..dataset.pool import DROPPED_COLUMNS

    return pd.DataFrame(pool.dropped, columns=list(DROPPED_COLUMNS))


def length_bucket(texts, edges=LENGTH_EDGES):
    """Character-length bucket label of each text (``"<=40"``, ``"41-100"``, ..., ``">250"``)."""
    lengths = np.array([len(t) for t in texts])
    names = [f"<={edges[0]}"] + [f"{a + 1}-{b}" for a, b in zip(edges, edges[1:])] + [f">{edges[-1]}"]
    return np.array(names, dtype=object)[np.searchsorted(np.asarray(edges), lengths, side="left")]


def nearest_neighbors(x, k=3):
    """Top-``k`` neighbours of every row among the other rows: ``(indices, similarities)``."""
    from .evaluate import loo_neighbors

    return loo_neighbors(x, min(k, len(x) - 1))


def largest_duplicate_groups(frame, x, threshold=_config.DUP_THRESHOLD, *, top=10, max_texts=5):
    """Near-duplicate groups (cosine >= ``threshold``, connected components), largest first.

    Returns
    -------
    pandas.DataFrame with ``size, categories, mixed_labels, ids, texts``
    (texts joined by `` | ``, at most ``max_texts`` of them).
    """
    import pandas as pd

    from ..dataset.duplicates import duplicate_groups

    groups = duplicate_groups(x, threshold)
    sizes = np.bincount(groups)
    rows = []
    for g in np.argsort(-sizes, kind="stable")[:top]:
        if sizes[g] < 2:
            break
        members = frame.iloc[np.flatnonzero(groups == g)]
        cats = sorted(set(members["category"]))
        rows.append({"size": int(sizes[g]), "categories": ", ".join(cats), "mixed_labels": len(cats) > 1,
                     "ids": ", ".join(members["id"].astype(str)[:max_texts]),
                     "texts": " | ".join(members["text"].astype(str)[:max_texts])})
    return pd.DataFrame(rows, columns=["size", "categories", "mixed_labels", "ids", "texts"])


def sample_rows(n_total, n, seed=_config.SEED):
    """``n`` distinct row indices out of ``n_total``, sorted, drawn with ``seed``."""
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n_total, size=min(n, n_total), replace=False))


def compare_diversity(sets, *, threshold=_config.DUP_THRESHOLD, cluster_threshold=_config.CLUSTER_THRESHOLD):
    """:func:`~workbench.dataset.duplicates.diversity_summary` of each named set of vectors, one row each."""
    import pandas as pd

    from ..dataset.duplicates import diversity_summary

    table = pd.DataFrame({name: diversity_summary(x, threshold, cluster_threshold) for name, x in sets.items()}).T
    table.index.name = "set"
    return table


def stack_sets(sets):
    """Concatenate named pools for a joint map: ``(frame, vectors, set name per row)``.

    Parameters
    ----------
    sets : dict of name -> (frame, vectors)
    """
    import pandas as pd

    frames = [f.reset_index(drop=True) for f, _ in sets.values()]
    names = np.concatenate([np.full(len(f), name, dtype=object) for name, f in zip(sets, frames)])
    return pd.concat(frames, ignore_index=True), np.vstack([x for _, x in sets.values()]), names


def inflation_table(results):
    """Leave-one-out vs leave-duplicate-group-out tier accuracy of named :func:`evaluate_pool` results."""
    import pandas as pd

    return pd.DataFrame({name: {"n": r.loo.n, "loo_tier_accuracy": r.loo.tier_accuracy,
                                "ldgo_tier_accuracy": r.ldgo.tier_accuracy, "inflation": r.inflation,
                                "loo_category_accuracy": r.loo.category_accuracy}
                         for name, r in results.items()}).T


def _short(text, width):
    text = " ".join(str(text).split())
    return text if len(text) <= width else text[:width - 1] + "…"


def confusion_examples(frame, predictions, taxonomy, *, top_pairs=5, per_pair=3, width=140):
    """Example messages of the costliest cross-tier confusions, with the neighbours that voted.

    Parameters
    ----------
    frame : pandas.DataFrame of the pool
    predictions : :class:`~workbench.core.knn.Prediction` (leave-one-out)
    taxonomy : Taxonomy

    Returns
    -------
    pandas.DataFrame with ``true, predicted, direction, id, text, neighbours``.
    """
    import pandas as pd

    cats = list(taxonomy.categories)
    cost = taxonomy.cost_matrix()
    rank = taxonomy.category_tier_rank
    true = taxonomy.category_index(frame["category"])
    pairs = {}
    for i, (t, p) in enumerate(zip(true, predictions.pred)):
        if rank[t] != rank[p]:
            pairs.setdefault((t, p), []).append(i)
    ordered = sorted(pairs, key=lambda tp: (-cost[rank[tp[0]], rank[tp[1]]] * len(pairs[tp]), -len(pairs[tp])))
    rows = []
    for t, p in ordered[:top_pairs]:
        for i in pairs[(t, p)][:per_pair]:
            nb = [f"{s:.2f} [{frame['category'].iloc[j]}] {_short(frame['text'].iloc[j], 60)}"
                  for j, s in zip(predictions.neighbors[i][:3], predictions.similarities[i][:3])]
            rows.append({"true": cats[t], "predicted": cats[p],
                         "direction": "downgrade" if rank[p] < rank[t] else "upgrade",
                         "id": str(frame["id"].iloc[i]), "text": _short(frame["text"].iloc[i], width),
                         "neighbours": " | ".join(nb)})
    return pd.DataFrame(rows, columns=["true", "predicted", "direction", "id", "text", "neighbours"])


def accuracy_by_length(frame, predictions, taxonomy, edges=LENGTH_EDGES):
    """Accuracy per message-length bucket of :class:`~workbench.core.knn.Prediction` (short to long)."""
    from .metrics import compute_metrics

    buckets = length_bucket(frame["text"], edges)
    predicted = np.array(taxonomy.categories, dtype=object)[predictions.pred]
    table = compute_metrics(frame["category"], predicted, taxonomy, groups={"length": buckets}).by_group["length"]
    order = [b for b in length_bucket([""] + ["x" * (e + 1) for e in edges], edges) if b in table.index]
    return table.reindex(order)


#: What a routing decision did against the label, cheapest mistake first (``correct`` is no mistake).
ERROR_KINDS = ("correct", "same tier", "upgrade", "downgrade")


def map_frame(frame, predictions, taxonomy):
    """The pool's frame with what the router did to each message, for maps and explorers.

    Parameters
    ----------
    frame : pandas.DataFrame of the pool (``category``; row ``i`` matches the predictions)
    predictions : :class:`~workbench.core.knn.Prediction` (leave-one-out)
    taxonomy : Taxonomy

    Returns
    -------
    A copy of ``frame`` with ``tier`` (when missing), ``predicted``,
    ``predicted_tier`` and ``error`` (one of :data:`ERROR_KINDS`).
    """
    cats = np.array(taxonomy.categories, dtype=object)
    rank = taxonomy.category_tier_rank
    true = taxonomy.category_index(frame["category"])
    pred = np.asarray(predictions.pred)
    kind = np.select([pred == true, rank[pred] == rank[true], rank[pred] > rank[true]], [0, 1, 2], 3)
    out = frame.copy()
    if "tier" not in out:
        out["tier"] = [taxonomy.tier_map[c] for c in out["category"]]
    out["predicted"] = cats[pred]
    out["predicted_tier"] = [taxonomy.tier_map[c] for c in cats[pred]]
    out["error"] = np.array(ERROR_KINDS, dtype=object)[kind]
    return out
