"""pool.npz: the artifact the production router loads.

Arrays only (``.npy`` members of a zip, never pickles):

- ``embeddings`` (n, d) int8, float16 or float32: L2-normalised rows (centred first when the config
  says so); int8 comes with ``embeddings_scale`` (d,) float32, each dimension's largest magnitude
  (a stored value ``q`` means ``q * scale / 127``), and the loader renormalises the rows
- ``labels`` (n,) int16 category index
- ``ids`` (n,) unicode
- ``center`` (d,) float32 (zeros when centering is off)
- ``metadata`` 0-d unicode: JSON with schema version, backend, taxonomy,
  k-NN config, decision policy, counts, creation time and ``sha256``
  (:func:`content_digest`); its schema is :mod:`workbench.core.artifact_schema`.
- optional arrays of the name families in :data:`~workbench.core.artifact_schema.MEMBERS`
  (``head_*`` for router heads, ``calibration_*``, ``ann_index``): adding an
  array to the artifact means adding its name there. ``ann_index`` (1-D uint8)
  is a serialised HNSW index of a big pool, described (SHA-256 included) by
  the metadata's ``ann`` (see :mod:`.ann`).

**What the hash protects against.** ``sha256`` covers every array (name, dtype,
shape, bytes) and the metadata without the hash itself, in a canonical form:
any corruption or edit of the file (a tier map, ``k``, a label, a head weight)
is refused on load. It does not stop a forger, who can recompute it; a
deployment that must know it runs *its* artifact pins the digest
(``Router.load(path, sha256=...)``, ``--pool-sha256``).

**What the loader reads.** Only the members of ``MEMBERS`` (any other is
refused). Every member's ``.npy`` header (dtype, shape) and zip entry size are
read and checked against the others and the metadata before any data is read;
the rows are bounded by the file itself (the embeddings may not declare more
than :data:`~workbench.config.ARTIFACT_MAX_VECTOR_RATIO` times their
compressed size), and every other budget follows from the rows, so a small
file cannot expand into gigabytes (a "decompression bomb"). The digest is
computed while the data streams in, without a second copy of any array.

This module needs numpy only: the router imports it.
"""
from __future__ import annotations

import hashlib
import json
import time
import zipfile
from functools import partial
from pathlib import Path

import numpy as np

from .. import config as _config
from ..errors import ArtifactError
from ..io import atomic_file, parse_json
from .ann import check_ann
from .artifact_schema import (CORE_MEMBERS, EMBEDDING_DTYPES, MEMBERS, SCHEMA_VERSION, Member, content_digest,
                              digest_member_prefix, digest_start, member_spec, validate_metadata,
                              validate_values)
from .calibration import Calibration
from .coverage import CoverageCap
from .follow_up import FollowUpDetector
from .heads import load_head
from .knn import KNNConfig, center
from .quantize import dequantize, quantize
from .question import QuestionBlend

__all__ = ["SCHEMA_VERSION", "MEMBERS", "Member", "content_digest", "quantize", "dequantize", "write_pool_npz",
           "load_pool_npz", "PoolArtifact"]


def _ann_index(stored, build):
    """The ``ann_index`` member and its metadata: built over the vectors exactly as loaded (or none)."""
    if not build:
        return {}, {}
    from .ann import HNSWIndex, ann_metadata

    index = HNSWIndex.build(np.asarray(stored, np.float32))
    array = index.to_array()
    return {"ann_index": array}, {"ann": ann_metadata(array, index, n=len(stored))}


def _check_written(path, tmp):
    """Refuse a written temporary file the loader would refuse, naming ``path`` (where it was to go)."""
    try:
        load_pool_npz(tmp)
    except ArtifactError as e:
        raise ArtifactError(str(e).replace(str(tmp), str(path)) + "; nothing written") from None


def _check_shapes(x, labels, ids, embedder_spec, dtype):
    if x.ndim != 2 or len(x) != len(labels) or len(x) != len(ids):
        raise ArtifactError(f"embeddings {x.shape}, labels {labels.shape} and ids {ids.shape} do not match")
    if x.shape[1] != int(embedder_spec["dim"]):
        raise ArtifactError(f"embeddings have dimension {x.shape[1]}, backend says {embedder_spec['dim']}")
    if str(dtype) not in EMBEDDING_DTYPES:
        raise ArtifactError(f"dtype must be one of {', '.join(EMBEDDING_DTYPES)}; got {dtype!r}")


