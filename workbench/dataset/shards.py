"""Embedded message logs as Parquet shards: reading the logs, planning the shards, the per-shard work.

A large log is embedded once (``workbench embed``) into a folder of shards,
``part-00000.parquet`` ... plus a ``manifest.json`` written when the run is
complete. Each shard holds ``id``, ``text`` and ``text_hash`` (SHA-256 of the
exact text, the key of the label cache) and ``vector``, a fixed-size list of
float32; its file metadata records the backend, model, dimension and prefix,
and a SHA-256 of the vectors.

:func:`embed_shard` is the one unit of work, whatever the engine: it is pure
(the same task gives the same file), skips a shard that exists and verifies,
and writes through a temp file and a rename, so an interrupted run resumes
without recomputing finished shards and no reader sees half a shard. The
engines that run it are in :mod:`workbench.scale`.

Needs ``pyarrow`` (the ``scale`` extra).
"""
from __future__ import annotations

import csv
import hashlib
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import config as _config
from ..errors import ConfigError, DataError, require
from ..io import (atomic_file, check_file_size, normalize_text, parse_json, read_jsonl, read_text_file, text_hash,
                  write_json_atomic)

log = logging.getLogger(__name__)

__all__ = ["SHARD_SCHEMA_VERSION", "MANIFEST", "ShardTask", "ShardSet", "read_messages", "plan_shards",
           "embed_shard", "write_shard", "read_shard", "verify_shard", "write_manifest", "load_shards",
           "lookup_vectors"]

SHARD_SCHEMA_VERSION = 1
MANIFEST = "manifest.json"
_SPEC_KEYS = ("backend", "model_id", "dim", "prefix")


def _pa():
    return require("pyarrow", purpose="Parquet shards"), require("pyarrow.parquet", purpose="Parquet shards")


def _vectors_sha256(vectors):
    return hashlib.sha256(np.ascontiguousarray(vectors, np.float32).tobytes()).hexdigest()


def _rows_sha256(ids, texts):
    """SHA-256 over every row's id and text: the shard's integrity covers its text column, not its vectors only."""
    h = hashlib.sha256()
    for i, t in zip(ids, texts):
        h.update(f"{len(i)}:{i}\0{len(t)}:".encode("utf-8", "surrogatepass"))
        h.update(t.encode("utf-8", "surrogatepass"))
    return h.hexdigest()


# -- reading logs ----------------------------------------------------------------------------------------


def _rows_jsonl(path):
    for n, obj in read_jsonl(path):
        yield n, obj


def _rows_csv(path):
    try:  # utf-8-sig: Excel's "CSV UTF-8" starts with a BOM, which would rename the first column ("\ufeffid")
        fh = open(path, encoding="utf-8-sig", newline="")
    except OSError as e:
        raise DataError(path, None, f"cannot read ({e.strerror})") from None
    with fh:
        check_file_size(fh, path)
        reader = csv.DictReader(fh)
        try:
            for row in reader:
                yield reader.line_num, row
        except (csv.Error, UnicodeDecodeError) as e:
            raise DataError(path, reader.line_num, f"invalid CSV ({e})") from None


def _rows_parquet(path):
    _, pq = _pa()
    try:
        with open(path, "rb") as fh:
            check_file_size(fh, path)
    except OSError as e:
        raise DataError(path, None, f"cannot read ({e.strerror})") from None
    try:
        f = pq.ParquetFile(path)
    except Exception as e:  # pyarrow raises several kinds for a file that is not Parquet
        raise DataError(path, None, f"not a readable Parquet file ({e})") from None
    n = 0
    for batch in f.iter_batches(batch_size=8192):
        for row in batch.to_pylist():
            n += 1
            yield n, row


_READERS = {".jsonl": _rows_jsonl, ".json": _rows_jsonl, ".csv": _rows_csv, ".parquet": _rows_parquet}


