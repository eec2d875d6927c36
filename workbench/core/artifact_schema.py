"""The pool.npz schema: the members a file may hold, their digest, and the metadata checked field by field.

:data:`MEMBERS` is the one list of array names (and name families) a pool.npz
may hold, each with the dtype kinds, dimensions and byte budget the loader
allows; :func:`content_digest` is the hash over all of them and the metadata.
:func:`validate_metadata` is what :func:`workbench.core.artifact.load_pool_npz`
runs on the decoded metadata before it reads a single array, so its limits
(``n``, ``dim``) bound what the loader will read. Every problem is one line
naming the field, the rule and the value. Keys this schema does not know are
kept (later workbench versions add some) and are covered by the hash like
every other key.
"""
from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass

import numpy as np

from .. import config as _config
from ..errors import ArtifactError, ConfigError
from .heads import HEADS
from .knn import VOTE_RULES
from .policy import DecisionPolicy

__all__ = ["validate_values", "VALUE_RANGES", "TEMPERATURE_RANGE", "SCHEMA_VERSION", "REQUIRED_METADATA", "Member", "MEMBERS", "CORE_MEMBERS", "EMBEDDING_DTYPES",
           "member_spec", "content_digest", "validate_metadata"]

#: Version 2: the hash covers every array and the metadata (version 1 hashed the embeddings only).
SCHEMA_VERSION = 2
REQUIRED_METADATA = ("schema_version", "backend", "model_id", "dim", "prefix", "categories", "tier_map", "tiers",
                     "k", "vote", "temperature", "center", "dtype", "n", "sha256", "counts", "created")
_HEX64 = re.compile(r"[0-9a-f]{64}")
_OLD_SCHEMA = {1: "schema 1 (workbench 0.2), whose hash covers the embeddings only"}


@dataclass(frozen=True)
class Member:
    """What one pool.npz member may be: dtype kinds, numbers of dimensions, and a byte budget.

    ``max_bytes(n, dim, n_categories)`` bounds the array's data, from the pool's
    own size, so nothing larger is ever read.
    """

    kinds: str
    ndims: tuple
    max_bytes: object


def _family_budget(n, dim, c):
    """Arrays that describe the pool (heads, calibration) are never larger than the pool itself, plus 1 MiB."""
    return n * dim * 4 + (c + 1) * dim * 8 + 2**20


#: Every member a pool.npz may hold; a name ending in ``*`` is a family (any name with that prefix).
#: Adding an array to the artifact means adding it here: the loader refuses any other name.
MEMBERS = {
    "metadata": Member("U", (0,), lambda n, dim, c: _config.ARTIFACT_MAX_METADATA_BYTES),
    "embeddings": Member("fi", (2,), lambda n, dim, c: n * dim * 4),
    # per-dimension scale of int8 embeddings (only with dtype "int8")
    "embeddings_scale": Member("f", (1,), lambda n, dim, c: dim * 8),
    "labels": Member("iu", (1,), lambda n, dim, c: n * 8),
    "ids": Member("U", (1,), lambda n, dim, c: n * 4 * _config.ARTIFACT_MAX_ID_CHARS),
    "center": Member("f", (1,), lambda n, dim, c: dim * 8),
    # (bags, hidden, dim) for the mlp head's networks
    "head_*": Member("fiu", (0, 1, 2, 3), _family_budget),
    "calibration_*": Member("fiu", (0, 1, 2), _family_budget),
    # the follow-up detector of conversations (workbench.core.follow_up): a centre and 2 * dim + 2 weights, and its
    # memory of labelled turns (int8 vectors and their scale, previous rows, follow-up flags), at most
    # FOLLOW_UP_MAX_TURNS turns
    "follow_up_memory": Member("i", (2,), lambda n, dim, c: _config.FOLLOW_UP_MAX_TURNS * dim),
    "follow_up_memory_scale": Member("f", (1,), lambda n, dim, c: dim * 8),
    "follow_up_previous": Member("i", (1,), lambda n, dim, c: _config.FOLLOW_UP_MAX_TURNS * 4),
    "follow_up_follows": Member("i", (1,), lambda n, dim, c: _config.FOLLOW_UP_MAX_TURNS),
    # the memory's principal directions (r, dim), r <= dim: the memory is kept in them
    "follow_up_projection": Member("f", (2,), lambda n, dim, c: dim * dim * 8),
    # its networks (bags, hidden, 2 * dim + 2), (bags, hidden), (bags, 2, hidden), (bags, 2): at most 16 bags of 1,024
    "follow_up_hidden_coef": Member("f", (3,), lambda n, dim, c: 16 * 1024 * (2 * dim + 2) * 4),
    "follow_up_hidden_intercept": Member("f", (2,), lambda n, dim, c: 16 * 1024 * 8),
    "follow_up_out_coef": Member("f", (3,), lambda n, dim, c: 16 * 2 * 1024 * 8),
    "follow_up_out_intercept": Member("f", (2,), lambda n, dim, c: 16 * 2 * 8),
    "follow_up_*": Member("f", (1,), lambda n, dim, c: (3 * dim + 2) * 8),
    # an approximate-nearest-neighbour index, serialised to bytes: the vectors again plus its graph
    "ann_index": Member("u", (1,), lambda n, dim, c: 2 * n * dim * 4 + n * 1024 + 2**20),
}
CORE_MEMBERS = ("embeddings", "labels", "ids", "center", "metadata")
#: How the embeddings may be stored: int8 with a per-dimension scale (a quarter of float32), float16 or float32.
EMBEDDING_DTYPES = ("int8", "float16", "float32")


