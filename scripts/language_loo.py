"""Leave-one-out tier accuracy per language under each embedding backend, and how much each language is an island.

    python scripts/language_loo.py [--pool data/pool] [--k 15] [--min-count 30]

For each part of the default ensemble alone, the ensemble with its parts as they are (each part's vector of every
text), and the default backend as it embeds (a part's vector of a text outside its languages replaced by the mapped
vector of the other part: ``CompositeEmbedder``), it prints, per language with at least ``--min-count`` messages:
leave-one-out tier accuracy (k-NN, distance vote, mean-centred: the shipped k-NN settings) and the share of each
message's k neighbours written in the same language (``same%``: 100 means the language is an island the vote never
leaves). The pool's overall and per-category tier accuracy close the table. Vectors come from the embedding cache (``data/interim/embeddings``); a cold cache embeds
the pool once per part.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _loo(vectors, labels, taxonomy, k):
    from workbench.analysis.evaluate import loo_predict
    from workbench.core.knn import KNNConfig

    return loo_predict(vectors, labels, taxonomy, KNNConfig(k, "distance", center=True))


def measure(frame, vectors, taxonomy, k):
    """Per-row tier correctness and same-language neighbour share of one backend's vectors."""
    labels = taxonomy.category_index(frame["category"])
    pred = _loo(vectors, labels, taxonomy, k)
    tiers = np.array([taxonomy.tier_of(c) for c in taxonomy.categories], dtype=object)
    correct = tiers[pred.pred] == tiers[labels]
    langs = frame["lang"].astype(str).to_numpy()
    same = (langs[pred.neighbors] == langs[:, None]).mean(axis=1)
    return correct, same


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pool", default=None)
    ap.add_argument("--k", type=int, default=15)
    ap.add_argument("--min-count", type=int, default=30)
    args = ap.parse_args(argv)

    from workbench.core.embed import get_embedder
    from workbench.core.taxonomy import load_taxonomy
    from workbench.dataset.embeddings import embed_texts
    from workbench.dataset.pool import load_pool

    taxonomy = load_taxonomy()
    frame = load_pool(args.pool, taxonomy).frame
    texts = frame["text"].tolist()
    ensemble = get_embedder("e5-small+use-multilingual")
    parts = [embed_texts(texts, p, progress=False) for p in ensemble.parts]
    backends = {"e5-small": parts[0], "use-multilingual": parts[1],
                "ensemble, parts as-is": ensemble.combine(parts),
                "ensemble (default)": embed_texts(texts, ensemble, progress=False)}
    results = {name: measure(frame, v, taxonomy, args.k) for name, v in backends.items()}
    _print_table(frame, results, args.min_count)
    _print_categories(frame, results, taxonomy)


def _print_table(frame, results, min_count):
    langs = frame["lang"].astype(str).to_numpy()
    counts = frame["lang"].astype(str).value_counts()
    names = list(results)
    head = f"{'lang':<9}{'n':>5}" + "".join(f"{n[:18]:>20}{'same%':>7}" for n in names)
    print(head)
    print(f"{'(pool)':<9}{len(frame):>5}" + "".join(
        f"{100 * c.mean():>19.1f}%{100 * s.mean():>7.0f}" for c, s in results.values()))
    for lang, n in counts.items():
        if n < min_count:
            continue
        rows = langs == lang
        cells = []
        for correct, same in results.values():
            cells.append(f"{100 * correct[rows].mean():>19.1f}%{100 * same[rows].mean():>7.0f}")
        print(f"{lang:<9}{n:>5}" + "".join(cells))


def _print_categories(frame, results, taxonomy):
    cats = frame["category"].astype(str).to_numpy()
    print()
    print(f"{'category':<16}{'n':>5}" + "".join(f"{n[:18]:>20}" for n in results))
    for cat in taxonomy.categories:
        rows = cats == cat
        print(f"{cat:<16}{rows.sum():>5}" + "".join(f"{100 * c[rows].mean():>19.1f}%" for c, _ in results.values()))


if __name__ == "__main__":
    main()
