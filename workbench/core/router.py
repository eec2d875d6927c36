"""The production router: load pool.npz, embed a message, let its neighbours vote.

Imports numpy and the embedding backend only (no pandas, plotly or umap),
so a service can import it cheaply.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import ArtifactError, ConfigError
from .ann import restore_index
from .artifact import load_pool_npz
from .calibration import Calibration
from .conversation import ContextRule, RecentVectors, decide_turns
from .follow_up import FollowUpDetector
from .coverage import CoverageCap
from .heads import load_head
from .knn import center, decide, predict, predict_from_neighbors
from .policy import DecisionPolicy
from .question import QuestionBlend
from .text import has_visible_text

__all__ = ["Router", "RouteDecision"]


@dataclass
class RouteDecision:
    """Where one message goes and why."""

    category: str
    tier: str
    confidence: float              # probability that ``tier`` is right (calibrated, and capped where the pool does not cover)
    margin: float                  # winning category's share minus the runner-up's
    neighbors: list = field(default_factory=list)
    similarities: list = field(default_factory=list)
    abstain: bool = False          # the pool's policy would rather ask the LLM categorizer
    vote_tier: str = ""            # the winning category's tier (``tier`` may differ under a cost policy)
    tier_probabilities: dict = field(default_factory=dict)
    neighbor_categories: list = field(default_factory=list)
    category_confidence: float = float("nan")  # the winning category's share of the head's probabilities

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
    never abstain); ``confidence`` is the routed tier's probability, mapped by
    the pool's calibration when it carries one (see
    :mod:`workbench.core.calibration`). Every decision lists the nearest
    neighbours whatever the head. A pool that carries an ANN index (big pools)
    is searched through it (``index``); otherwise, and below the size
    threshold, search is exact.
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
        self.calibration = Calibration.from_arrays(meta.get("calibration"), artifact.arrays)
        self.coverage = CoverageCap.from_arrays(meta.get("coverage"), artifact.arrays)
        self.question = QuestionBlend.from_metadata(meta.get("question"))
        self.follow_up = FollowUpDetector.from_arrays(meta.get("follow_up"), artifact.arrays)
        if self.policy.cost is not None and len(self.policy.cost) != len(self.tiers):
            raise ArtifactError(f"policy cost matrix does not match the {len(self.tiers)} tiers")
        self.index = restore_index(artifact)

    @property
    def abstains(self) -> bool:
        """Whether the pool's policy can abstain."""
        return self.policy.abstains

    @classmethod
    def load(cls, path, *, embedder=None, threads=None, sha256=None, allowed_backends=None):
        """Load pool.npz and the backend it names (or check the one given).

        Parameters
        ----------
        path : path
        embedder : Embedder, optional
            Use this backend (it must match the pool's); nothing else is constructed.
        threads : int, optional
            Encoder threads of the backend the pool names.
        sha256 : str, optional
            Refuse any artifact but this one: its file SHA-256 or content digest.
        allowed_backends : iterable of str, optional
            Backend specs (shell patterns such as ``st:intfloat/*``) the pool may
            name when no ``embedder`` is given; default the bundled backends
            (:data:`~workbench.core.embed.BACKENDS`). A pool is data: it should
            not choose which model code a service loads.
        """
        from .embed import check_backend_allowed, get_embedder

        artifact = load_pool_npz(path, sha256=sha256)
        if embedder is None:
            check_backend_allowed(artifact.metadata["backend"], allowed_backends, where=path)
            embedder = get_embedder(artifact.metadata["backend"], threads=threads)
        return cls(artifact, embedder)

    def _vote(self, vectors):
        """The k-NN result and the head's shares of already-embedded messages."""
        queries = np.asarray(vectors, np.float32)
        if self.config.center:
            queries = center(queries, self.artifact.center)
        if self.index is None:
            knn = predict(queries, self.artifact.embeddings, self.artifact.labels, self.config, self._class_rank)
        else:
            neigh_ind, neigh_sim = self.index.search(queries, self.config.k)
            knn = predict_from_neighbors(neigh_ind, neigh_sim, self.artifact.labels, self.config, self._class_rank)
        return knn, self.head.shares(queries, knn.shares)

    def embed(self, texts, *, encode=None):
        """``(vectors, questions)`` of ``texts`` for :meth:`route_vectors`: the whole messages' vectors, and
        ``(rows, vectors)`` of the closing requests of the long ones the pool reads twice (None when none is).

        ``encode`` maps a list of texts to vectors (default the router's embedder; analysis passes its cache).
        """
        encode = encode or self.embedder.encode
        rows, requests = self.question.requests(texts)
        vectors = encode(list(texts))
        return vectors, ((rows, encode(requests)) if len(rows) else None)

    def route_vectors(self, vectors, *, questions=None):
        """Decisions for already-embedded (L2-normalised) messages; ``questions`` as :meth:`embed` returns them
        (their votes are blended into those rows', see :mod:`workbench.core.question`)."""
        knn, shares = self._vote(vectors)
        if questions is not None and len(questions[0]):
            shares = self.question.blend(shares, questions[0], self._vote(questions[1])[1])
        pred, category_conf, margin = (knn.pred, knn.confidence, knn.margin) if shares is knn.shares else \
            decide(shares, self._class_rank)
        routed, abstain, tier_probs = self.policy.apply(shares, self._class_rank, len(self.tiers), pred=pred,
                                                        confidence=category_conf, margin=margin,
                                                        calibrate=self.calibration)
        # the confidence also says how far the message is from the pool; abstaining stays the fitted policy's
        # (on data/dev, messages under the cap were routed right as often as the others)
        cover = self.coverage.factor(np.asarray(knn.similarities, np.float64)[:, 0])
        tier_conf = self.calibration(tier_probs[np.arange(len(routed)), routed]) * cover
        return [self._decision(category=int(pred[row]), routed=int(routed[row]), abstain=bool(abstain[row]),
                               tier_probs=tier_probs[row], tier_conf=float(tier_conf[row]),
                               category_conf=float(category_conf[row]), margin=float(margin[row]),
                               neighbors=knn.neighbors[row], similarities=knn.similarities[row])
                for row in range(len(routed))]

    def _decision(self, *, category, routed, abstain, tier_probs, tier_conf, category_conf, margin, neighbors,
                  similarities):
        """One :class:`RouteDecision`, every field by name."""
        ids, labels, categories = self.artifact.ids, self.artifact.labels, self.categories
        return RouteDecision(
            category=categories[category], tier=self.tiers[routed], confidence=tier_conf, margin=margin,
            neighbors=[str(ids[j]) for j in neighbors], similarities=[float(s) for s in similarities],
            abstain=abstain, vote_tier=self.metadata["tier_map"][categories[category]],
            tier_probabilities=dict(zip(self.tiers, map(float, tier_probs))),
            neighbor_categories=[categories[labels[j]] for j in neighbors], category_confidence=category_conf)

    def route_batch(self, texts, *, encode=None):
        """Route many messages; decisions come back in input order.

        ``encode`` maps a list of texts to vectors (default the router's embedder; analysis passes its cache):
        whoever encodes, a message is read as the service reads it (a long one also by its closing request).

        Raises
        ------
        ConfigError
            For a text with no visible characters (empty, whitespace, zero-width or
            control characters only): there is nothing to route, and its vector
            would still find neighbours and a confident vote.
        """
        texts = list(texts)
        if not texts:
            return []
        _check_visible(texts)
        vectors, questions = self.embed(texts, encode=encode)
        return self.route_vectors(vectors, questions=questions)

    def route(self, text):
        """Route one message."""
        return self.route_batch([text])[0]

    def route_conversation(self, turns, *, context=None, policy=None):
        """Route the user turns of one conversation, oldest first: one decision per turn, in order.

        ``turns`` are strings or mappings with a ``text``; ``context`` is a
        :class:`~workbench.core.conversation.ContextRule` (default: the
        project's, see :mod:`workbench.core.conversation`); ``policy`` is its
        old name, kept for one release.
        """
        rule = context or policy or ContextRule()
        texts = [t["text"] if isinstance(t, dict) else t for t in turns]
        _check_visible(texts)
        encode = self._turn_vectors.encode
        return decide_turns(rule, texts, lambda batch: self.route_batch(batch, encode=encode), self.tiers,
                            encode=encode, detector=self.follow_up)

    @property
    def _turn_vectors(self):
        # a client sends the whole conversation again at every turn: earlier turns' vectors are remembered
        if getattr(self, "_turn_memo", None) is None:
            self._turn_memo = RecentVectors(self.embedder)
        return self._turn_memo


def _check_visible(texts):
    blank = next((i for i, t in enumerate(texts) if not has_visible_text(t)), None)
    if blank is not None:
        raise ConfigError(f"text {blank} has no visible characters (got {str(texts[blank])[:20]!r})")
