"""Command-line interface: ``workbench <command> --help``.

Every project error becomes one line on stderr and exit code 2.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from .errors import DataError, WorkbenchError

log = logging.getLogger("workbench")


# -- shared options ----------------------------------------------------------------------------

def _pool_options(p):
    p.add_argument("--pool-dir", action="append", metavar="PATH",
                   help="pool JSONL file or folder (repeatable; default data/pool)")
    p.add_argument("--taxonomy", metavar="FILE", help="taxonomy file (default data/taxonomy.yaml)")
    p.add_argument("--backend", metavar="B", help="e5-small (default), use-multilingual or st:<model id or path>")
    p.add_argument("--cache-dir", metavar="DIR", help="embedding cache (default data/interim/embeddings)")


def _knn_options(p):
    p.add_argument("--k", type=int, help="neighbours that vote (default: best of the sweep)")
    p.add_argument("--vote", choices=("majority", "distance", "softmax"), help="vote rule (default: best of the sweep)")
    p.add_argument("--temperature", type=float, default=0.05, help="softmax temperature (default 0.05)")
    p.add_argument("--center", action=argparse.BooleanOptionalAction, default=None,
                   help="mean-centre the pool vectors (default: best of the sweep)")


def _load(args):
    from .pipeline import load_embedded_pool

    return load_embedded_pool(args.pool_dir, taxonomy=args.taxonomy, backend=args.backend,
                              cache_dir=args.cache_dir, progress=sys.stderr.isatty())


def _choose_config(args, pool):
    """The configuration the options fix, or the best of the sweep for what they leave open."""
    from .pipeline import choose_config

    return choose_config(pool, k=args.k, vote=args.vote, center=args.center, temperature=args.temperature)


def _write_json(path, obj):
    from .io import write_text_atomic

    write_text_atomic(path, json.dumps(obj, indent=2, ensure_ascii=False, default=float))


# -- commands ----------------------------------------------------------------------------------

def cmd_evaluate(args):
    """Leave-one-out metrics of the pool."""
    from .evaluate import evaluate_pool
    from .metrics import format_metrics

    pool = _load(args)
    config, table = _choose_config(args, pool)
    res = evaluate_pool(pool.frame, pool.vectors, pool.taxonomy, config, dup_threshold=args.dup_threshold)
    print(f"pool: {len(pool.frame)} messages, backend {pool.embedder.name}, "
          f"k={config.k} vote={config.vote} center={config.center}"
          + (f" (best of {len(table)} swept configurations)" if table is not None else ""))
    if pool.frame.attrs.get("dropped"):
        print(f"dropped {len(pool.frame.attrs['dropped'])} exact duplicate(s) while loading")
    print(format_metrics(res["loo"], title="\n== leave-one-out =="))
    print(f"\nleave-duplicate-group-out (cosine >= {args.dup_threshold}): tier accuracy "
          f"{100 * res['ldgo'].tier_accuracy:.1f}%, inflation from near-duplicates {100 * res['inflation']:.1f} points")
    if table is not None:
        print("\nsweep (best 8 of", len(table), "):")
        print(table.head(8).to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    if args.json:
        _write_json(args.json, {"backend": pool.embedder.spec, "config": config.to_dict(),
                                "loo": res["loo"].to_dict(), "ldgo": res["ldgo"].headline(),
                                "inflation": res["inflation"],
                                "sweep": None if table is None else table.to_dict(orient="records")})


def cmd_export(args):
    """Write pool.npz with the best swept configuration (or the one given)."""
    from .pipeline import export_pool

    pool = _load(args)
    config, _ = _choose_config(args, pool)
    meta = export_pool(pool, args.out, config, dtype=args.dtype)
    size = Path(args.out).stat().st_size
    print(f"wrote {args.out}: {meta['n']} messages, {meta['backend']}, k={meta['k']} vote={meta['vote']} "
          f"center={meta['center']}, {size / 1024:.0f} KiB")


def _read_messages(path, *, labelled=False, taxonomy=None):
    """Rows of a JSONL message file (stdin when ``path`` is None), validated with file:line errors."""
    from .pool import parse_jsonl, read_jsonl

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
    """Route JSONL messages; one JSONL decision per input line, in input order."""
    from .router import Router

    router = Router.load(args.pool)
    batch = []

    def flush():
        for obj, d in zip(batch, router.route_batch([o["text"] for o in batch])):
            rec = {"id": obj.get("id"), "category": d.category, "tier": d.tier, "confidence": round(d.confidence, 4)}
            if router.abstains:
                rec["abstain"] = d.abstain
            print(json.dumps(rec, ensure_ascii=False), flush=False)
        sys.stdout.flush()
        batch.clear()

    for _, obj in _read_messages(args.input):
        batch.append(obj)
        if len(batch) >= args.batch_size:
            flush()
    flush()


def cmd_score(args):
    """Route a labelled JSONL file and print the same metrics as evaluate."""
    from .metrics import compute_metrics, format_metrics
    from .router import Router
    from .taxonomy import Taxonomy

    router = Router.load(args.pool)
    meta = router.metadata
    taxonomy = Taxonomy(tuple(meta["tiers"]), dict(meta["tier_map"]))
    rows = [obj for _, obj in _read_messages(args.input, labelled=True, taxonomy=taxonomy)]
    if not rows:
        raise DataError(args.input, None, "no messages")
    decisions = router.route_batch([r["text"] for r in rows])
    groups = {g: [str(r.get(g, "?")) for r in rows] for g in ("lang", "source", "mapping") if any(g in r for r in rows)}
    m = compute_metrics([r["category"] for r in rows], [d.category for d in decisions], taxonomy,
                        alt=[r.get("alt_category") for r in rows], groups=groups)
    print(format_metrics(m, title=f"== {args.input}: routed with {args.pool} ({meta['backend']}) =="))
    if args.json:
        _write_json(args.json, {"input": str(args.input), "pool": str(args.pool), "metrics": m.to_dict()})


def _build_parser():
    parser = argparse.ArgumentParser(prog="workbench", description="Build, map, evaluate and export k-NN routing pools.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("evaluate", help="leave-one-out metrics of the pool, as a table")
    _pool_options(p)
    _knn_options(p)
    p.add_argument("--dup-threshold", type=float, default=0.95, help="cosine for near-duplicate groups (default 0.95)")
    p.add_argument("--json", metavar="FILE", help="also write the metrics as JSON")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("export", help="write pool.npz with the best swept configuration")
    _pool_options(p)
    _knn_options(p)
    p.add_argument("--out", required=True, metavar="PATH", help="where to write pool.npz")
    p.add_argument("--dtype", choices=("float16", "float32"), default="float16", help="embedding storage (default float16)")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("route", help="route JSONL messages ({'id','text'} per line) to tiers")
    p.add_argument("--pool", required=True, metavar="PATH", help="pool.npz")
    p.add_argument("--input", metavar="FILE", help="JSONL input (default: stdin)")
    p.add_argument("--batch-size", type=int, default=64, help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_route)

    p = sub.add_parser("score", help="route a labelled JSONL file and print the metrics")
    p.add_argument("--pool", required=True, metavar="PATH", help="pool.npz")
    p.add_argument("--input", required=True, metavar="FILE", help="JSONL with text, category, optional alt_category")
    p.add_argument("--json", metavar="FILE", help="also write the metrics as JSON")
    p.set_defaults(func=cmd_score)

    # Commands (and options) that live with their own modules.
    from .datasheet import register as register_datasheet
    from .decision_cli import register as register_decisions  # export's policy options
    from .nightly import register as register_nightly
    from .traffic_cli import register as register_traffic  # import, label, merge, shadow

    register_nightly(sub)
    register_datasheet(sub)
    register_traffic(sub)
    register_decisions(sub)
    return parser


def main(argv=None):
    parser = _build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        args.func(args)
    except WorkbenchError as e:
        print(f"workbench {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"workbench {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
