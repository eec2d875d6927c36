"""The traffic section's queries (DuckDB over decision-log JSONL, read in place) on 1 million synthetic records.

    python benchmarks/traffic.py [--records 1000000] [--days 30] [--subset 100000] [--keep DIR]

Writes ``--records`` synthetic decision records (the gateway's fields, seeded; texts of 40-200 characters) as
``decisions-YYYY-MM-DD.jsonl`` over ``--days`` days, plus a feedback file rating 2% of them, then measures, each in
its own child process (time, and peak RSS of that process from ``wait4``: DuckDB's memory is native, tracemalloc
would not see it):

- **duckdb, all records**: ``open_log`` (the one parse of every file) and every query of the section: mix by tier and
  by category, cost, rates, fallback reasons, tier switches and transitions, confidence, feedback, the drift flag,
  and reading the texts back (``messages()``, what coverage needs);
- **duckdb, subset**: the same on the first ``--subset`` records' files (the same run, the same machine);
- **pandas, subset** (the baseline): ``pandas.read_json(lines=True)`` of those files and the mix, cost and rate
  figures with groupby, scaled linearly to all records (memory: its growth above a child that only imports the
  packages, scaled).

Prints the numbers and the ratios against the baselines measured in the same run.
"""
import argparse
import datetime
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
TIERS = np.array(["cheap", "medium", "strong"])
CATEGORIES = np.array(["casual", "simple_lookup", "analysis", "research_lookup", "creative", "coding", "reasoning"])
TIER_OF = np.array([0, 0, 1, 1, 1, 2, 2])
WORDS = np.array("the a how why what please write explain list compare code python error table plan trip recipe "
                 "summary history price weather translate poem story bug fix sort merge file data".split())