def member_spec(name):
    """The :class:`Member` rule of an array name, or None when the artifact may not hold it."""
    if name in MEMBERS and not name.endswith("*"):
        return MEMBERS[name]
    for pattern, spec in MEMBERS.items():
        if pattern.endswith("*") and name.startswith(pattern[:-1]) and len(name) > len(pattern) - 1:
            return spec
    return None


def _canonical_metadata(meta):
    body = {k: v for k, v in meta.items() if k != "sha256"}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def content_digest(arrays, metadata) -> str:
    """SHA-256 over every array but ``metadata`` (sorted by name: name, dtype, shape, bytes) and the metadata.

    The metadata enters as canonical JSON (sorted keys, no spaces) without its
    own ``sha256`` key, so the digest does not depend on how the file was zipped.
    """
    h = digest_start(metadata)
    for name in sorted(arrays):
        if name == "metadata":
            continue
        a = np.ascontiguousarray(arrays[name])
        h.update(digest_member_prefix(name, a.dtype, a.shape))
        h.update(a.reshape(-1).view(np.uint8) if a.size else b"")  # the bytes, without a copy
    return h.hexdigest()


def digest_start(metadata):
    """The :func:`content_digest` hash object after the schema line and the metadata (the loader streams the rest)."""
    h = hashlib.sha256(f"workbench pool.npz schema {SCHEMA_VERSION}\0".encode())
    h.update(_canonical_metadata(metadata).encode("utf-8"))
    return h


def digest_member_prefix(name, dtype, shape) -> bytes:
    """What :func:`content_digest` hashes before one array's bytes."""
    return f"\0{name}\0{np.dtype(dtype).str}\0{tuple(shape)}\0".encode()


def _short(v, limit=60):
    r = repr(v)
    return r if len(r) <= limit else r[:limit] + "..."


def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _names(meta, key, limit):
    v = meta[key]
    if not isinstance(v, list) or not v or len(v) > limit:
        raise ArtifactError(f"metadata {key} must be a list of 1 to {limit} names; got {_short(v)}")
    if not all(isinstance(x, str) and x for x in v):
        raise ArtifactError(f"metadata {key} must hold non-empty strings; got {_short(v)}")
    if len(set(v)) != len(v):
        raise ArtifactError(f"metadata {key} has duplicates: {_short(v)}")
    return v


def _check_version(meta):
    v = meta.get("schema_version")
    if _is_int(v) and v == SCHEMA_VERSION:
        return
    if _is_int(v) and v in _OLD_SCHEMA:
        raise ArtifactError(f"schema version {v}: {_OLD_SCHEMA[v]}; this workbench reads version {SCHEMA_VERSION}. "
                            "Export the pool again (workbench export --out PATH) to use it")
    raise ArtifactError(f"schema version {_short(v)} (this workbench reads {SCHEMA_VERSION})")


