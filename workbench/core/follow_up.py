"""A follow-up detector read from the embeddings: does a turn continue an earlier task, or stand alone? (numpy only)

"round trip?", "shorter, as bullets", "I'm 34 and work remotely" continue the
task before them; "thanks, ordering the second one", "is grout waterproof btw"
or a new request do not. What tells them apart is mostly how the turn reads
(elliptical, a bare constraint, a reformulation) and how it relates to the
previous turn, so the detector is a logistic regression over

- the turn's vector and the previous turn's vector, each minus the mean of
  the turns it was fitted on (the embedding space of the pool's backend);
- ``log(1 + words)`` (:func:`~workbench.core.conversation.text_words`);
- the cosine between the turn and the previous turn.

It reads no routing decision, so it depends on the backend and the labelled
conversations only, and is fitted at export (:func:`workbench.analysis.conversations.fit_follow_up`)
and stored in pool.npz: arrays ``follow_up_center`` (dim) and ``follow_up_coef``
(2 * dim + 2), metadata ``follow_up`` (``{"intercept", ...}`` with what it was fitted on).
A pool without them falls back to the hand-weighted detector of
:mod:`workbench.core.conversation`.
"""
from __future__ import annotations

import math

import numpy as np

from ..errors import ArtifactError, ConfigError
from .conversation import text_words

__all__ = ["FollowUpDetector", "turn_features"]


def turn_features(vectors, texts, center):
    """Detector inputs of turns 2..n of one conversation: ``(n - 1, 2 * dim + 2)`` (empty for one turn).

    Parameters
    ----------
    vectors : array (n, dim)
        The turns' L2-normalised vectors, oldest first.
    texts : list of str
        The turns' texts.
    center : array (dim,)
    """
    v = np.asarray(vectors, np.float64)
    if len(v) < 2:
        return np.zeros((0, 2 * v.shape[1] + 2))
    words = np.log1p([text_words(t) for t in texts[1:]])[:, None]
    cosine = np.einsum("ij,ij->i", v[1:], v[:-1])[:, None]
    return np.hstack([v[1:] - center, v[:-1] - center, words, cosine])


class FollowUpDetector:
    """Probability that a turn continues an earlier task, from the turn's and the previous turn's vectors.

    Parameters
    ----------
    center : array (dim,)
        Subtracted from both vectors.
    coef : array (2 * dim + 2,)
        Weights of the turn's vector, the previous turn's vector, log words and the cosine.
    intercept : float

    The probability from which a turn is read as a follow-up is the context rule's ``threshold``
    (:class:`~workbench.core.conversation.ContextRule`), not the detector's.
    """

    def __init__(self, center, coef, intercept):
        self.center = np.asarray(center, np.float64)
        self.coef = np.asarray(coef, np.float64)
        self.intercept = float(intercept)
        dim = self.center.shape[0] if self.center.ndim == 1 else -1
        if self.center.ndim != 1 or self.coef.shape != (2 * dim + 2,):
            raise ConfigError(f"follow-up detector: center must be 1-D and coef hold 2 * dim + 2 weights; got "
                              f"{self.center.shape} and {self.coef.shape}")
        if not (np.isfinite(self.center).all() and np.isfinite(self.coef).all() and math.isfinite(self.intercept)):
            raise ConfigError("follow-up detector: weights must be finite")

    @property
    def dim(self) -> int:
        return self.center.shape[0]

    def predict_proba(self, vectors, texts):
        """Follow-up probability of every turn of one conversation (oldest first); the first turn gets 0."""
        x = turn_features(vectors, list(texts), self.center)
        z = np.clip(self.intercept + x @ self.coef, -50.0, 50.0)
        return np.concatenate([[0.0], 1.0 / (1.0 + np.exp(-z))])

    def arrays(self) -> dict:
        return {"follow_up_center": self.center.astype(np.float32), "follow_up_coef": self.coef.astype(np.float32)}

    def to_metadata(self, **about) -> dict:
        """The metadata entry: the intercept and whatever ``about`` says (what it was fitted on)."""
        return {"intercept": self.intercept, **about}

    @classmethod
    def from_arrays(cls, meta, arrays):
        """From the metadata ``follow_up`` and its arrays; None when the pool stores no detector."""
        if not meta:
            return None
        try:
            return cls(arrays["follow_up_center"], arrays["follow_up_coef"], meta["intercept"])
        except KeyError as e:
            raise ArtifactError(f"pool metadata has a follow-up detector but {e} is missing") from None
        except (ConfigError, TypeError, ValueError) as e:
            raise ArtifactError(f"bad follow-up detector: {e}") from None

    def __repr__(self):
        return f"FollowUpDetector(dim={self.dim})"
