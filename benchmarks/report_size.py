"""Size of a nightly report folder on the bundled data, per file, against the 10 MB budget.

    python benchmarks/report_size.py [--run DIR] [--json PATH]

Runs `workbench nightly` into a temporary reports folder (with the
project's embedding cache, so a warm run takes about a minute), or measures
an existing report folder given with ``--run``. Prints every file's size, the
total, the shares of plotly.js and pool.npz, and the total as a ratio of the
budget (10,000,000 bytes); ``--json`` writes the same numbers.
"""
import argparse
import json
import tempfile
from pathlib import Path

BUDGET = 10_000_000


def measure(run):
    run = Path(run)
    return {p.relative_to(run).as_posix(): p.stat().st_size for p in sorted(run.rglob("*")) if p.is_file()}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", metavar="DIR", help="measure this report folder instead of running the nightly")
    ap.add_argument("--json", metavar="PATH", help="also write the sizes as JSON")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="wb-report-size-") as tmp:
        run = args.run
        if run is None:
            from workbench.report.nightly import run_nightly

            run = run_nightly({}, reports_dir=Path(tmp), date="2000-01-01",
                              progress=lambda line: print("  " + line, flush=True))
        sizes = measure(run)
    total = sum(sizes.values())
    for name, size in sizes.items():
        print(f"{size:>12,}  {name}")
    fixed = {k: v for k, v in sizes.items() if k.endswith(("plotly.min.js", "pool.npz"))}
    print(f"{total:>12,}  total in {len(sizes)} files; plotly.js and pool.npz: {sum(fixed.values()):,} "
          f"({sum(fixed.values()) / total:.0%}); everything else: {total - sum(fixed.values()):,}")
    print(f"total / budget ({BUDGET:,} bytes): {total / BUDGET:.2f} -> {'within' if total <= BUDGET else 'OVER'}")
    if args.json:
        Path(args.json).write_text(json.dumps({"files": sizes, "total": total, "budget": BUDGET}, indent=1))


if __name__ == "__main__":
    main()