def _stored_vectors(vectors, dtype):
    """``(stored, scale arrays, what the router will read back)`` of the vectors in ``dtype``."""
    scaled = {}
    if str(dtype) == "int8":
        stored, scaled["embeddings_scale"] = quantize(vectors)
        return stored, scaled, dequantize(stored, scaled["embeddings_scale"])
    stored = vectors.astype(dtype)
    return stored, scaled, stored.astype(np.float32)


def _metadata(taxonomy, embedder_spec, cfg, stored, labels):
    """The metadata every pool.npz carries: schema, backend, taxonomy, k-NN configuration, counts, time."""
    cats = list(taxonomy.categories)
    return dict(
        schema_version=SCHEMA_VERSION, **embedder_spec, categories=cats, tier_map=dict(taxonomy.tier_map),
        tiers=list(taxonomy.tiers), cost=taxonomy.cost_matrix().tolist(),
        k=int(cfg["k"]), vote=cfg["vote"], temperature=float(cfg["temperature"]), center=bool(cfg["center"]),
        dtype=str(stored.dtype), n=int(len(stored)),
        counts={c: int((labels == i).sum()) for i, c in enumerate(cats)},
        created=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    )


def _checked_extra_arrays(extra_arrays):
    """The extra arrays, each a plain numeric array under a name :data:`MEMBERS` allows."""
    out = {}
    for name, a in extra_arrays.items():
        a = np.asarray(a)
        if name in CORE_MEMBERS or name == "embeddings_scale" or member_spec(name) is None:
            raise ArtifactError(f"array name {name!r} is not one pool.npz may hold (known: {', '.join(MEMBERS)})")
        if a.dtype.kind not in member_spec(name).kinds:
            raise ArtifactError(f"array {name!r} has dtype {a.dtype}; pool.npz holds plain numeric arrays only")
        out[name] = a
    return out


def write_pool_npz(path, embeddings, labels, ids, *, taxonomy, embedder_spec, config, dtype=_config.EXPORT_DTYPE,
                   extra_arrays=None, extra_metadata=None, ann=False):
    """Write pool.npz atomically; the file takes ``path``'s place only once :func:`load_pool_npz` accepts it.

    Parameters
    ----------
    path : path
    embeddings : (n, d) array of L2-normalised rows (not centred)
    labels : (n,) category indices in ``taxonomy.categories`` order
    ids : (n,) message ids
    taxonomy : Taxonomy
    embedder_spec : dict
        ``Embedder.spec`` of the backend that made the vectors.
    config : KNNConfig or dict
        k, vote, temperature, center.
    dtype : {"int8", "float16", "float32"}
        How the vectors are stored (int8: a quarter of float32, see :func:`quantize`).
    extra_arrays, extra_metadata : dict, optional
        Added arrays (plain numeric arrays whose names :data:`MEMBERS` allows) and metadata keys.
    ann : bool
        Also store an HNSW index of the stored vectors (needs faiss; see :mod:`workbench.core.ann`).

    Returns
    -------
    dict, the metadata written.

    Raises
    ------
    ArtifactError
        When the result would not load (NaN vectors, an unknown array name, a
        head without its arrays, ...); nothing is written then.
    """
    x = np.asarray(embeddings, np.float32)
    labels = np.asarray(labels, np.int16)
    ids = np.asarray([str(i) for i in ids])
    cfg = config.to_dict() if hasattr(config, "to_dict") else dict(config)
    _check_shapes(x, labels, ids, embedder_spec, dtype)
    mean = x.mean(axis=0) if cfg["center"] else np.zeros(x.shape[1], np.float32)
    # checked here as well as by the loader: int8 storage would turn a NaN or a constant row into plausible numbers
    _check_vectors(path, x, mean, "; nothing written")
    stored, scaled, restored = _stored_vectors(center(x, mean) if cfg["center"] else x, dtype)
    meta = _metadata(taxonomy, embedder_spec, cfg, stored, labels)
    meta.update(extra_metadata or {})
    ann_arrays, ann_meta = _ann_index(restored, ann)
    meta.update(ann_meta)
    arrays = dict(embeddings=stored, labels=labels, ids=ids, center=mean.astype(np.float32), **scaled, **ann_arrays)
    arrays.update(_checked_extra_arrays(extra_arrays or {}))
    try:
        meta["sha256"] = content_digest(arrays, meta)
    except ValueError as e:  # NaN or infinity in the metadata: JSON cannot say it
        raise ArtifactError(f"metadata is not valid JSON ({e})") from None
    arrays["metadata"] = np.array(json.dumps(meta, ensure_ascii=False, allow_nan=False))
    with atomic_file(path, check=partial(_check_written, path)) as fh:
        np.savez_compressed(fh, **arrays)  # ids (UTF-32) and metadata shrink ~30x, vectors ~8%
    return meta


