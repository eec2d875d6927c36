"""Nearest-neighbour search for the two batch workloads: leave-one-out of a big pool, and coverage of a traffic log.

    nice -n 5 python benchmarks/search.py [--workload loo coverage] [--loo-rows 50000] [--queries 1000000]
                                          [--pool-rows 0 50000] [--dim 896] [--k 15] [--sample 20000]
                                          [--methods hnsw faiss-flat ivf pq-refine reduced]

For every method: seconds, peak memory (growth of the process's resident
high-water mark, which sees faiss's allocations too), recall@k against
exact search, and the ratio against ``main`` measured in the same run:

- ``main``: the search as it was before ``core.search`` (``argpartition``
  over every similarity; an HNSW index from 50,000 rows), copied below;
- ``exact``: ``core.search`` (``self_top_k`` for leave-one-out, ``exact_top_k``);
- ``faiss-flat``: faiss ``IndexFlatIP`` (BLAS and faiss's own heap), 2 threads;
- ``hnsw``: ``core.ann.HNSWIndex`` (config's M, efConstruction, efSearch), build included;
- ``ivf``: faiss ``IndexIVFFlat``, nlist = 4 sqrt(rows), nprobe = nlist / 16, training included;
- ``pq-refine`` (when in ``--methods``): faiss ``IndexPQFastScan`` (4-bit codes, d/4 sub-quantisers) re-ranked exactly
  (``IndexRefineFlat``, k_factor 8), training included;
- ``reduced`` (coverage only): ``core.search.nearest_neighbors(method="reduced")`` in full: its plans tried on a
  seeded sample, then exact top-c in the pool's principal subspace re-ranked exactly (basis, sample check and
  fallback included); its recall is against exact search on the timed exact rows, its own sampled recall, the
  plan it kept and the method it ended with are printed below its row.

Methods too slow to run in full are timed on ``--sample`` query rows and
scaled to the whole workload (search time is linear in the queries; an
index's build is timed in full and added); such rows say ``est``. Exact,
HNSW and IVF leave-one-out always run in full; exact coverage runs in full
when estimated under a minute. Vectors are realistic, not uniform noise: the bundled
pool's real vectors (the default embedder's), and synthetic rows mixed
from pairs of them with a little noise, normalised (their nearest-neighbour
similarities are printed next to the real pool's). Coverage queries are
90% such mixtures and 10% off-pool mixtures (the uncovered part of traffic).
At the end: what ``core.search.choose_search`` picks for each workload, and
its estimated seconds, to check the constants in ``workbench.config``.
"""
import argparse
import logging
import os
import time

import numpy as np

MAIN_ANN_THRESHOLD = 50_000  # main's fixed row threshold for HNSW


def _status(key):
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) / 1024 for line in fh if line.startswith(key))


def measured(fn, *a, **kw):
    """``(result, seconds, peak MiB above the resident memory at the start)``."""
    try:  # reset the high-water mark (Linux) so each method's peak is its own
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        pass
    before = _status("VmRSS:")
    start = time.perf_counter()
    out = fn(*a, **kw)
    return out, time.perf_counter() - start, _status("VmHWM:") - before


def mixtures(base, n, rng, *, spread=(0.0, 0.3), noise=0.5, near=True):
    """``n`` unit rows mixed from a base row and another (a near one when ``near``), plus noise."""
    d = base.shape[1]
    out = np.empty((n, d), np.float32)
    for s in range(0, n, 100_000):
        e = min(n, s + 100_000)
        a = rng.integers(0, len(base), e - s)
        b = (a + rng.integers(1, 4, e - s)) % len(base) if near else rng.integers(0, len(base), e - s)
        t = rng.uniform(*spread, e - s).astype(np.float32)[:, None]
        out[s:e] = (1 - t) * base[a] + t * base[b] + noise * rng.standard_normal((e - s, d), np.float32) / np.sqrt(d)
    out /= np.linalg.norm(out, axis=1, keepdims=True)
    return out


