"""Options shared by several commands, each declared once with its default from :mod:`workbench.config`.

Choices come from the domain constants (vote rules, policies, criteria,
heads, the backend registry), so a new backend or policy shows up in
``--help`` without touching the CLI.
"""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from .. import config as _config
from ..core.embed import BACKENDS
from ..errors import ConfigError
from ..core.heads import HEADS
from ..core.knn import VOTE_RULES
from ..core.policy import CRITERIA, POLICIES
from ..decisions.targets import ANY_POLICY

__all__ = ["Formatter", "backend_spec", "positive_int", "non_negative_int", "fraction", "positive_float",
           "non_negative_float", "seed", "port_number", "window_ms", "max_batch", "workers", "threads", "sha256_hex",
           "add_force", "check_outputs", "add_router_options", "load_router",
           "add_pool_options", "add_pool_dir", "add_taxonomy", "add_backend", "add_cache_dir", "add_knn_options",
           "add_dup_threshold", "add_json", "add_chat_client_options", "chat_client_from_args", "add_policy_options",
           "targets_from_args", "load_pool_from_args", "config_from_args"]


class Formatter(argparse.HelpFormatter):
    """``--help`` shows every default that is set (``None`` means the help text says what happens)."""

    def _get_help_string(self, action):
        text = action.help or ""
        if (action.default not in (None, False, argparse.SUPPRESS) and "default" not in text
                and action.option_strings and action.nargs != 0):
            text += " (default: %(default)s)"
        return text


def backend_spec(text):
    """A backend name of the registry, or ``st:<model id or path>``."""
    if text in BACKENDS or (text.startswith("st:") and len(text) > 3):
        return text
    raise argparse.ArgumentTypeError(f"must be one of {', '.join(BACKENDS)} or st:<model id or path>; got {text!r}")


def _number(cast, ok, rule):
    """An argparse type: ``cast`` the text and check it (finite, within the rule), or say the rule and the value."""
    def parse(text):
        try:
            v = cast(text)
        except (ValueError, OverflowError):  # also an integer beyond Python's digit limit
            v = None
        if v is None or not math.isfinite(v) or not ok(v):
            raise argparse.ArgumentTypeError(f"must be {rule}; got {text[:40]!r}")
        return v
    parse.__name__ = rule
    return parse


positive_int = _number(int, lambda v: v >= 1, "an integer >= 1")
non_negative_int = _number(int, lambda v: v >= 0, "an integer >= 0")
fraction = _number(float, lambda v: 0.0 <= v <= 1.0, "a number between 0 and 1")
positive_float = _number(float, lambda v: v > 0, "a finite number > 0")
non_negative_float = _number(float, lambda v: v >= 0, "a finite number >= 0")
#: A seed for numpy and random: 0 to 2**32 - 1.
seed = _number(int, lambda v: 0 <= v < 2**32, "an integer between 0 and 4294967295")
#: Service options, each bounded (an unbounded one listened on another port or killed the batching thread).
port_number = _number(int, lambda v: 1 <= v <= 65535, "a port between 1 and 65535")
window_ms = _number(float, lambda v: 0 <= v <= 1000, "a number of milliseconds between 0 and 1000")
max_batch = _number(int, lambda v: 1 <= v <= 1024, "an integer between 1 and 1024")
workers = _number(int, lambda v: 1 <= v <= 64, "an integer between 1 and 64")
threads = _number(int, lambda v: 1 <= v <= 256, "an integer between 1 and 256")


def sha256_hex(text):
    """64 hexadecimal digits (a SHA-256)."""
    if len(text) == 64 and all(c in "0123456789abcdefABCDEF" for c in text):
        return text.lower()
    raise argparse.ArgumentTypeError(f"must be 64 hexadecimal digits; got {text[:70]!r}")


def add_force(p, what="a file inside the pool folder"):
    """``--force``: allow writing where outputs are refused by default (never over an input of the command)."""
    p.add_argument("--force", action="store_true", help=f"allow writing {what}")


