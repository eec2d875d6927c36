"""Pool commands: ``evaluate``, ``export``, ``route``, ``score`` and ``datasheet``.

``route`` and ``score`` need only the routing core (numpy and the pool's
backend); the others need the ``analysis`` extra.
"""
from __future__ import annotations

import json
import sys

from .. import config as _config
from ..errors import DataError
from ..io import write_json_atomic
from . import _options as opt

__all__ = ["register"]


def cmd_evaluate(args):
    """Leave-one-out metrics of the pool."""
    from ..analysis.evaluate import evaluate_pool
    from ..analysis.metrics import format_metrics

    pool = opt.load_pool_from_args(args)
    config, table = opt.config_from_args(args, pool)
    res = evaluate_pool(pool.frame, pool.vectors, pool.taxonomy, config, dup_threshold=args.dup_threshold)
    print(f"pool: {len(pool.frame)} messages, backend {pool.embedder.name}, "
          f"k={config.k} vote={config.vote} center={config.center}"
          + (f" (best of {len(table)} swept configurations)" if table is not None else ""))
    if pool.dropped:
        print(f"dropped {len(pool.dropped)} exact duplicate(s) while loading")
    print(format_metrics(res.loo, title="\n== leave-one-out =="))
    if res.ann_recall is not None:
        print(f"(approximate search: recall@{config.k} against exact search {res.ann_recall:.3f} on a sample of "
              f"{min(_config.ANN_RECALL_SAMPLE, len(pool.frame))} rows)")
    print(f"\nleave-duplicate-group-out (cosine >= {args.dup_threshold}): tier accuracy "
          f"{100 * res.ldgo.tier_accuracy:.1f}%, inflation from near-duplicates {100 * res.inflation:.1f} points")
    if table is not None:
        print("\nsweep (best 8 of", len(table), "):")
        print(table.head(8).to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    if args.json:
        write_json_atomic(args.json, {"backend": pool.embedder.spec, "config": config.to_dict(),
                                      "loo": res.loo.to_dict(), "ldgo": res.ldgo.headline(),
                                      "inflation": res.inflation, "ann_recall": res.ann_recall,
                                      "sweep": None if table is None else table.to_dict(orient="records")})


def cmd_export(args):
    """Write pool.npz with the best swept configuration (or the one given), and a decision policy if asked."""
    from ..decisions.export import export_pool

    pool = opt.load_pool_from_args(args)
    config, _ = opt.config_from_args(args, pool)
    result = export_pool(pool, args.out, config, head=args.head, policy=args.policy, criterion=args.criterion,
                         threshold=args.abstain_threshold, max_downgrade=args.max_downgrade,
                         max_abstain=args.max_abstain, dtype=args.dtype, ann=args.ann)
    print(result.summary())
    if result.point is not None:
        print(result.point_summary())


def _read_messages(path, *, labelled=False, taxonomy=None):
    """Rows of a JSONL message file (stdin when ``path`` is None), validated with file:line errors."""
    from ..io import parse_jsonl, read_jsonl

    if path is None:
        name, source = "<stdin>", parse_jsonl(sys.stdin, "<stdin>")
    else:
        name, source = path, read_jsonl(path)
    for n, obj in source:
        text = obj.get("text")
        if not isinstance(text, str) or not text.strip():
            raise DataError(name, n, "missing or empty 'text'")
        if labelled:
            for key in ("category", "alt_category"):
                value = obj.get(key)
                if (key == "category" or value) and value not in taxonomy.tier_map:
                    raise DataError(name, n, f"unknown {key} {value!r} (known: {', '.join(taxonomy.categories)})")
        yield n, obj


def cmd_route(args):
    """Route JSONL messages; one JSONL decision (``RouteDecision.to_dict()`` with the id) per input line, in order."""
    from ..core.router import Router

    router = Router.load(args.pool)
    batch = []

    def flush():
        for obj, d in zip(batch, router.route_batch([o["text"] for o in batch])):
            print(json.dumps({"id": obj.get("id"), **d.to_dict(neighbors=args.neighbors)}, ensure_ascii=False))
        sys.stdout.flush()
        batch.clear()

    for _, obj in _read_messages(args.input):
        batch.append(obj)
        if len(batch) >= args.batch_size:
            flush()
    flush()


def cmd_score(args):
    """Route a labelled JSONL file and print the same metrics as evaluate."""
    from ..analysis.metrics import compute_metrics, format_metrics
    from ..core.router import Router
    from ..core.taxonomy import Taxonomy

    router = Router.load(args.pool)
    taxonomy = Taxonomy.from_metadata(router.metadata)
    rows = [obj for _, obj in _read_messages(args.input, labelled=True, taxonomy=taxonomy)]
    if not rows:
        raise DataError(args.input, None, "no messages")
    decisions = router.route_batch([r["text"] for r in rows])
    groups = {g: [str(r.get(g, "?")) for r in rows] for g in ("lang", "source", "mapping") if any(g in r for r in rows)}
    m = compute_metrics([r["category"] for r in rows], [d.category for d in decisions], taxonomy,
                        alt=[r.get("alt_category") for r in rows], groups=groups)
    print(format_metrics(m, title=f"== {args.input}: routed with {args.pool} ({router.metadata['backend']}) =="))
    if args.json:
        write_json_atomic(args.json, {"input": str(args.input), "pool": str(args.pool), "metrics": m.to_dict()})


def cmd_datasheet(args):
    """Regenerate (or check) the count tables of the datasheet."""
    from ..dataset.datasheet import datasheet_tables, update_datasheet
    from ..dataset.embeddings import load_embedded_pool

    pool = load_embedded_pool(backend=args.backend, progress=sys.stderr.isatty())
    templates = load_embedded_pool(_config.TEMPLATES_DIR, taxonomy=pool.taxonomy, backend=pool.embedder)
    tables = datasheet_tables(pool, templates, transcripts_dir=_config.TRANSCRIPTS_DIR)
    changed = update_datasheet(args.out, tables, check=args.check)
    if args.check:
        print(f"{args.out}: tables are {'OUT OF DATE (run: workbench datasheet)' if changed else 'current'}")
        if changed:
            sys.exit(1)
    else:
        print(f"{args.out}: tables {'updated' if changed else 'already current'}")


def register(sub):
    """Add the pool commands to the ``workbench`` parser."""
    p = sub.add_parser("evaluate", help="leave-one-out metrics of the pool, as a table", formatter_class=opt.Formatter)
    opt.add_pool_options(p)
    opt.add_knn_options(p)
    opt.add_dup_threshold(p)
    opt.add_json(p, "the metrics")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("export", help="write pool.npz with the best swept configuration", formatter_class=opt.Formatter)
    opt.add_pool_options(p)
    opt.add_knn_options(p)
    p.add_argument("--out", required=True, metavar="PATH", help="where to write pool.npz")
    p.add_argument("--dtype", choices=("float16", "float32"), default=_config.EXPORT_DTYPE, help="embedding storage")
    p.add_argument("--ann", action=opt.argparse.BooleanOptionalAction, default=None,
                   help=f"store an HNSW index for approximate search (needs faiss; default: from "
                        f"{_config.ANN_THRESHOLD} rows)")
    opt.add_policy_options(p)
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("route", help="route JSONL messages ({'id','text'} per line) to tiers",
                       formatter_class=opt.Formatter)
    p.add_argument("--pool", required=True, metavar="PATH", help="pool.npz")
    p.add_argument("--input", metavar="FILE", help="JSONL input (default: stdin)")
    p.add_argument("--neighbors", action="store_true", help="add each decision's nearest neighbours (id, similarity, category)")
    p.add_argument("--batch-size", type=opt.positive_int, default=64, help=opt.argparse.SUPPRESS)
    p.set_defaults(func=cmd_route)

    p = sub.add_parser("score", help="route a labelled JSONL file and print the metrics", formatter_class=opt.Formatter)
    p.add_argument("--pool", required=True, metavar="PATH", help="pool.npz")
    p.add_argument("--input", required=True, metavar="FILE", help="JSONL with text, category, optional alt_category")
    opt.add_json(p, "the metrics")
    p.set_defaults(func=cmd_score)

    p = sub.add_parser("datasheet", help="regenerate the count tables of data/README.md", formatter_class=opt.Formatter)
    p.add_argument("--out", metavar="FILE", default=_config.DATA_DIR / "README.md", help="datasheet to update")
    p.add_argument("--check", action="store_true", help="only check that the tables are current (exit 1 if not)")
    p.add_argument("--backend", metavar="B", type=opt.backend_spec, default=_config.DEFAULT_BACKEND,
                   help="embedding backend for the diversity figures")
    p.set_defaults(func=cmd_datasheet)
