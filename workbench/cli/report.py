"""Report command: ``nightly``, the main job (every notebook with papermill into ``reports/<date>/``)."""
from __future__ import annotations

import argparse
import sys

from .. import config as _config
from . import _options as opt
from ._console import echo

__all__ = ["register"]


def cmd_nightly(args):
    """Run the notebooks into reports/<date>/ and write index.html."""
    from ..report.nightly import run_nightly

    opt.check_outputs(args, {"--output-dir": args.output_dir}, pool_dirs=[args.pool_dir] if args.pool_dir else None)
    if args.decision_log:  # before an hour of notebooks, not in the last one
        from ..analysis.traffic import check_log_folder

        check_log_folder(args.decision_log)
    params = {"pool_dir": args.pool_dir, "templates_dir": args.templates_dir, "taxonomy_path": args.taxonomy,
              "backend": args.backend, "backends": args.backends, "cache_dir": args.cache_dir, "k": args.k,
              "dup_threshold": args.dup_threshold, "cluster_threshold": args.cluster_threshold, "seed": args.seed,
              "eval_dir": args.eval_dir, "per_source": args.per_source, "conversations_dir": args.conversations_dir,
              "decision_log": args.decision_log}
    emit = lambda line: echo(line, file=sys.stderr, flush=True)  # noqa: E731
    run_dir = run_nightly(params, reports_dir=args.output_dir, date=args.date, notebooks_dir=args.notebooks_dir,
                          select=args.notebooks, progress=emit, keep=args.keep)
    echo(f"report: {run_dir / 'index.html'}")


def register(sub):
    """Add ``workbench nightly`` to the ``workbench`` parser."""
    p = sub.add_parser("nightly", help="run the notebooks with papermill into reports/<date>/ (the main job)",
                       formatter_class=opt.Formatter)
    p.add_argument("--pool-dir", metavar="PATH", help=f"pool JSONL file or folder (default: {_config.POOL_DIR})")
    p.add_argument("--templates-dir", metavar="PATH", help=f"template set (default: {_config.TEMPLATES_DIR})")
    p.add_argument("--taxonomy", metavar="FILE", help=f"taxonomy file (default: {_config.TAXONOMY_PATH})")
    p.add_argument("--backend", metavar="B", type=opt.backend_spec, default=_config.DEFAULT_BACKEND,
                   help="embedding backend")
    p.add_argument("--backends", nargs="+", metavar="B", type=opt.backend_spec,
                   help="backends compared on the same pool (default: the notebook's list)")
    p.add_argument("--cache-dir", metavar="DIR", help=f"embedding cache (default: {_config.CACHE_DIR})")
    p.add_argument("--k", type=opt.positive_int, help="neighbours that vote (default: best of the sweep)")
    p.add_argument("--dup-threshold", type=opt.fraction, default=_config.DUP_THRESHOLD,
                   help="cosine at or above which two messages are near-duplicates")
    p.add_argument("--cluster-threshold", type=opt.fraction, default=_config.CLUSTER_THRESHOLD,
                   help="mean cosine within a cluster for cluster counts")
    p.add_argument("--seed", type=opt.seed, default=_config.SEED, help="seed of every notebook that samples")
    p.add_argument("--eval-dir", metavar="DIR", help=f"labelled sets the pool never saw (default: {_config.EVAL_DIR})")
    p.add_argument("--per-source", type=opt.positive_int, default=_config.EVAL_PER_SOURCE,
                   help="evaluation prompts sampled per source")
    p.add_argument("--conversations-dir", metavar="DIR",
                   help=f"labelled conversations (default: {_config.CONVERSATIONS_DIR})")
    p.add_argument("--decision-log", metavar="DIR",
                   help=f"the gateway's decision-log folder for the traffic section (default: the bundled sample "
                        f"{_config.TRAFFIC_DIR})")
    p.add_argument("--output-dir", metavar="DIR", help=f"reports root; the run goes in DIR/<date>/ (default: {_config.REPORTS_DIR})")
    p.add_argument("--date", help="run folder name: a date YYYY-MM-DD or a simple name (default: today, UTC)")
    p.add_argument("--notebooks", nargs="+", metavar="NAME", help="run only these (name prefixes, e.g. 01 03)")
    p.add_argument("--keep", type=opt.positive_int, default=_config.REPORTS_KEEP, metavar="N",
                   help="report folders to keep; older ones are deleted after a good run, never the one latest points to")
    p.add_argument("--notebooks-dir", metavar="DIR", help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_nightly)
