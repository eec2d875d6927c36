"""The steps every entry point shares: load + embed a pool, pick a configuration, export it."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .evaluate import SWEEP_KS, KNNConfig, sweep

__all__ = ["EmbeddedPool", "load_embedded_pool", "best_config", "choose_config", "export_pool"]


@dataclass
class EmbeddedPool:
    """A validated pool with its vectors (row ``i`` of ``vectors`` is ``frame.iloc[i]``)."""

    frame: object          # pandas.DataFrame from load_pool
    vectors: np.ndarray    # (n, dim) float32, L2-normalised
    taxonomy: object       # Taxonomy
    embedder: object       # Embedder

    @property
    def labels(self):
        return self.taxonomy.category_index(self.frame["category"])


def load_embedded_pool(pool=None, *, taxonomy=None, backend=None, cache_dir=None, progress=False, threads=None):
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
    """
    from .embed import Embedder, embed_texts, get_embedder
    from .pool import load_pool
    from .taxonomy import Taxonomy, load_taxonomy

    if not isinstance(taxonomy, Taxonomy):
        taxonomy = load_taxonomy(taxonomy)
    embedder = backend if isinstance(backend, Embedder) else get_embedder(backend, threads=threads)
    frame = load_pool(pool, taxonomy)
    vectors = embed_texts(frame["text"], embedder, cache_dir=cache_dir, progress=progress)
    return EmbeddedPool(frame, vectors, taxonomy, embedder)


def best_config(pool: EmbeddedPool, *, temperature=0.05, **sweep_kw):
    """Sweep k x vote rule x centering; return ``(best KNNConfig, sweep table)``."""
    table = sweep(pool.vectors, pool.labels, pool.taxonomy, temperature=temperature, **sweep_kw)
    top = table.iloc[0]
    return KNNConfig(k=int(top["k"]), vote=str(top["vote"]), temperature=temperature, center=bool(top["center"])), table


def choose_config(pool: EmbeddedPool, *, k=None, vote=None, center=None, temperature=0.05, table=None):
    """The configuration the arguments fix, with the best of the sweep for what they leave open.

    Parameters
    ----------
    pool : EmbeddedPool
    k, vote, center : optional
        Fixed choices; ``None`` leaves a choice to the sweep.
    temperature : float
    table : pandas.DataFrame, optional
        A full sweep of this pool (from :func:`~workbench.evaluate.sweep`, best row first) to
        pick from instead of sweeping again.

    Returns
    -------
    ``(KNNConfig, sweep table)``; the table is None when nothing was left open.
    """
    from .knn import VOTE_RULES

    if k and vote and center is not None:
        return KNNConfig(k, vote=vote, temperature=temperature, center=center), None
    if table is not None:
        keep = table["k"].notna()
        for column, value in (("k", k), ("vote", vote), ("center", center)):
            if value is not None:
                keep &= table[column] == value
        rows = table[keep]
        if len(rows):
            top = rows.iloc[0]
            return KNNConfig(int(top["k"]), vote=str(top["vote"]), temperature=temperature,
                             center=bool(top["center"])), rows.reset_index(drop=True)
    return best_config(pool, temperature=temperature, ks=(k,) if k else SWEEP_KS,
                       votes=(vote,) if vote else VOTE_RULES, centers=(center,) if center is not None else (False, True))


def export_pool(pool: EmbeddedPool, path, config: KNNConfig, *, dtype="float16", extra_arrays=None,
                extra_metadata=None):
    """Write ``pool.npz`` for ``pool`` with ``config``; returns the metadata written."""
    from .export import write_pool_npz

    return write_pool_npz(path, pool.vectors, pool.labels, pool.frame["id"].astype(str).to_numpy(),
                          taxonomy=pool.taxonomy, embedder_spec=pool.embedder.spec, config=config, dtype=dtype,
                          extra_arrays=extra_arrays, extra_metadata=extra_metadata)
