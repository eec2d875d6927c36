"""``workbench promote`` on the bundled pool: wall time and peak memory, against ``workbench score --dir`` in the same run.

    python benchmarks/promote.py [--per-source 150] [--n-boot 2000] [--json PATH]

The bundled pool (``data/pool``) is exported once with a fixed k-NN
configuration (the plain vote, no sweep: the export is not what is timed),
then gated against itself on the defaults: every evaluation set of
``data/eval`` (``--per-source`` messages each), the labelled conversations,
and the paired bootstrap. The baseline is what one pool's scoring on the same
evaluation sets costs (``workbench score --dir``): promote routes two pools on
more sets, so a ratio near 2-3 says the gate adds little beyond the routing
itself. Each command runs once unmeasured first so the embedding cache is warm
for both; peak memory is the child process's own maximum resident set
(``wait4``), not this script's.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def export_bundled(path):
    from workbench.core.knn import KNNConfig
    from workbench.dataset.embeddings import load_embedded_pool
    from workbench.decisions.export import export_pool
    from workbench.decisions.targets import Targets

    pool = load_embedded_pool(None)
    export_pool(pool, path, KNNConfig(k=15, vote="distance", center=True), head="knn",
                targets=Targets(max_abstain=None, calibration="none"))
    return len(pool.frame)


def measure(argv):
    """Wall seconds and peak RSS (MB) of one ``workbench`` run in a child process."""
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "workbench", *argv], cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    code = os.waitstatus_to_exitcode(status)
    if code not in (0, 1):
        sys.exit(f"workbench {argv[0]} failed ({code}): {proc.stderr.read().decode()[-2000:]}")
    return {"seconds": round(seconds, 2), "peak_rss_mb": round(usage.ru_maxrss / 1024, 1), "exit_code": code}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--per-source", type=int, default=150)
    ap.add_argument("--n-boot", type=int, default=2000)
    ap.add_argument("--json", metavar="PATH")
    ap.add_argument("--export-only", metavar="NPZ", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.export_only:
        print(export_bundled(args.export_only))
        return
    with tempfile.TemporaryDirectory() as tmp:
        npz = Path(tmp) / "pool.npz"
        # in a child: a process forked from a large parent starts with the parent's peak RSS in ru_maxrss
        rows = int(subprocess.run([sys.executable, __file__, "--export-only", str(npz)], check=True,
                                  capture_output=True, text=True).stdout.split()[-1])
        print(f"bundled pool: {rows} messages -> {npz.name}", flush=True)
        promote = ["promote", "--candidate", str(npz), "--current", str(npz), "--out", str(Path(tmp) / "report"),
                   "--per-source", str(args.per_source), "--n-boot", str(args.n_boot)]
        score = ["score", "--pool", str(npz), "--dir", str(ROOT / "data" / "eval"), "--per-source",
                 str(args.per_source)]
        cold = [measure(argv) for argv in (score, promote)]  # the first runs also fill the embedding cache
        baseline, gate = measure(score), measure(promote)
        report = json.loads((Path(tmp) / "report" / "promotion.json").read_text())
    messages = sum(s["n"] for s in report["sets"])
    result = {"pool_rows": rows, "sets": len(report["sets"]), "messages": messages, "n_boot": args.n_boot,
              "score_dir": baseline, "promote": gate, "cold_score_dir": cold[0], "cold_promote": cold[1],
              "time_ratio": round(gate["seconds"] / baseline["seconds"], 2),
              "memory_ratio": round(gate["peak_rss_mb"] / baseline["peak_rss_mb"], 2)}
    print(f"score --dir (one pool, eval sets):       {baseline['seconds']:7.2f} s  {baseline['peak_rss_mb']:7.1f} MB")
    print(f"promote (two pools, {result['sets']} sets, {messages} msgs): {gate['seconds']:7.2f} s  "
          f"{gate['peak_rss_mb']:7.1f} MB  (verdict exit {gate['exit_code']})")
    print(f"cold (first runs, embedding what the cache lacks): score {cold[0]['seconds']:.2f} s, "
          f"promote {cold[1]['seconds']:.2f} s {cold[1]['peak_rss_mb']:.1f} MB")
    print(f"ratio promote / score: time {result['time_ratio']}x, peak memory {result['memory_ratio']}x")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
