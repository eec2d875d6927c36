"""A follow-up detector read from the embeddings: does a turn continue an earlier task, or stand alone? (numpy only)

"round trip?", "shorter, as bullets", "I'm 34 and work remotely" continue the
task before them; "thanks, ordering the second one", "is grout waterproof btw"
or a new request do not. What tells them apart is mostly how the turn reads
(elliptical, a bare constraint, a reformulation) and how it relates to the
previous turn. The detector averages three readings of that:

- a reading of the turn's vector and the previous turn's vector, each minus
  the mean of the turns it was fitted on (the embedding space of the pool's
  backend), ``log(1 + words)`` (:func:`~workbench.core.conversation.text_words`)
  and the cosine between the two turns: a bag of small networks (one hidden
  ReLU layer each, as the router's ``mlp`` head), or in pools exported before
  them a logistic regression;
- a k-NN vote of the labelled turns nearest to the turn (its *memory*; first
  turns count as fresh), which finds follow-ups like this one in any language
  where a linear boundary does not;
- a k-NN vote of the labelled (turn, previous turn) pairs nearest to the pair,
  by the mean of the two cosines.

Held out on the development conversations the average with the networks
tells follow-ups from fresh turns at AUC 0.972 (0.965 with the regression; the
networks alone 0.966, the regression alone 0.948).

It reads no routing decision, so it depends on the backend and the labelled
conversations only, and is fitted at export (:func:`workbench.analysis.conversations.fit_follow_up`)
and stored in pool.npz: arrays ``follow_up_center`` (dim) and either the networks
``follow_up_hidden_coef`` (bags, hidden, 2 * dim + 2; float16), ``follow_up_hidden_intercept`` (bags, hidden),
``follow_up_out_coef`` (bags, 2, hidden) and ``follow_up_out_intercept`` (bags, 2) (metadata ``"reader": "mlp"``),
or the regression's ``follow_up_coef`` (2 * dim + 2, metadata ``intercept``); with a memory ``follow_up_memory`` (m, r; each turn minus the centre, unit length, projected on
the memory's ``r`` leading principal directions ``follow_up_projection`` (r, dim) and made unit length again,
int8; without a projection r = dim) and ``follow_up_memory_scale`` (r; :func:`~workbench.core.quantize.quantize`),
``follow_up_previous`` (m; the row of the previous turn, -1 for a first turn) and ``follow_up_follows``
(m; 1 for a follow-up); metadata ``follow_up`` (``{"reader" or "intercept", "k", ...}``). A pool without a detector falls
back to the hand-weighted one of :mod:`workbench.core.conversation`.
"""
from __future__ import annotations

import math

import numpy as np

from .. import config as _config
from ..errors import ArtifactError, ConfigError
from .conversation import text_words
from .embed import normalize_rows as _unit
from .heads import Networks
from .quantize import dequantize, quantize
from .search import products

__all__ = ["FollowUpDetector", "TurnMemory", "turn_features", "memory_projection", "NETWORK_ARRAYS"]

#: pool.npz arrays of the detector's networks, in the order of :class:`~workbench.core.heads.Networks`.
NETWORK_ARRAYS = ("follow_up_hidden_coef", "follow_up_hidden_intercept", "follow_up_out_coef",
                  "follow_up_out_intercept")


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


def memory_projection(memory, dims):
    """The ``dims`` leading principal directions of ``memory`` (rows about the origin), as orthonormal rows ``(r, dim)``.

    ``r = min(dims, dim, m)``; each row's sign makes its largest-magnitude entry positive, so the same memory always
    gives the same array. None when ``r`` would be the full dimension (nothing to save).
    """
    memory = np.asarray(memory, np.float64)
    r = min(int(dims), memory.shape[1], memory.shape[0])
    if r >= memory.shape[1]:
        return None
    vt = np.linalg.svd(memory, full_matrices=False)[2][:r]
    vt *= np.sign(vt[np.arange(r), np.abs(vt).argmax(axis=1)])[:, None]
    return vt.astype(np.float32)


def _vote(similarities, follows, k):
    """Similarity-weighted share of follow-ups among the ``k`` nearest, per row of ``similarities``."""
    k = min(k, similarities.shape[1])
    idx = np.argpartition(-similarities, k - 1, axis=1)[:, :k]
    w = np.maximum(np.take_along_axis(similarities, idx, axis=1), 1e-6)
    return (w * follows[idx]).sum(axis=1) / w.sum(axis=1)


