"""Commands past one laptop: ``embed`` (message logs -> Parquet shards, locally or on Ray) and ``serve``.

``embed`` needs the ``scale`` extra (pyarrow; Ray for ``--engine ray``),
``serve`` the ``serve`` extra (FastAPI, uvicorn).
"""
from __future__ import annotations

import sys

from .. import config as _config
from ..core.embed import BACKENDS
from ..io import write_json_atomic
from . import _options as opt
from ._console import echo

__all__ = ["register"]


def cmd_embed(args):
    """Embed message files into Parquet shards; resumes where an interrupted run stopped."""
    from ..scale.embed_logs import embed_logs

    opt.check_outputs(args, {"--out": args.out, "--json": args.json}, args.input)
    tty = sys.stderr.isatty()

    def show(progress):
        print(("\r" if tty else "") + progress.line(), end="" if tty else "\n", file=sys.stderr, flush=True)

    s = embed_logs(args.input, args.out, backend=args.backend, engine=args.engine, address=args.address,
                   workers=args.workers, rows_per_shard=args.batch_size, text_column=args.text_column,
                   id_column=args.id_column, on_progress=show)
    if tty:
        print(file=sys.stderr)
    echo(f"read {s['read']} rows from {len(args.input)} file(s): {s['duplicates']} exact duplicate(s) and "
         f"{s['empty']} empty row(s) dropped, {s['rows']} embedded with {s['backend']} into {len(s['shards'])} "
         f"shard(s) in {args.out} ({s['computed']} computed, {s['skipped']} already done; "
         f"{s['rows_per_second']:.1f} rows/s on {args.engine})")
    if args.json:
        write_json_atomic(args.json, s)


def cmd_serve(args):
    """Serve a pool over HTTP until SIGTERM or Ctrl-C."""
    from ..serve.server import serve

    gateway = None if args.upstreams is None else {
        "upstreams": args.upstreams, "client_keys": args.client_keys, "client_key_env": args.client_key_env,
        "decision_log": args.decision_log, "log_text": args.log_text}
    serve(args.pool, host=args.host, port=args.port, workers=args.workers, max_batch=args.max_batch,
          window_ms=args.batch_window_ms, threads=args.threads,
          allowed_backends=args.allow_backend and (list(BACKENDS) + args.allow_backend),
          pool_sha256=args.pool_sha256,
          log_level="info" if args.verbose else "warning", gateway=gateway, allow_anonymous=args.allow_anonymous,
          announce=lambda line: print(f"workbench serve: {line}", file=sys.stderr, flush=True))


def register(sub):
    """Add ``embed`` and ``serve`` to the ``workbench`` parser."""
    from ..scale.embed_logs import ENGINES

    p = sub.add_parser("embed", formatter_class=opt.Formatter,
                       help="embed JSONL/CSV/Parquet message logs into Parquet shards (local or Ray; resumable)")
    p.add_argument("--input", required=True, nargs="+", metavar="PATH", help="message files with a text column")
    p.add_argument("--out", required=True, metavar="DIR", help="folder of the shards and their manifest")
    p.add_argument("--backend", metavar="B", type=opt.backend_spec, default=_config.DEFAULT_BACKEND,
                   help="embedding backend")
    p.add_argument("--engine", choices=ENGINES, default="local",
                   help="local: this process; ray: Ray Data actors (a local Ray unless --address)")
    p.add_argument("--address", metavar="ADDR", help="Ray cluster to use (default: start a local one for the run)")
    p.add_argument("--workers", type=opt.positive_int, metavar="N", help="Ray actors (default: one per CPU)")
    p.add_argument("--batch-size", type=opt.positive_int, default=_config.EMBED_SHARD_ROWS, metavar="N",
                   help="rows per shard: the unit of work and of resuming")
    p.add_argument("--text-column", default="text", metavar="NAME", help="column of the message text")
    p.add_argument("--id-column", default="id", metavar="NAME", help="column of the message id (none: a hash id)")
    opt.add_json(p, "the run's summary")
    p.set_defaults(func=cmd_embed)

    p = sub.add_parser("serve", formatter_class=opt.Formatter,
                       help="serve a pool's routing decisions over HTTP (POST /route, POST /route/conversation, GET /healthz, "
                            "GET /metrics), and with --upstreams an OpenAI-compatible gateway")
    p.add_argument("--pool", required=True, metavar="PATH", help="pool.npz; replacing it atomically reloads it")
    p.add_argument("--pool-sha256", type=opt.sha256_hex, metavar="HEX",
                   help="serve only a pool.npz with this SHA-256 (at startup and on every reload)")
    p.add_argument("--host", default=_config.SERVE_HOST, help="address to listen on")
    p.add_argument("--port", type=opt.port_number, default=_config.SERVE_PORT, help="port to listen on (1-65535)")
    p.add_argument("--workers", type=opt.workers, default=1, help="processes (each loads the model; 1-64)")
    p.add_argument("--max-batch", type=opt.max_batch, default=_config.SERVE_MAX_BATCH, metavar="N",
                   help="messages per encoder call")
    p.add_argument("--batch-window-ms", type=opt.window_ms, default=_config.SERVE_BATCH_WINDOW_MS, metavar="MS",
                   help="how long a batch waits for more requests while traffic is concurrent (0-1000)")
    p.add_argument("--threads", type=opt.threads, metavar="N", help="encoder threads (1-256; default: all cores)")
    p.add_argument("--allow-backend", action="append", metavar="SPEC",
                   help=f"a backend the pool may name, repeatable, shell patterns allowed, e.g. 'st:intfloat/*' "
                        f"(default: {', '.join(BACKENDS)})")
    _gateway_options(p)
    p.set_defaults(func=cmd_serve)


def _gateway_options(p):
    """The gateway's options of ``serve`` (one block: see workbench.serve.gateway)."""
    g = p.add_argument_group("gateway (OpenAI-compatible /v1/chat/completions in front of your models)")
    g.add_argument("--upstreams", metavar="FILE", help="YAML file of the model behind each tier (see docs/deploy.md); "
                   "adds POST /v1/chat/completions and GET /v1/models")
    g.add_argument("--client-keys", metavar="FILE", help="client tokens allowed in: '<sha256 hex> <name>' per line")
    g.add_argument("--client-key-env", metavar="VAR", help="environment variable holding one more client token")
    g.add_argument("--allow-anonymous", action="store_true",
                   help="listen beyond loopback with upstreams and no client keys")
    g.add_argument("--decision-log", metavar="DIR", help="append one JSON line per request to "
                   "DIR/decisions-YYYY-MM-DD.jsonl (UTC)")
    g.add_argument("--log-text", choices=("scrubbed", "full", "none"), default="scrubbed",
                   help="the routed text in the decision log: PII-scrubbed, as sent, or only its SHA-256")
