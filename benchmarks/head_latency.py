"""What the router's head costs per routed message: a pool's head against another pool's (ratio, same run).

    python benchmarks/head_latency.py POOL.npz BASELINE.npz [--n 100] [--rounds 7]

Loads ``POOL`` once and routes ``--n`` messages of ``data/dev`` one at a time, alternating in every round
between its own head and the head of ``BASELINE`` (for example the default export of the previous release, whose
head was the logistic-regression blend), swapped into the same router so that nothing else differs. Prints the
median per-round ratio.
"""
import argparse
import json
import statistics

from question_latency import ROOT, per_message  # the same per-message timer (benchmarks/ is on sys.path)


def main():
    from workbench.core.router import Router

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("pool")
    ap.add_argument("baseline")
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args()
    router = Router.load(args.pool)
    heads = {"pool": router.head, "baseline": Router.load(args.baseline).head}
    names = {k: getattr(h, "name", "?") for k, h in heads.items()}
    texts = [json.loads(line)["text"] for name in ("act.jsonl", "typed_a.jsonl")
             for line in (ROOT / "data/dev" / name).read_text().splitlines()][:args.n]
    router.route_batch(texts[:4])  # warm-up: loads the models
    ratios = []
    for r in range(args.rounds):
        times = {}
        for mode in (("baseline", "pool") if r % 2 == 0 else ("pool", "baseline")):
            router.head = heads[mode]
            times[mode] = per_message(router, texts)
        ratios.append(times["pool"] / times["baseline"])
    print(f"{len(texts)} messages, {args.rounds} rounds: head {names['pool']} / head {names['baseline']} = "
          f"{statistics.median(ratios):.3f} (last round {1000 * times['pool']:.2f} ms vs "
          f"{1000 * times['baseline']:.2f} ms per message)")


if __name__ == "__main__":
    main()
