"""Rows per second of ``workbench embed``: one local process against local Ray with 2 workers, same file, same run.

    python benchmarks/embed_scale.py [--rows 20000] [--backends use-multilingual e5-small] [--json PATH]

Builds a deterministic message log of ``--rows`` rows (bundled pool,
template set and public benchmark prompts, two-message combinations of
them, and about 12% exact or case/space-only duplicates, as a real log
has), then per backend embeds it with ``--engine local`` and with
``--engine ray --workers 2`` into fresh shard folders, checks that both give
the same vectors (cosine per row), and prints rows per second (embedding
only, and end to end with Ray's start), the duplicate share skipped, and
the hours 10M messages would take per engine and worker count (Ray rows per
second per worker, times workers: an extrapolation that assumes a cluster
scales linearly).
"""
import argparse
import json
import random
import shutil
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEN_MILLION = 10_000_000


def build_log(path, rows, seed=0):
    from workbench import config

    texts = []
    for folder in (ROOT / "data" / "pool", ROOT / "data" / "templates", config.EXTERNAL_DIR):
        for f in sorted(Path(folder).glob("*.jsonl")):
            for line in f.read_text(encoding="utf-8").split("\n"):
                if line.strip():
                    obj = json.loads(line)
                    t = obj.get("text") or obj.get("prompt") or obj.get("turns", [None])[0]
                    if isinstance(t, str) and 2 <= len(t) <= 2000:
                        texts.append(t)
    rng = random.Random(seed)
    short = [t for t in texts if len(t) < 200]
    log, seen = [], set()
    for t in texts:
        if t not in seen:
            seen.add(t)
            log.append(t)
    while len(log) < int(rows * 0.88):
        t = f"{rng.choice(short)} {rng.choice(short)}"
        if t not in seen:
            seen.add(t)
            log.append(t)
    log = log[:int(rows * 0.88)]
    rng.shuffle(log)
    while len(log) < rows:  # duplicates: verbatim, shouted or re-spaced copies of earlier messages
        t = rng.choice(log)
        log.append(rng.choice([t, t.upper(), "  " + t.replace(" ", "  ") + " "]))
    rng.shuffle(log)
    path.write_text("".join(json.dumps({"id": f"log-{i}", "text": t}, ensure_ascii=False) + "\n"
                            for i, t in enumerate(log)), encoding="utf-8")
    return path


def run(log, out, backend, engine, workers, rows_per_shard):
    from workbench.scale.embed_logs import embed_logs

    marks = []
    start = time.perf_counter()
    s = embed_logs([log], out, backend=backend, engine=engine, workers=workers, rows_per_shard=rows_per_shard,
                   on_progress=lambda p: marks.append((time.perf_counter(), p.rows_done)))
    total = time.perf_counter() - start
    # embedding rate: from the first shard done to the last (excludes model loading and Ray's start); with
    # fewer than three shards per worker the first and last land together and the figure means nothing
    (t0, r0), (t1, r1) = marks[0], marks[-1]
    enough = len(marks) >= 3 * (workers or 1) and t1 > t0
    steady = (r1 - r0) / (t1 - t0) if enough else float("nan")
    return {"engine": engine, "workers": workers, "rows": s["rows"], "seconds": total,
            "rows_per_s_end_to_end": s["rows"] / total, "rows_per_s": steady}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=20_000)
    ap.add_argument("--backends", nargs="+", default=["use-multilingual", "e5-small"])
    ap.add_argument("--shard-rows", type=int, default=1000, help="rows per shard")
    ap.add_argument("--keep", metavar="DIR", help="keep the shards (e.g. for benchmarks/ann.py --real-shards)")
    ap.add_argument("--json", metavar="PATH", help="also write the numbers as JSON")
    args = ap.parse_args()

    import numpy as np

    from workbench.dataset.shards import load_shards

    results = []
    with tempfile.TemporaryDirectory() as tmp:
        log = build_log(Path(tmp) / "log.jsonl", args.rows)
        for backend in args.backends:
            outs = {e: Path(tmp) / f"{backend}-{e}" for e in ("local", "ray")}
            local = run(log, outs["local"], backend, "local", None, args.shard_rows)
            ray = run(log, outs["ray"], backend, "ray", 2, args.shard_rows)
            a, b = load_shards(outs["local"]), load_shards(outs["ray"])
            cos = (a.vectors * b.vectors).sum(axis=1)
            dup_share = 1 - local["rows"] / args.rows
            unique_10m = TEN_MILLION * (1 - dup_share)
            hours = {"local, 1 process": unique_10m / local["rows_per_s"] / 3600}
            per_worker = ray["rows_per_s"] / 2
            for n in (2, 16, 64):
                hours[f"ray, {n} workers"] = unique_10m / (per_worker * n) / 3600
            r = {"backend": backend, "rows_in_file": args.rows, "duplicate_share": dup_share, "local": local,
                 "ray": ray, "ray_over_local": ray["rows_per_s"] / local["rows_per_s"],
                 "min_cosine_local_vs_ray": float(cos.min()), "hours_for_10M": hours}
            results.append(r)
            print(f"\n{backend}: {args.rows} messages, {100 * dup_share:.1f}% exact duplicates skipped, "
                  f"min cosine local vs ray {cos.min():.6f}")
            print(f"{'engine':<22} {'rows/s':>8} {'end to end':>11} {'seconds':>8}")
            for row in (local, ray):
                name = f"{row['engine']}" + (f", {row['workers']} workers" if row["workers"] else ", 1 process")
                print(f"{name:<22} {row['rows_per_s']:>8.1f} {row['rows_per_s_end_to_end']:>11.1f} "
                      f"{row['seconds']:>8.0f}")
            print(f"ray / local: {r['ray_over_local']:.2f}x; hours for 10M messages: "
                  + ", ".join(f"{k} {v:.1f}" for k, v in hours.items()))
            if args.keep:
                shutil.copytree(outs["local"], Path(args.keep) / backend, dirs_exist_ok=True)
            assert np.isfinite(cos).all()
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
