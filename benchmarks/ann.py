"""HNSW (faiss) against exact search, per pool size: search p50/p95 per query, recall@k, build time, memory.

    python benchmarks/ann.py [--sizes 10000 100000 1000000] [--queries 500] [--json PATH]
                             [--real-shards DIR]

Synthetic pools: unit vectors of dimension 384 drawn from a mixture of
clusters (as sentence embeddings cluster by topic), with queries drawn
fresh from the same mixture, and a category per cluster. For each size:
build time, index bytes and the process's memory growth, single-query
search p50/p95 for HNSW and for exact search (``core.knn.top_k``, the
router's path) in the same run, recall@k against exact search, and the
share of k-NN tier decisions that agree (the router's
``predict_from_neighbors`` on both neighbour lists).

Real vectors: the bundled pool exported twice (exact, and with the index
forced), routed with the public benchmark prompts as queries; with
``--real-shards`` (a folder of ``workbench embed`` shards, e.g. from
``benchmarks/embed_scale.py --keep``) also a pool of those vectors,
labelled by the bundled router.
"""
import argparse
import json
import resource
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def rss_mb():
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def synthetic(n, queries, d=384, clusters=None, seed=0):
    rng = np.random.default_rng(seed)
    clusters = clusters or max(50, n // 200)
    centers = rng.standard_normal((clusters, d), dtype=np.float32)
    centers /= np.linalg.norm(centers, axis=1, keepdims=True)
    labels_of_cluster = rng.integers(0, 7, clusters)
    idx = rng.integers(0, clusters, n)
    x = np.empty((n, d), np.float32)
    for s in range(0, n, 100_000):  # in blocks: 1M rows never need two full copies
        e = min(n, s + 100_000)
        x[s:e] = centers[idx[s:e]] + 1.2 * rng.standard_normal((e - s, d), dtype=np.float32) / np.sqrt(d)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    qi = rng.integers(0, clusters, queries)
    q = centers[qi] + 1.2 * rng.standard_normal((queries, d), dtype=np.float32) / np.sqrt(d)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    return x, labels_of_cluster[idx], q


def one_by_one(fn, q):
    times = []
    for row in q:
        start = time.perf_counter()
        fn(row[None, :])
        times.append(time.perf_counter() - start)
    times.sort()
    return statistics.median(times) * 1000, times[int(0.95 * (len(times) - 1))] * 1000


def bench_size(n, queries, k, exact_queries):
    from workbench.core.ann import HNSWIndex
    from workbench.core.knn import KNNConfig, predict_from_neighbors, top_k

    x, labels, q = synthetic(n, queries)
    mem0 = rss_mb()
    start = time.perf_counter()
    index = HNSWIndex.build(x)
    build_s = time.perf_counter() - start
    mem_index = rss_mb() - mem0
    index_bytes = index.to_array().size
    ann_p50, ann_p95 = one_by_one(lambda r: index.search(r, k), q)
    ex_p50, ex_p95 = one_by_one(lambda r: top_k(r, x, k), q[:exact_queries])
    ann_idx, ann_sim = index.search(q, k)
    ex_idx, ex_sim = top_k(q, x, k)
    recall = float(np.mean([len(set(a) & set(b)) / k for a, b in zip(ann_idx, ex_idx)]))
    nn = {"nn1_cosine": float(ex_sim[:, 0].mean()), f"nn{k}_cosine": float(ex_sim[:, -1].mean())}
    rank = np.array([0, 0, 1, 1, 2, 2, 2])  # tier rank per synthetic category
    cfg = KNNConfig(k=k)
    pa = predict_from_neighbors(ann_idx, ann_sim, labels, cfg, rank)
    pe = predict_from_neighbors(ex_idx, ex_sim, labels, cfg, rank)
    agree = float((rank[pa.pred] == rank[pe.pred]).mean())
    return {"rows": n, "build_s": build_s, "index_mb": index_bytes / 2 ** 20, "rss_growth_mb": mem_index,
            "hnsw_p50_ms": ann_p50, "hnsw_p95_ms": ann_p95, "exact_p50_ms": ex_p50, "exact_p95_ms": ex_p95,
            "speedup_p50": ex_p50 / ann_p50, f"recall@{k}": recall, "tier_agreement": agree, **nn}


def _compare(routers, qv, k, name, rows):
    from workbench.core.knn import center, top_k

    a, e = routers[True].route_vectors(qv), routers[False].route_vectors(qv)
    art = routers[False].artifact
    q = center(qv, art.center) if routers[False].config.center else qv
    ann_idx, _ = routers[True].index.search(q, k)
    ex_idx, _ = top_k(q, art.embeddings, k)
    return {"pool": name, "rows": rows, "queries": len(qv),
            f"recall@{k}": float(np.mean([len(set(x) & set(y)) / k for x, y in zip(ann_idx, ex_idx)])),
            "tier_agreement": float(np.mean([x.tier == y.tier for x, y in zip(a, e)])),
            "category_agreement": float(np.mean([x.category == y.category for x, y in zip(a, e)]))}


def real_agreement(tmp, real_shards=None, k=10):
    """Tier decisions of routers on real e5 vectors, exact against HNSW, on the public benchmark prompts."""
    from workbench import config
    from workbench.core.artifact import load_pool_npz
    from workbench.core.knn import KNNConfig
    from workbench.core.router import Router
    from workbench.dataset.embeddings import embed_texts, load_embedded_pool
    from workbench.decisions.export import export_pool

    pool = load_embedded_pool()
    queries = [json.loads(line)["text"] for f in sorted(config.EXTERNAL_DIR.glob("*.jsonl"))
               for line in f.read_text(encoding="utf-8").split("\n") if line.strip()]
    qv = embed_texts(queries, pool.embedder)
    out = []
    routers = {}
    for ann in (False, True):
        path = Path(tmp) / f"bundled-{ann}.npz"
        export_pool(pool, path, KNNConfig(), ann=ann)
        routers[ann] = Router(load_pool_npz(path), pool.embedder)
    out.append(_compare(routers, qv, k, "bundled", len(pool.vectors)))
    if real_shards:
        from workbench.core.artifact import write_pool_npz
        from workbench.dataset.shards import load_shards

        shards = load_shards(real_shards, spec=pool.embedder.spec)
        labels = [pool.taxonomy.categories.index(d.category) for d in routers[False].route_vectors(shards.vectors)]
        for ann in (False, True):
            path = Path(tmp) / f"log-{ann}.npz"
            write_pool_npz(path, shards.vectors, labels, shards.ids, taxonomy=pool.taxonomy,
                           embedder_spec=pool.embedder.spec, config=KNNConfig(), ann=ann)
            routers[ann] = Router(load_pool_npz(path), pool.embedder)
        out.append(_compare(routers, qv, k, f"log shards ({real_shards})", len(shards)))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", nargs="+", type=int, default=[10_000, 100_000, 1_000_000])
    ap.add_argument("--queries", type=int, default=500, help="queries per size")
    ap.add_argument("--exact-queries", type=int, default=100, help="queries timed one by one with exact search")
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--real-shards", metavar="DIR")
    ap.add_argument("--no-real", action="store_true", help="skip the real-vector agreement")
    ap.add_argument("--json", metavar="PATH", help="also write the numbers as JSON")
    args = ap.parse_args()
    from workbench import config

    print(f"HNSW M={config.ANN_M} efConstruction={config.ANN_EF_CONSTRUCTION} efSearch={config.ANN_EF_SEARCH}; "
          f"k={args.k}; export threshold {config.ANN_THRESHOLD} rows")
    print(f"{'rows':>9} {'build s':>8} {'index MB':>9} {'RSS +MB':>8} {'hnsw p50':>9} {'p95':>6} {'exact p50':>10} "
          f"{'p95':>7} {'speed-up':>9} {'recall':>7} {'tiers agree':>11}")
    results = {"params": {"m": config.ANN_M, "ef_construction": config.ANN_EF_CONSTRUCTION,
                          "ef_search": config.ANN_EF_SEARCH, "k": args.k}, "synthetic": [], "real": []}
    for n in args.sizes:
        r = bench_size(n, args.queries, args.k, args.exact_queries)
        results["synthetic"].append(r)
        print(f"{n:>9} {r['build_s']:>8.1f} {r['index_mb']:>9.0f} {r['rss_growth_mb']:>8.0f} {r['hnsw_p50_ms']:>9.3f} "
              f"{r['hnsw_p95_ms']:>6.3f} {r['exact_p50_ms']:>10.2f} {r['exact_p95_ms']:>7.2f} "
              f"{r['speedup_p50']:>8.0f}x {r[f'recall@{args.k}']:>7.3f} {100 * r['tier_agreement']:>10.1f}%"
              f"  (mean cosine of nearest / {args.k}th: {r['nn1_cosine']:.2f} / {r[f'nn{args.k}_cosine']:.2f})",
              flush=True)
    if not args.no_real:
        with tempfile.TemporaryDirectory() as tmp:
            results["real"] = real_agreement(tmp, args.real_shards, args.k)
        for r in results["real"]:
            print(f"real vectors, {r['pool']} pool ({r['rows']} rows), {r['queries']} benchmark prompts: "
                  f"recall@{args.k} {r[f'recall@{args.k}']:.3f}, tier decisions agree {100 * r['tier_agreement']:.2f}%, "
                  f"categories {100 * r['category_agreement']:.2f}%")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
