"""CLI commands for real traffic: ``import``, ``label``, ``merge``, ``shadow`` and ``queue``.

Added to the main parser by :func:`register`; errors are project errors, so
the CLI turns them into one line and exit code 2.
"""
from __future__ import annotations

import argparse
import json
import sys

from .. import config as _config
from ..io import check_output_path, write_json_atomic
from . import _options as opt
from ._console import echo

__all__ = ["register"]

_dump = write_json_atomic


def cmd_import(args):
    """Chat exports -> unlabelled candidates JSONL, with a count per filter."""
    from ..traffic.ingest import FILTERS, import_transcripts

    pool = False if args.no_pool else args.pool_dir
    opt.check_outputs(args, {"--out": args.out, "--json": args.json}, args.inputs, pool_dirs=args.pool_dir)
    s = import_transcripts(args.inputs, args.out, fmt=args.format, text_column=args.text_column,
                           min_chars=args.min_chars, max_chars=args.max_chars, scrub=args.scrub, pool=pool,
                           taxonomy=_taxonomy(args), backend=False if args.no_near_duplicates else args.backend,
                           cache_dir=args.cache_dir, dup_threshold=args.dup_threshold, id_prefix=args.id_prefix,
                           shards=args.shards)
    echo(f"read {s['read']} user turns from {len(args.inputs)} file(s); kept {s['kept']} -> {s['out']}")
    for key in FILTERS:
        echo(f"  {key.replace('_', ' '):<22} {s[key]:>5}")
    if args.scrub:
        echo(f"  {'scrubbed (kept)':<22} {s['scrubbed']:>5}")
    echo("languages: " + ", ".join(f"{k} {v}" for k, v in s["languages"].items()))
    if args.json:
        _dump(args.json, s)


def _taxonomy(args):
    from ..core.taxonomy import load_taxonomy

    return load_taxonomy(args.taxonomy)


def _is_shards(path):
    """A shard folder or file of ``workbench embed`` (rather than a candidates JSONL)."""
    from pathlib import Path

    return Path(path).is_dir() or str(path).endswith(".parquet")


def cmd_label(args):
    """Label candidates with the LLM categorizer; resumable through the label cache."""
    from ..errors import DataError
    from ..io import read_jsonl, write_text_atomic
    from ..traffic.label import label_messages

    from ..traffic.label import LabelError
    from ._stream import message_problem

    opt.check_outputs(args, {"--out": args.out, "--cache": args.cache, "--json": args.json}, [args.input])
    taxonomy = _taxonomy(args)
    rows = []
    if _is_shards(args.input):
        from ..dataset.shards import load_shards

        shards = load_shards(args.input)
        rows = [{"id": i, "text": t} for i, t in zip(shards.ids, shards.texts)]
    else:
        for n, obj in read_jsonl(args.input):
            problem = message_problem(obj)
            if problem:
                raise DataError(args.input, n, problem)
            rows.append(obj)
    client = opt.chat_client_from_args(args, seed=args.seed)
    cache = args.cache
    labelled, s = label_messages(rows, taxonomy, client, cache, concurrency=args.concurrency,
                                 retry_failed=args.retry_failed, progress=sys.stderr.isatty(), limit=args.limit)
    write_text_atomic(args.out, "".join(json.dumps(r, ensure_ascii=False, allow_nan=False) + "\n" for r in labelled))
    echo(f"{s['messages']} messages with {args.model}: {s['labelled']} labelled, {s['cached']} from the cache, "
          f"{s['failed']} invalid answers, {s['errors']} request errors, {s['retried']} retries, "
          f"{s['requests']} requests, {s['remaining']} left for a later run")
    echo(f"wrote {len(labelled)} labelled message(s) to {args.out}; cache {cache}")
    for f in s["failures"][:10]:
        raw = "" if f["raw"] is None else f" (reply: {f['raw'][:80]!r})"
        echo(f"  failed {f['id']}: {f['problem']}{raw}")
    if args.json:
        _dump(args.json, s)
    if s["requests"] and not s["labelled"]:
        raise LabelError(f"no message could be labelled: {s['requests']} request(s) gave {s['failed']} invalid "
                         f"answer(s) and {s['errors']} error(s)")


def cmd_merge(args):
    """Labelled candidates -> a new pool file with source 'real'."""
    from ..traffic.merge import merge_labelled

    if args.edits:  # label edits from a map: a new copy of the pool (workbench.traffic.edits)
        from ..traffic.edits import apply_edits, default_edits_out, format_summary

        out = args.out or default_edits_out()
        pool = args.pool_dir[0] if args.pool_dir else None
        return echo(format_summary(apply_edits(args.edits, out, pool_dir=pool, taxonomy=_taxonomy(args))))
    if not args.input:
        from ..errors import ConfigError

        raise ConfigError("give --input (labelled candidates) or --edits (label edits made on a map)")
    pool = args.pool_dir if args.pool_dir else None
    if args.out:  # a new pool file is what merge makes: only an input is refused
        check_output_path(args.out, inputs=[args.input], option="--out")
    s = merge_labelled(args.input, args.out, pool=pool, taxonomy=_taxonomy(args), label_source=args.label_source)
    echo(f"wrote {s['written']} message(s) to {s['out']} ({s['skipped_in_pool']} already in the pool, skipped)")


