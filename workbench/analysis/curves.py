"""How much pool is needed, and how robust routing is to sloppy typing.

*Pool size curve*: one seeded, stratified held-out test set (``test_share``
of every category) is routed against subsamples of the rest, ``size``
messages per category, chosen at random or diversity-preserving
(farthest-point sampling within each category, so near-duplicates are the
last to be added). Predicting a fixed held-out set keeps the test the same
for every size, which leave-one-out within a shrinking subsample would not.

*Robustness*: perturbed copies of sampled pool messages (typos, all
lower-case, no punctuation, a greeting prepended) are embedded and routed
against the pool **without their original** (leave-one-out), so the
numbers measure robustness, not memory. Perturbations are seeded per message.
"""
from __future__ import annotations

import logging
import unicodedata

import numpy as np

from .. import config as _config
from ..core.knn import center, predict
from ..errors import ConfigError

log = logging.getLogger(__name__)

__all__ = ["PERTURBATIONS", "GREETING", "perturb", "diverse_subsample", "pool_size_curve", "robustness"]

PERTURBATIONS = ("typos", "lowercase", "no_punctuation", "greeting")
GREETING = "hi! can you help me with this? "


def _typos(text, rng, rate):
    chars = list(text)
    pos = [i for i, ch in enumerate(chars) if ch.isalpha()]
    if not pos:
        return text
    n_ops = max(1, int(round(rate * len(pos))))
    for i in sorted(rng.choice(pos, size=min(n_ops, len(pos)), replace=False), reverse=True):
        op = rng.integers(4)
        if op == 0 and i + 1 < len(chars):
            chars[i], chars[i + 1] = chars[i + 1], chars[i]      # swap with the next character
        elif op == 1:
            del chars[i]                                           # drop
        elif op == 2:
            chars.insert(i, chars[i])                              # double
        elif chars[i].isascii():
            chars[i] = chr(ord("a") + int(rng.integers(26)))        # wrong key
        else:
            del chars[i]
    return "".join(chars)


def perturb(text, kind, *, rng=None, typo_rate=0.05):
    """A perturbed copy of ``text``.

    Parameters
    ----------
    text : str
    kind : {"typos", "lowercase", "no_punctuation", "greeting"}
        ``typos`` swaps, drops, doubles or mistypes about ``typo_rate`` of
        the letters (at least one); ``greeting`` prepends :data:`GREETING`.
    rng : numpy.random.Generator, optional
        Needed for ``typos`` (default: seed 0).
    """
    if kind == "typos":
        return _typos(text, rng if rng is not None else np.random.default_rng(0), typo_rate)
    if kind == "lowercase":
        return text.lower()
    if kind == "no_punctuation":
        stripped = "".join(ch for ch in text if not unicodedata.category(ch).startswith("P"))
        return " ".join(stripped.split()) or text
    if kind == "greeting":
        return GREETING + text
    raise ConfigError(f"perturbation must be one of {PERTURBATIONS}; got {kind!r}")


def diverse_subsample(x, size, *, seed=_config.SEED):
    """``size`` row indices of ``x`` by farthest-point sampling (cosine), from a seeded random start."""
    x = np.asarray(x, np.float32)
    n = len(x)
    if size >= n:
        return np.arange(n)
    rng = np.random.default_rng(seed)
    chosen = [int(rng.integers(n))]
    best_sim = x @ x[chosen[0]]
    for _ in range(size - 1):
        best_sim[chosen] = np.inf
        j = int(np.argmin(best_sim))
        chosen.append(j)
        best_sim = np.maximum(best_sim, x @ x[j])
    return np.array(chosen)


def _scores(true, pred, taxonomy):
    rank = taxonomy.category_tier_rank
    tr, pr = rank[true], rank[pred]
    return {"tier_accuracy": float((tr == pr).mean()), "category_accuracy": float((true == pred).mean()),
            "downgrade_rate": float((pr < tr).mean()), "upgrade_rate": float((pr > tr).mean())}


