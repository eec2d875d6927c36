"""Confidence against coverage: does a message unlike anything in the pool get a lower confidence than a covered one?

A router's confidence is the (calibrated) probability that its tier is
right, learned on messages like the pool's own. A message far from every
pool message (its nearest-neighbour similarity low) is where the pool knows
least, so its confidence should be lower; :func:`confidence_by_coverage`
puts the two side by side, :func:`coverage_bins` summarises them per band of
similarity, and :func:`uncovered_probes` writes messages unlike any chat
message (seeded noise: hex dumps, number lists, letter salad), the far end of
the scale.
"""
from __future__ import annotations

import numpy as np

from .. import config as _config

__all__ = ["confidence_by_coverage", "coverage_bins", "uncovered_probes", "coverage_frame", "coverage_summary"]


def confidence_by_coverage(router, texts, *, categories=None, source=None, cache_dir=None):
    """Each message's nearest-pool similarity, confidence and routed tier (and whether it is right, given labels).

    Parameters
    ----------
    router : Router
    texts : sequence of str
    categories : sequence of str, optional
        Labelled categories; adds ``correct`` (tier level).
    source : str or sequence of str, optional
        A label per message (or one for all), e.g. ``"eval"``, ``"probe"``.

    Returns
    -------
    pandas.DataFrame: ``text, source, nearest_similarity, confidence, category, tier`` (and ``correct``).
    """
    import pandas as pd

    from ..dataset.embeddings import embed_texts

    texts = [str(t) for t in texts]
    vectors, questions = router.embed(texts, encode=lambda batch: embed_texts(batch, router.embedder,
                                                                              cache_dir=cache_dir))
    decisions = router.route_vectors(vectors, questions=questions)
    out = pd.DataFrame({"text": texts, "source": source,
                        "nearest_similarity": [d.similarities[0] if d.similarities else np.nan for d in decisions],
                        "confidence": [d.confidence for d in decisions],
                        "category": [d.category for d in decisions], "tier": [d.tier for d in decisions]})
    if categories is not None:
        tier_map = router.metadata["tier_map"]
        out["correct"] = [tier_map[c] == d.tier for c, d in zip(categories, decisions)]
    return out


def coverage_bins(frame, *, bins=_config.CALIBRATION_BINS):
    """Mean confidence (and tier accuracy, when labelled) per quantile band of nearest-pool similarity.

    Returns
    -------
    pandas.DataFrame, one row a band from the least to the most covered; its ``spearman`` column (the same in
    every row) is the rank correlation of similarity and confidence over all of ``frame``.
    """
    import pandas as pd

    band = pd.qcut(frame["nearest_similarity"].rank(method="first"), q=min(bins, len(frame)), labels=False)
    agg = {"n": ("confidence", "size"), "similarity_low": ("nearest_similarity", "min"),
           "similarity_high": ("nearest_similarity", "max"), "mean_confidence": ("confidence", "mean")}
    if "correct" in frame:
        agg["tier_accuracy"] = ("correct", "mean")
    out = frame.groupby(band).agg(**agg).reset_index(drop=True)
    out["spearman"] = frame["nearest_similarity"].corr(frame["confidence"], method="spearman")
    return out


def uncovered_probes(n=40, *, seed=_config.SEED):
    """``n`` messages unlike any chat message (seeded): hex dumps, number lists, letter salad, repeated symbols."""
    rng = np.random.default_rng(seed)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyzqxzjkv"))
    makers = (lambda: " ".join(f"{b:02x}" for b in rng.integers(0, 256, 24)),
              lambda: ", ".join(str(v) for v in rng.integers(0, 10_000, 16)),
              lambda: " ".join("".join(rng.choice(letters, rng.integers(3, 9))) for _ in range(8)),
              lambda: "".join(rng.choice(list("#*~^|=+-<>"), 40)))
    return [makers[i % len(makers)]() for i in range(n)]


def coverage_frame(router, labelled, *, probes=40, seed=_config.SEED, cache_dir=None):
    """:func:`confidence_by_coverage` of labelled messages (``text``, ``category``, ``set``) and of ``probes``
    :func:`uncovered_probes` (source ``"unlike the pool"``, no label), in one frame."""
    import pandas as pd

    parts = [confidence_by_coverage(router, labelled["text"], categories=labelled["category"],
                                    source=labelled["set"].tolist(), cache_dir=cache_dir)]
    if probes:
        parts.append(confidence_by_coverage(router, uncovered_probes(probes, seed=seed), source="unlike the pool",
                                            cache_dir=cache_dir))
    return pd.concat(parts, ignore_index=True)


def coverage_summary(frame, *, probe_source="unlike the pool"):
    """Mean confidence of the probes and of the other messages, and the rank correlation of similarity and
    confidence over the other messages."""
    probes = frame["source"] == probe_source
    covered = frame[~probes]
    return {"probe_mean_confidence": float(frame.loc[probes, "confidence"].mean()) if probes.any() else float("nan"),
            "covered_mean_confidence": float(covered["confidence"].mean()),
            "spearman": float(covered["nearest_similarity"].corr(covered["confidence"], method="spearman"))}