def read_messages(paths, *, text_column="text", id_column="id"):
    """Yield ``(id, text)`` for every row of JSONL, CSV or Parquet message files.

    The id is the ``id_column`` value, or ``msg-`` and 16 hex digits of the
    text's hash when the file has none. Rows whose text is empty or
    whitespace yield ``(id, "")`` (the caller counts them).

    Raises
    ------
    DataError
        Naming the file and line (row for Parquet) of a missing or non-string text.
    """
    for path in [paths] if isinstance(paths, (str, Path)) else paths:
        path = Path(path)
        reader = _READERS.get(path.suffix.lower())
        if reader is None:
            raise DataError(path, None, f"unknown message file type {path.suffix!r} (use .jsonl, .csv or .parquet)")
        for n, row in reader(path):
            text = row.get(text_column)
            if not isinstance(text, str):
                raise DataError(path, n, f"missing or non-string {text_column!r}")
            rid = row.get(id_column)
            yield (str(rid) if rid not in (None, "") else f"msg-{text_hash(text)[:16]}"), text


# -- planning --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ShardTask:
    """One shard to embed: its rows and where it goes (plain data, so any engine can ship it)."""

    index: int
    path: str
    ids: tuple
    texts: tuple

    @property
    def text_hashes(self):
        return [text_hash(t) for t in self.texts]

    def to_item(self) -> dict:
        return {"index": self.index, "path": self.path, "ids": list(self.ids), "texts": list(self.texts)}

    @classmethod
    def from_item(cls, item) -> "ShardTask":
        return cls(int(item["index"]), str(item["path"]), tuple(map(str, item["ids"])), tuple(map(str, item["texts"])))


def plan_shards(messages, out_dir, *, rows_per_shard=_config.EMBED_SHARD_ROWS):
    """Drop empty texts and exact duplicates (by normalised-text hash), and cut the rest into shard tasks.

    Parameters
    ----------
    messages : iterable of (id, text)
    out_dir : path
    rows_per_shard : int

    Returns
    -------
    tasks : list of ShardTask, in input order
    counts : dict with ``read``, ``empty``, ``duplicates`` and ``rows`` (kept)
    """
    if not isinstance(rows_per_shard, int) or rows_per_shard < 1:
        raise ConfigError(f"rows per shard must be an integer >= 1; got {rows_per_shard!r}")
    seen = set()
    ids, texts = [], []
    counts = {"read": 0, "empty": 0, "duplicates": 0}
    for rid, text in messages:
        counts["read"] += 1
        if not text.strip():
            counts["empty"] += 1
            continue
        key = hashlib.sha256(normalize_text(text).encode("utf-8")).digest()
        if key in seen:
            counts["duplicates"] += 1
            continue
        seen.add(key)
        ids.append(rid)
        texts.append(text)
    counts["rows"] = len(texts)
    out_dir = Path(out_dir)
    tasks = [ShardTask(i, str(out_dir / f"part-{i:05d}.parquet"), tuple(ids[s:s + rows_per_shard]),
                       tuple(texts[s:s + rows_per_shard]))
             for i, s in enumerate(range(0, len(texts), rows_per_shard))]
    return tasks, counts


# -- one shard -------------------------------------------------------------------------------------------


def write_shard(path, ids, texts, vectors, spec):
    """Write one shard atomically; returns its vectors' SHA-256."""
    pa, pq = _pa()
    vectors = np.ascontiguousarray(vectors, np.float32)
    if vectors.shape != (len(texts), int(spec["dim"])) or len(ids) != len(texts):
        raise ConfigError(f"shard rows do not match: {len(ids)} ids, {len(texts)} texts, vectors {vectors.shape}")
    digest = _vectors_sha256(vectors)
    meta = {"schema_version": SHARD_SCHEMA_VERSION, **{k: spec[k] for k in _SPEC_KEYS}, "rows": len(texts),
            "vectors_sha256": digest, "rows_sha256": _rows_sha256(list(ids), list(texts))}
    table = pa.table({
        "id": pa.array(list(ids), pa.string()),
        "text": pa.array(list(texts), pa.string()),
        "text_hash": pa.array([text_hash(t) for t in texts], pa.string()),
        "vector": pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1)), int(spec["dim"])),
    }).replace_schema_metadata({"workbench": json.dumps(meta)})
    with atomic_file(path) as fh:
        pq.write_table(table, fh)
    return digest