def _check_config(meta):
    if not _is_int(meta["k"]) or meta["k"] < 1:
        raise ArtifactError(f"metadata k must be an integer >= 1; got {_short(meta['k'])}")
    if meta["k"] > meta["n"]:
        raise ArtifactError(f"metadata k must be at most n = {meta['n']} (the pool size); got {meta['k']}")
    if not isinstance(meta["vote"], str) or meta["vote"] not in VOTE_RULES:
        raise ArtifactError(f"metadata vote must be one of {VOTE_RULES}; got {_short(meta['vote'])}")
    low, high = TEMPERATURE_RANGE
    if not _is_number(meta["temperature"]) or not low <= meta["temperature"] <= high:
        raise ArtifactError(f"metadata temperature must be a number between {low:g} and {high:g}; "
                            f"got {_short(meta['temperature'])}")
    if not isinstance(meta["center"], bool):
        raise ArtifactError(f"metadata center must be true or false; got {_short(meta['center'])}")


def _check_taxonomy(meta):
    cats = _names(meta, "categories", _config.ARTIFACT_MAX_CATEGORIES)
    tiers = _names(meta, "tiers", _config.ARTIFACT_MAX_CATEGORIES)
    tmap = meta["tier_map"]
    if not isinstance(tmap, dict) or set(tmap) != set(cats):
        raise ArtifactError(f"metadata tier_map must map exactly the categories {_short(cats)}; got {_short(tmap)}")
    bad = {c: t for c, t in tmap.items() if not isinstance(t, str) or t not in tiers}
    if bad:
        raise ArtifactError(f"metadata tier_map sends categories to unknown tiers: {_short(bad)} "
                            f"(tiers: {', '.join(tiers)})")
    cost = meta.get("cost")
    if cost is not None and not (isinstance(cost, list) and len(cost) == len(tiers) and all(
            isinstance(r, list) and len(r) == len(tiers) and all(_is_number(c) and c >= 0 for c in r) for r in cost)):
        raise ArtifactError(f"metadata cost must be a {len(tiers)}x{len(tiers)} matrix of finite numbers >= 0; "
                            f"got {_short(cost)}")
    counts = meta["counts"]
    if (not isinstance(counts, dict) or set(counts) != set(cats)
            or not all(_is_int(c) and c >= 0 for c in counts.values())):
        raise ArtifactError(f"metadata counts must give a count >= 0 for each category; got {_short(counts)}")
    if sum(counts.values()) != meta["n"]:
        raise ArtifactError(f"metadata counts add up to {sum(counts.values())}, not n = {meta['n']}")


def _check_decisions(meta):
    pol = meta.get("policy")
    if pol is not None:
        if not isinstance(pol, dict):
            raise ArtifactError(f"metadata policy must be an object; got {_short(pol)}")
        threshold = pol.get("threshold")
        if threshold is not None and not (_is_number(threshold) and 0 <= threshold <= 1):
            raise ArtifactError(f"metadata policy threshold must be a number in [0, 1] or null; got {_short(threshold)}")
        for key in ("name", "criterion"):
            if key in pol and not isinstance(pol[key], str):
                raise ArtifactError(f"metadata policy {key} must be a string; got {_short(pol[key])}")
        try:
            policy = DecisionPolicy.from_metadata(pol)
        except (ConfigError, TypeError, ValueError) as e:
            raise ArtifactError(f"metadata policy: {e}") from None
        if policy.cost is not None and len(policy.cost) != len(meta["tiers"]):
            raise ArtifactError(f"metadata policy cost matrix does not match the {len(meta['tiers'])} tiers")
    calibration = meta.get("calibration")
    if calibration is not None and (not isinstance(calibration, str) or calibration not in _calibrations()):
        raise ArtifactError(f"metadata calibration must be one of {', '.join(_calibrations())} or null; "
                            f"got {_short(calibration)}")
    head = meta.get("head", "knn")
    if not isinstance(head, str) or head not in HEADS:
        raise ArtifactError(f"metadata head must be one of {', '.join(HEADS)}; got {_short(head)}")


