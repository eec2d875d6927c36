"""The production router: load pool.npz, embed a message, let its neighbours vote.

Imports numpy and the embedding backend only (no pandas, plotly or umap),
so a service can import it cheaply.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import ArtifactError
from .ann import restore_index
from .artifact import load_pool_npz
from .heads import load_head
from .knn import center, decide, predict, predict_from_neighbors
from .policy import DecisionPolicy

__all__ = ["Router", "RouteDecision"]


@dataclass
class RouteDecision:
    """Where one message goes and why."""

    category: str
    tier: str
    confidence: float
    margin: float
    neighbors: list = field(default_factory=list)
    similarities: list = field(default_factory=list)
    abstain: bool = False          # the pool's policy would rather ask the LLM categorizer
    vote_tier: str = ""            # the winning category's tier (``tier`` may differ under a cost policy)
    tier_probabilities: dict = field(default_factory=dict)
    neighbor_categories: list = field(default_factory=list)

    def to_dict(self, *, neighbors=False):
        """JSON-ready form (what ``workbench route`` writes); ``neighbors`` adds ids, similarities and labels."""
        d = {"category": self.category, "tier": self.tier, "confidence": round(self.confidence, 4),
             "margin": round(self.margin, 4), "abstain": self.abstain}
        if neighbors:
            d["neighbors"] = [{"id": i, "similarity": round(s, 4), "category": c}
                              for i, s, c in zip(self.neighbors, self.similarities, self.neighbor_categories)]
        return d


class Router:
    """k-NN router over a loaded pool.

    Use :meth:`load`; the constructor takes an already loaded
    :class:`~workbench.core.artifact.PoolArtifact` and an embedder. The
    category comes from the pool's head (default: the neighbours' vote;
    see :mod:`workbench.core.heads`); the tier and ``abstain`` follow the
    decision policy stored in the pool's metadata (default: plain voting,
    never abstain). Every decision lists the nearest neighbours whatever the head.
    A pool that carries an ANN index (big pools) is searched through it
    (``index``); otherwise, and below the size threshold, search is exact.
    """

    def __init__(self, artifact, embedder):
        meta = artifact.metadata
        spec = embedder.spec
        for key in ("backend", "model_id", "dim", "prefix"):
            if spec[key] != meta[key]:
                raise ArtifactError(f"pool was built with {key}={meta[key]!r}, embedder has {spec[key]!r}: "
                                    "a router must embed with the backend its pool was built with")
        self.artifact = artifact
        self.embedder = embedder
        self.metadata = meta
        self.config = artifact.config
        self.categories = list(meta["categories"])
        self.tiers = list(meta["tiers"])
        self._class_rank = np.array([self.tiers.index(meta["tier_map"][c]) for c in self.categories])
        self.policy = DecisionPolicy.from_metadata(meta.get("policy"))
        self.head = load_head(meta.get("head", "knn"), artifact.arrays, len(self.categories),
                              artifact.embeddings.shape[1])
        if self.policy.cost is not None and len(self.policy.cost) != len(self.tiers):
            raise ArtifactError(f"policy cost matrix does not match the {len(self.tiers)} tiers")
        self.index = restore_index(artifact)

    @property
    def abstains(self) -> bool:
        """Whether the pool's policy can abstain."""
        return self.policy.abstains

    @classmethod
    def load(cls, path, *, embedder=None, threads=None):
        """Load pool.npz and the backend it names (or check the one given)."""
        from .embed import get_embedder

        artifact = load_pool_npz(path)
        if embedder is None:
            embedder = get_embedder(artifact.metadata["backend"], threads=threads)
        return cls(artifact, embedder)

    def route_vectors(self, vectors):
        """Decisions for already-embedded (L2-normalised) messages."""
        q = np.asarray(vectors, np.float32)
        if self.config.center:
            q = center(q, self.artifact.center)
        if self.index is None:
            knn = predict(q, self.artifact.embeddings, self.artifact.labels, self.config, self._class_rank)
        else:
            idx, sim = self.index.search(q, self.config.k)
            knn = predict_from_neighbors(idx, sim, self.artifact.labels, self.config, self._class_rank)
        shares = self.head.shares(q, knn.shares)
        pred, conf, margin = (knn.pred, knn.confidence, knn.margin) if shares is knn.shares else \
            decide(shares, self._class_rank)
        routed, abstain, probs = self.policy.apply(shares, self._class_rank, len(self.tiers), pred=pred,
                                                   confidence=conf, margin=margin)
        ids, labels, cats = self.artifact.ids, self.artifact.labels, self.categories
        tier_map = self.metadata["tier_map"]
        return [RouteDecision(cats[p], self.tiers[r], float(c), float(g), [str(ids[j]) for j in row],
                              [float(s) for s in srow], bool(a), tier_map[cats[p]],
                              dict(zip(self.tiers, map(float, pr))), [cats[labels[j]] for j in row])
                for p, r, a, pr, c, g, row, srow in zip(pred, routed, abstain, probs, conf, margin,
                                                        knn.neighbors, knn.similarities)]

    def route_batch(self, texts):
        """Route many messages; decisions come back in input order."""
        texts = list(texts)
        if not texts:
            return []
        return self.route_vectors(self.embedder.encode(texts))

    def route(self, text):
        """Route one message."""
        return self.route_batch([text])[0]
