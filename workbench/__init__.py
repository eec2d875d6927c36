"""workbench: build, map, evaluate and export k-NN routing pools.

Layout (dependencies point one way, down this list):

- ``cli``: the ``workbench`` command;
- ``report``: the nightly runner, what notebooks record, the index page; ``plots``: plotly figures;
- ``decisions``, ``traffic``: policies, savings and export; transcripts, labelling and shadow comparison;
- ``analysis``: leave-one-out evaluation, metrics, maps, baselines, curves;
- ``dataset``: pool loading, the embedding cache, near-duplicates, the datasheet;
- ``core``: what production imports (numpy only): taxonomy, k-NN, heads, policy, pool.npz, backends, router;
- ``config``, ``errors``, ``io``: defaults, exceptions, files.

The public names below are imported lazily, so ``import workbench.core.router``
in production pulls in numpy and the embedding backend only.
"""
import importlib

__version__ = "0.2.0"

_EXPORTS = {
    "Taxonomy": "core.taxonomy", "load_taxonomy": "core.taxonomy",
    "KNNConfig": "core.knn", "predict": "core.knn",
    "DecisionPolicy": "core.policy", "POLICIES": "core.policy",
    "write_pool_npz": "core.artifact", "load_pool_npz": "core.artifact",
    "get_embedder": "core.embed",
    "Router": "core.router", "RouteDecision": "core.router",
    "load_pool": "dataset.pool", "read_jsonl": "io",
    "embed_texts": "dataset.embeddings", "EmbeddingCache": "dataset.embeddings",
    "load_embedded_pool": "dataset.embeddings",
    "duplicate_groups": "dataset.duplicates", "diversity_summary": "dataset.duplicates",
    "count_clusters": "dataset.duplicates",
    "loo_predict": "analysis.evaluate", "sweep": "analysis.evaluate", "evaluate_pool": "analysis.evaluate",
    "best_config": "analysis.evaluate", "choose_config": "analysis.evaluate",
    "compute_metrics": "analysis.metrics", "format_metrics": "analysis.metrics",
    "export_pool": "decisions.export", "choose_head": "decisions.head_choice",
    "Targets": "decisions.targets", "HeadParams": "decisions.targets",
    "score_dir": "analysis.generalisation", "ConversationPolicy": "core.conversation",
    "WorkbenchError": "errors", "DataError": "errors", "ArtifactError": "errors", "ConfigError": "errors",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module 'workbench' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + __all__)