#: The k-NN softmax temperature a pool may carry: 1e-320 divided the shares into infinities (NaN confidences).
TEMPERATURE_RANGE = (1e-4, 1e4)
#: Largest magnitude of a head weight: softmax of larger logits overflows to NaN.
MAX_WEIGHT = 1e4
#: Value rules of the arrays that carry numbers the router computes with: ``name: (low, high)``.
VALUE_RANGES = {"head_coef": (-MAX_WEIGHT, MAX_WEIGHT), "head_intercept": (-MAX_WEIGHT, MAX_WEIGHT),
                "head_blend_weight": (0.0, 1.0), "calibration_x": (0.0, 1.0), "calibration_y": (0.0, 1.0),
                "calibration_temperature": (1e-3, 1e3), "calibration_coverage": (-1.0, 1.0),
                "follow_up_memory": (-127, 127), "follow_up_memory_scale": (0.0, 1.0), "follow_up_follows": (0, 1),
                "follow_up_previous": (-1, _config.FOLLOW_UP_MAX_TURNS), "follow_up_projection": (-1.0, 1.0)}


def _calibrations():
    from .calibration import CALIBRATIONS

    return CALIBRATIONS


def validate_values(arrays):
    """Refuse a ``head_*``, ``calibration_*`` or ``follow_up_*`` array with a NaN, an infinity or a value outside its range.

    Rules by name in :data:`VALUE_RANGES`; any other array of those families
    must hold finite numbers within ``MAX_WEIGHT``.
    """
    for name, a in arrays.items():
        if not name.startswith(("head_", "calibration_", "follow_up_")):
            continue
        low, high = VALUE_RANGES.get(name, (-MAX_WEIGHT, MAX_WEIGHT))
        v = np.asarray(a, np.float64)
        if v.size == 0:
            raise ArtifactError(f"array {name!r} is empty")
        if not np.isfinite(v).all():
            raise ArtifactError(f"array {name!r} holds NaN or infinite values")
        if v.min() < low or v.max() > high:
            raise ArtifactError(f"array {name!r} holds values from {v.min():g} to {v.max():g}; "
                                f"allowed: {low:g} to {high:g}")


def validate_metadata(meta):
    """Check decoded pool.npz metadata; raise :class:`ArtifactError` (one line, no file name) on the first problem.

    Checks the schema version, that every required key is there with the right
    type and range (``dim``, ``n`` within the limits of :mod:`workbench.config`,
    ``k`` between 1 and ``n``, a known vote rule, temperature > 0), and the
    cross-references: the tier map covers exactly the categories and names
    known tiers, the cost matrices match the tiers, the counts add up to ``n``,
    the policy and head are known.
    """
    if not isinstance(meta, dict):
        raise ArtifactError(f"metadata must be a JSON object; got {type(meta).__name__}")
    _check_version(meta)
    lacking = [k for k in REQUIRED_METADATA if k not in meta]
    if lacking:
        raise ArtifactError(f"metadata lacks {lacking}")
    for key in ("backend", "model_id", "prefix", "created"):
        if not isinstance(meta[key], str) or (key == "backend" and not meta[key]):
            raise ArtifactError(f"metadata {key} must be a{' non-empty' if key == 'backend' else ''} string; "
                                f"got {_short(meta[key])}")
    for key, top in (("dim", _config.ARTIFACT_MAX_DIM), ("n", _config.ARTIFACT_MAX_ROWS)):
        if not _is_int(meta[key]) or not 1 <= meta[key] <= top:
            raise ArtifactError(f"metadata {key} must be an integer between 1 and {top}; got {_short(meta[key])}")
    if meta["dtype"] not in EMBEDDING_DTYPES:
        raise ArtifactError(f"metadata dtype must be one of {', '.join(EMBEDDING_DTYPES)}; got {_short(meta['dtype'])}")
    if not isinstance(meta["sha256"], str) or not _HEX64.fullmatch(meta["sha256"]):
        raise ArtifactError(f"metadata sha256 must be 64 lowercase hex digits; got {_short(meta['sha256'])}")
    _check_config(meta)
    _check_taxonomy(meta)
    _check_decisions(meta)
    return meta
