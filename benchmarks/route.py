"""Route cost per message, one at a time against batched, per backend (ratios measured in the same run).

    python benchmarks/route.py [--backends e5-small use-multilingual] [--n 96] [--group 32] [--json PATH]

For each backend it exports the bundled pool to a temporary pool.npz, then
takes ``--n`` pool messages in groups of ``--group`` and, group by group
(alternating the order, so a busy machine slows every mode alike), times:

- ``embed one at a time``: ``encode([text])`` per message (the baseline);
- ``embed batch, one call``: the whole group in one encoder call, as
  ``encode`` did before it chunked (``_encode`` + normalisation);
- ``embed batch``: ``encode(group)``, length-sorted chunks (side by side
  where the backend allows);
- ``route one at a time`` / ``route batch``: the same with the k-NN vote.

Ratios are medians over the groups of (mode / embed one at a time).
"""
import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

MODES = ("embed one at a time", "embed batch, one call", "embed batch", "route one at a time", "route batch")


def timed(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def export_for(backend, directory):
    from workbench.core.knn import KNNConfig
    from workbench.dataset.embeddings import load_embedded_pool
    from workbench.decisions.export import export_pool

    pool = load_embedded_pool(backend=backend)
    path = Path(directory) / f"{backend}.npz"
    export_pool(pool, path, KNNConfig())
    return path, pool.frame["text"].tolist()


def bench(backend, n, group, directory, seed=0):
    import random

    from workbench.core.embed import normalize_rows
    from workbench.core.router import Router

    path, texts = export_for(backend, directory)
    router = Router.load(path)
    emb = router.embedder
    sample = random.Random(seed).sample(texts, n)
    router.route_batch(sample[:4])  # warm-up: loads the model
    fns = {
        "embed one at a time": lambda g: [emb.encode([t]) for t in g],
        "embed batch, one call": lambda g: normalize_rows(emb._encode(g)),
        "embed batch": lambda g: emb.encode(g),
        "route one at a time": lambda g: [router.route(t) for t in g],
        "route batch": lambda g: router.route_batch(g),
    }
    per_msg = {m: [] for m in MODES}
    for i, start in enumerate(range(0, n, group)):
        g = sample[start:start + group]
        for mode in (MODES if i % 2 == 0 else MODES[::-1]):
            per_msg[mode].append(timed(lambda: fns[mode](g)) * 1000 / len(g))
    base = per_msg["embed one at a time"]
    rows = {}
    for mode in MODES:
        ms = statistics.median(per_msg[mode])
        rows[mode] = {"ms_per_message": ms, "messages_per_s": 1000 / ms,
                      "ratio_to_embed_one": statistics.median(a / b for a, b in zip(per_msg[mode], base))}
    rows["batch_over_one_route_throughput"] = (rows["route batch"]["messages_per_s"]
                                               / rows["route one at a time"]["messages_per_s"])
    return {"backend": backend, "pool_rows": router.metadata["n"], "messages": n, "group": group,
            "batch_items": emb.batch_items, "batch_chars": emb.batch_chars, "modes": rows}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backends", nargs="+", default=["e5-small", "use-multilingual"])
    ap.add_argument("--n", type=int, default=96, help="messages routed per mode")
    ap.add_argument("--group", type=int, default=32, help="messages per batch")
    ap.add_argument("--json", metavar="PATH", help="also write the numbers as JSON")
    args = ap.parse_args()

    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for backend in args.backends:
            r = bench(backend, args.n, args.group, tmp)
            results.append(r)
            print(f"\n{backend}: pool {r['pool_rows']} rows, {r['messages']} messages in batches of {r['group']} "
                  f"(encoder chunks of <= {r['batch_items']} texts / {r['batch_chars']} chars)")
            print(f"{'':<24} {'ms/msg':>8} {'msg/s':>8} {'vs embed one':>13}")
            for mode in MODES:
                m = r["modes"][mode]
                print(f"{mode:<24} {m['ms_per_message']:>8.2f} {m['messages_per_s']:>8.1f} "
                      f"{m['ratio_to_embed_one']:>12.2f}x")
            print(f"batch / one-at-a-time route throughput: {r['modes']['batch_over_one_route_throughput']:.2f}x")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