def check_outputs(args, outputs, inputs=(), *, pool_dirs=None):
    """Refuse an output of the command that is one of its inputs, or lies inside a pool folder (unless --force).

    ``outputs`` maps option names to paths (None: not given); ``pool_dirs`` are
    the pool sources (default ``data/pool``): a folder protects what is inside it.
    """
    from ..io import check_output_path

    pools = [p for p in (pool_dirs or [None]) if p is not None] or [_config.POOL_DIR]
    protected = [p for p in pools if Path(p).is_dir()] + [_config.POOL_DIR]
    sources = list(inputs) + [p for p in pools if Path(p).is_file()]
    sources += [f for p in pools if Path(p).is_dir() for f in Path(p).glob("*.jsonl")]
    given = {k: v for k, v in outputs.items() if v is not None}
    for option, path in given.items():
        others = [v for k, v in given.items() if k != option]
        check_output_path(path, inputs=sources + others, protected=protected,
                          force=getattr(args, "force", False), option=option)


def add_router_options(p, *, required=True):
    """The pool.npz a command routes with, the digest it must have, and the backends it may name."""
    p.add_argument("--pool", required=required, metavar="PATH", help="pool.npz"
                   + ("" if required else " to route with"))
    p.add_argument("--pool-sha256", metavar="HEX",
                   help="refuse any pool.npz but this one (its sha256sum, or the digest workbench export prints)")
    p.add_argument("--allow-backend", action="append", metavar="SPEC",
                   help=f"a backend the pool may name, repeatable, shell patterns allowed, e.g. 'st:intfloat/*' "
                        f"(default: {', '.join(BACKENDS)})")


def load_router(args):
    """The Router the router options name."""
    from ..core.router import Router

    return Router.load(args.pool, sha256=args.pool_sha256, allowed_backends=args.allow_backend and
                       (list(BACKENDS) + args.allow_backend))


def add_pool_dir(p, *, multiple=True, help=None):
    """``--pool-dir``: the pool's JSONL files or folders (repeatable unless ``multiple=False``)."""
    text = help or ("pool JSONL file or folder" + (", repeatable" if multiple else ""))
    p.add_argument("--pool-dir", action="append" if multiple else "store", metavar="PATH", default=None,
                   help=f"{text} (default: {_config.POOL_DIR})")


def add_taxonomy(p, *, help="taxonomy file"):
    p.add_argument("--taxonomy", metavar="FILE", default=_config.TAXONOMY_PATH, help=help)


def add_backend(p, *, help="embedding backend"):
    p.add_argument("--backend", metavar="B", type=backend_spec, default=_config.DEFAULT_BACKEND,
                   help=f"{help}: {', '.join(BACKENDS)} or st:<model id or path>")


def add_cache_dir(p):
    p.add_argument("--cache-dir", metavar="DIR", default=_config.CACHE_DIR, help="embedding cache")


def add_pool_options(p, *, multiple=True):
    """Where the pool comes from and how it is embedded."""
    g = p.add_argument_group("pool")
    add_pool_dir(g, multiple=multiple)
    add_taxonomy(g)
    add_backend(g)
    add_cache_dir(g)
    return g


def add_knn_options(p):
    """The k-NN configuration; what is left out is the best of the sweep."""
    g = p.add_argument_group("k-NN configuration (left out: best of the sweep)")
    g.add_argument("--k", type=positive_int, help="neighbours that vote")
    g.add_argument("--vote", choices=VOTE_RULES, help="vote rule")
    g.add_argument("--temperature", type=positive_float, default=_config.TEMPERATURE, help="softmax temperature")
    g.add_argument("--center", action=argparse.BooleanOptionalAction, default=None,
                   help="mean-centre the pool vectors")
    return g


def add_dup_threshold(p):
    p.add_argument("--dup-threshold", type=fraction, default=_config.DUP_THRESHOLD,
                   help="cosine at or above which two messages are near-duplicates")


def add_json(p, what="the results"):
    p.add_argument("--json", metavar="FILE", help=f"also write {what} as JSON")


