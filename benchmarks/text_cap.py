"""What the text cap buys: embedding time of long messages against a 1k-character one (same run, same backend).

    python benchmarks/text_cap.py [--backend e5-small] [--repeat 3] [--json PATH]

Without the cap the default backend embeds every 512-token window of a text, so cost grows with length; with it
(``Embedder.max_chars``, 2,048 characters by default) a long message costs what a 2k one does.
"""
import argparse
import json
import statistics
import time


def timed(embedder, text, repeat):
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        embedder.encode([text])
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backend", default="e5-small")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", metavar="PATH", help="also write the numbers as JSON")
    args = ap.parse_args()

    from workbench.core.embed import get_embedder

    capped = get_embedder(args.backend)
    uncapped = get_embedder(args.backend)
    uncapped.max_chars = None  # the behaviour before the cap
    sentence = "Please review this function and tell me why the loop never ends when the list is empty. "
    texts = {n: (sentence * (n // len(sentence) + 1))[:n] for n in (1_000, 10_000, 60_000)}
    capped.encode(["warm-up"])
    uncapped.encode(["warm-up"])
    base = timed(capped, texts[1_000], args.repeat)
    rows = []
    for n, text in texts.items():
        with_cap, without = timed(capped, text, args.repeat), timed(uncapped, text, args.repeat)
        rows.append({"chars": n, "capped_s": with_cap, "uncapped_s": without,
                     "capped_vs_1k": with_cap / base, "uncapped_vs_1k": without / base})
    print(f"{args.backend}, cap {capped.max_chars} characters; baseline: a 1,000-character message, {base * 1000:.0f} ms")
    print(f"{'chars':>8} {'capped x 1k':>12} {'uncapped x 1k':>14}")
    for r in rows:
        print(f"{r['chars']:>8} {r['capped_vs_1k']:>12.2f} {r['uncapped_vs_1k']:>14.2f}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump({"backend": args.backend, "cap": capped.max_chars, "baseline_s": base, "rows": rows}, fh,
                      indent=2)


if __name__ == "__main__":
    main()
