"""Embedding a pool: the on-disk vector cache, and a validated pool together with its vectors.

Vectors are cached by backend + model + the hash of the text the backend
really embeds (:meth:`~workbench.core.embed.Embedder.prepare`: control
characters replaced, cut at the backend's length cap), so a second run
embeds only new texts, a change to that preparation re-embeds exactly the
texts it changes, and an interrupted run keeps every chunk it finished. A
cached vector is used only when it is sound (right length, finite, unit
norm); any other is embedded again.
"""
from __future__ import annotations

import hashlib
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import config as _config
from ..core.embed import Embedder, get_embedder
from ..core.text import is_clipped
from ..io import remove_stale_temps

log = logging.getLogger(__name__)

__all__ = ["EmbeddingCache", "embed_texts", "EmbeddedPool", "load_embedded_pool", "clipped_messages"]


def _slug(text):
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text)[:80]


class EmbeddingCache:
    """Vectors on disk, keyed by backend + model + text hash.

    Vectors are appended in shards, each written atomically as soon as its
    chunk is embedded, so an interrupted run keeps what it finished.

    Parameters
    ----------
    directory : path
        Root of the cache; each backend/model gets a sub-folder.
    embedder : Embedder
    """

    def __init__(self, directory, embedder):
        self.embedder = embedder
        self.dir = Path(directory) / _slug(f"{embedder.name}--{embedder.model_id}")
        self._store = None

    def key(self, text):
        """Cache key of ``text``: backend, model and the text as the backend embeds it."""
        text = self.embedder.prepare(text) if hasattr(self.embedder, "prepare") else str(text)
        data = f"{self.embedder.name}\0{self.embedder.model_id}\0{text}".encode("utf-8", "surrogatepass")
        return hashlib.sha256(data).hexdigest()

    #: Shards beyond this many are merged into one after a run.
    max_shards = 16

    def _load(self):
        if self._store is None:
            self._store = {}
            # a killed run leaves its half-written shard behind: remove it once its process is gone
            remove_stale_temps(self.dir, "shard-*.npz.tmp", r"shard-\d+-(\d+)\.npz\.tmp")
            self._shards = sorted(self.dir.glob("shard-*.npz"))
            for shard in self._shards:
                try:
                    with np.load(shard, allow_pickle=False) as z:
                        for k, v in zip(z["keys"], z["vectors"]):
                            self._store[str(k)] = v
                except Exception as e:  # a damaged shard costs only its vectors
                    log.warning("ignoring unreadable cache shard %s (%s)", shard, e)
        return self._store

    def get(self, keys):
        """The cached vector of each key, or None when it is missing or unsound (then it is embedded again)."""
        store = self._load()
        out = [store.get(k) for k in keys]
        bad = [i for i, v in enumerate(out) if v is not None and not self._sound(v)]
        if bad:
            log.warning("%s: %d cached vector(s) are unsound (wrong length, NaN or not unit norm); embedding them "
                        "again", self.dir, len(bad))
            for i in bad:
                out[i] = None
        return out

    def _sound(self, v):
        """A cache entry the pool can use: a finite float vector of the backend's length with unit norm."""
        if not isinstance(v, np.ndarray) or v.shape != (int(self.embedder.dim),) or v.dtype.kind != "f":
            return False
        if not np.isfinite(v).all():
            return False
        return abs(float(np.linalg.norm(v.astype(np.float64))) - 1.0) < 1e-3

    def _write_shard(self, keys, vectors):
        self.dir.mkdir(parents=True, exist_ok=True)
        name = f"shard-{time.time_ns()}-{os.getpid()}.npz"
        tmp = self.dir / (name + ".tmp")
        with open(tmp, "wb") as fh:
            np.savez(fh, keys=np.array(keys), vectors=np.asarray(vectors, np.float32))
        os.replace(tmp, self.dir / name)
        return self.dir / name

    def put(self, keys, vectors):
        """Add vectors; they are on disk (in a new shard) when this returns."""
        if not len(keys):
            return
        store = self._load()
        self._shards.append(self._write_shard(keys, vectors))
        store.update(zip(keys, np.asarray(vectors, np.float32)))

    def compact(self):
        """Merge the shards this cache has read or written into one, when there are many.

        The merged shard is written before the old ones are removed, so an
        interruption loses nothing.
        """
        store = self._load()
        if len(self._shards) <= self.max_shards or not store:
            return
        keys = list(store)
        merged = self._write_shard(keys, np.stack([store[k] for k in keys]))
        for shard in self._shards:
            shard.unlink(missing_ok=True)
        self._shards = [merged]


