"""workbench: build, map, evaluate and export k-NN routing pools.

The public names below are imported lazily, so ``import workbench.router``
in production pulls in numpy and the embedding backend only.
"""
import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "Taxonomy": "taxonomy", "load_taxonomy": "taxonomy",
    "load_pool": "pool", "read_jsonl": "pool",
    "get_embedder": "embed", "embed_texts": "embed", "EmbeddingCache": "embed",
    "KNNConfig": "evaluate", "loo_predict": "evaluate", "sweep": "evaluate", "evaluate_pool": "evaluate",
    "compute_metrics": "metrics", "format_metrics": "metrics",
    "duplicate_groups": "duplicates", "diversity_summary": "duplicates", "count_clusters": "duplicates",
    "load_embedded_pool": "pipeline", "best_config": "pipeline", "choose_config": "pipeline", "export_pool": "pipeline",
    "write_pool_npz": "export", "load_pool_npz": "export",
    "Router": "router", "RouteDecision": "router",
    "DecisionPolicy": "policy",
    "WorkbenchError": "errors", "DataError": "errors", "ArtifactError": "errors", "ConfigError": "errors",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module 'workbench' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + __all__)