class PoolArtifact:
    """A validated pool.npz in memory: ``embeddings`` (float32), ``labels``, ``ids``, ``center``, ``metadata``.

    ``digest`` is the content digest (``metadata["sha256"]``, checked).
    """

    def __init__(self, embeddings, labels, ids, center, metadata, arrays):
        self.embeddings, self.labels, self.ids, self.center = embeddings, labels, ids, center
        self.metadata, self.arrays = metadata, arrays

    @property
    def digest(self) -> str:
        return self.metadata["sha256"]

    @property
    def config(self) -> KNNConfig:
        """The k-NN configuration the pool was exported with."""
        return KNNConfig.from_dict(self.metadata)

    def __repr__(self):
        m = self.metadata
        return f"PoolArtifact(n={len(self.labels)}, backend={m['backend']!r}, k={m['k']}, vote={m['vote']!r})"


def _not_a_pool(path, head):
    """Why a file that is not a zip archive is not a pool.npz, saying what it looks like."""
    if head.startswith(b"\x93NUMPY"):
        return "is a single .npy array, not a pool.npz"
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if text[:1] in (b"{", b"["):
        return ("looks like a JSON/JSONL file (a pool source or a message file?), not a pool.npz: "
                "--pool takes the file `workbench export --out` writes")
    if not head:
        return "is empty, not a pool.npz"
    return "is not a pool.npz (not a zip archive): --pool takes the file `workbench export --out` writes"


def _read_header(zf, info, name):
    """``(shape, dtype, header bytes)`` of one member, checked against its :data:`MEMBERS` entry; no data read."""
    spec = member_spec(name)
    fmt = np.lib.format
    with zf.open(info) as fh:
        version = fmt.read_magic(fh)
        if version not in ((1, 0), (2, 0)):
            raise ArtifactError(f"array {name!r} is in .npy format {version}, which pool.npz does not use")
        read_header = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
        shape, fortran, dtype = read_header(fh)
        offset = fh.tell()
    if dtype.hasobject or dtype.names is not None or dtype.kind not in spec.kinds or fortran:
        raise ArtifactError(f"array {name!r} has dtype {dtype}{' in Fortran order' if fortran else ''}, which "
                            "pool.npz does not hold (pickles never load)")
    if len(shape) not in spec.ndims:
        raise ArtifactError(f"array {name!r} has {len(shape)} dimension(s); expected {spec.ndims}")
    nbytes = int(np.prod(shape, dtype=object)) * dtype.itemsize
    if info.file_size != offset + nbytes:
        raise ArtifactError(f"array {name!r} declares {nbytes} bytes of data, but its zip entry {info.file_size}")
    return shape, dtype, nbytes


def _check_headers(headers, infos, meta):
    """Every member's header against the others and the metadata, and the rows against the file's own size."""
    n, d = meta["n"], meta["dim"]
    expected = {"embeddings": (n, d), "labels": (n,), "ids": (n,), "center": (d,), "embeddings_scale": (d,)}
    for name, shape in expected.items():
        if name in headers and tuple(headers[name][0]) != shape:
            raise ArtifactError(f"array {name!r} has shape {headers[name][0]}; metadata says n={n}, dim={d} "
                                f"(expected {shape})")
    if str(headers["embeddings"][1]) != meta["dtype"]:
        raise ArtifactError(f"embeddings are {headers['embeddings'][1]}, metadata says {meta['dtype']}")
    declared, packed = headers["embeddings"][2], infos["embeddings"].compress_size
    if declared > packed * _config.ARTIFACT_MAX_VECTOR_RATIO + 2**16:
        raise ArtifactError(f"embeddings declare {declared} bytes in {packed} compressed: more than "
                            f"{_config.ARTIFACT_MAX_VECTOR_RATIO}x, which real vectors never compress "
                            "(a decompression bomb?)")
    limits = (n, d, len(meta["categories"]))
    for name, (_, _, nbytes) in headers.items():
        budget = member_spec(name).max_bytes(*limits)
        if nbytes > budget:
            raise ArtifactError(f"array {name!r} declares {nbytes} bytes, more than the {budget} a pool of this "
                                "size needs")