def pool_size_curve(x, labels, taxonomy, config, *, sizes=_config.POOL_SIZES, strategies=("random", "diverse"),
                    test_share=0.2, repeats=5, seed=_config.SEED):
    """Tier accuracy on a fixed held-out set vs messages per category in the pool.

    Parameters
    ----------
    x : (n, d) L2-normalised vectors
    labels : (n,) category indices
    taxonomy : Taxonomy
    config : KNNConfig
    sizes : sequence of int
        Messages per category (capped at what a category has); the full
        training part is always added as a last point.
    strategies : subset of {"random", "diverse"}
    test_share : float
        Share of each category held out as the test set.
    repeats : int
        Subsamples per (strategy, size), each with its own seed; figures are means.
    seed : int

    Returns
    -------
    pandas.DataFrame: ``strategy, per_category, pool_size, tier_accuracy,
    tier_accuracy_std, category_accuracy, downgrade_rate, n_test`` (size of the held-out set).
    """
    import pandas as pd

    x = np.asarray(x, np.float32)
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    test, train_by_class = [], {}
    for c in np.unique(labels):
        rows = rng.permutation(np.flatnonzero(labels == c))
        n_test = max(1, int(round(test_share * len(rows))))
        test.extend(rows[:n_test])
        train_by_class[c] = rows[n_test:]
    test = np.array(sorted(test))
    full = max(len(r) for r in train_by_class.values())
    sizes = sorted({int(s) for s in sizes if s < full} | {full})
    out = []
    for strategy in strategies:
        for size in sizes:
            runs = []
            for r in range(1 if size == full else repeats):
                sub = []
                for c, rows in train_by_class.items():
                    if size >= len(rows):
                        sub.extend(rows)
                    elif strategy == "random":
                        sub.extend(np.random.default_rng([seed, r, int(c), size]).choice(rows, size, replace=False))
                    else:
                        sub.extend(rows[diverse_subsample(x[rows], size, seed=seed * 1000 + r)])
                sub = np.array(sub)
                px, qx = x[sub], x[test]
                if config.center:
                    mean = px.mean(axis=0)
                    px, qx = center(px, mean), center(qx, mean)
                pred = predict(qx, px, labels[sub], config, taxonomy.category_tier_rank).pred
                runs.append(_scores(labels[test], pred, taxonomy))
                runs[-1]["pool_size"] = len(sub)
            acc = np.array([s["tier_accuracy"] for s in runs])
            out.append({"strategy": strategy, "per_category": size, "pool_size": int(np.mean([s["pool_size"] for s in runs])),
                        "tier_accuracy": float(acc.mean()), "tier_accuracy_std": float(acc.std()),
                        "category_accuracy": float(np.mean([s["category_accuracy"] for s in runs])),
                        "downgrade_rate": float(np.mean([s["downgrade_rate"] for s in runs]))})
            log.info("pool size %s %d/category: tier accuracy %.3f", strategy, size, acc.mean())
    table = pd.DataFrame(out)
    table["n_test"] = len(test)
    return table


def robustness(texts, x, labels, taxonomy, embedder, config, *, kinds=PERTURBATIONS, n=_config.ROBUSTNESS_N,
               seed=_config.SEED,
               cache_dir=None, progress=False, typo_rate=0.05):
    """Tier accuracy on perturbed copies of sampled pool messages, routed leave-one-out.

    Parameters
    ----------
    texts : sequence of str, the pool's texts (row ``i`` is ``x[i]``)
    x : (n, d) L2-normalised pool vectors
    labels : (n,) category indices
    taxonomy : Taxonomy
    embedder : Embedder (the pool's backend)
    config : KNNConfig
    kinds : sequence of perturbation names
    n : int
        Messages sampled (stratified: ``n // n_categories`` per category).
    seed : int
    cache_dir : path or False, optional
        Embedding cache for the perturbed texts.
    progress : bool
    typo_rate : float

    Returns
    -------
    pandas.DataFrame: ``perturbation, n, tier_accuracy, category_accuracy,
    downgrade_rate, upgrade_rate, tier_changed`` (share whose routed tier
    differs from the unperturbed copy's) and ``example`` (the first sampled
    message as perturbed); the first row is ``original``.
    """
    import pandas as pd

    from ..dataset.embeddings import embed_texts

    texts = [str(t) for t in texts]
    x = np.asarray(x, np.float32)
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    per = max(1, n // len(np.unique(labels)))
    rows = np.sort(np.concatenate([rng.permutation(np.flatnonzero(labels == c))[:per] for c in np.unique(labels)]))
    px = center(x) if config.center else x
    mean = x.mean(axis=0)
    exclude = lambda blk: rows[blk][:, None] == np.arange(len(x))[None, :]  # noqa: E731 - leave the original out
    rank = taxonomy.category_tier_rank
    base = predict(px[rows], px, labels, config, rank, exclude=exclude).pred
    table = [dict(perturbation="original", n=len(rows), **_scores(labels[rows], base, taxonomy), tier_changed=0.0,
                  example=texts[rows[0]])]
    for kind in kinds:
        pert = [perturb(texts[i], kind, rng=np.random.default_rng([seed, int(i)]), typo_rate=typo_rate) for i in rows]
        q = embed_texts(pert, embedder, cache_dir=cache_dir, progress=progress)
        q = center(q, mean) if config.center else q
        pred = predict(q, px, labels, config, rank, exclude=exclude).pred
        table.append(dict(perturbation=kind, n=len(rows), **_scores(labels[rows], pred, taxonomy),
                          tier_changed=float((rank[pred] != rank[base]).mean()), example=pert[0]))
        log.info("robustness %s: tier accuracy %.3f", kind, table[-1]["tier_accuracy"])
    return pd.DataFrame(table)
