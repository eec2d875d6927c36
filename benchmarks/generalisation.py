"""Head x backend: out-of-fold and out-of-distribution tier accuracy, and route latency against e5-small (same run).

    python benchmarks/generalisation.py [--backends e5-small use-multilingual e5-small+use-multilingual]
                                        [--heads knn logreg blend mlp] [--n 40] [--json out.json]

For every backend the bundled pool is embedded (cached), its k-NN configuration swept, every head compared on the
same stratified folds, and each head exported the way `workbench export` ships it (default policy and calibration,
head fixed). Each pool is then scored on data/eval (150 prompts a source, alternative accepted) and timed routing
`--n` pool messages one at a time. All routers share one instance of each encoder (a composite reuses its parts'),
and they are timed in turns, message by message, so a busy machine slows all of them alike. Two ratios against the
e5-small k-NN router: of the median wall time, and of the median CPU time of the process (all threads), which a
machine shared with other jobs disturbs less.
"""
import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backends", nargs="+", default=["e5-small", "use-multilingual", "e5-small+use-multilingual"])
    ap.add_argument("--heads", nargs="+", default=["knn", "logreg", "blend", "mlp"])
    ap.add_argument("--n", type=int, default=40, help="messages routed one by one per router")
    ap.add_argument("--json", help="also write the table as JSON")
    args = ap.parse_args()

    from workbench.analysis.evaluate import choose_config
    from workbench.analysis.generalisation import score_dir
    from workbench.core.router import Router
    from workbench.dataset.embeddings import load_embedded_pool
    from workbench.decisions.export import export_pool
    from workbench.decisions.head_choice import choose_head

    from workbench.core.embed import CompositeEmbedder, get_embedder

    tmp = Path(tempfile.mkdtemp())
    rows, routers, encoders = [], {}, {}

    def shared(name):
        """One encoder instance per backend part, reused by every router."""
        if name not in encoders:
            parts = name.split("+")
            # USE on one thread, as the registered ensemble runs it: its spinning thread pool would otherwise take
            # the cores of the E5 call timed next (see benchmarks/ensemble_latency.py)
            encoders[name] = (get_embedder(name, threads=1 if name == "use-multilingual" else None) if len(parts) == 1
                              else CompositeEmbedder([shared(p) for p in parts]))
        return encoders[name]

    for backend in args.backends:
        pool = load_embedded_pool(backend=backend)
        config, _ = choose_config(pool)
        choice = choose_head(pool.vectors, pool.labels, pool.taxonomy, config, candidates=tuple(args.heads))
        table = choice.table.set_index("head")
        for head in args.heads:
            path = tmp / f"{backend}-{head}.npz"
            export_pool(pool, path, config, head=head)
            router = Router.load(path, embedder=shared(backend))
            g = score_dir(router).headline()
            routers[(backend, head)] = router
            rows.append({"backend": backend, "head": head, "k": config.k, "chosen": head == choice.best,
                         "oof_tier_accuracy": table.loc[head, "tier_accuracy"],
                         "oof_downgrade_rate": table.loc[head, "downgrade_rate"],
                         "oof_min_category": table.loc[head, "min_category_tier_accuracy"],
                         "oof_point_tier_accuracy": table.loc[head, "point_tier_accuracy"],
                         "external_tier_accuracy": g["tier_accuracy"], "external_downgrade_rate": g["downgrade_rate"],
                         "external_min_source": g["min_source_tier_accuracy"],
                         "external_abstain_rate": g["abstain_rate"]})
            print(f"{backend:<28} {head:<7} done", flush=True)
    texts = pool.frame["text"].sample(args.n, random_state=0).tolist()
    keys = list(routers)
    for r in routers.values():
        r.route(texts[0])  # load the models
    wall, cpu = {k: [] for k in keys}, {k: [] for k in keys}
    for i, t in enumerate(texts):
        for k in (keys if i % 2 == 0 else keys[::-1]):
            start, start_cpu = time.perf_counter(), time.process_time()
            routers[k].route(t)
            wall[k].append(time.perf_counter() - start)
            cpu[k].append(time.process_time() - start_cpu)
    base_key = ("e5-small", "knn") if ("e5-small", "knn") in wall else keys[0]
    base, base_cpu = statistics.median(wall[base_key]), statistics.median(cpu[base_key])
    for row in rows:
        k = (row["backend"], row["head"])
        ms, ms_cpu = statistics.median(wall[k]), statistics.median(cpu[k])
        row.update(route_ms=1000 * ms, route_ratio=ms / base, route_cpu_ms=1000 * ms_cpu, route_cpu_ratio=ms_cpu / base_cpu)
    print(f"\n{'backend':<28} {'head':<7} {'OOF tier':>9} {'OOF down':>9} {'OOF min cat':>12} {'at point':>9} "
          f"{'external':>9} {'ext down':>9} {'ext min':>8} {'route ms':>9} {'ratio':>6} {'cpu ms':>7} {'ratio':>6}")
    for r in rows:
        print(f"{r['backend']:<28} {r['head'] + ('*' if r['chosen'] else ''):<7} {100 * r['oof_tier_accuracy']:>8.1f}% "
              f"{100 * r['oof_downgrade_rate']:>8.1f}% {100 * r['oof_min_category']:>11.1f}% "
              f"{100 * r['oof_point_tier_accuracy']:>8.1f}% {100 * r['external_tier_accuracy']:>8.1f}% "
              f"{100 * r['external_downgrade_rate']:>8.1f}% {100 * r['external_min_source']:>7.1f}% "
              f"{r['route_ms']:>9.1f} {r['route_ratio']:>5.2f}x {r['route_cpu_ms']:>7.1f} {r['route_cpu_ratio']:>5.2f}x")
    print(f"(* the head `workbench export` picks for that backend; ratios: median wall and CPU time of one route "
          f"against {base_key})")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
