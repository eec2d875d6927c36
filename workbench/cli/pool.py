"""Pool commands: ``evaluate``, ``export``, ``promote``, ``route``, ``score`` and ``datasheet``.

``route`` and ``score`` need only the routing core (numpy and the pool's
backend); the others need the ``analysis`` extra.
"""
from __future__ import annotations

import contextlib
import logging
import sys
from pathlib import Path

from .. import config as _config
from ..errors import ConfigError, DataError
from ..io import write_json_atomic
from . import _options as opt
from ._console import EXIT_OUT_OF_DATE, echo

__all__ = ["register"]

log = logging.getLogger(__name__)


def cmd_evaluate(args):
    """Leave-one-out metrics of the pool."""
    from ..analysis.evaluate import evaluate_pool
    from ..analysis.metrics import format_metrics

    opt.check_outputs(args, {"--json": args.json}, pool_dirs=args.pool_dir)
    pool = opt.load_pool_from_args(args)
    config, table = opt.config_from_args(args, pool)
    res = evaluate_pool(pool.frame, pool.vectors, pool.taxonomy, config, dup_threshold=args.dup_threshold)
    echo(f"pool: {len(pool.frame)} messages, backend {pool.embedder.name}, "
          f"k={config.k} vote={config.vote} center={config.center}"
          + (f" (best of {len(table)} swept configurations)" if table is not None else ""))
    if pool.dropped:
        echo(f"dropped {len(pool.dropped)} exact duplicate(s) while loading")
    echo(format_metrics(res.loo, title="\n== leave-one-out =="))
    if res.ann_recall is not None:
        echo(f"(approximate search: recall@{config.k} against exact search {res.ann_recall:.3f} on a sample of "
             f"{min(_config.ANN_RECALL_SAMPLE, len(pool.frame))} rows)")
    echo(f"\nleave-duplicate-group-out (cosine >= {args.dup_threshold}): tier accuracy "
          f"{100 * res.ldgo.tier_accuracy:.1f}%, inflation from near-duplicates {100 * res.inflation:.1f} points")
    if table is not None:
        echo(f"\nsweep (best 8 of {len(table)}):")
        echo(table.head(8).to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    if args.json:
        write_json_atomic(args.json, {"backend": pool.embedder.spec, "config": config.to_dict(),
                                      "loo": res.loo.to_dict(), "ldgo": res.ldgo.headline(),
                                      "inflation": res.inflation, "ann_recall": res.ann_recall,
                                      "sweep": None if table is None else table.to_dict(orient="records")})


def cmd_export(args):
    """Write pool.npz: the best swept configuration, the head chosen by the folds, the fitted policy (the defaults)."""
    from ..analysis.conversations import shipped_follow_up
    from ..decisions.export import export_pool
    from ..decisions.targets import HeadParams

    opt.check_outputs(args, {"--out": args.out}, pool_dirs=args.pool_dir)
    folder = Path(args.out).parent
    if not folder.is_dir():  # a typo in the path used to create a tree of folders, silently
        raise ConfigError(f"--out {args.out}: the folder {folder} does not exist (create it first)")
    targets = opt.targets_from_args(args)
    pool = opt.load_pool_from_args(args)
    config, _ = opt.config_from_args(args, pool)
    params = HeadParams()
    if args.conversations_dir is not None:
        detector, turns = shipped_follow_up(pool, conversations_dir=args.conversations_dir, dev_dir=args.dev_dir,
                                            cache_dir=args.cache_dir)
        params = HeadParams(follow_up=detector)
        echo(f"follow-up detector: fitted on {len(turns)} turns of {turns['conversation_id'].nunique()} "
             f"labelled conversations (the development ones included)")
    result = export_pool(pool, args.out, config, head=args.head, targets=targets, params=params, dtype=args.dtype,
                         ann=args.ann)
    if result.head_choice is not None:
        echo(result.head_choice.table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
        echo(result.head_choice.summary())
    echo(result.summary())
    echo(f"content digest (pin it with --pool-sha256): {result.metadata['sha256']}")
    if result.point is not None:
        echo(result.point_summary())


def _promotion_sets(router, args, *, name):
    """Every labelled set the options name, routed by ``router`` (one LabelledSet per set)."""
    from ..decisions.promote import labelled_sets

    log.info("routing the labelled sets with the %s pool", name)
    return labelled_sets(router, eval_dir=args.eval_dir, conversations_dir=args.conversations_dir,
                         labelled=args.labelled, per_source=args.per_source, seed=args.seed, cache_dir=args.cache_dir)


def _install(candidate, target):
    """Replace ``target`` with ``candidate`` atomically (a rename in the target's folder), after checking the copy
    loads: a running ``workbench serve`` sees one complete file or the other, and reloads on the change."""
    from ..core.artifact import load_pool_npz
    from ..io import atomic_file

    with open(candidate, "rb") as src, atomic_file(target, check=load_pool_npz) as dst:
        while chunk := src.read(1 << 20):
            dst.write(chunk)


def cmd_promote(args):
    """Gate a candidate pool.npz against the current one on every labelled set; exit 1 when refused."""
    from ..core.router import Router
    from ..decisions.promote import GateRules, decision_log_change, promote
    from ..report.promotion import write_promotion
    from ..traffic.decision_log import logged_decisions

    out = Path(args.out)
    inputs = [args.candidate, args.current, *(args.labelled or [])]
    opt.check_outputs(args, {"--out": out / "promotion.json", "--out (page)": out / "promotion.html"}, inputs)
    if args.install:
        opt.check_outputs(args, {"--install": args.install}, [args.candidate, *(args.labelled or [])])
    if args.eval_dir is None and args.conversations_dir is None and not args.labelled:
        raise ConfigError("no labelled set: give --eval-dir, --conversations-dir or --labelled")
    rules = GateRules(max_accuracy_drop=args.max_accuracy_drop, n_boot=args.n_boot, seed=args.seed)
    allowed = args.allow_backend and (list(opt.BACKENDS) + args.allow_backend)
    current = Router.load(args.current, allowed_backends=allowed)
    candidate = Router.load(args.candidate, embedder=current.embedder)
    change = None
    if args.decision_log:
        change = decision_log_change(current, candidate, logged_decisions(args.decision_log),
                                     cache_dir=args.cache_dir)
    result = promote(_promotion_sets(current, args, name="current"), _promotion_sets(candidate, args, name="candidate"),
                     rules=rules, decision_log=change)
    json_path, html_path = write_promotion(result.to_dict(), out, inputs={
        "candidate": args.candidate, "current": args.current, "eval_dir": args.eval_dir,
        "conversations_dir": args.conversations_dir, "labelled": ", ".join(map(str, args.labelled or [])) or None,
        "decision_log": args.decision_log})
    for s in result.sets:
        echo(f"{s.name}: tier accuracy {100 * s.current['tier_accuracy']:.1f}% -> "
             f"{100 * s.candidate['tier_accuracy']:.1f}%, downgrades {100 * s.current['downgrade_rate']:.1f}% -> "
             f"{100 * s.candidate['downgrade_rate']:.1f}% ({s.n} messages)")
    if change is not None:
        echo(f"decision log: {change['changed']} of {change['n']} decisions change, cost change "
             + ("unknown (a tier has no priced traffic)" if change["cost_change"] is None
                else f"${change['cost_change']:+,.4f}"))
    echo(f"report: {json_path}, {html_path}")
    if not result.promoted:
        echo("REFUSED: " + "; ".join(result.reasons))
        return 1
    if args.install:
        _install(args.candidate, args.install)
        echo(f"PROMOTED: installed {args.candidate} as {args.install}")
    else:
        echo("PROMOTED")
    return 0


def _open_input(path):
    try:
        return open(path, "rb")
    except OSError as e:
        raise DataError(path, None, f"cannot read ({e.strerror})") from None


def _write(line):
    out = getattr(sys.stdout, "buffer", None)
    if out is None:
        sys.stdout.write(line + "\n")
    else:
        out.write((line + "\n").encode("utf-8"))


def cmd_route(args):
    """Route JSONL messages as a stream: one decision (``RouteDecision.to_dict()`` with the id) per line, in order.

    Each line is answered as soon as it is decided (the output is flushed
    whenever the input has no more complete lines ready), so a client may
    write one message and wait for its answer. A bad line either becomes an
    error record ``{"id", "line", "error"}`` in its place (``--on-error record``)
    or stops the run after everything decided before it is written (``stop``, exit 2).
    """
    if args.conversation:
        return cmd_route_conversation(args)
    from ._console import json_line
    from ._stream import parse_message, ready_batches

    router = opt.load_router(args)
    name, fh = ("<stdin>", getattr(sys.stdin, "buffer", sys.stdin)) if args.input is None else \
        (args.input, _open_input(args.input))
    errors = 0
    with fh if args.input is not None else contextlib.nullcontext():
        for batch in ready_batches(fh, args.batch_size, name):
            todo = []  # (id, text) routed together; an error record first routes what came before it
            for n, raw in batch:
                try:
                    obj = parse_message(raw, name, n)
                except DataError as e:
                    _flush_decisions(router, todo, args.neighbors)
                    if args.on_error == "stop":
                        sys.stdout.flush()
                        raise
                    errors += 1
                    _write(json_line({"id": _id_of(raw), "line": n, "error": e.problem}))
                    continue
                if obj is not None:
                    todo.append((obj.get("id"), obj["text"]))
            _flush_decisions(router, todo, args.neighbors)
            sys.stdout.flush()
    if errors:
        log.warning("%s: %d line(s) had errors (error records in the output)", name, errors)


def _flush_decisions(router, todo, neighbors):
    from ._console import json_line

    if todo:
        for (mid, _), d in zip(todo, router.route_batch([t for _, t in todo])):
            _write(json_line({"id": mid, **d.to_dict(neighbors=neighbors)}))
        todo.clear()


def _id_of(raw):
    """The id of a bad line when it has one (the error record carries it), else None."""
    from ..io import parse_json

    try:
        obj, _ = parse_json(raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw)
    except Exception:  # the line is bad anyway; the record still names its number
        return None
    mid = obj.get("id") if isinstance(obj, dict) else None
    return mid if isinstance(mid, (str, int)) and not isinstance(mid, bool) else None


def _conversation_problem(obj):
    """What is wrong with one conversation record, or None."""
    from ..core.text import message_problem

    cid, turns = obj.get("conversation_id"), obj.get("turns")
    if cid is None or cid == "" or isinstance(cid, (dict, list, bool)):
        return "missing 'conversation_id' (a string or a number)"
    if not isinstance(turns, list) or not turns:
        return "'turns' must be a non-empty list of {\"id\", \"text\"} (oldest first)"
    for i, t in enumerate(turns, 1):
        if not isinstance(t, dict) or t.get("id") is None or t.get("id") == "" or isinstance(t["id"], (dict, list)):
            return f"turn {i}: missing 'id' (a string or a number)"
        problem = message_problem(t)
        if problem:
            return f"turn {i}: {problem}"
    return None


def _read_conversation_input(path):
    """``(line, parsed object or None, DataError or None)`` per non-blank line of a JSONL file (stdin when None).

    A conversation is ``{"conversation_id", "turns": [{"id", "text"}]}``; a bad
    line comes with its error, so ``--on-error record`` can go on after it.
    """
    from ..io import bounded_lines, decode_line, parse_json

    name = "<stdin>" if path is None else path
    fh = getattr(sys.stdin, "buffer", sys.stdin) if path is None else _open_input(path)
    with fh if path is not None else contextlib.nullcontext():
        for n, raw in enumerate(bounded_lines(fh, name), 1):
            try:
                line = decode_line(raw, name, n)
            except DataError as e:
                yield n, None, e
                continue
            if not line.strip():
                continue
            obj, problem = parse_json(line)
            if problem is None and not isinstance(obj, dict):
                problem = f"expected a JSON object, got {type(obj).__name__}"
            problem = problem or _conversation_problem(obj)
            yield n, obj, (DataError(name, n, problem) if problem else None)


def cmd_route_conversation(args):
    """Route JSONL conversations; one JSONL decision per turn, in order, with the conversation and turn ids.

    A bad line stops the run (``--on-error stop``) or becomes an error record
    ``{"conversation_id", "line", "error"}`` in its place (``record``), as in ``route``.
    """
    from ._console import json_line

    from ..core.conversation import ContextRule

    router = opt.load_router(args)
    rule = ContextRule(args.context)
    errors = 0
    for n, conv, error in _read_conversation_input(args.input):
        if error is not None:
            if args.on_error == "stop":
                raise error
            errors += 1
            cid = conv.get("conversation_id") if isinstance(conv, dict) else None
            _write(json_line({"conversation_id": cid if isinstance(cid, (str, int)) and not isinstance(cid, bool)
                              else None, "line": n, "error": error.problem}))
            continue
        for turn, d in zip(conv["turns"], router.route_conversation(conv["turns"], context=rule)):
            _write(json_line({"conversation_id": conv["conversation_id"], "id": turn["id"],
                              **d.to_dict(neighbors=args.neighbors)}))
        sys.stdout.flush()
    if errors:
        log.warning("%d bad line(s) recorded as errors", errors)


def cmd_score(args):
    """Route a labelled JSONL file with the pool's head and policy, and print the metrics (``--dir``: every set)."""
    if args.dir:
        return cmd_score_dir(args)
    from ..analysis.generalisation import read_labelled, score_frame
    from ..analysis.metrics import compute_metrics, format_metrics
    from ..core.taxonomy import Taxonomy

    opt.check_outputs(args, {"--json": args.json}, [args.input, args.pool])
    router = opt.load_router(args)
    taxonomy = Taxonomy.from_metadata(router.metadata)
    frame = read_labelled(args.input, taxonomy).assign(set=str(args.input))
    g = score_frame(router, frame, cache_dir=args.cache_dir)
    rows = g.routed
    groups = {c: rows[c].astype(str).tolist() for c in ("lang", "source", "mapping") if c in rows}
    m = compute_metrics(rows["category"], rows["category_routed"], taxonomy, alt=rows["alt_category"], groups=groups)
    h = g.headline()
    echo(format_metrics(m, title=f"== {args.input}: routed with {args.pool} ({router.metadata['backend']}) =="))
    echo(f"\npool policy {g.pool['policy']}, head {g.pool['head']}: routed-tier accuracy "
         f"{100 * h['tier_accuracy']:.1f}%, abstain rate {100 * h['abstain_rate']:.1f}%, tier accuracy on answered "
         f"messages {100 * h['answered_tier_accuracy']:.1f}%")
    if args.json:
        write_json_atomic(args.json, {"input": str(args.input), "pool": str(args.pool), "metrics": m.to_dict(),
                                      "policy": h})


def cmd_score_dir(args):
    """Score the pool on every labelled set of a folder: per source, with the worst confusions."""
    from ..analysis.generalisation import format_generalisation, score_dir
    from ..report.record import jsonable

    opt.check_outputs(args, {"--json": args.json}, [*sorted(Path(args.dir).glob("*.jsonl")), args.pool])
    router = opt.load_router(args)
    g = score_dir(router, args.dir, per_source=args.per_source, seed=args.seed, cache_dir=args.cache_dir)
    echo(format_generalisation(g, title=f"== {args.dir}: routed with {args.pool} =="))
    if args.json:
        write_json_atomic(args.json, jsonable({
            "dir": str(args.dir), "pool": str(args.pool), "per_source_limit": args.per_source, "seed": args.seed,
            "headline": g.headline(), "per_source": g.per_source.reset_index().to_dict(orient="records"),
            "confusions": g.confusions.to_dict(orient="records")}))


def cmd_datasheet(args):
    """Regenerate (or check) the count tables of the datasheet; with ``--check``, exit code 1 when they are out of date."""
    from ..dataset.datasheet import datasheet_tables, update_datasheet
    from ..dataset.embeddings import load_embedded_pool

    opt.check_outputs(args, {"--out": args.out})
    pool = load_embedded_pool(backend=args.backend, progress=sys.stderr.isatty())
    templates = load_embedded_pool(_config.TEMPLATES_DIR, taxonomy=pool.taxonomy, backend=pool.embedder)
    tables = datasheet_tables(pool, templates, transcripts_dir=_config.TRANSCRIPTS_DIR)
    changed = update_datasheet(args.out, tables, check=args.check)
    if args.check:
        echo(f"{args.out}: tables are {'OUT OF DATE (run: workbench datasheet)' if changed else 'current'}")
        return EXIT_OUT_OF_DATE if changed else 0
    else:
        echo(f"{args.out}: tables {'updated' if changed else 'already current'}")


def register(sub):
    """Add the pool commands to the ``workbench`` parser."""
    from ..core.artifact_schema import EMBEDDING_DTYPES
    from ..core.conversation import CONTEXT_RULES

    p = sub.add_parser("evaluate", help="leave-one-out metrics of the pool, as a table", formatter_class=opt.Formatter)
    opt.add_pool_options(p)
    opt.add_knn_options(p)
    opt.add_dup_threshold(p)
    opt.add_json(p, "the metrics")
    opt.add_force(p)
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("export", help="write pool.npz: best swept configuration, head chosen by the folds, fitted policy",
                       formatter_class=opt.Formatter)
    opt.add_pool_options(p)
    opt.add_knn_options(p)
    p.add_argument("--out", required=True, metavar="PATH", help="where to write pool.npz")
    p.add_argument("--dtype", choices=EMBEDDING_DTYPES, default=_config.EXPORT_DTYPE, help="embedding storage")
    p.add_argument("--ann", action=opt.argparse.BooleanOptionalAction, default=None,
                   help=f"store an HNSW index for approximate search (needs faiss; default: from "
                        f"{_config.ANN_THRESHOLD} rows)")
    p.add_argument("--conversations-dir", metavar="DIR", default=_config.CONVERSATIONS_DIR,
                   help="labelled conversations the follow-up detector is fitted on, with data/dev's "
                        "(--no-follow-up: store none; the 'detector' rule then uses its hand weights)")
    p.add_argument("--no-follow-up", dest="conversations_dir", action="store_const", const=None,
                   help=opt.argparse.SUPPRESS)
    p.add_argument("--dev-dir", metavar="DIR", default=_config.DEV_DIR,
                   help="development sets: their conversations*.jsonl also train the follow-up detector")
    opt.add_policy_options(p)
    opt.add_force(p)
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("promote", help="gate a candidate pool.npz against the serving one (exit 1: refused)",
                       formatter_class=opt.Formatter)
    p.add_argument("--candidate", required=True, metavar="NPZ", help="the new pool.npz")
    p.add_argument("--current", required=True, metavar="NPZ", help="the pool.npz serving now")
    p.add_argument("--eval-dir", metavar="DIR", default=_config.EVAL_DIR,
                   help="labelled evaluation sets, one per *.jsonl (--no-eval: none)")
    p.add_argument("--no-eval", dest="eval_dir", action="store_const", const=None, help=opt.argparse.SUPPRESS)
    p.add_argument("--conversations-dir", metavar="DIR", default=_config.CONVERSATIONS_DIR,
                   help="labelled conversations, routed turn by turn (--no-conversations: none)")
    p.add_argument("--no-conversations", dest="conversations_dir", action="store_const", const=None,
                   help=opt.argparse.SUPPRESS)
    p.add_argument("--labelled", action="append", metavar="FILE", help="a labelled JSONL set, repeatable")
    p.add_argument("--decision-log", metavar="DIR", help="a gateway decision-log folder: the decisions that change")
    p.add_argument("--per-source", type=opt.positive_int, default=_config.EVAL_PER_SOURCE,
                   help="messages sampled per evaluation set")
    p.add_argument("--seed", type=opt.seed, default=_config.SEED, help="seed of the samples and the bootstrap")
    p.add_argument("--n-boot", type=opt.positive_int, default=2000, help="bootstrap resamples")
    p.add_argument("--max-accuracy-drop", type=opt.fraction, default=0.01,
                   help="tier-accuracy fall (a share) that refuses when its interval lies below 0")
    p.add_argument("--out", metavar="DIR", default=_config.REPORTS_DIR / "promotion",
                   help="folder of promotion.json and promotion.html")
    p.add_argument("--install", metavar="PATH", help="when promoted, replace this file (the served pool) atomically")
    p.add_argument("--cache-dir", metavar="DIR", default=_config.CACHE_DIR, help="embedding cache")
    p.add_argument("--allow-backend", action="append", metavar="SPEC", help="a backend the pools may name, repeatable")
    opt.add_force(p)
    p.set_defaults(func=cmd_promote)

    p = sub.add_parser("route", help="route JSONL messages ({'id','text'} per line) to tiers",
                       formatter_class=opt.Formatter)
    opt.add_router_options(p)
    p.add_argument("--input", metavar="FILE", help="JSONL input (default: stdin)")
    p.add_argument("--neighbors", action="store_true", help="add each decision's nearest neighbours (id, similarity, category)")
    p.add_argument("--on-error", choices=("stop", "record"), default="stop",
                   help="a bad line: stop after writing every decision before it (exit 2), or write an error "
                        "record {id, line, error} in its place and go on")
    p.add_argument("--conversation", action="store_true",
                   help="input lines are conversations {'conversation_id', 'turns': [{'id','text'}, ...]} (oldest turn "
                        "first); one decision per turn, routed with the --context rule")
    p.add_argument("--context", choices=CONTEXT_RULES, default=_config.CONTEXT_RULE,
                   help="with --conversation: how a turn reads the turns before it (see workbench.core.conversation)")
    p.add_argument("--batch-size", type=opt.positive_int, default=64, help=opt.argparse.SUPPRESS)
    p.set_defaults(func=cmd_route)

    p = sub.add_parser("score", help="route labelled JSONL (a file, or every set of a folder) and print the metrics",
                       formatter_class=opt.Formatter)
    opt.add_router_options(p)
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--input", metavar="FILE", help="JSONL with text, category, optional alt_category")
    what.add_argument("--dir", metavar="DIR", help=f"score every *.jsonl of DIR, one source each (e.g. {_config.EVAL_DIR})")
    p.add_argument("--per-source", type=opt.positive_int, default=_config.EVAL_PER_SOURCE,
                   help="with --dir: messages sampled per source")
    p.add_argument("--seed", type=opt.seed, default=_config.SEED, help="with --dir: seed of the samples")
    p.add_argument("--cache-dir", metavar="DIR", default=_config.CACHE_DIR, help="embedding cache")
    opt.add_json(p, "the metrics")
    p.set_defaults(func=cmd_score)

    p = sub.add_parser("datasheet", help="regenerate the count tables of data/README.md", formatter_class=opt.Formatter)
    p.add_argument("--out", metavar="FILE", default=_config.DATA_DIR / "README.md", help="datasheet to update")
    p.add_argument("--check", action="store_true", help="only check that the tables are current (exit 1 if not)")
    p.add_argument("--backend", metavar="B", type=opt.backend_spec, default=_config.DUP_BACKEND,
                   help="embedding backend for the diversity figures")
    p.set_defaults(func=cmd_datasheet)
