"""What routing a conversation turn costs against routing one message (ratios measured in the same run).

    python benchmarks/conversation_latency.py --pool POOL.npz [--conversations 30] [--repeat 3] [--json PATH]

Baseline: ``Router.route(text)`` of one message with the text cap as it was
(the first 2,048 characters). Measured against it, message by message, in
alternating order so a busy machine slows every mode alike, each timed once
(``--repeat`` applies to the long messages only):

- ``route, head+tail cap``: the same message with today's cap (beginning and end of an over-long text);
- ``turn, <rule>``: the newest turn of a conversation, routed the way a client
  asks, ``route_conversation(all turns so far)``, the turns before it routed by
  the same router at the turns before (it remembers their vectors), for each context rule.

The messages are the user turns of ``data/conversations`` (every turn after
the first is a "newest turn"), plus long pasted-context texts (``--long``
synthetic ones over the cap) for the cap. Ratios are medians of per-message ratios.
"""
import argparse
import json
import random
import statistics
import time

RULES = {"alone": ("alone", 1), "lift": ("lift", 1), "lift-2": ("lift", 2), "lift-3": ("lift", 3),
         "inherit-2": ("inherit", 2), "detector-2": ("detector", 2),
         "detector-3": ("detector", 3)}


def timed(fn, repeat):
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pool", required=True, help="pool.npz to route with (e.g. what `workbench export` wrote)")
    ap.add_argument("--conversations", type=int, default=30, help="conversations sampled from data/conversations")
    ap.add_argument("--long", type=int, default=8, help="long pasted-context messages (over the cap)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", metavar="PATH", help="also write the numbers as JSON")
    args = ap.parse_args()

    from workbench.analysis.conversations import read_conversations
    from workbench.analysis.long_messages import head_only
    from workbench.core.conversation import ContextRule
    from workbench.core.router import Router

    router = Router.load(args.pool)
    frame = read_conversations()
    ids = random.Random(args.seed).sample(list(frame["conversation_id"].unique()), args.conversations)
    convs = [frame.loc[frame["conversation_id"] == c, "text"].tolist() for c in ids]
    paste = "2024-05-01 12:00:01 ERROR worker-3 connection reset by peer (pool=db-main) retry=3\n" * 40
    longs = [f"log {i}:\n{paste}why does this keep failing every night, and how do I stop it?" for i in range(args.long)]
    router.route("warm-up")
    ratios = {"route, head+tail cap": []} | {f"turn, {r}": [] for r in RULES}
    base_times = []
    for n, turns in enumerate(convs):
        clients = {r: Router(router.artifact, router.embedder) for r in RULES}  # one memory per rule, as a service
        for r, (name, k) in RULES.items():
            clients[r].route_conversation(turns[:1], context=ContextRule(name, turns=k))
        for i in range(1, len(turns)):
            base = timed(lambda: router.route(head_only(turns[i])), 1)  # every mode timed once: a turn's memory is used up
            base_times.append(base)
            ratios["route, head+tail cap"].append(timed(lambda: router.route(turns[i]), 1) / base)
            for r in list(RULES)[::(1 if (n + i) % 2 else -1)]:
                name, k = RULES[r]
                ratios[f"turn, {r}"].append(timed(lambda: clients[r].route_conversation(
                    turns[:i + 1], context=ContextRule(name, turns=k)), 1) / base)
    long_ratio = [timed(lambda: router.route(t), args.repeat) / timed(lambda: router.route(head_only(t)), args.repeat)
                  for t in longs]
    rows = {m: statistics.median(v) for m, v in ratios.items()} | {"route a long message, head+tail cap":
                                                                   statistics.median(long_ratio)}
    print(f"baseline: route one message (cap = first {router.embedder.max_chars} characters), median "
          f"{1000 * statistics.median(base_times):.1f} ms over {len(base_times)} messages")
    print(f"{'mode':<38} {'x baseline':>10}")
    for m, v in rows.items():
        print(f"{m:<38} {v:>10.2f}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump({"baseline_s": statistics.median(base_times), "ratios": rows}, fh, indent=2)


if __name__ == "__main__":
    main()