class TurnMemory:
    """The labelled turns a follow-up detector votes with: their vectors, previous rows and follow-up flags.

    Parameters
    ----------
    vectors : array (m, r)
        The turns, each minus the detector's centre (made unit length here), kept as int8 as pool.npz stores them;
        or, with ``scale``, that int8 array itself.
    previous : int array (m,)
        Per row, the row of the turn before it in its conversation; -1 for a first turn.
    follows : array (m,)
        Per row, 1 when the turn is a follow-up (first turns are 0).
    scale : array (r,), optional
        The per-dimension scale of int8 ``vectors`` (:func:`~workbench.core.quantize.quantize`).
    projection : array (r, dim), optional
        Orthonormal rows the memory is kept in (its leading principal directions, :func:`memory_projection`): a
        turn is compared with it after the same projection. None: the memory is in the embedding's own dim = r.
    """

    def __init__(self, vectors, previous, follows, *, scale=None, projection=None):
        self.projection = None
        if projection is not None:
            self.projection = np.asarray(projection, np.float32)
            if self.projection.ndim != 2 or not 1 <= len(self.projection) <= self.projection.shape[1] \
                    or not np.isfinite(self.projection).all():
                raise ConfigError(f"follow-up detector: projection must be finite (r, dim) with 1 <= r <= dim; "
                                  f"got {self.projection.shape}")
        vectors = np.asarray(vectors)
        width = (vectors.shape[-1] if vectors.ndim else 0) if self.projection is None else len(self.projection)
        # int8, as stored: the detector an export fits and the one a router loads vote alike
        if scale is None:
            if vectors.ndim != 2 or not np.isfinite(vectors).all():
                raise ConfigError(f"follow-up detector: memory must be finite (m, {width}); got {vectors.shape}")
            vectors, scale = quantize(_unit(vectors))
        self.stored = (np.asarray(vectors, np.int8), np.asarray(scale, np.float32))
        if self.stored[0].ndim != 2 or self.stored[1].shape != (self.stored[0].shape[-1],):
            raise ConfigError(f"follow-up detector: memory must be (m, {width}) and its scale ({width},); got "
                              f"{self.stored[0].shape} and {self.stored[1].shape}")
        self.vectors = dequantize(*self.stored)
        m = len(self.vectors)
        self.previous = np.asarray(previous, np.int64)
        self.follows = np.asarray(follows, np.float32)
        if self.vectors.shape != (m, width) or m < 1 or self.previous.shape != (m,) or self.follows.shape != (m,):
            raise ConfigError(f"follow-up detector: memory must be (m, {width}) with m >= 1, previous and follows (m,); "
                              f"got {self.vectors.shape}, {self.previous.shape} and {self.follows.shape}")
        if not np.isin(self.follows, (0.0, 1.0)).all():
            raise ConfigError("follow-up detector: follows must be 0 or 1")
        if ((self.previous < -1) | (self.previous >= np.arange(m))).any():
            raise ConfigError("follow-up detector: previous must name an earlier memory row, or -1")
        self.paired = np.flatnonzero(self.previous >= 0)

    @classmethod
    def fit(cls, centered, previous, follows, *, dims=_config.FOLLOW_UP_MEMORY_DIMS):
        """The memory of turns (each minus the detector's centre), kept in their ``dims`` leading principal
        directions (:func:`memory_projection`; None: in the full embedding space)."""
        unit = _unit(np.asarray(centered, np.float64))
        projection = memory_projection(unit, dims) if dims else None
        keys = unit if projection is None else _unit(unit @ projection.T)
        return cls(keys, previous, follows, projection=projection)

    def __len__(self):
        return len(self.vectors)

    @property
    def dim(self) -> int:
        """The dimension of the embeddings it compares (the projection's input, else its own width)."""
        return self.vectors.shape[1] if self.projection is None else self.projection.shape[1]

    def keyed(self, centered):
        """Turns (minus the detector's centre) as the memory keeps them: unit length, projected when it is."""
        x = _unit(np.asarray(centered, np.float64))
        return x if self.projection is None else _unit(x @ self.projection.T)

    def subset(self, keep):
        """The rows ``keep`` (increasing positions), previous rows renumbered; a row whose previous turn is left out
        becomes a first turn (it no longer votes as a pair)."""
        keep = np.asarray(keep)
        row = np.full(len(self) + 1, -1)  # old row -> new row; index -1 (a first turn) stays -1
        row[keep] = np.arange(len(keep))
        return TurnMemory(self.stored[0][keep], row[self.previous[keep]], self.follows[keep], scale=self.stored[1],
                          projection=self.projection)

    def arrays(self) -> dict:
        out = {"follow_up_memory": self.stored[0], "follow_up_memory_scale": self.stored[1],
               "follow_up_previous": self.previous.astype(np.int32), "follow_up_follows": self.follows.astype(np.int8)}
        if self.projection is not None:
            out["follow_up_projection"] = self.projection
        return out

    @classmethod
    def from_arrays(cls, arrays):
        """From pool.npz's ``follow_up_memory*``, ``follow_up_previous``, ``follow_up_follows`` and
        ``follow_up_projection`` (optional) arrays."""
        return cls(arrays["follow_up_memory"], arrays["follow_up_previous"], arrays["follow_up_follows"],
                   scale=arrays["follow_up_memory_scale"], projection=arrays.get("follow_up_projection"))