def cmd_shadow(args):
    """Router vs label source on a shadow log; outage comparison; generated-prompt audit."""
    from ..errors import ConfigError
    from ..traffic.shadow import (audit_generated, compare_shadow, format_audit, format_shadow, read_audit,
                                  read_shadow_log)

    if not args.log and not args.audit:
        raise ConfigError("give --log (a shadow log) and/or --audit (generated prompts)")
    opt.check_outputs(args, {"--json": args.json}, [args.log, args.audit, args.pool])
    report = {}
    router = None
    if args.pool:
        from ..core.taxonomy import Taxonomy

        router = opt.load_router(args)
        taxonomy = Taxonomy.from_metadata(router.metadata)
    else:
        taxonomy = _taxonomy(args)
    if args.log:
        frame = read_shadow_log(args.log, taxonomy)
        routed = None if router is None else [d.category for d in router.route_batch(list(frame["text"]))]
        rep = compare_shadow(frame, taxonomy, routed=routed, default_tier=args.default_tier)
        who = f"pool {args.pool}" if args.pool else "the logged decisions"
        echo(f"== {args.log}: label source vs k-NN router ({who}) ==")
        echo(format_shadow(rep))
        report["shadow"] = dict(rep.headline(), metrics=rep.metrics.to_dict(),
                                outage=rep.outage.to_dict(orient="index"),
                                disagreements=rep.disagreements.to_dict(orient="records"))
    if args.audit:
        audit = audit_generated(read_audit(args.audit, taxonomy), taxonomy)
        echo(f"\n== {args.audit}: generated-prompt audit ==")
        echo(format_audit(audit))
        report["audit"] = dict(audit.headline(), matrix=audit.matrix.to_dict(orient="index"),
                               boundary=audit.boundary.to_dict(orient="records"))
    if args.json:
        _dump(args.json, report)


def cmd_queue(args):
    """Decision log -> the turns most worth a label (review JSONL for ``workbench label --input``)."""
    from pathlib import Path

    from ..dataset.embeddings import embed_texts
    from ..errors import ConfigError
    from ..io import write_text_atomic
    from ..traffic.queue import QueueSettings, build_queue

    logs = sorted(Path(args.decision_log).glob("*.jsonl")) if Path(args.decision_log).is_dir() else []
    opt.check_outputs(args, {"--out": args.out, "--json": args.json}, logs, pool_dirs=args.pool_dir)
    if Path(args.out).exists() and not args.force:
        raise ConfigError(f"--out {args.out} exists; pass --force to replace it")
    settings = QueueSettings(n=args.n, low_margin=args.low_margin, dup_threshold=args.dup_threshold, scan=args.scan,
                             seed=args.seed)
    pool = opt.load_pool_from_args(args)
    lines, s = build_queue(args.decision_log, pool.vectors,
                           lambda texts: embed_texts(texts, pool.embedder, cache_dir=args.cache_dir), settings)
    write_text_atomic(args.out, "".join(json.dumps(x, ensure_ascii=False, allow_nan=False) + "\n" for x in lines))
    echo(f"read {s['records']} decision records ({s['turns']} distinct turns with text) and {s['feedback']} "
         f"rated request(s); {s['candidates']} candidates, {s['near_duplicates_of_pool']} near-duplicates of the "
         f"pool and {s['near_duplicates_in_queue']} of a queued turn dropped")
    echo(f"queued {s['queued']} turn(s) -> {args.out}: " + ", ".join(f"{k} {v}" for k, v in s["by_reason"].items()))
    if args.json:
        _dump(args.json, s)


