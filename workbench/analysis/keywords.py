"""Cluster keywords for a pool map: clusters of the 2-D map, each named by its most distinctive words.

As BERTopic does: the points of the map are clustered (HDBSCAN on the 2-D
coordinates), every cluster's texts are joined into one document, and each
term is weighted by class-based TF-IDF, ``tf(t, c) * log(1 + A / f(t))``
with ``A`` the mean number of terms per cluster and ``f(t)`` the term's
count over all clusters. The tokenizer handles scripts without spaces:
Chinese, Japanese and Thai runs become character bigrams, other text
lower-cased words of two or more letters, minus a short stop list.
"""
from __future__ import annotations

import re

import numpy as np

from .. import config as _config

__all__ = ["tokenize", "class_tfidf", "cluster_map", "cluster_keywords"]

#: Han, Hiragana, Katakana (and their marks), Hangul syllables are spaced in Korean and stay words.
_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u0e00-\u0e7f"
_TOKEN = re.compile(rf"[{_CJK}]+|[^\W\d_{_CJK}][^\W_{_CJK}]+", re.UNICODE)
_STOP = frozenset("""a an and are as at be but by can could do does for from has have how i if in into is it its
me my no not of on or our please should so than that the their them then there these this to up us was we what
when where which who why will with would you your le la les de des du un une et est en que qui pour pas der die
das und ist ein eine zu mit den von el los las y es por para una con se""".split())


def tokenize(text):
    """Terms of a text: CJK and Thai runs as character bigrams (a lone character as itself), other words lower-cased."""
    terms = []
    for match in _TOKEN.finditer(str(text)):
        run = match.group(0)
        if re.match(rf"[{_CJK}]", run):
            terms += [run[i:i + 2] for i in range(len(run) - 1)] or [run]
        else:
            word = run.casefold()
            if word not in _STOP:
                terms.append(word)
    return terms


def class_tfidf(docs, *, top_n=5, min_count=2):
    """The ``top_n`` terms of each document (a cluster's texts) by class-based TF-IDF.

    Parameters
    ----------
    docs : list of lists of str
        One list of texts per class.
    min_count : int
        A term must occur at least this often in its class.

    Returns
    -------
    list of lists of (term, weight), one per class, best first.
    """
    from collections import Counter

    counts = [Counter(t for text in texts for t in tokenize(text)) for texts in docs]
    total = Counter()
    for c in counts:
        total.update(c)
    mean_terms = np.mean([sum(c.values()) for c in counts]) if counts else 0.0
    out = []
    for c in counts:
        size = sum(c.values()) or 1
        scored = [(t, n / size * np.log(1 + mean_terms / total[t])) for t, n in c.items() if n >= min_count]
        out.append(sorted(scored, key=lambda tw: (-tw[1], tw[0]))[:top_n])
    return out


def cluster_map(coords, *, min_cluster_size=None):
    """Cluster labels of 2-D map points (HDBSCAN; -1: noise). ``min_cluster_size`` defaults to 1.5% of the points, >= 5."""
    from sklearn.cluster import HDBSCAN

    coords = np.asarray(coords, float)
    size = min_cluster_size or max(5, int(0.015 * len(coords)))
    if len(coords) < 2 * size:
        return np.full(len(coords), -1)
    return HDBSCAN(min_cluster_size=size, copy=True).fit_predict(coords)


def cluster_keywords(coords, texts, *, labels=None, top_n=_config.CLUSTER_KEYWORDS, min_cluster_size=None):
    """One row per cluster of the map: its size, centre (median x, y) and most distinctive words.

    Parameters
    ----------
    coords : (n, 2) array of map coordinates
    texts : sequence of n message texts
    labels : (n,) int array, optional
        Cluster of each point (default :func:`cluster_map`); -1 is left out.

    Returns
    -------
    pandas.DataFrame with ``cluster``, ``n``, ``x``, ``y``, ``keywords`` (a list) and ``label`` (joined).
    """
    import pandas as pd

    coords = np.asarray(coords, float)
    texts = [str(t) for t in texts]
    labels = cluster_map(coords, min_cluster_size=min_cluster_size) if labels is None else np.asarray(labels)
    ids = sorted(set(labels.tolist()) - {-1})
    docs = [[texts[i] for i in np.flatnonzero(labels == c)] for c in ids]
    terms = class_tfidf(docs, top_n=top_n)
    rows = [{"cluster": c, "n": len(doc), "x": float(np.median(coords[labels == c, 0])),
             "y": float(np.median(coords[labels == c, 1])), "keywords": [t for t, _ in words],
             "label": " · ".join(t for t, _ in words)} for c, doc, words in zip(ids, docs, terms)]
    return pd.DataFrame(rows, columns=["cluster", "n", "x", "y", "keywords", "label"])
