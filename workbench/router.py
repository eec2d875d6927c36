"""The production router: load pool.npz, embed a message, let its neighbours vote.

Imports numpy and the embedding backend only (no pandas, plotly or umap),
so a service can import it cheaply.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .errors import ArtifactError
from .export import load_pool_npz
from .knn import center_vectors, decide, top_k, vote

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

    def to_dict(self):
        return {"category": self.category, "tier": self.tier, "confidence": round(self.confidence, 4),
                "margin": round(self.margin, 4), "neighbors": self.neighbors}


class Router:
    """k-NN router over a loaded pool.

    Use :meth:`load`; the constructor takes an already loaded
    :class:`~workbench.export.PoolArtifact` and an embedder.
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
        self.categories = list(meta["categories"])
        self.tiers = list(meta["tiers"])
        self._class_rank = np.array([self.tiers.index(meta["tier_map"][c]) for c in self.categories])

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
        m = self.metadata
        q = np.asarray(vectors, np.float32)
        if m["center"]:
            q = center_vectors(q, self.artifact.center)
        idx, sim = top_k(q, self.artifact.embeddings, m["k"])
        shares = vote(self.artifact.labels[idx], sim, len(self.categories), rule=m["vote"], temperature=m["temperature"])
        pred, conf, margin = decide(shares, self._class_rank)
        ids = self.artifact.ids
        return [RouteDecision(self.categories[p], m["tier_map"][self.categories[p]], float(c), float(g),
                              [str(ids[j]) for j in row], [float(s) for s in srow])
                for p, c, g, row, srow in zip(pred, conf, margin, idx, sim)]

    def route_batch(self, texts):
        """Route many messages; decisions come back in input order."""
        texts = list(texts)
        if not texts:
            return []
        return self.route_vectors(self.embedder.encode(texts))

    def route(self, text):
        """Route one message."""
        return self.route_batch([text])[0]