def register(subparsers):
    """Add ``import``, ``label``, ``merge``, ``shadow`` and ``queue`` to the ``workbench`` parser."""
    from ..traffic.transcripts import FORMATS

    p = subparsers.add_parser("import", formatter_class=opt.Formatter, help="chat exports -> filtered, unlabelled candidate messages")
    p.add_argument("inputs", nargs="+", metavar="FILE", help="JSONL with 'messages', ChatGPT conversations.json, "
                   "or CSV/JSONL with a text column")
    p.add_argument("--out", required=True, metavar="FILE", help="new candidates JSONL")
    p.add_argument("--format", choices=FORMATS, default="auto", help="input shape")
    p.add_argument("--text-column", default="text", metavar="NAME", help="column of the message (CSV/JSONL text format)")
    p.add_argument("--min-chars", type=opt.positive_int, default=_config.IMPORT_MIN_CHARS, help="drop shorter messages")
    p.add_argument("--max-chars", type=opt.positive_int, default=_config.IMPORT_MAX_CHARS, help="drop longer messages")
    p.add_argument("--scrub", action=argparse.BooleanOptionalAction, default=True,
                   help="replace e-mail addresses, phone numbers and long digit runs, and hash conversation ids and "
                        "origins that hold one (--no-scrub keeps the raw text, which then goes to the label API)")
    opt.add_pool_dir(p, help="pool to de-duplicate against, repeatable")
    p.add_argument("--no-pool", action="store_true", help="do not compare with the pool")
    p.add_argument("--no-near-duplicates", action="store_true", help="skip the embedding near-duplicate filters")
    opt.add_dup_threshold(p)
    p.add_argument("--id-prefix", default="real", help="candidate id prefix")
    opt.add_taxonomy(p)
    opt.add_backend(p, help="the pool's embedding backend")
    opt.add_cache_dir(p)
    p.add_argument("--shards", action="append", metavar="DIR", help="shards of 'workbench embed' holding the "
                   "messages' vectors (repeatable): what they hold is not embedded again")
    opt.add_json(p, "the summary")
    opt.add_force(p)
    p.set_defaults(func=cmd_import)

    p = subparsers.add_parser("label", formatter_class=opt.Formatter, help="label candidates with an LLM over an OpenAI-compatible API (resumable)")
    p.add_argument("--input", required=True, metavar="FILE", help="candidates JSONL (id, text), or a shard folder "
                   "or .parquet shard of 'workbench embed'")
    p.add_argument("--out", required=True, metavar="FILE", help="labelled JSONL (written at the end)")
    opt.add_chat_client_options(p)
    p.add_argument("--cache", metavar="FILE", default=_config.LABEL_CACHE_PATH, help="label cache JSONL")
    p.add_argument("--concurrency", type=opt.positive_int, default=4, help="requests in flight")
    p.add_argument("--retry-failed", action="store_true", help="ask again where the cached answer was invalid")
    p.add_argument("--limit", type=opt.non_negative_int, help="send at most this many requests, retries included")
    p.add_argument("--seed", type=opt.seed, default=_config.SEED, help="seed of the backoff jitter")
    opt.add_taxonomy(p)
    opt.add_json(p, "the summary")
    opt.add_force(p)
    p.set_defaults(func=cmd_label)

    p = subparsers.add_parser("merge", formatter_class=opt.Formatter, help="labelled candidates -> a new pool file (source 'real')")
    p.add_argument("--input", metavar="FILE", help="labelled JSONL from 'workbench label'")
    p.add_argument("--edits", metavar="FILE", help="label edits from a map explorer: the pool with them applied goes "
                   "to a new folder (--out, default data/interim/pool-edited-<time>)")
    p.add_argument("--out", metavar="FILE", help="new pool file (default data/pool/real-<date>.jsonl); with --edits "
                   "a new folder")
    opt.add_pool_dir(p, help="existing pool, repeatable")
    p.add_argument("--label-source", metavar="MODEL", help="override the rows' label_source")
    opt.add_taxonomy(p)
    p.set_defaults(func=cmd_merge)

    p = subparsers.add_parser("shadow", formatter_class=opt.Formatter, help="router vs label source on a shadow log, outage comparison, audit")
    p.add_argument("--log", metavar="FILE", help="shadow log JSONL (text, label_category, routed_category?)")
    opt.add_router_options(p, required=False)
    p.add_argument("--audit", metavar="FILE", help="generated prompts JSONL (text, intended_category, category)")
    p.add_argument("--default-tier", default=_config.OUTAGE_TIER, help="static fallback tier of the outage comparison")
    opt.add_taxonomy(p, help="taxonomy when no --pool is given")
    opt.add_json(p, "the report")
    opt.add_force(p)
    p.set_defaults(func=cmd_shadow)

    p = subparsers.add_parser("queue", formatter_class=opt.Formatter, help="decision log -> the turns most worth a "
                              "label (negative feedback, abstained, low margin, uncovered clusters), de-duplicated")
    p.add_argument("--decision-log", required=True, metavar="DIR", help="the gateway's --decision-log folder "
                   "(decisions-*.jsonl, feedback-*.jsonl)")
    p.add_argument("--out", required=True, metavar="FILE", help="review JSONL, read as it is by 'workbench label "
                   "--input'")
    p.add_argument("--n", type=opt.positive_int, default=200, help="turns to queue (at most)")
    p.add_argument("--low-margin", type=opt.fraction, default=_config.QUEUE_LOW_MARGIN,
                   help="a decision whose margin is below this is low-margin")
    p.add_argument("--scan", type=opt.positive_int, default=_config.QUEUE_SCAN,
                   help="distinct logged texts embedded for the coverage signal (a seeded sample past it)")
    p.add_argument("--seed", type=opt.seed, default=_config.SEED, help="seed of the coverage sample")
    opt.add_pool_options(p)
    p.set_defaults(backend=_config.DUP_BACKEND)  # the space DUP_THRESHOLD is measured in
    opt.add_dup_threshold(p)
    opt.add_json(p, "the summary")
    opt.add_force(p, "over an existing --out, or inside the pool folder")
    p.set_defaults(func=cmd_queue)
    return subparsers


