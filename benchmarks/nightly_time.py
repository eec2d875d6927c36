"""Wall time of the nightly run on the bundled data: cold (empty caches) and warm (a re-run).

    python benchmarks/nightly_time.py [--backends e5-small use-multilingual]

Runs `workbench nightly` twice into a temporary reports folder with a
temporary cache, prints each wall time, the CPU time of this process tree,
and the warm/cold ratio. The issue's budget is 10 minutes on 2 cores.
"""
import argparse
import resource
import tempfile
import time
from pathlib import Path

from workbench.report.nightly import run_nightly


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backends", nargs="+", default=None, help="backends compared in 03 (default: the notebook's)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="wb-nightly-bench-") as tmp:
        cache = Path(tmp) / "interim" / "embeddings"
        times = {}
        for label, date in (("cold", "2000-01-01"), ("warm", "2000-01-02")):
            t0 = time.perf_counter()
            run_nightly({"cache_dir": str(cache), "backends": args.backends}, reports_dir=Path(tmp) / "reports",
                        date=date, progress=lambda line: print("  " + line, flush=True))
            times[label] = time.perf_counter() - t0
            cpu = resource.getrusage(resource.RUSAGE_CHILDREN)
            print(f"{label}: {times[label]:.1f} s wall (children CPU so far {cpu.ru_utime + cpu.ru_stime:.0f} s)")
        print(f"warm/cold wall-time ratio: {times['warm'] / times['cold']:.2f}; budget 600 s: "
              f"cold {'within' if times['cold'] < 600 else 'OVER'}")


if __name__ == "__main__":
    main()
