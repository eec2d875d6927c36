"""Options shared by several commands, each declared once with its default from :mod:`workbench.config`.

Choices come from the domain constants (vote rules, policies, criteria,
heads, the backend registry), so a new backend or policy shows up in
``--help`` without touching the CLI.
"""
from __future__ import annotations

import argparse
import sys

from .. import config as _config
from ..core.embed import BACKENDS
from ..errors import ConfigError
from ..core.heads import HEADS
from ..core.knn import VOTE_RULES
from ..core.policy import CRITERIA, POLICIES

__all__ = ["Formatter", "backend_spec", "positive_int", "fraction", "add_pool_options", "add_knn_options",
           "add_dup_threshold", "add_json", "add_policy_options", "policy_from_args", "load_pool_from_args",
           "config_from_args"]


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
    """An argparse type: ``cast`` the text and check it, or say the rule and the value."""
    def parse(text):
        try:
            v = cast(text)
        except ValueError:
            v = None
        if v is None or not ok(v):
            raise argparse.ArgumentTypeError(f"must be {rule}; got {text!r}")
        return v
    parse.__name__ = rule
    return parse


positive_int = _number(int, lambda v: v >= 1, "an integer >= 1")
fraction = _number(float, lambda v: 0.0 <= v <= 1.0, "a number between 0 and 1")
positive_float = _number(float, lambda v: v > 0, "a number > 0")


def add_pool_options(p, *, multiple=True):
    """Where the pool comes from and how it is embedded."""
    g = p.add_argument_group("pool")
    if multiple:
        g.add_argument("--pool-dir", action="append", metavar="PATH", default=None,
                       help=f"pool JSONL file or folder, repeatable (default: {_config.POOL_DIR})")
    else:
        g.add_argument("--pool-dir", metavar="PATH", default=None, help=f"pool JSONL file or folder (default: {_config.POOL_DIR})")
    g.add_argument("--taxonomy", metavar="FILE", default=_config.TAXONOMY_PATH, help="taxonomy file")
    g.add_argument("--backend", metavar="B", type=backend_spec, default=_config.DEFAULT_BACKEND,
                   help=f"embedding backend: {', '.join(BACKENDS)} or st:<model id or path>")
    g.add_argument("--cache-dir", metavar="DIR", default=_config.CACHE_DIR, help="embedding cache")
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


def add_policy_options(p):
    """Head, decision policy and calibration stored in pool.npz; the defaults are what ships (workbench.config)."""
    from ..core.calibration import CALIBRATIONS

    g = p.add_argument_group("head and decision policy (stored in pool.npz; the defaults are what the nightly ships)")
    g.add_argument("--head", choices=("auto",) + tuple(HEADS), default=_config.HEAD,
                   help="class probabilities: auto (the best of the candidates on the same folds), the neighbours' "
                        "vote, a logistic-regression head, or their blend")
    g.add_argument("--policy", choices=POLICIES + ("any",), default=_config.DECISION_POLICY,
                   help="tier decision: vote (winning category's tier) or cost (least expected cost under the "
                        "taxonomy's cost matrix); 'any' lets the fit choose (plain voting when there is nothing to fit)")
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


def policy_from_args(args):
    """Keyword arguments of :func:`workbench.decisions.export.export_pool` from the policy options."""
    threshold, max_abstain, max_downgrade = args.abstain_threshold, args.max_abstain, args.max_downgrade
    if threshold is not None and max_downgrade is not None:
        raise ConfigError("give either --abstain-threshold or --max-downgrade, not both")
    if args.never_abstain:
        if threshold is not None or max_downgrade is not None:
            raise ConfigError("--never-abstain cannot be combined with --abstain-threshold or --max-downgrade")
        max_abstain = None
    return dict(head=args.head, policy=args.policy, criterion=args.criterion, threshold=threshold,
                max_downgrade=max_downgrade, max_abstain=max_abstain, calibration=args.calibration)


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