class FollowUpDetector:
    """Probability that a turn continues an earlier task, from the turn's and the previous turn's vectors.

    Parameters
    ----------
    center : array (dim,)
        Subtracted from both vectors.
    coef : array (2 * dim + 2,), optional
        The regression's weights of the turn's vector, the previous turn's vector, log words and the cosine
        (:func:`turn_features`). Give it and ``intercept``, or ``networks``.
    intercept : float, optional
    memory : TurnMemory, optional
        The labelled turns the two k-NN votes read. None: the turn's reading alone.
    k : int
        Neighbours of each vote.
    networks : Networks or tuple of 4 arrays, optional
        A bag of one-hidden-layer networks over the same inputs (:class:`~workbench.core.heads.Networks`, or its
        four arrays ``(bags, hidden, 2 * dim + 2)``, ``(bags, hidden)``, ``(bags, 2, hidden)``, ``(bags, 2)``);
        the second output is the follow-up. They read the turn in place of the regression.

    The probability from which a turn is read as a follow-up is the context rule's ``threshold``
    (:class:`~workbench.core.conversation.ContextRule`), not the detector's.
    """

    def __init__(self, center, coef=None, intercept=None, memory=None, *, k=_config.FOLLOW_UP_K, networks=None):
        self.center = np.asarray(center, np.float64)
        dim = self.center.shape[0] if self.center.ndim == 1 else -1
        if self.center.ndim != 1 or not np.isfinite(self.center).all():
            raise ConfigError(f"follow-up detector: center must be 1-D and finite; got {self.center.shape}")
        if (networks is None) == (coef is None) or (coef is None) != (intercept is None):
            raise ConfigError("follow-up detector: give either coef and intercept (a regression) or networks")
        self.coef = self.intercept = self.networks = None
        if networks is None:
            self.coef = np.asarray(coef, np.float64)
            self.intercept = float(intercept)
            if self.coef.shape != (2 * dim + 2,):
                raise ConfigError(f"follow-up detector: coef must hold 2 * dim + 2 = {2 * dim + 2} weights; got "
                                  f"{self.coef.shape}")
            if not (np.isfinite(self.coef).all() and math.isfinite(self.intercept)):
                raise ConfigError("follow-up detector: weights must be finite")
        else:
            self.networks = _networks(networks, 2 * dim + 2)
        self.k = int(k)
        if memory is not None and not isinstance(memory, TurnMemory):
            raise ConfigError(f"follow-up detector: memory must be a TurnMemory or None; got {type(memory).__name__}")
        self.memory = memory
        if memory is None:
            return
        if memory.dim != dim:
            raise ConfigError(f"follow-up detector: the memory compares {memory.dim}-dimensional turns, the detector "
                              f"{dim}-dimensional ones")
        if not 1 <= self.k <= len(memory):
            raise ConfigError(f"follow-up detector: k must be in [1, {len(memory)}] (the memory); got {self.k}")

    @property
    def dim(self) -> int:
        return self.center.shape[0]

    @property
    def has_memory(self) -> bool:
        return self.memory is not None

    def predict_proba(self, vectors, texts):
        """Follow-up probability of every turn of one conversation (oldest first); the first turn gets 0."""
        p = self.read(turn_features(vectors, list(texts), self.center))
        if self.memory is not None and len(p):
            mem = self.memory
            s = self._similarities(vectors)  # (turns, m)
            own = _vote(s[1:], mem.follows, self.k)
            rows = mem.paired  # pairs: the mean of turn-to-turn and previous-to-previous cosines
            pair = _vote((s[1:, rows] + s[:-1, mem.previous[rows]]) / 2, mem.follows[rows], self.k) \
                if len(rows) else own
            p = (p + own + pair) / 3
        return np.concatenate([[0.0], p])

    def read(self, features):
        """The networks' (or the regression's) follow-up probability of :func:`turn_features` rows."""
        if not len(features):
            return np.zeros(0)
        if self.networks is not None:
            return self.networks.proba(features)[:, 1]
        z = np.clip(self.intercept + features @ self.coef, -50.0, 50.0)
        return 1.0 / (1.0 + np.exp(-z))

    def _similarities(self, vectors):
        """Cosines of ``vectors`` (minus the centre, kept as the memory keeps its turns) to every remembered turn."""
        return products(self.memory.keyed(np.asarray(vectors, np.float64) - self.center), self.memory.vectors)

    def without(self, vectors, *, min_cosine=0.999):
        """This detector with every remembered turn at ``min_cosine`` or more of one of ``vectors`` forgotten.

        For routing the labelled conversations it was fitted on as if it had never seen them (the promotion gate):
        the memory would otherwise find each turn itself. The regression keeps its weights. A remembered turn
        whose previous turn is forgotten no longer votes as a pair.
        """
        if self.memory is None or not len(vectors):
            return self
        seen = (self._similarities(vectors) >= min_cosine).any(axis=0)
        keep = np.flatnonzero(~seen)
        if not len(keep):
            return FollowUpDetector(self.center, self.coef, self.intercept, networks=self.networks)
        return FollowUpDetector(self.center, self.coef, self.intercept, self.memory.subset(keep),
                                k=min(self.k, len(keep)), networks=self.networks)

    def arrays(self) -> dict:
        out = {"follow_up_center": self.center.astype(np.float32)}
        if self.networks is None:
            out["follow_up_coef"] = self.coef.astype(np.float32)
        else:
            out.update(self.networks.arrays(NETWORK_ARRAYS))
        return out if self.memory is None else {**out, **self.memory.arrays()}

    def to_metadata(self, **about) -> dict:
        """The metadata entry: the reader (``"reader": "mlp"``, or the regression's ``intercept``), the votes' ``k``
        (with a memory) and whatever ``about`` says."""
        reader = {"intercept": self.intercept} if self.networks is None else {"reader": "mlp"}
        return {**reader, **({"k": self.k} if self.memory is not None else {}), **about}

    @classmethod
    def from_arrays(cls, meta, arrays):
        """From the metadata ``follow_up`` and its arrays; None when the pool stores no detector."""
        if not meta:
            return None
        if "k" in meta and (not isinstance(meta["k"], int) or isinstance(meta["k"], bool)):
            raise ArtifactError(f"follow-up detector k must be an integer; got {meta['k']!r}")
        if meta.get("reader", "regression") not in ("regression", "mlp"):
            raise ArtifactError(f"follow-up detector reader must be 'mlp' or absent; got {meta['reader']!r}")
        try:
            memory = TurnMemory.from_arrays(arrays) if "k" in meta else None
            k = {"k": meta["k"]} if "k" in meta else {}
            if meta.get("reader") == "mlp":
                return cls(arrays["follow_up_center"], None, None, memory,
                           networks=tuple(arrays[name] for name in NETWORK_ARRAYS), **k)
            return cls(arrays["follow_up_center"], arrays["follow_up_coef"], meta["intercept"], memory, **k)
        except KeyError as e:
            raise ArtifactError(f"pool metadata has a follow-up detector but {e} is missing") from None
        except (ConfigError, TypeError, ValueError) as e:
            raise ArtifactError(f"bad follow-up detector: {e}") from None

    def __repr__(self):
        reader = f", networks={len(self.networks)}" if self.networks is not None else ""
        memory = f", memory={len(self.memory)}, k={self.k}" if self.memory is not None else ""
        return f"FollowUpDetector(dim={self.dim}{reader}{memory})"


def _networks(networks, width):
    """``networks`` (a :class:`~workbench.core.heads.Networks` or its four arrays) as a bag of two-output networks
    over ``width`` inputs, checked."""
    if not isinstance(networks, Networks):
        try:
            networks = Networks(*networks)
        except TypeError:
            raise ConfigError("follow-up detector: networks must be four arrays (hidden and output weights and "
                              "intercepts)") from None
        except ConfigError as e:
            raise ConfigError(f"follow-up detector: {e}") from None
    if networks.inputs != width or networks.outputs != 2:
        raise ConfigError(f"follow-up detector: networks must read {width} inputs into 2 outputs; got "
                          f"{networks.inputs} into {networks.outputs}")
    return networks
