"""Route latency of a composite backend against its first part alone (same run, same encoder instances).

    python benchmarks/ensemble_latency.py [--backend e5-small+use-multilingual] [--n 150] [--json out.json]

Exports the bundled pool twice (plain k-NN head, so only the backend differs), then routes `--n` pool messages one at a
time through both routers in turns (the order alternates per message), with one instance of each encoder shared by
both. Reports per router the median and the 10th percentile of wall time and of process CPU time (all threads): on a
machine shared with other jobs the low percentile and the CPU time are the steadier figures. Also times each part's
encoder alone, so the ratio can be read as "first part + second part + k-NN over a wider vector".
"""
import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path


def timed(fn, arg):
    start, start_cpu = time.perf_counter(), time.process_time()
    fn(arg)
    return time.perf_counter() - start, time.process_time() - start_cpu


def summary(samples):
    wall, cpu = zip(*samples)
    q10 = lambda v: sorted(v)[len(v) // 10]  # noqa: E731
    return {"wall_ms": 1000 * statistics.median(wall), "wall_p10_ms": 1000 * q10(wall),
            "cpu_ms": 1000 * statistics.median(cpu), "cpu_p10_ms": 1000 * q10(cpu)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backend", default="e5-small+use-multilingual", help="composite backend (a+b)")
    ap.add_argument("--n", type=int, default=150, help="messages routed one by one per router")
    ap.add_argument("--json", help="also write the figures as JSON")
    args = ap.parse_args()

    from workbench.analysis.evaluate import choose_config
    from workbench.core.embed import CompositeEmbedder, get_embedder
    from workbench.core.router import Router
    from workbench.dataset.embeddings import load_embedded_pool
    from workbench.decisions.export import export_pool
    from workbench.decisions.targets import Targets

    names = args.backend.split("+")
    composite = get_embedder(args.backend)  # the registered composite, with the part settings it ships with
    if not isinstance(composite, CompositeEmbedder):
        raise SystemExit(f"{args.backend} is not a composite backend")
    parts = list(composite.parts)
    tmp = Path(tempfile.mkdtemp())
    routers = {}
    for name, embedder in ((names[0], parts[0]), (args.backend, composite)):
        pool = load_embedded_pool(backend=embedder)
        path = tmp / f"{name}.npz"
        export_pool(pool, path, choose_config(pool)[0], head="knn",
                    targets=Targets(max_abstain=None, calibration="none"))
        routers[name] = Router.load(path, embedder=embedder)
    texts = pool.frame["text"].sample(args.n, random_state=0).tolist()
    fns = {f"route {k}": r.route for k, r in routers.items()}
    fns.update({f"encode {p.name}": (lambda t, p=p: p.encode([t])) for p in parts})
    for fn in fns.values():
        fn(texts[0])  # load the models
    samples = {k: [] for k in fns}
    keys = list(fns)
    for i, t in enumerate(texts):
        for k in (keys if i % 2 == 0 else keys[::-1]):
            samples[k].append(timed(fns[k], t))
    rows = {k: summary(v) for k, v in samples.items()}
    base = rows[f"route {names[0]}"]
    print(f"{'':<44} {'median ms':>10} {'p10 ms':>8} {'cpu ms':>8} {'cpu p10':>8}   ratio (median, p10, cpu, cpu p10)")
    for k, r in rows.items():
        ratios = [r[m] / base[m] for m in ("wall_ms", "wall_p10_ms", "cpu_ms", "cpu_p10_ms")]
        print(f"{k:<44} {r['wall_ms']:>10.1f} {r['wall_p10_ms']:>8.1f} {r['cpu_ms']:>8.1f} {r['cpu_p10_ms']:>8.1f}   "
              + " ".join(f"{x:.2f}x" for x in ratios))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
