"""Embedding a pool: the on-disk vector cache, and a validated pool together with its vectors.

Vectors are cached by backend + model + text hash, so a second run embeds
only new texts, and an interrupted run keeps every chunk it finished.
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

log = logging.getLogger(__name__)

__all__ = ["EmbeddingCache", "embed_texts", "EmbeddedPool", "load_embedded_pool"]


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
        return hashlib.sha256(f"{self.embedder.name}\0{self.embedder.model_id}\0{text}".encode()).hexdigest()

    #: Shards beyond this many are merged into one after a run.
    max_shards = 16

    def _load(self):
        if self._store is None:
            self._store = {}
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
        store = self._load()
        return [store.get(k) for k in keys]

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


def _from_shards(texts, todo, out, shards, embedder):
    """Fill ``out`` from embedded-log shards where they hold the text; returns the positions still to embed."""
    from ..io import text_hash
    from .shards import lookup_vectors

    hashes = {i: text_hash(texts[i]) for i in todo}
    found = lookup_vectors(shards, set(hashes.values()), spec=embedder.spec)
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
                shards=None):
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

    Returns
    -------
    numpy.ndarray of shape (len(texts), dim), float32, L2-normalised rows.
    """
    if not isinstance(embedder, Embedder):
        embedder = get_embedder(embedder)
    texts = list(texts)
    out = np.zeros((len(texts), embedder.dim), np.float32)
    cache = None if cache_dir is False else EmbeddingCache(cache_dir or _config.CACHE_DIR, embedder)
    if cache is None:
        todo = list(range(len(texts)))
        keys = [None] * len(texts)
    else:
        keys = [cache.key(t) for t in texts]
        todo = []
        for i, v in enumerate(cache.get(keys)):
            if v is None:
                todo.append(i)
            else:
                out[i] = v
    if shards is not None and todo:
        todo = _from_shards(texts, todo, out, shards, embedder)
    # identical texts are embedded once
    first = {}
    for i in todo:
        first.setdefault(texts[i], i)
    unique = list(first.values())
    if unique:
        log.info("embedding %d new text(s) with %s (%d cached)", len(unique), embedder.name, len(texts) - len(todo))
    bar = None
    if progress and unique:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(unique), desc=f"embed {embedder.name}", unit="msg")
    for start in range(0, len(unique), chunk_size):
        idx = unique[start:start + chunk_size]
        vec = embedder.encode([texts[i] for i in idx])
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
        out[i] = out[first[texts[i]]]
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
    vectors = embed_texts(loaded.frame["text"], embedder, cache_dir=cache_dir, progress=progress, shards=shards)
    return EmbeddedPool(loaded.frame, vectors, taxonomy, embedder, loaded.dropped, loaded.files)