@dataclass
class ShardSet:
    """Rows of one or more shards: ``ids``, ``texts``, ``text_hashes``, ``vectors`` (n, dim) and the ``spec``."""

    ids: list
    texts: list
    text_hashes: list
    vectors: np.ndarray
    spec: dict
    files: list = field(default_factory=list)

    def __len__(self):
        return len(self.ids)

    def lookup(self):
        """``{text_hash: row}``: where each text's vector is."""
        return {h: i for i, h in enumerate(self.text_hashes)}


def read_shard(path) -> ShardSet:
    """Read and check one shard (schema, spec, vector hash).

    Raises
    ------
    DataError
        Naming the file when it is unreadable, malformed or its vectors do not match their hash.
    """
    _, pq = _pa()
    path = Path(path)
    try:
        table = pq.read_table(path)
        meta = json.loads((table.schema.metadata or {}).get(b"workbench", b"null"))
    except FileNotFoundError:
        raise DataError(path, None, "no such shard") from None
    except Exception as e:  # a truncated or foreign file
        raise DataError(path, None, f"not a readable shard ({e})") from None
    if not isinstance(meta, dict) or meta.get("schema_version") != SHARD_SCHEMA_VERSION:
        raise DataError(path, None, "not a workbench shard (no or unknown 'workbench' metadata)")
    missing = [c for c in ("id", "text", "text_hash", "vector") if c not in table.column_names]
    if missing:
        raise DataError(path, None, f"shard lacks column(s) {missing}")
    _check_shard_meta(path, meta)
    dim, rows = meta["dim"], meta["rows"]
    try:
        vectors = table.column("vector").combine_chunks().flatten().to_numpy().reshape(-1, dim).astype(np.float32)
    except Exception as e:  # a vector column of another type or length
        raise DataError(path, None, f"malformed vector column ({type(e).__name__})") from None
    if len(vectors) != rows or _vectors_sha256(vectors) != meta["vectors_sha256"]:
        raise DataError(path, None, "vectors do not match the shard's hash (file corrupted or edited)")
    ids, texts, hashes = (table.column(c).to_pylist() for c in ("id", "text", "text_hash"))
    if not (len(ids) == len(texts) == len(hashes) == rows) or not all(
            isinstance(v, str) for col in (ids, texts, hashes) for v in col):
        raise DataError(path, None, f"id, text and text_hash must be {rows} strings each")
    if "rows_sha256" in meta and _rows_sha256(ids, texts) != meta["rows_sha256"] or any(
            text_hash(t) != h for t, h in zip(texts, hashes)):
        raise DataError(path, None, "ids or texts do not match the shard's hashes (file corrupted or edited)")
    return ShardSet(ids, texts, hashes, vectors, {k: meta[k] for k in _SPEC_KEYS}, [path])


def _check_shard_meta(path, meta):
    """The shard metadata's fields and types (a malformed one is a DataError, not a traceback)."""
    ok = (all(k in meta for k in _SPEC_KEYS) and isinstance(meta.get("dim"), int) and not isinstance(meta["dim"], bool)
          and meta["dim"] >= 1 and isinstance(meta.get("rows"), int) and not isinstance(meta["rows"], bool)
          and meta["rows"] >= 0 and isinstance(meta.get("vectors_sha256"), str)
          and isinstance(meta.get("rows_sha256", ""), str))
    if not ok:
        raise DataError(path, None, f"malformed shard metadata (need {', '.join(_SPEC_KEYS)}, an integer dim >= 1, "
                                    "rows >= 0 and vectors_sha256)")


def verify_shard(task, spec) -> bool:
    """Whether the shard of ``task`` exists, reads, was made by ``spec`` and holds exactly the task's rows."""
    if not Path(task.path).exists():
        return False
    try:
        got = read_shard(task.path)
    except DataError as e:
        log.warning("recomputing shard %s: %s", task.path, e.problem)
        return False
    same = ({k: got.spec[k] for k in _SPEC_KEYS} == {k: spec[k] for k in _SPEC_KEYS}
            and got.ids == list(task.ids) and got.text_hashes == task.text_hashes)
    if not same:
        log.warning("recomputing shard %s: made from other rows or another backend", task.path)
    return same


def embed_shard(task, embedder) -> dict:
    """Embed one shard and write it, unless it already exists and verifies: the one unit of work.

    Returns
    -------
    dict with ``index``, ``rows``, ``path`` and ``computed`` (False when the shard was skipped).
    """
    done = verify_shard(task, embedder.spec)
    if not done:
        write_shard(task.path, task.ids, task.texts, embedder.encode(list(task.texts)), embedder.spec)
    return {"index": task.index, "rows": len(task.texts), "path": task.path, "computed": not done}


