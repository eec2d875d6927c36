"""Label review queue: messages whose label disagrees with a confident neighbourhood.

In the spirit of confident learning (Northcutt et al., 2021): each
message's out-of-sample (leave-one-out) probability of every class comes
from its neighbours' vote; a class's threshold is the mean
self-confidence of the messages labelled with it. A message is queued
when its given label's probability is below that label's threshold and
another class reaches its own threshold (the most probable such class is
the suggestion). The queue is for a person to check: nothing is relabelled.

A *review file* (JSONL, one message a line with ``id`` and ``text``) carries
messages a person picked on a map (the explorer widget, or the report map's
"download JSONL"): :func:`review_queue` lists them with the flagged ones,
and ``workbench label --input`` sends them to the label source.
"""
from __future__ import annotations

import json

import numpy as np

from ..errors import ConfigError, DataError
from ..io import read_jsonl, write_text_atomic

__all__ = ["class_thresholds", "flag_label_issues", "review_queue", "REVIEW_FIELDS", "write_review_file",
           "read_review_file"]

#: Fields of a review file line, in order (``id`` and ``text`` are required; the rest describe the message).
REVIEW_FIELDS = ("id", "text", "category", "tier", "lang", "source", "predicted", "predicted_tier", "error")


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


def review_queue(frame, predictions, taxonomy, *, gap=0.0, n_neighbors=5, cross_tier_only=False, selected=None):
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
    selected : iterable of str, optional
        Ids a person picked (e.g. ``read_review_file(path)["id"]``): listed
        after the flagged messages, whether flagged or not. Ids not in the
        pool are ignored.

    Returns
    -------
    pandas.DataFrame: ``id, text, category, suggested, p_given,
    p_suggested, class_threshold, cross_tier, neighbors`` (a list of dicts
    ``id, text, category, similarity``), ``reason`` (``"neighbourhood"``,
    ``"selected"`` or both), most suspicious first.
    """
    import pandas as pd

    cats = list(taxonomy.categories)
    labels = taxonomy.category_index(frame["category"])
    flagged, suggested, thr = flag_label_issues(predictions.shares, labels, gap=gap)
    ids = frame["id"].astype(str).to_numpy()
    texts = frame["text"].astype(str).to_numpy()
    picked = {str(i) for i in (selected if selected is not None else ())}
    flagged_set = set(flagged.tolist())
    extra = [int(i) for i in np.flatnonzero(np.isin(ids, sorted(picked))) if i not in flagged_set]
    rows = []
    for i in [*flagged.tolist(), *extra]:
        s, g = int(suggested[i]), int(labels[i])
        if s < 0:  # picked by a person, not flagged: show the neighbourhood's own top class
            s = int(np.argmax(predictions.shares[i]))
        cross = taxonomy.tier_map[cats[s]] != taxonomy.tier_map[cats[g]]
        reason = ", ".join(r for r, hit in (("neighbourhood", i in flagged_set), ("selected", ids[i] in picked)) if hit)
        if cross_tier_only and not cross and ids[i] not in picked:
            continue
        nbrs = [{"id": ids[j], "text": texts[j], "category": cats[labels[j]], "similarity": float(sim)}
                for j, sim in zip(predictions.neighbors[i][:n_neighbors], predictions.similarities[i][:n_neighbors])
                if np.isfinite(sim)]
        rows.append({"id": ids[i], "text": texts[i], "category": cats[g], "suggested": cats[s],
                     "p_given": float(predictions.shares[i, g]), "p_suggested": float(predictions.shares[i, s]),
                     "class_threshold": float(thr[g]), "cross_tier": bool(cross), "neighbors": nbrs,
                     "reason": reason})
    return pd.DataFrame(rows, columns=["id", "text", "category", "suggested", "p_given", "p_suggested",
                                       "class_threshold", "cross_tier", "neighbors", "reason"])


def write_review_file(rows, path):
    """Write messages for review as JSONL (atomically): one object per row with :data:`REVIEW_FIELDS`.

    Parameters
    ----------
    rows : pandas.DataFrame
        At least ``id`` and ``text``; the other fields of
        :data:`REVIEW_FIELDS` are written when present.
    path : path
        Created with its folder; an existing file is replaced as a whole.

    Returns
    -------
    pathlib.Path of the file.
    """
    from pathlib import Path

    missing = [c for c in ("id", "text") if c not in rows]
    if missing:
        raise ConfigError(f"a review file needs columns id and text; missing {missing}")
    fields = [c for c in REVIEW_FIELDS if c in rows]
    lines = []
    for rec in rows[fields].to_dict("records"):
        lines.append(json.dumps({k: (v.item() if hasattr(v, "item") else v) for k, v in rec.items()
                                 if v is not None and v == v}, ensure_ascii=False) + "\n")
    path = Path(path)
    write_text_atomic(path, "".join(lines))
    return path


def read_review_file(path):
    """Read a review file back as a DataFrame (columns :data:`REVIEW_FIELDS` present in it, ``id`` first).

    Raises
    ------
    DataError
        Naming the file and line of a row without a non-empty ``id`` or ``text``.
    """
    import pandas as pd

    rows = []
    for n, obj in read_jsonl(path):
        for key in ("id", "text"):
            if not isinstance(obj.get(key), str) or not obj[key].strip():
                raise DataError(path, n, f"missing or empty {key!r}")
        rows.append(obj)
    frame = pd.DataFrame(rows)
    return frame[[c for c in REVIEW_FIELDS if c in frame] + [c for c in frame if c not in REVIEW_FIELDS]] \
        if rows else pd.DataFrame(columns=["id", "text"])
