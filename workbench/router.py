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
from .policy import DecisionPolicy, linear_shares

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

    def to_dict(self):
        return {"category": self.category, "tier": self.tier, "confidence": round(self.confidence, 4),
                "margin": round(self.margin, 4), "abstain": self.abstain, "neighbors": self.neighbors}


class Router:
    """k-NN router over a loaded pool.

    Use :meth:`load`; the constructor takes an already loaded
    :class:`~workbench.export.PoolArtifact` and an embedder. The category
    is the vote winner; the tier and ``abstain`` follow the decision policy
    stored in the pool's metadata (``policy``; default: plain voting, never
    abstain). With ``head="logreg"`` in the metadata the class
    probabilities come from a logistic-regression head stored as plain
    arrays (``head_coef``, ``head_intercept``) instead of the neighbours' vote.
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
        self.policy = DecisionPolicy.from_metadata(meta.get("policy"))
        self.head = meta.get("head", "knn")
        if self.head == "logreg":
            arrays = artifact.arrays
            if "head_coef" not in arrays or "head_intercept" not in arrays:
                raise ArtifactError("pool metadata says head='logreg' but head_coef/head_intercept are missing")
            self._coef = arrays["head_coef"].astype(np.float64)
            self._intercept = arrays["head_intercept"].astype(np.float64)
            if self._coef.shape != (len(self.categories), artifact.embeddings.shape[1]) or \
                    self._intercept.shape != (len(self.categories),):
                raise ArtifactError(f"head_coef {self._coef.shape} / head_intercept {self._intercept.shape} do not "
                                    f"match {len(self.categories)} categories x dim {artifact.embeddings.shape[1]}")
        elif self.head != "knn":
            raise ArtifactError(f"unknown router head {self.head!r} (known: knn, logreg)")
        if self.policy.cost is not None and len(self.policy.cost) != len(self.tiers):
            raise ArtifactError(f"policy cost matrix does not match the {len(self.tiers)} tiers")

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
        m = self.metadata
        q = np.asarray(vectors, np.float32)
        if m["center"]:
            q = center_vectors(q, self.artifact.center)
        idx, sim = top_k(q, self.artifact.embeddings, m["k"])
        if self.head == "logreg":
            shares = linear_shares(q, self._coef, self._intercept)
        else:
            shares = vote(self.artifact.labels[idx], sim, len(self.categories), rule=m["vote"],
                          temperature=m["temperature"])
        pred, conf, margin = decide(shares, self._class_rank)
        routed, abstain, probs = self.policy.apply(shares, self._class_rank, len(self.tiers), pred=pred,
                                                   confidence=conf, margin=margin)
        ids = self.artifact.ids
        return [RouteDecision(self.categories[p], self.tiers[r], float(c), float(g),
                              [str(ids[j]) for j in row], [float(s) for s in srow], bool(a),
                              m["tier_map"][self.categories[p]], dict(zip(self.tiers, map(float, pr))))
                for p, r, a, pr, c, g, row, srow in zip(pred, routed, abstain, probs, conf, margin, idx, sim)]

    def route_batch(self, texts):
        """Route many messages; decisions come back in input order."""
        texts = list(texts)
        if not texts:
            return []
        return self.route_vectors(self.embedder.encode(texts))

    def route(self, text):
        """Route one message."""
        return self.route_batch([text])[0]
