"""Embed message logs into Parquet shards on an engine: one local process, or Ray Data.

Both engines run the same pure per-shard function
(:func:`workbench.dataset.shards.embed_shard`), so they write the same
shards, and a shard that exists and verifies is never recomputed: an
interrupted run, on either engine, resumes where it stopped.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

from .. import config as _config
from ..core.embed import get_embedder
from ..dataset.shards import MANIFEST, embed_shard, plan_shards, read_messages, verify_shard, write_manifest
from ..errors import ConfigError

log = logging.getLogger(__name__)

__all__ = ["ENGINES", "Progress", "embed_logs"]

ENGINES = ("local", "ray")


@dataclass
class Progress:
    """Where a run stands: shards and rows done, rows per second and the estimated time left."""

    shards_total: int
    rows_total: int
    shards_done: int = 0
    shards_computed: int = 0
    rows_done: int = 0
    rows_computed: int = 0
    started: float = 0.0

    def update(self, result):
        self.shards_done += 1
        self.shards_computed += bool(result["computed"])
        self.rows_done += result["rows"]
        self.rows_computed += result["rows"] if result["computed"] else 0

    @property
    def elapsed(self):
        return time.perf_counter() - self.started

    @property
    def rows_per_second(self):
        return self.rows_computed / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def eta_seconds(self):
        rate = self.rows_per_second
        return (self.rows_total - self.rows_done) / rate if rate > 0 else float("nan")

    def line(self) -> str:
        eta = self.eta_seconds
        left = "?" if eta != eta else f"{int(eta) // 60}m{int(eta) % 60:02d}s"
        return (f"shards {self.shards_done}/{self.shards_total}, rows {self.rows_done}/{self.rows_total}, "
                f"{self.rows_per_second:.1f} rows/s, about {left} left")


def _embedder(backend, threads=None):
    return backend if hasattr(backend, "spec") else get_embedder(backend, threads=threads)


def _run_local(tasks, backend, threads, on_shard):
    embedder = _embedder(backend, threads)
    for task in tasks:
        on_shard(embed_shard(task, embedder))


def embed_logs(inputs, out_dir, *, backend=None, engine="local", address=None, workers=None,
               rows_per_shard=_config.EMBED_SHARD_ROWS, text_column="text", id_column="id", threads=None,
               on_progress=None):
    """Embed JSONL/CSV/Parquet message files into Parquet shards in ``out_dir``.

    Parameters
    ----------
    inputs : path or list of paths
    out_dir : path
        Shards ``part-NNNNN.parquet`` and, once every shard is written, ``manifest.json``.
    backend : str or Embedder, optional
        Backend spec (default e5-small); the Ray engine needs a spec, the local one also takes an instance.
    engine : {"local", "ray"}
        ``local``: this process, every core; ``ray``: Ray Data with one stateful actor per worker.
    address : str, optional
        Ray cluster to join; none: start a local Ray sized to this machine and stop it afterwards.
    workers : int, optional
        Ray actors (default: the cluster's CPUs), each with one encoder thread.
    rows_per_shard : int
    text_column, id_column : str
    threads : int, optional
        Encoder threads of the local engine (default: all cores).
    on_progress : callable, optional
        Called with a :class:`Progress` after every shard.

    Returns
    -------
    dict: the manifest (counts, shards, backend) plus ``computed`` and ``skipped`` shard counts,
    ``seconds`` and ``rows_per_second``.
    """
    if engine not in ENGINES:
        raise ConfigError(f"engine must be one of {ENGINES}; got {engine!r}")
    if workers is not None and (not isinstance(workers, int) or workers < 1):
        raise ConfigError(f"workers must be an integer >= 1; got {workers!r}")
    if address is not None and engine != "ray":
        raise ConfigError("--address needs --engine ray")
    inputs = [inputs] if isinstance(inputs, (str, bytes)) or not hasattr(inputs, "__iter__") else list(inputs)
    if engine == "ray" and hasattr(backend, "spec"):
        raise ConfigError("the Ray engine needs a backend spec (its actors load their own encoder), not an instance")
    spec = _embedder(backend).spec  # loads nothing for the bundled backends
    tasks, counts = plan_shards(read_messages(inputs, text_column=text_column, id_column=id_column), out_dir,
                                rows_per_shard=rows_per_shard)
    progress = Progress(len(tasks), counts["rows"], started=time.perf_counter())
    todo = []
    for t in tasks:  # verified shards count as done before any engine starts
        if verify_shard(t, spec):
            progress.update({"rows": len(t.texts), "computed": False})
        else:
            todo.append(t)
    skipped = len(tasks) - len(todo)
    log.info("%d shard(s) to embed, %d already done; %d duplicate and %d empty row(s) dropped",
             len(todo), skipped, counts["duplicates"], counts["empty"])

    if todo:  # until every shard is written again, readers must not trust an older run's manifest
        (Path(out_dir) / MANIFEST).unlink(missing_ok=True)

    def on_shard(result):
        progress.update(result)
        if on_progress is not None:
            on_progress(progress)

    if todo and engine == "local":
        _run_local(todo, backend, threads, on_shard)
    elif todo:
        from .ray_engine import run_on_ray

        run_on_ray(todo, backend=backend or _config.DEFAULT_BACKEND, address=address, workers=workers,
                   on_shard=on_shard)
    manifest = write_manifest(out_dir, tasks, spec, counts, inputs)
    seconds = progress.elapsed
    return dict(manifest, computed=progress.shards_computed, skipped=len(tasks) - progress.shards_computed,
                seconds=seconds, rows_per_second=progress.rows_computed / seconds if seconds > 0 else 0.0)