def write_log(folder, records, days, seed=0):
    """Synthetic decision records, one file a day; returns the files with their record counts."""
    rng = np.random.default_rng(seed)
    start = datetime.date(2026, 11, 1)
    per_day = np.full(days, records // days)
    per_day[: records % days] += 1
    files, rid = [], 0
    for d, n in enumerate(per_day):
        day = start + datetime.timedelta(days=d)
        cat = rng.integers(0, len(CATEGORIES), n)
        conf = rng.beta(5, 1.5, n)
        abstain = conf < 0.5
        tier = np.where(abstain, 1, TIER_OF[cat])
        fallback = rng.random(n) < 0.01
        seconds = np.sort(rng.integers(0, 86400, n))
        conv = rng.integers(0, max(1, n // 3), n)
        tokens = rng.integers(20, 2000, (n, 2))
        lengths = rng.integers(6, 30, n)
        lines = []
        for i in range(n):
            t = datetime.datetime.combine(day, datetime.time()) + datetime.timedelta(seconds=int(seconds[i]))
            rec = {"time": t.strftime("%Y-%m-%dT%H:%M:%S.000Z"), "request_id": f"r{rid + i:08d}", "client": "bot",
                   "conversation_id": f"c{d}-{conv[i]}", "turn": 1, "text": " ".join(rng.choice(WORDS, lengths[i])),
                   "text_sha256": "0" * 64, "routed": True, "category": CATEGORIES[cat[i]], "tier": TIERS[tier[i]],
                   "decided_tier": TIERS[TIER_OF[cat[i]]], "confidence": round(float(conf[i]), 4), "margin": 0.1,
                   "abstain": bool(abstain[i]), "neighbors": ["p1", "p2", "p3"], "pool_sha256": "ab" * 32,
                   "upstream_tier": TIERS[min(tier[i] + 1, 2)] if fallback[i] else TIERS[tier[i]],
                   "upstream_model": "m", "fallback_reason": "timeout" if fallback[i] else None, "routing_ms": 3.1,
                   "upstream_ms": 420.0, "prompt_tokens": int(tokens[i, 0]), "completion_tokens": int(tokens[i, 1]),
                   "cost": 0.001, "stream": False, "status": 200}
            lines.append(json.dumps(rec))
        path = folder / f"decisions-{day}.jsonl"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        files.append((path, int(n)))
        rid += n
    rated = rng.choice(rid, rid // 50, replace=False)
    (folder / "feedback-2026-11-30.jsonl").write_text("".join(
        json.dumps({"time": "2026-12-01T00:00:00Z", "request_id": f"r{r:08d}",
                    "rating": "down" if r % 4 == 0 else "up", "tier_wanted": None}) + "\n" for r in rated))
    return files


def run_duckdb(folder):
    from workbench.analysis.traffic import drift, headline, open_log

    t0 = time.perf_counter()
    log = open_log(folder)
    opened = time.perf_counter() - t0
    mix = log.mix("tier")
    log.mix("category", wide=True), log.cost(), log.rates(), log.fallback_reasons(), log.tier_switches()
    log.tier_transitions(), log.confidence(), log.feedback()
    headline(log, flag=drift(mix))
    queried = time.perf_counter() - t0
    n = len(log.messages())
    return {"open_s": opened, "queries_s": queried - opened, "texts_s": time.perf_counter() - t0 - queried,
            "records": n}


def run_pandas(folder):
    import pandas as pd

    t0 = time.perf_counter()
    frame = pd.concat([pd.read_json(f, lines=True, dtype=False) for f in sorted(Path(folder).glob("decisions-*.jsonl"))],
                      ignore_index=True)
    frame["day"] = frame["time"].str[:10]
    frame["tokens"] = frame["prompt_tokens"].fillna(0) + frame["completion_tokens"].fillna(0)
    frame.groupby(["day", "tier"]).size()
    frame.groupby(["day", "category"]).size()
    prices = {"cheap": 0.15, "medium": 1.0, "strong": 10.0}
    frame.assign(routed=frame["tokens"] * frame["upstream_tier"].map(prices)).groupby("day")[["tokens", "routed"]].sum()
    frame.groupby("day").agg(abstain=("abstain", "mean"), fallback=("fallback_reason", "count"))
    frame.sort_values(["conversation_id", "time"]).groupby("conversation_id")["tier"].shift()
    return {"open_s": 0.0, "queries_s": time.perf_counter() - t0, "texts_s": 0.0, "records": len(frame)}


def child(kind, folder):
    """Run one measurement in a child process: its JSON result, wall time and peak RSS (MB)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, __file__, "--child", kind, str(folder)], stdout=subprocess.PIPE,
                            env=dict(os.environ, PYTHONPATH=str(ROOT)))
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    if status:
        raise SystemExit(f"{kind} child failed with status {status}")
    result = json.loads(out)
    result.update(wall_s=time.perf_counter() - t0, peak_rss_mb=usage.ru_maxrss / 1024)
    return result


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--subset", type=int, default=100_000)
    ap.add_argument("--keep", help="write the synthetic log here and keep it")
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        kind, folder = args.child
        if kind == "idle":  # the imports alone: the memory the other children start from
            import pandas  # noqa: F401

            import workbench.analysis.traffic  # noqa: F401
            print(json.dumps({"open_s": 0, "queries_s": 0, "texts_s": 0, "records": 0}))
            return
        print(json.dumps((run_duckdb if kind == "duckdb" else run_pandas)(folder)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(args.keep or tmp) / "all"
        folder.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        files = write_log(folder, args.records, args.days)
        size = sum(f.stat().st_size for f, _ in files)
        print(f"wrote {args.records:,} records ({size / 2**20:,.0f} MiB) over {args.days} days in "
              f"{time.perf_counter() - t0:.1f} s")
        subset, n = Path(args.keep or tmp) / "subset", 0
        subset.mkdir(exist_ok=True)
        for f, count in files:
            if n >= args.subset:
                break
            os.link(f, subset / f.name)
            n += count
        (subset / "feedback-2026-11-30.jsonl").write_bytes((folder / "feedback-2026-11-30.jsonl").read_bytes())
        idle = child("idle", subset)
        full, small, pandas_small = child("duckdb", folder), child("duckdb", subset), child("pandas", subset)
    scale = full["records"] / small["records"]
    idle_mb = idle["peak_rss_mb"]  # memory is scaled above the imports' own (the growth is what grows)
    rows = [("duckdb, all records", full, 1.0), (f"duckdb, {small['records']:,} records", small, 1.0),
            (f"pandas, {pandas_small['records']:,} records", pandas_small, 1.0),
            (f"pandas scaled to {full['records']:,} (linear)", pandas_small, scale)]
    print(f"{'':38s} {'records':>10s} {'open s':>8s} {'queries s':>10s} {'texts s':>8s} {'wall s':>8s} {'peak RSS MB':>12s}")
    for label, r, k in rows:
        print(f"{label:38s} {int(r['records'] * k):10,d} {r['open_s'] * k:8.2f} {r['queries_s'] * k:10.2f} "
              f"{r['texts_s'] * k:8.2f} {r['wall_s'] * k:8.2f} {idle_mb + (r['peak_rss_mb'] - idle_mb) * k:12.0f}")
    section = full["open_s"] + full["queries_s"]
    print(f"duckdb all records against duckdb subset: {section / (small['open_s'] + small['queries_s']):.1f}x the time "
          f"for {scale:.1f}x the records; peak RSS {full['peak_rss_mb'] / small['peak_rss_mb']:.2f}x")
    grown = lambda r, k=1.0: (r["peak_rss_mb"] - idle_mb) * k  # noqa: E731
    print(f"imports alone: peak RSS {idle_mb:.0f} MB; growth above it: duckdb all records {grown(full):.0f} MB, "
          f"pandas scaled {grown(pandas_small, scale):.0f} MB")
    print(f"pandas scaled against duckdb (pandas does only mix, cost, rates, switches): "
          f"{pandas_small['queries_s'] * scale / section:.1f}x the time, {grown(pandas_small, scale) / grown(full):.1f}x "
          f"the memory growth")


if __name__ == "__main__":
    main()
