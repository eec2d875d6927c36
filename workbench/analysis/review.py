"""Label review queue: messages whose label disagrees with a confident neighbourhood.

In the spirit of confident learning (Northcutt et al., 2021): each
message's out-of-sample (leave-one-out) probability of every class comes
from its neighbours' vote; a class's threshold is the mean
self-confidence of the messages labelled with it. A message is queued
when its given label's probability is below that label's threshold and
another class reaches its own threshold (the most probable such class is
the suggestion). The queue is for a person to check: nothing is relabelled.
"""
from __future__ import annotations

import numpy as np

__all__ = ["class_thresholds", "flag_label_issues", "review_queue"]


def class_thresholds(shares, labels, n_classes=None):
    """Per-class threshold: mean out-of-sample probability of the class over messages labelled with it.

    Classes without messages get threshold 1 (they can never be suggested
    unless a message is certain).
    """
    shares = np.asarray(shares, np.float64)
    labels = np.asarray(labels)
    n_classes = n_classes or shares.shape[1]
    thr = np.ones(n_classes)
    for c in range(n_classes):
        rows = labels == c
        if rows.any():
            thr[c] = shares[rows, c].mean()
    return thr


def flag_label_issues(shares, labels, *, gap=0.0):
    """Rows whose label looks wrong, and the class their neighbourhood suggests.

    Parameters
    ----------
    shares : (n, n_classes) out-of-sample class probabilities
    labels : (n,) given class indices
    gap : float
        Require the given label's probability to be at least ``gap`` below
        its class threshold ("far below"); 0 is plain confident learning.

    Returns
    -------
    flagged : int array of row indices, most suspicious first
        (largest suggested-minus-given probability)
    suggested : int array (n,), the suggested class per row (-1 where none)
    thresholds : (n_classes,) array
    """
    shares = np.asarray(shares, np.float64)
    labels = np.asarray(labels)
    n = len(labels)
    thr = class_thresholds(shares, labels)
    p_given = shares[np.arange(n), labels]
    confident = shares >= thr[None, :]
    confident[np.arange(n), labels] = False
    masked = np.where(confident, shares, -1.0)
    suggested = np.where(confident.any(axis=1), masked.argmax(axis=1), -1)
    bad = (suggested >= 0) & (p_given < thr[labels] - gap)
    flagged = np.flatnonzero(bad)
    score = shares[flagged, suggested[flagged]] - p_given[flagged]
    return flagged[np.argsort(-score, kind="stable")], suggested, thr


def review_queue(frame, predictions, taxonomy, *, gap=0.0, n_neighbors=5, cross_tier_only=False):
    """The review queue as a table, with each message's nearest neighbours.

    Parameters
    ----------
    frame : pandas.DataFrame
        The pool (``id``, ``text``, ``category``), row ``i`` matching the predictions.
    predictions : workbench.core.knn.Prediction
        Leave-one-out predictions (``shares``, ``neighbors``, ``similarities``).
    taxonomy : Taxonomy
    gap : float
        See :func:`flag_label_issues`.
    n_neighbors : int
        Neighbours listed per message.
    cross_tier_only : bool
        Keep only messages whose suggested category is in another tier.

    Returns
    -------
    pandas.DataFrame: ``id, text, category, suggested, p_given,
    p_suggested, class_threshold, cross_tier, neighbors`` (a list of dicts
    ``id, text, category, similarity``), most suspicious first.
    """
    import pandas as pd

    cats = list(taxonomy.categories)
    labels = taxonomy.category_index(frame["category"])
    flagged, suggested, thr = flag_label_issues(predictions.shares, labels, gap=gap)
    ids = frame["id"].astype(str).to_numpy()
    texts = frame["text"].astype(str).to_numpy()
    rows = []
    for i in flagged:
        s, g = int(suggested[i]), int(labels[i])
        cross = taxonomy.tier_map[cats[s]] != taxonomy.tier_map[cats[g]]
        if cross_tier_only and not cross:
            continue
        nbrs = [{"id": ids[j], "text": texts[j], "category": cats[labels[j]], "similarity": float(sim)}
                for j, sim in zip(predictions.neighbors[i][:n_neighbors], predictions.similarities[i][:n_neighbors])
                if np.isfinite(sim)]
        rows.append({"id": ids[i], "text": texts[i], "category": cats[g], "suggested": cats[s],
                     "p_given": float(predictions.shares[i, g]), "p_suggested": float(predictions.shares[i, s]),
                     "class_threshold": float(thr[g]), "cross_tier": bool(cross), "neighbors": nbrs})
    return pd.DataFrame(rows, columns=["id", "text", "category", "suggested", "p_given", "p_suggested",
                                       "class_threshold", "cross_tier", "neighbors"])