def _read_data(zf, info, shape, dtype, nbytes, digest):
    """One member's data, read in blocks into its array and fed to ``digest`` on the way (no second copy)."""
    out = np.empty(shape, dtype)
    view = out.reshape(-1).view(np.uint8) if out.size else memoryview(bytearray(0))
    with zf.open(info) as fh:
        fh.seek(info.file_size - nbytes)
        done = 0
        while done < nbytes:
            got = fh.readinto(view[done:done + (1 << 22)])
            if not got:
                raise ArtifactError(f"array data ends after {done} of {nbytes} bytes")
            digest.update(view[done:done + got])
            done += got
    return out


def _read_members(path):
    """``({name: array}, metadata, content digest)``: every header checked against the others before any data is read."""
    with open(path, "rb") as raw:
        head = raw.read(8)
    if not head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        raise ArtifactError(f"{path} {_not_a_pool(path, head)}")
    with zipfile.ZipFile(path) as zf:
        infos = zf.infolist()
        if len(infos) > _config.ARTIFACT_MAX_MEMBERS:
            raise ArtifactError(f"{path}: {len(infos)} members, more than a pool.npz holds")
        by_name = {}
        for info in infos:
            name = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
            if member_spec(name) is None or not info.filename.endswith(".npy") or name in by_name:
                raise ArtifactError(f"{path}: unexpected member {info.filename!r} (a pool.npz holds "
                                    f"{', '.join(MEMBERS)})")
            by_name[name] = info
        missing = [a for a in CORE_MEMBERS if a not in by_name]
        if missing:
            raise ArtifactError(f"{path}: missing array(s) {missing}")
        try:
            headers = {name: _read_header(zf, info, name) for name, info in by_name.items()}
            limit = MEMBERS["metadata"].max_bytes(0, 0, 0)
            if headers["metadata"][2] > limit:
                raise ArtifactError(f"array 'metadata' declares {headers['metadata'][2]} bytes, more than {limit}")
            arrays = {"metadata": _read_data(zf, by_name["metadata"], *headers["metadata"], hashlib.sha256())}
            meta = _decode_metadata(path, arrays["metadata"])
            _check_headers(headers, by_name, meta)
            digest = digest_start(meta)
            for name in sorted(by_name):  # the digest's order: it is computed as the data streams in
                if name != "metadata":
                    shape, dtype, nbytes = headers[name]
                    digest.update(digest_member_prefix(name, dtype, shape))
                    arrays[name] = _read_data(zf, by_name[name], shape, dtype, nbytes, digest)
        except ArtifactError as e:
            raise ArtifactError(f"{path}: {e}") from None
    return arrays, meta, digest.hexdigest()


def _decode_metadata(path, arr):
    if arr.shape != ():
        raise ArtifactError(f"{path}: metadata must be a 0-d string array; got shape {arr.shape}")
    meta, problem = parse_json(str(arr))
    if problem:
        raise ArtifactError(f"{path}: metadata is not JSON ({problem})")
    try:
        return validate_metadata(meta)
    except ArtifactError as e:
        raise ArtifactError(f"{path}: {e}") from None