# -- the whole set ---------------------------------------------------------------------------------------


def write_manifest(out_dir, tasks, spec, counts, inputs):
    """Mark a run complete: ``manifest.json`` lists the shards, the backend and the counts."""
    manifest = {"schema_version": SHARD_SCHEMA_VERSION, **{k: spec[k] for k in _SPEC_KEYS},
                "shards": [Path(t.path).name for t in tasks], "inputs": [str(p) for p in inputs], **counts,
                "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    write_json_atomic(Path(out_dir) / MANIFEST, manifest)
    return manifest


def _shard_files(source):
    source = Path(source)
    if source.is_dir():
        man = source / MANIFEST
        if not man.exists():
            raise DataError(source, None, f"no {MANIFEST}: the embed run did not finish (run it again to resume)")
        obj, problem = parse_json(read_text_file(man))
        names = obj.get("shards") if isinstance(obj, dict) else None
        if problem or not isinstance(names, list):
            raise DataError(man, None, f"unreadable manifest ({problem or 'no list of shards'})")
        for name in names:  # plain file names of this folder: a manifest cannot point anywhere else
            if not isinstance(name, str) or not name or Path(name).name != name or name in (".", ".."):
                raise DataError(man, None, f"shard {str(name)[:80]!r} is not a file name of this folder")
        return [source / n for n in names]
    return [source]


def load_shards(sources, *, spec=None) -> ShardSet:
    """Rows of shard folders (through their manifest) or shard files, concatenated and checked.

    Parameters
    ----------
    sources : path or list of paths
    spec : dict, optional
        Refuse shards made by another backend (``Embedder.spec``).
    """
    sources = [sources] if isinstance(sources, (str, Path)) else list(sources)
    parts = [read_shard(f) for s in sources for f in _shard_files(s)]
    if not parts:
        raise DataError(", ".join(map(str, sources)), None, "no shards")
    want = spec or parts[0].spec
    for p in parts:
        if {k: p.spec[k] for k in _SPEC_KEYS} != {k: want[k] for k in _SPEC_KEYS}:
            raise DataError(p.files[0], None, f"made with {p.spec['backend']} ({p.spec['model_id']}), "
                            f"not {want['backend']} ({want['model_id']})")
    return ShardSet([i for p in parts for i in p.ids], [t for p in parts for t in p.texts],
                    [h for p in parts for h in p.text_hashes], np.concatenate([p.vectors for p in parts]),
                    {k: want[k] for k in _SPEC_KEYS}, [f for p in parts for f in p.files])


def lookup_vectors(sources, text_hashes, *, spec, other_backends="error"):
    """Vectors of the texts whose hashes the shards hold: ``{text_hash: vector}``.

    Reads one shard at a time and only the shards that hold a wanted
    text, so a large embedded log is never loaded whole. A shard of another
    backend is an error, or skipped with ``other_backends="skip"`` (a
    composite backend looks in its own shards and in each part's).
    """
    _, pq = _pa()
    wanted, found = set(text_hashes), {}
    sources = [sources] if isinstance(sources, (str, Path)) else list(sources)
    for f in (f for s in sources for f in _shard_files(s)):
        if not wanted:
            break
        try:
            hashes = pq.read_table(f, columns=["text_hash"]).column("text_hash").to_pylist()
        except Exception as e:  # unreadable: read_shard below names the problem
            hashes = None
            log.debug("%s: %s", f, e)
        if hashes is not None and not wanted.intersection(hashes):
            continue
        shard = read_shard(f)
        if {k: shard.spec[k] for k in _SPEC_KEYS} != {k: spec[k] for k in _SPEC_KEYS}:
            if other_backends == "skip":
                continue
            raise DataError(f, None, f"made with {shard.spec['backend']} ({shard.spec['model_id']}), "
                            f"not {spec['backend']} ({spec['model_id']})")
        for i, h in enumerate(shard.text_hashes):
            if h in wanted:
                found[h] = shard.vectors[i]
                wanted.discard(h)
    return found
