"""Route latency per message, against the embedding alone as the baseline (same run).

    python benchmarks/route.py [--pool reports/latest/pool.npz] [--n 200]

Without --pool it exports the bundled pool to a temporary pool.npz first.
"""
import argparse
import statistics
import tempfile
import time
from pathlib import Path


def per_message(fn, texts):
    times = []
    for t in texts:
        start = time.perf_counter()
        fn(t)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000, sorted(times)[int(0.95 * (len(times) - 1))] * 1000


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pool", help="pool.npz to load")
    ap.add_argument("--n", type=int, default=200, help="messages to route one by one")
    args = ap.parse_args()

    from workbench.analysis.evaluate import best_config
    from workbench.core.router import Router
    from workbench.dataset.embeddings import load_embedded_pool
    from workbench.decisions.export import export_pool

    pool = load_embedded_pool()
    path = args.pool
    if path is None:
        path = Path(tempfile.mkdtemp()) / "pool.npz"
        export_pool(pool, path, best_config(pool)[0])
    start = time.perf_counter()
    router = Router.load(path)
    load_s = time.perf_counter() - start
    texts = pool.frame["text"].sample(args.n, random_state=0).tolist()
    router.route(texts[0])  # warm-up: loads the model
    emb50, emb95 = per_message(lambda t: router.embedder.encode([t]), texts)
    rt50, rt95 = per_message(router.route, texts)
    start = time.perf_counter()
    router.route_batch(texts)
    batch_ms = (time.perf_counter() - start) * 1000 / len(texts)
    m = router.metadata
    print(f"pool {path}: {m['n']} messages, {m['backend']}, k={m['k']} vote={m['vote']}; load {load_s * 1000:.0f} ms")
    print(f"{'':<24} {'median ms':>10} {'p95 ms':>8}")
    print(f"{'embed only (baseline)':<24} {emb50:>10.2f} {emb95:>8.2f}")
    print(f"{'route (embed + k-NN)':<24} {rt50:>10.2f} {rt95:>8.2f}")
    print(f"k-NN overhead: route / embed = {rt50 / emb50:.2f}x; batched route: {batch_ms:.2f} ms per message")


if __name__ == "__main__":
    main()