def _from_shards(texts, todo, out, shards, embedder, *, other_backends="error"):
    """Fill ``out`` from embedded-log shards where they hold the text; returns the positions still to embed."""
    from ..io import text_hash
    from .shards import lookup_vectors

    hashes = {i: text_hash(texts[i]) for i in todo}
    found = lookup_vectors(shards, set(hashes.values()), spec=embedder.spec, other_backends=other_backends)
    rest = []
    for i in todo:
        v = found.get(hashes[i])
        if v is None:
            rest.append(i)
        else:
            out[i] = v
    log.info("%d of %d text(s) found in the shards", len(todo) - len(rest), len(todo))
    return rest


def embed_texts(texts, embedder=None, *, cache_dir=None, chunk_size=_config.EMBED_CHUNK_SIZE, progress=False,
                shards=None, other_backends="error"):
    """Embed ``texts``, reusing and filling the on-disk cache.

    Parameters
    ----------
    texts : sequence of str
    embedder : Embedder or str, optional
        Backend instance or spec; default ``e5-small``.
    cache_dir : path or False, optional
        Cache root (default ``data/interim/embeddings``); ``False`` disables caching.
    chunk_size : int
        Texts embedded (and cached) per step.
    progress : bool
        Show a progress bar over the texts that need embedding.
    shards : path or list of paths, optional
        Shard folders or files of ``workbench embed`` (same backend): texts found there are not embedded again.
    other_backends : {"error", "skip"}
        What a shard of another backend is (a composite backend skips them: it reads its own and its parts').

    Returns
    -------
    numpy.ndarray of shape (len(texts), dim), float32, L2-normalised rows.
    """
    if not isinstance(embedder, Embedder):
        embedder = get_embedder(embedder)
    texts = list(texts)
    if hasattr(embedder, "parts") and hasattr(embedder, "combine"):  # a composite is cached per part
        out = np.zeros((len(texts), embedder.dim), np.float32)
        todo = list(range(len(texts)))
        if shards is not None and todo:  # shards embedded with the composite itself, then each part's
            todo = _from_shards(texts, todo, out, shards, embedder, other_backends="skip")
        if todo:
            rest = [texts[i] for i in todo]
            out[todo] = embedder.combine([embed_texts(rest, p, cache_dir=cache_dir, chunk_size=chunk_size,
                                                      progress=progress, shards=shards, other_backends="skip")
                                          for p in embedder.parts], rest)
        return out
    # what the backend really embeds: two texts that prepare alike are embedded once, under one key
    prepared = [embedder.prepare(t) for t in texts]
    out = np.zeros((len(texts), embedder.dim), np.float32)
    cache = None if cache_dir is False else EmbeddingCache(cache_dir or _config.CACHE_DIR, embedder)
    if cache is None:
        todo = list(range(len(texts)))
        keys = [None] * len(texts)
    else:
        keys = [cache.key(t) for t in prepared]
        todo = []
        for i, v in enumerate(cache.get(keys)):
            if v is None:
                todo.append(i)
            else:
                out[i] = v
    if shards is not None and todo:
        todo = _from_shards(texts, todo, out, shards, embedder, other_backends=other_backends)
    # identical texts are embedded once
    first = {}
    for i in todo:
        first.setdefault(prepared[i], i)
    unique = list(first.values())
    if unique:
        log.info("embedding %d new text(s) with %s (%d cached)", len(unique), embedder.name, len(texts) - len(todo))
    bar = None
    if progress and unique:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(unique), desc=f"embed {embedder.name}", unit="msg")
    for start in range(0, len(unique), chunk_size):
        idx = unique[start:start + chunk_size]
        vec = embedder.encode([prepared[i] for i in idx])
        out[idx] = vec
        if cache is not None:
            cache.put([keys[i] for i in idx], vec)
        if bar is not None:
            bar.update(len(idx))
    if bar is not None:
        bar.close()
    if cache is not None and unique:
        cache.compact()
    for i in todo:
        out[i] = out[first[prepared[i]]]
    return out


