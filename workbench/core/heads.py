"""Router heads: how a router turns a query (and its neighbours' vote) into category probabilities (numpy only).

A head is stored in pool.npz as plain arrays (``head_*``) named in the
metadata (``head``). Whatever the head, the router still finds each query's
nearest neighbours, so every decision stays explainable by their ids and
labels. Heads are *trained* in :mod:`workbench.analysis.heads` (scikit-learn);
applying one needs numpy only.

To add a head: a class with ``name``, ``arrays()``, ``from_arrays(arrays, n_classes, dim)``
and ``shares(queries, knn_shares)``, registered in :data:`HEADS`.
"""
from __future__ import annotations

import numpy as np

from ..errors import ArtifactError

__all__ = ["HEADS", "KNNHead", "LinearHead", "BlendHead", "linear_shares", "load_head"]


def linear_shares(vectors, coef, intercept):
    """Class probabilities of a linear (logistic-regression) head: softmax(x @ coef.T + intercept)."""
    z = np.asarray(vectors, np.float64) @ np.asarray(coef, np.float64).T + np.asarray(intercept, np.float64)
    z -= z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


class KNNHead:
    """The neighbours' vote is the class probability (no arrays)."""

    name = "knn"

    def arrays(self):
        return {}

    @classmethod
    def from_arrays(cls, arrays, n_classes, dim):
        return cls()

    def shares(self, queries, knn_shares):
        return knn_shares


class LinearHead:
    """A logistic-regression head stored as ``head_coef`` (n_classes, dim) and ``head_intercept`` (n_classes,).

    The standardisation used in training is folded into the weights, so the
    router needs only ``softmax(x @ coef.T + intercept)`` on the vectors it compares.
    """

    name = "logreg"

    def __init__(self, coef, intercept):
        self.coef = np.asarray(coef, np.float32)
        self.intercept = np.asarray(intercept, np.float32)

    def arrays(self):
        return {"head_coef": self.coef, "head_intercept": self.intercept}

    @classmethod
    def from_arrays(cls, arrays, n_classes, dim):
        if "head_coef" not in arrays or "head_intercept" not in arrays:
            raise ArtifactError("pool metadata names a linear head (logreg, blend) but head_coef/head_intercept are missing")
        coef, icpt = arrays["head_coef"], arrays["head_intercept"]
        if coef.shape != (n_classes, dim) or icpt.shape != (n_classes,):
            raise ArtifactError(f"head_coef {coef.shape} / head_intercept {icpt.shape} do not match "
                                f"{n_classes} categories x dim {dim}")
        return cls(coef, icpt)

    def shares(self, queries, knn_shares):
        return linear_shares(queries, self.coef, self.intercept)


class BlendHead(LinearHead):
    """Logistic-regression probabilities blended with the neighbours' vote: ``w * linear + (1 - w) * vote``.

    The linear part generalises over phrasings (it learns what a one-fact
    question looks like whatever its topic); the vote keeps the local evidence
    of near neighbours. Stored as the logistic-regression arrays plus
    ``head_blend_weight`` (shape ``(1,)``, the weight ``w`` of the linear part).
    """

    name = "blend"

    def __init__(self, coef, intercept, weight):
        super().__init__(coef, intercept)
        self.weight = float(np.asarray(weight, np.float64).reshape(-1)[0])
        if not 0.0 <= self.weight <= 1.0:
            raise ArtifactError(f"blend weight must be in [0, 1]; got {self.weight!r}")

    def arrays(self):
        return dict(super().arrays(), head_blend_weight=np.array([self.weight], np.float32))

    @classmethod
    def from_arrays(cls, arrays, n_classes, dim):
        if "head_blend_weight" not in arrays:
            raise ArtifactError("pool metadata says head='blend' but head_blend_weight is missing")
        if np.shape(arrays["head_blend_weight"]) != (1,):
            raise ArtifactError(f"head_blend_weight must have shape (1,); got {np.shape(arrays['head_blend_weight'])}")
        linear = LinearHead.from_arrays(arrays, n_classes, dim)
        return cls(linear.coef, linear.intercept, arrays["head_blend_weight"])

    def shares(self, queries, knn_shares):
        return self.weight * linear_shares(queries, self.coef, self.intercept) + (1.0 - self.weight) * knn_shares


#: Head name -> class.
HEADS = {KNNHead.name: KNNHead, LinearHead.name: LinearHead, BlendHead.name: BlendHead}


def load_head(name, arrays, n_classes, dim):
    """The head a pool's metadata names, rebuilt from its arrays."""
    if name not in HEADS:
        raise ArtifactError(f"unknown router head {name!r} (known: {', '.join(HEADS)})")
    return HEADS[name].from_arrays(arrays, n_classes, dim)
