"""What reading a long message's question twice and the coverage cap cost per routed message (ratios, same run).

    python benchmarks/question_latency.py POOL.npz [--n 60] [--rounds 5]

Routes ``--n`` short pool-like messages and the long pasted messages of ``data/dev/pasted.jsonl`` one at a
time, alternating in every round between the router as exported (question blend and coverage cap from its
metadata) and the same router with both switched off (the baseline), and prints the median ratio per kind.
"""
import argparse
import json
import statistics
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def per_message(router, texts):
    start = time.perf_counter()
    for text in texts:
        router.route(text)
    return (time.perf_counter() - start) / len(texts)


def main():
    from workbench.core.coverage import CoverageCap
    from workbench.core.question import QuestionBlend
    from workbench.core.router import Router

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("pool")
    ap.add_argument("--n", type=int, default=60)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    router = Router.load(args.pool)
    shipped = (router.question, router.coverage)
    short = [json.loads(line)["text"] for line in (ROOT / "data/dev/act.jsonl").read_text().splitlines()][:args.n]
    long = [json.loads(line)["text"] for line in (ROOT / "data/dev/pasted.jsonl").read_text().splitlines()]
    long = [t for t in long if len(t) >= router.question.min_chars][:args.n]
    router.route_batch(short[:4] + long[:4])  # warm-up: loads the models
    for kind, texts in (("short", short), ("long pasted", long)):
        ratios = []
        for r in range(args.rounds):
            times = {}
            for mode in (("baseline", "exported") if r % 2 == 0 else ("exported", "baseline")):
                router.question, router.coverage = shipped if mode == "exported" else (QuestionBlend(), CoverageCap())
                times[mode] = per_message(router, texts)
            ratios.append(times["exported"] / times["baseline"])
        print(f"{kind:<12} {len(texts):>3} messages: exported / baseline = {statistics.median(ratios):.3f} "
              f"(per message {1000 * times['exported']:.1f} ms vs {1000 * times['baseline']:.1f} ms)")
        router.question, router.coverage = shipped


if __name__ == "__main__":
    main()