def add_chat_client_options(p):
    """The LLM categorizer's endpoint, model, key variable, timeouts and retries; defaults are :class:`ChatClient`'s."""
    import inspect

    from ..traffic.chat_client import ChatClient

    default = {name: par.default for name, par in inspect.signature(ChatClient).parameters.items()}
    p.add_argument("--base-url", default=default["base_url"], help="chat-completions base URL")
    p.add_argument("--model", default=default["model"], help="model name, recorded as label_source")
    p.add_argument("--api-key-env", default=default["api_key_env"], metavar="NAME",
                   help="environment variable holding the API key")
    p.add_argument("--timeout", type=positive_float, default=default["timeout"],
                   help="seconds one request may take in all (connect, send, the whole answer)")
    p.add_argument("--max-response-bytes", type=positive_int, default=default["max_response_bytes"],
                   help="longest answer read")
    p.add_argument("--max-retries", type=non_negative_int, default=default["max_retries"], help="retries per message")
    p.add_argument("--backoff", type=non_negative_float, default=default["backoff"],
                   help="first retry delay in seconds, doubled each time")
    p.add_argument("--max-backoff", type=non_negative_float, default=default["max_backoff"],
                   help="longest wait, Retry-After included")


def chat_client_from_args(args, **kw):
    """The :class:`ChatClient` the chat-client options describe (``kw``: further settings such as ``seed``)."""
    from ..traffic.chat_client import ChatClient

    return ChatClient(args.base_url, args.model, api_key_env=args.api_key_env, timeout=args.timeout,
                      max_retries=args.max_retries, backoff=args.backoff, max_backoff=args.max_backoff,
                      max_response_bytes=args.max_response_bytes, **kw)


def add_policy_options(p):
    """Head, decision policy and calibration stored in pool.npz; the defaults are what ships (workbench.config)."""
    from ..core.calibration import CALIBRATIONS

    g = p.add_argument_group("head and decision policy (stored in pool.npz; the defaults are what the nightly ships)")
    g.add_argument("--head", choices=("auto",) + tuple(HEADS), default=_config.HEAD,
                   help="class probabilities: auto (the best of the candidates on the same folds), the neighbours' "
                        "vote, a logistic-regression head, or their blend")
    g.add_argument("--policy", choices=tuple(POLICIES) + (ANY_POLICY,), default=_config.DECISION_POLICY,
                   help="tier decision: " + "; ".join(f"{name}: {cls.__doc__.splitlines()[0].rstrip('.')}"
                                                      for name, cls in POLICIES.items())
                        + f"; {ANY_POLICY!r} lets the fit choose (the simplest within one standard error of the best)")
    g.add_argument("--criterion", choices=CRITERIA, default=_config.ABSTAIN_CRITERION,
                   help="score compared with the abstain threshold")
    g.add_argument("--abstain-threshold", type=fraction, metavar="T",
                   help="abstain when the score is below T (replaces the fitted targets)")
    g.add_argument("--max-downgrade", type=fraction, metavar="R",
                   help="fit the threshold (and downgrade weight) for at most R downgrades, e.g. 0.02")
    g.add_argument("--max-abstain", type=fraction, metavar="R", default=_config.MAX_ABSTAIN,
                   help="fit the threshold for abstaining on at most R of traffic")
    g.add_argument("--never-abstain", action="store_true",
                   help="no abstain target or threshold: the pool always answers by itself")
    g.add_argument("--calibration", choices=("auto",) + CALIBRATIONS, default=_config.CALIBRATION,
                   help="map tier confidence to a probability, fitted on out-of-sample predictions "
                        "(auto: the method with the lowest expected calibration error)")
    return g


def targets_from_args(args):
    """The :class:`~workbench.decisions.targets.Targets` the policy options describe (validated there)."""
    from ..decisions.targets import Targets

    if args.never_abstain and (args.abstain_threshold is not None or args.max_downgrade is not None):
        raise ConfigError("--never-abstain cannot be combined with --abstain-threshold or --max-downgrade")
    return Targets(policy=args.policy, criterion=args.criterion, threshold=args.abstain_threshold,
                   max_downgrade=args.max_downgrade, max_abstain=None if args.never_abstain else args.max_abstain,
                   calibration=args.calibration)


def load_pool_from_args(args):
    """The embedded pool the pool options name."""
    from ..dataset.embeddings import load_embedded_pool

    return load_embedded_pool(args.pool_dir, taxonomy=args.taxonomy, backend=args.backend, cache_dir=args.cache_dir,
                              progress=sys.stderr.isatty())


def config_from_args(args, pool, *, table=None):
    """The configuration the k-NN options fix, with the best of the sweep for what they leave open."""
    from ..analysis.evaluate import choose_config

    return choose_config(pool, k=args.k, vote=args.vote, center=args.center, temperature=args.temperature,
                         table=table)