@dataclass
class EmbeddedPool:
    """A validated pool with its vectors (row ``i`` of ``vectors`` is ``frame.iloc[i]``)."""

    frame: object          # pandas.DataFrame from load_pool
    vectors: np.ndarray    # (n, dim) float32, L2-normalised
    taxonomy: object       # Taxonomy
    embedder: object       # Embedder
    dropped: list = field(default_factory=list)  # exact duplicates dropped while loading
    files: list = field(default_factory=list)    # pool files read
    clipped: list = field(default_factory=list)  # messages longer than the backend's cap: file, line, id, chars

    @property
    def labels(self):
        """Category index per row, in ``taxonomy.categories`` order."""
        return self.taxonomy.category_index(self.frame["category"])

    @property
    def ids(self):
        return self.frame["id"].astype(str).to_numpy()

    def subset(self, rows):
        """The pool restricted to ``rows`` (positions), vectors included."""
        rows = np.asarray(rows)
        return EmbeddedPool(self.frame.iloc[rows].reset_index(drop=True), self.vectors[rows], self.taxonomy,
                            self.embedder, [], self.files)


def load_embedded_pool(pool=None, *, taxonomy=None, backend=None, cache_dir=None, progress=False, threads=None,
                       shards=None):
    """Load the pool sources, validate them and embed them (cached).

    Parameters
    ----------
    pool : path, directory or list, optional
        Pool sources (default ``data/pool``).
    taxonomy : Taxonomy or path, optional
    backend : str or Embedder, optional
        Backend spec (default ``e5-small``).
    cache_dir : path or False, optional
    progress : bool
    threads : int, optional
        Encoder threads (default: all cores).
    shards : path or list of paths, optional
        Shards of ``workbench embed`` to take vectors from (see :func:`embed_texts`).
    """
    from ..core.taxonomy import Taxonomy, load_taxonomy
    from .pool import load_pool

    if not isinstance(taxonomy, Taxonomy):
        taxonomy = load_taxonomy(taxonomy)
    embedder = backend if isinstance(backend, Embedder) else get_embedder(backend, threads=threads)
    loaded = load_pool(pool, taxonomy)
    clipped = clipped_messages(loaded.frame, embedder)
    vectors = embed_texts(loaded.frame["text"], embedder, cache_dir=cache_dir, progress=progress, shards=shards)
    return EmbeddedPool(loaded.frame, vectors, taxonomy, embedder, loaded.dropped, loaded.files, clipped)


def clipped_messages(frame, embedder):
    """Pool messages longer than the backend's cap (it embeds their beginning and end), each logged with file:line.

    Returns
    -------
    list of dict with ``file``, ``line``, ``id``, ``chars``.
    """
    cap = getattr(embedder, "max_chars", None)
    out = [{"file": f, "line": int(n), "id": str(i), "chars": len(t)}
           for t, f, n, i in zip(frame["text"], frame["file"], frame["line"], frame["id"]) if is_clipped(t, cap)]
    for c in out[:20]:
        log.warning("%s:%d: message %r has %d characters; %s embeds %d of them (its beginning and end)", c["file"],
                    c["line"], c["id"], c["chars"], embedder.name, cap)
    if len(out) > 20:
        log.warning("... and %d more message(s) longer than %d characters", len(out) - 20, cap)
    return out
