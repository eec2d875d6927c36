"""The Ray engine of ``workbench embed``: Ray Data ``map_batches`` over shard tasks, with stateful actors.

Each actor loads the encoder once (one encoder thread per actor, one actor
per CPU) and runs :func:`workbench.dataset.shards.embed_shard` on one shard
task per batch. Without an address, a local Ray sized to this machine is
started for the run and shut down afterwards; with one, an existing cluster
is joined (and left running). ``ray`` is imported here only.
"""
from __future__ import annotations

import logging
import os

from ..dataset.shards import ShardTask, embed_shard
from ..errors import require

log = logging.getLogger(__name__)

__all__ = ["ShardEmbedder", "run_on_ray"]

_START_ATTEMPTS = 3


class ShardEmbedder:
    """A Ray Data actor: one encoder, loaded when the actor starts; one shard task per batch."""

    def __init__(self, backend, threads=1):
        from ..core.embed import get_embedder

        self.embedder = get_embedder(backend, threads=threads)
        self.embedder.encode(["warm-up"])  # load the model once, here, not inside the first shard

    def __call__(self, batch):
        results = [embed_shard(ShardTask.from_item({k: batch[k][i] for k in batch}), self.embedder)
                   for i in range(len(batch["index"]))]
        return {key: [r[key] for r in results] for key in ("index", "rows", "path", "computed")}


def _package_root():
    import workbench

    return os.path.dirname(os.path.dirname(os.path.abspath(workbench.__file__)))


def _start_local(ray, env, attempts=_START_ATTEMPTS):
    """A local Ray sized to this machine. Ray gives its node 30 s to register, which a busy machine can miss."""
    for attempt in range(1, attempts + 1):
        try:
            ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False, runtime_env=env,
                     configure_logging=False)
            return
        except Exception as e:  # Ray raises a bare Exception when its node times out during startup
            ray.shutdown()
            if attempt == attempts or "timed out during startup" not in str(e):
                raise
            log.warning("local Ray did not start in time (attempt %d of %d); retrying", attempt, attempts)


def run_on_ray(tasks, *, backend, address=None, workers=None, on_shard=None):
    """Run shard tasks on Ray; ``on_shard(result)`` is called on the driver as each shard finishes.

    Parameters
    ----------
    tasks : list of ShardTask
    backend : str
    address : str, optional
        ``ray://host:port`` or ``host:port`` of a running cluster; none: a local instance for this run.
    workers : int, optional
        Actors (default: the cluster's CPUs).
    """
    ray = require("ray", purpose="--engine ray")
    started = False
    if not ray.is_initialized():
        if address:  # the cluster's nodes have workbench[scale] installed
            ray.init(address=address, log_to_driver=False)
        else:  # local workers import the same workbench as this process (a checkout, or the installed one)
            path = os.pathsep.join(p for p in (_package_root(), os.environ.get("PYTHONPATH")) if p)
            _start_local(ray, {"env_vars": {"PYTHONPATH": path}})
        started = True
    try:
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = False  # the caller shows shards done, rows per second and time left
        if not log.isEnabledFor(logging.DEBUG):
            logging.getLogger("ray.data").setLevel(logging.WARNING)
        cpus = int(ray.cluster_resources().get("CPU", 1))
        workers = workers or max(1, cpus)
        log.info("embedding %d shard(s) on Ray with %d actor(s) (%d CPUs in the cluster)", len(tasks), workers, cpus)
        ds = ray.data.from_items([t.to_item() for t in tasks], override_num_blocks=len(tasks))
        ds = ds.map_batches(ShardEmbedder, batch_size=1, batch_format="numpy", concurrency=workers, num_cpus=1,
                            fn_constructor_kwargs={"backend": backend, "threads": 1})
        for row in ds.iter_rows():
            result = {"index": int(row["index"]), "rows": int(row["rows"]), "path": str(row["path"]),
                      "computed": bool(row["computed"])}
            if on_shard is not None:
                on_shard(result)
    finally:
        if started:
            ray.shutdown()