def main_top_k(queries, pool, k, *, exclude=None):
    """``core.knn.top_k`` as it was on main: argpartition over every similarity of a block."""
    n, m = len(queries), len(pool)
    k = min(k, m)
    block_rows = max(1, (16 << 20) // max(m, 1))
    idx, sim = np.empty((n, k), np.int64), np.empty((n, k), np.float32)
    for s in range(0, n, block_rows):
        rows = np.arange(s, min(s + block_rows, n))
        S = queries[rows] @ pool.T
        if exclude is not None:
            S[exclude(rows)] = -np.inf
        part = np.argpartition(-S, k - 1, axis=1)[:, :k]
        ps = np.take_along_axis(S, part, axis=1)
        order = np.argsort(-ps, axis=1, kind="stable")
        idx[rows], sim[rows] = np.take_along_axis(part, order, axis=1), np.take_along_axis(ps, order, axis=1)
    return idx, sim


def faiss_flat(pool):
    import faiss

    index = faiss.IndexFlatIP(pool.shape[1])
    index.add(pool)
    return index


def ivf(pool):
    import faiss

    nlist = int(4 * np.sqrt(len(pool)))
    index = faiss.IndexIVFFlat(faiss.IndexFlatIP(pool.shape[1]), pool.shape[1], nlist, faiss.METRIC_INNER_PRODUCT)
    index.train(pool[np.random.default_rng(0).choice(len(pool), min(len(pool), 50 * nlist), replace=False)])
    index.add(pool)
    index.nprobe = max(1, nlist // 16)
    return index


def pq_refine(pool):
    """4-bit product quantisation scanned with SIMD (d/4 sub-quantisers), the best 8k re-ranked exactly."""
    import faiss

    d = pool.shape[1]
    index = faiss.IndexRefineFlat(faiss.IndexPQFastScan(d, d // 4, 4, faiss.METRIC_INNER_PRODUCT))
    index.train(pool)
    index.add(pool)
    index.k_factor = 8
    return index


def hnsw(pool):
    from workbench.core.ann import HNSWIndex

    return HNSWIndex.build(pool)


def searcher(index):
    """``search(queries, k) -> (idx, sim)`` of a faiss index or of ``core.ann.HNSWIndex``."""
    if hasattr(index, "ef_search"):
        return index.search
    return lambda q, k: index.search(q, k)[::-1]


def drop_self(search):
    """A leave-one-out search from a plain one: ``k + 1`` neighbours, the row itself dropped."""
    def loo(x, k, rows):
        idx, sim = search(x[rows], k + 1)
        keep = np.argsort(idx == rows[:, None], axis=1, kind="stable")[:, :k]
        return np.take_along_axis(idx, keep, axis=1), np.take_along_axis(sim, keep, axis=1)
    return loo


def recall(idx, exact, k):
    return float(np.mean([len(set(a[:k]) & set(b[:k])) / k for a, b in zip(idx, exact)]))


def report(rows, baseline="main"):
    base = next(r["s"] for r in rows if r["method"] == baseline)
    for r in rows:
        print(f"  {r['method']:<12} {r['s']:>9.1f} s{' est' if r['est'] else '    '} {r['mib']:>8.0f} MiB "
              f"{r['recall']:>8.4f} {base / r['s']:>8.2f}x", flush=True)


def run(method, fn, total, sample, exact, k):
    """Time ``fn(n_rows)`` on all ``total`` query rows, or on ``sample`` and scaled; recall where ``exact`` is known."""
    n = total if not sample or sample >= total else sample
    (idx, _), s, mib = measured(fn, n)
    m = min(n, len(exact))
    return {"method": method, "s": s * total / n, "est": n < total, "mib": mib, "recall": recall(idx[:m], exact[:m], k)}


def run_index(method, build, search, x, total, sample, exact, k):
    """Build an index once (timed in full), search ``sample`` query rows and scale the search to ``total``."""
    index, build_s, build_mib = measured(build, x)
    row = run(method, lambda n: search(searcher(index), n), total, sample, exact, k)
    row["s"] += build_s
    row["mib"] = max(row["mib"], build_mib)
    return row


def main_row(rows, pool_rows):
    """main's search: HNSW from its threshold (main-exact when hnsw was not run, said so), else main-exact."""
    hnsw_row = next((r for r in rows if r["method"] == "hnsw"), None)
    if pool_rows >= MAIN_ANN_THRESHOLD and hnsw_row is None:
        print("  (hnsw not run: main is shown as main-exact)")
    return hnsw_row if pool_rows >= MAIN_ANN_THRESHOLD and hnsw_row is not None else rows[1]


def loo_workload(x, k, sample, methods):
    from workbench.core.search import self_top_k

    n = len(x)
    (exact, _), s, mib = measured(self_top_k, x, k)
    cols = np.arange(n)
    main_exact = lambda m: main_top_k(x[:m], x, k, exclude=lambda r: r[:, None] == cols[None, :])
    loo = lambda search, m: drop_self(search)(x, k, np.arange(m))
    rows = [{"method": "exact", "s": s, "est": False, "mib": mib, "recall": 1.0},
            run("main-exact", main_exact, n, sample, exact, k)]
    for name, build in (("hnsw", hnsw), ("faiss-flat", faiss_flat), ("ivf", ivf)):
        if name in methods:
            rows.append(run_index(name, build, loo, x, n, sample if name == "faiss-flat" else None, exact, k))
    main = dict(main_row(rows, n), method="main")
    return [main] + rows


def coverage_workload(q, pool, k, sample, methods):
    from workbench.core.search import exact_top_k, search_cost

    full = search_cost(len(q), len(pool), pool.shape[1]).exact < 60 or not sample  # else timed on the sample too
    n = len(q) if full else sample
    (exact, _), s, mib = measured(exact_top_k, q[:n], pool, k)
    rows = [{"method": "exact", "s": s * len(q) / n, "est": not full, "mib": mib, "recall": 1.0},
            run("main-exact", lambda m: main_top_k(q[:m], pool, k), len(q), sample, exact, k)]
    for name, build in (("hnsw", hnsw), ("faiss-flat", faiss_flat), ("ivf", ivf), ("pq-refine", pq_refine)):
        if name in methods:
            rows.append(run_index(name, build, lambda search, m: search(q[:m], k), pool, len(q), sample, exact, k))
    if "reduced" in methods:
        rows.append(reduced(q, pool, k, exact))
    main = dict(main_row(rows, len(pool)), method="main")
    return [main] + rows


class _Plan(logging.Handler):
    """Keeps the messages of ``core.search`` (the reduced plans tried and their sampled recall)."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def reduced(q, pool, k, exact):
    """``nearest_neighbors(method="reduced")`` over every query, timed in full; its plans and sampled recall shown."""
    from workbench.core.search import nearest_neighbors

    logger, handler = logging.getLogger("workbench.core.search"), _Plan()
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        got, s, mib = measured(nearest_neighbors, q, pool, k, method="reduced")
    finally:
        logger.removeHandler(handler)
    n = min(len(exact), len(q))
    print(f"    reduced: ended {got.method}, sampled recall@{k} {got.recall}; " + "; ".join(handler.messages))
    return {"method": "reduced", "s": s, "est": False, "mib": mib, "recall": recall(got.idx[:n], exact[:n], k)}


def nn_percentiles(x):
    from workbench.core.search import self_top_k

    x = x[:20_000]
    return np.percentile(self_top_k(x, 1)[1][:, 0], [5, 50, 95]).round(2)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workload", nargs="+", choices=("loo", "coverage"), default=["loo", "coverage"])
    ap.add_argument("--loo-rows", type=int, default=50_000)
    ap.add_argument("--queries", type=int, default=1_000_000)
    ap.add_argument("--pool-rows", type=int, nargs="+", default=[0, 50_000], help="0: the bundled pool itself")
    ap.add_argument("--dim", type=int, default=0, help="keep the first DIM columns (0: all)")
    ap.add_argument("--k", type=int, nargs="+", default=[15], help="leave-one-out k")
    ap.add_argument("--coverage-k", type=int, nargs="+", default=None, help="default: 1 and the router's k")
    ap.add_argument("--sample", type=int, default=20_000, help="query rows for the slow exact baselines")
    ap.add_argument("--methods", nargs="+", default=["hnsw", "faiss-flat", "ivf", "reduced"],
                    choices=("hnsw", "faiss-flat", "ivf", "pq-refine", "reduced"), help="besides exact and main-exact "
                    "(keep hnsw from 50,000 rows: it is main's search there; pq-refine trains slowly)")
    ap.add_argument("--vectors", help="a .npy of the bundled pool's vectors (default: load the pool)")
    args = ap.parse_args()

    import faiss
    from workbench import config
    from workbench.core.search import choose_search, search_cost

    faiss.omp_set_num_threads(2)
    if args.vectors:
        base = np.load(args.vectors)
    else:
        from workbench.dataset.embeddings import load_embedded_pool
        base = load_embedded_pool().vectors
    if args.dim:
        base = base[:, :args.dim] / np.linalg.norm(base[:, :args.dim], axis=1, keepdims=True)
    base = np.ascontiguousarray(base, np.float32)
    rng = np.random.default_rng(0)
    d = base.shape[1]
    print(f"bundled pool {base.shape[0]} x {d}; load {os.getloadavg()[0]:.1f}; "
          f"nearest-neighbour cosine p5/p50/p95 {nn_percentiles(base)}")
    print(f"  {'method':<12} {'time':>13} {'peak':>12} {'recall':>8} {'vs main':>8}")
    if "loo" in args.workload:
        x = mixtures(base, args.loo_rows, rng)
        print(f"\nleave-one-out, {len(x)} synthetic rows (nearest cosine p5/p50/p95 {nn_percentiles(x)})")
        for k in args.k:
            pick = choose_search(len(x), len(x), d, self_search=True)
            print(f" k={k}; load {os.getloadavg()[0]:.1f}; choose_search: {pick} "
                  f"({search_cost(len(x), len(x), d, self_search=True)})")
            report(loo_workload(x, k, args.sample, args.methods))
        del x
    if "coverage" in args.workload:
        q = np.concatenate([mixtures(base, args.queries - args.queries // 10, rng),
                            mixtures(base, args.queries // 10, rng, spread=(0.3, 0.5), noise=1.0, near=False)])
        for m in args.pool_rows:
            pool = base if m == 0 else mixtures(base, m, rng)
            for k in args.coverage_k or (1, config.K):
                print(f"\ncoverage, {len(q)} queries against {len(pool)} rows, k={k}; load {os.getloadavg()[0]:.1f}; "
                      f"choose_search: {choose_search(len(q), len(pool), d)} ({search_cost(len(q), len(pool), d)})")
                report(coverage_workload(q, pool, k, args.sample, args.methods))


if __name__ == "__main__":
    main()
