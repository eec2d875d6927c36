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

from ..errors import ArtifactError, ConfigError

__all__ = ["HEADS", "KNNHead", "LinearHead", "BlendHead", "MLPHead", "Networks", "linear_shares", "mlp_shares",
           "load_head"]


def _softmax(z):
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def linear_shares(vectors, coef, intercept):
    """Class probabilities of a linear (logistic-regression) head: softmax(x @ coef.T + intercept)."""
    return _softmax(np.asarray(vectors, np.float64) @ np.asarray(coef, np.float64).T
                    + np.asarray(intercept, np.float64))


def mlp_shares(vectors, hidden_coef, hidden_intercept, out_coef, out_intercept):
    """Class probabilities of a bag of one-hidden-layer networks, averaged over the bag.

    Network ``b`` is ``softmax(relu(x @ hidden_coef[b].T + hidden_intercept[b]) @ out_coef[b].T + out_intercept[b])``;
    shapes ``(bags, hidden, dim)``, ``(bags, hidden)``, ``(bags, n_classes, hidden)``, ``(bags, n_classes)``.
    """
    x = np.asarray(vectors, np.float32)
    out = 0.0
    for w1, b1, w2, b2 in zip(hidden_coef, hidden_intercept, out_coef, out_intercept):
        h = np.maximum(x @ np.asarray(w1, np.float32).T + np.asarray(b1, np.float32), 0.0)
        out = out + _softmax((h @ np.asarray(w2, np.float32).T + np.asarray(b2, np.float32)).astype(np.float64))
    return out / len(hidden_coef)


class Networks:
    """A bag of one-hidden-layer ReLU networks whose softmax outputs are averaged (:func:`mlp_shares`).

    The reading the ``mlp`` head and the follow-up detector share. The hidden layer, the largest array, is kept
    as float16 as pool.npz stores it and widened to float32 once, here, not per message.

    Parameters
    ----------
    hidden_coef : array (bags, hidden, inputs)
    hidden_intercept : array (bags, hidden)
    out_coef : array (bags, outputs, hidden)
    out_intercept : array (bags, outputs)

    Raises
    ------
    ConfigError
        When the arrays do not fit together or hold a non-finite weight; the message names their shapes.
    """

    def __init__(self, hidden_coef, hidden_intercept, out_coef, out_intercept):
        self.hidden_coef = np.asarray(hidden_coef, np.float16)
        self.hidden_intercept, self.out_coef, self.out_intercept = (
            np.asarray(a, np.float32) for a in (hidden_intercept, out_coef, out_intercept))
        bags, hidden = self.hidden_intercept.shape if self.hidden_intercept.ndim == 2 else (0, 0)
        outputs = self.out_intercept.shape[-1] if self.out_intercept.ndim == 2 else 0
        if (bags < 1 or hidden < 1 or self.hidden_coef.ndim != 3 or self.hidden_coef.shape[:2] != (bags, hidden)
                or self.out_coef.shape != (bags, outputs, hidden) or self.out_intercept.shape != (bags, outputs)):
            raise ConfigError(f"network arrays do not fit together: hidden weights {self.hidden_coef.shape}, hidden "
                              f"intercepts {self.hidden_intercept.shape}, output weights {self.out_coef.shape}, output "
                              f"intercepts {self.out_intercept.shape}")
        if not all(np.isfinite(a).all() for a in self.parts()):
            raise ConfigError("network weights must be finite")
        self._hidden32 = self.hidden_coef.astype(np.float32)

    @property
    def inputs(self) -> int:
        return self.hidden_coef.shape[2]

    @property
    def outputs(self) -> int:
        return self.out_intercept.shape[1]

    def parts(self):
        """The four arrays, in the order of the constructor (the hidden weights float16)."""
        return self.hidden_coef, self.hidden_intercept, self.out_coef, self.out_intercept

    def arrays(self, names) -> dict:
        """The four arrays under pool.npz's ``names`` (in the order of the constructor)."""
        return dict(zip(names, self.parts()))

    def proba(self, x):
        """The bag's mean output probabilities of the rows of ``x``: ``(n, outputs)``."""
        return mlp_shares(x, self._hidden32, self.hidden_intercept, self.out_coef, self.out_intercept)

    def __len__(self):
        return len(self.hidden_coef)


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


class MLPHead:
    """A bag of small neural networks (one hidden ReLU layer each) blended with the neighbours' vote.

    ``w * mean_b network_b(x) + (1 - w) * vote``. A hidden layer draws the
    curved boundaries a linear head cannot (a one-fact question about code
    against a coding task); averaging a few networks trained from different
    seeds removes most of one network's seed-to-seed spread. Stored as
    ``head_hidden_coef`` (bags, hidden, dim, float16: the largest array),
    ``head_hidden_intercept`` (bags, hidden), ``head_out_coef`` (bags,
    n_classes, hidden), ``head_out_intercept`` (bags, n_classes) and
    ``head_blend_weight`` (1,); the training standardisation is folded into the
    hidden layer, as in :class:`LinearHead`.
    """

    name = "mlp"
    _ARRAYS = ("head_hidden_coef", "head_hidden_intercept", "head_out_coef", "head_out_intercept")

    def __init__(self, hidden_coef, hidden_intercept, out_coef, out_intercept, weight):
        try:
            self.networks = Networks(hidden_coef, hidden_intercept, out_coef, out_intercept)
        except ConfigError as e:
            raise ArtifactError(f"mlp head: {e}") from None
        self.weight = float(np.asarray(weight, np.float64).reshape(-1)[0])
        if not 0.0 <= self.weight <= 1.0:
            raise ArtifactError(f"blend weight must be in [0, 1]; got {self.weight!r}")

    def arrays(self):
        return {**self.networks.arrays(self._ARRAYS), "head_blend_weight": np.array([self.weight], np.float32)}

    @classmethod
    def from_arrays(cls, arrays, n_classes, dim):
        missing = [a for a in (*cls._ARRAYS, "head_blend_weight") if a not in arrays]
        if missing:
            raise ArtifactError(f"pool metadata says head='mlp' but {', '.join(missing)} are missing")
        if np.shape(arrays["head_blend_weight"]) != (1,):
            raise ArtifactError(f"head_blend_weight must have shape (1,); got {np.shape(arrays['head_blend_weight'])}")
        head = cls(*(arrays[a] for a in cls._ARRAYS), arrays["head_blend_weight"])
        if head.networks.inputs != dim or head.networks.outputs != n_classes:
            raise ArtifactError(f"mlp head arrays {head.networks.hidden_coef.shape} / "
                                f"{head.networks.out_intercept.shape} do not match {n_classes} categories x dim {dim}")
        return head

    def shares(self, queries, knn_shares):
        return self.weight * self.networks.proba(queries) + (1.0 - self.weight) * knn_shares


#: Head name -> class.
HEADS = {KNNHead.name: KNNHead, LinearHead.name: LinearHead, BlendHead.name: BlendHead, MLPHead.name: MLPHead}


def load_head(name, arrays, n_classes, dim):
    """The head a pool's metadata names, rebuilt from its arrays."""
    if name not in HEADS:
        raise ArtifactError(f"unknown router head {name!r} (known: {', '.join(HEADS)})")
    return HEADS[name].from_arrays(arrays, n_classes, dim)