def _check_arrays(path, arrays, meta, digest):
    """Shapes, dtypes, label range, counts and the hash (``digest``, streamed) of the arrays against the metadata."""
    emb, labels, ids, mean = arrays["embeddings"], arrays["labels"], arrays["ids"], arrays["center"]
    n, d = meta["n"], meta["dim"]
    if emb.shape != (n, d) or labels.shape != (n,) or ids.shape != (n,) or mean.shape != (d,):
        raise ArtifactError(f"{path}: inconsistent shapes: embeddings {emb.shape}, labels {labels.shape}, "
                            f"ids {ids.shape}, center {mean.shape}; metadata says n={n}, dim={d}")
    if str(emb.dtype) != meta["dtype"]:
        raise ArtifactError(f"{path}: embeddings are {emb.dtype}, metadata says {meta['dtype']}")
    if digest != meta["sha256"]:
        raise ArtifactError(f"{path}: hash mismatch: an array or the metadata was changed after export "
                            "(file corrupted or edited)")
    n_cat = len(meta["categories"])
    if labels.min() < 0 or labels.max() >= n_cat:
        raise ArtifactError(f"{path}: label index out of range for {n_cat} categories")
    counts = np.bincount(labels.astype(np.int64), minlength=n_cat)
    if [int(counts[i]) for i in range(n_cat)] != [meta["counts"][c] for c in meta["categories"]]:
        raise ArtifactError(f"{path}: metadata counts do not match the labels")
    scale = arrays.get("embeddings_scale")
    if (meta["dtype"] == "int8") != (scale is not None):
        raise ArtifactError(f"{path}: embeddings_scale goes with int8 embeddings, and only with them")
    if scale is not None:
        if scale.shape != (d,) or not np.isfinite(scale).all() or (scale <= 0).any():
            raise ArtifactError(f"{path}: embeddings_scale must hold {d} finite positive numbers")
        x = dequantize(emb, scale)
    else:
        x = emb.astype(np.float32)
    _check_vectors(path, x, mean)
    try:
        validate_values(arrays)
        Calibration.from_arrays(meta.get("calibration"), arrays)
        CoverageCap.from_arrays(meta.get("coverage"), arrays)
        _check_follow_up(meta.get("follow_up"), arrays, d)
        QuestionBlend.from_metadata(meta.get("question"))
        load_head(meta.get("head", "knn"), arrays, n_cat, d)
    except ArtifactError as e:
        raise ArtifactError(f"{path}: {e}") from None
    return x


def _check_follow_up(meta, arrays, dim):
    detector = FollowUpDetector.from_arrays(meta, arrays)
    if detector is not None and detector.dim != dim:
        raise ArtifactError(f"follow-up detector has {detector.dim} dimensions, the embeddings {dim}")


def _check_vectors(path, x, mean, suffix=""):
    """No NaN or infinity, and no constant (degenerate) row: what the writer checks before quantizing hides."""
    if not np.isfinite(x).all() or not np.isfinite(mean).all():
        raise ArtifactError(f"{path}: embeddings contain NaN or infinite values{suffix}")
    if (np.ptp(x, axis=1) == 0).any():
        raise ArtifactError(f"{path}: {int((np.ptp(x, axis=1) == 0).sum())} constant (degenerate) embedding "
                            f"row(s){suffix}")


def _file_sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(2**20), b""):
            h.update(block)
    return h.hexdigest()


def load_pool_npz(path, *, sha256=None) -> PoolArtifact:
    """Load and check a pool.npz: members, sizes, metadata schema, shapes, hash, and no NaN or constant vectors.

    Parameters
    ----------
    path : path
    sha256 : str, optional
        The digest a deployment expects: the file's SHA-256 (``sha256sum pool.npz``)
        or its content digest (``metadata["sha256"]``, printed by ``workbench export``).

    Raises
    ------
    ArtifactError
        One line naming the file and what is wrong.
    """
    path = Path(path)
    try:
        arrays, meta, digest = _read_members(path)
    except ArtifactError:
        raise
    except FileNotFoundError:
        raise ArtifactError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ArtifactError(f"{path}: is a folder, not a pool.npz") from None
    except Exception as e:  # zip, zlib, CRC or .npy header damage: all mean "not a readable pool.npz"
        reason = " ".join(f"{type(e).__name__}: {e}".split())[:200]
        raise ArtifactError(f"{path}: damaged or not a pool.npz ({reason})") from None
    x = _check_arrays(path, arrays, meta, digest)
    check_ann(path, arrays, meta)
    if sha256 is not None:
        expected = str(sha256).strip().lower()
        if expected not in (meta["sha256"], _file_sha256(path)):
            raise ArtifactError(f"{path}: SHA-256 is not the expected {expected[:16]}... (content digest "
                                f"{meta['sha256'][:16]}...): not the pinned artifact")
    return PoolArtifact(x, arrays["labels"].astype(np.int64), arrays["ids"], arrays["center"].astype(np.float32),
                        meta, arrays)
