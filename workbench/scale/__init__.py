"""Past one laptop: embedding large message logs on a local process or on Ray (:mod:`.embed_logs`, :mod:`.ray_engine`).

The unit of work and the shard format live in :mod:`workbench.dataset.shards`;
this package only decides where the work runs. Ray is imported lazily, and
only for ``engine="ray"``.
"""
