"""CLI options for decision policies: ``workbench export --policy/--abstain-threshold/--max-downgrade/--max-abstain/--head``.

:func:`register` adds them to the existing ``export`` command; without any
of them ``export`` writes exactly what it wrote before.
"""
from __future__ import annotations

from pathlib import Path

from .policy import CRITERIA

__all__ = ["register", "cmd_export_policy"]


def _wants_policy(args):
    return (args.policy is not None or args.abstain_threshold is not None or args.max_downgrade is not None
            or args.max_abstain is not None or args.head != "knn")


def cmd_export_policy(args):
    """Write pool.npz with a decision policy (and head) when one is asked for."""
    from . import cli
    from .decisions import policy_exports
    from .pipeline import export_pool

    if not _wants_policy(args):
        return cli.cmd_export(args)
    pool = cli._load(args)
    config, _ = cli._choose_config(args, pool)
    targets = args.max_downgrade is not None or args.max_abstain is not None
    meta_x, arrays, point = policy_exports(
        pool.vectors, pool.labels, pool.taxonomy, config, policy=args.policy or ("cost" if targets else "vote"),
        criterion=args.criterion, threshold=args.abstain_threshold, max_downgrade=args.max_downgrade,
        max_abstain=args.max_abstain, head=args.head)
    meta = export_pool(pool, args.out, config, dtype=args.dtype, extra_arrays=arrays, extra_metadata=meta_x)
    size = Path(args.out).stat().st_size
    pol = meta["policy"]
    print(f"wrote {args.out}: {meta['n']} messages, {meta['backend']}, head {meta['head']}, k={meta['k']} "
          f"vote={meta['vote']} center={meta['center']}, policy {pol['name']}"
          + (f", abstain when {pol['criterion']} < {pol['threshold']:.4f}" if pol["threshold"] is not None else "")
          + f", {size / 1024:.0f} KiB")
    if point is not None:
        print(f"operating point (out of sample): tier accuracy {100 * point.tier_accuracy:.1f}%, downgrades "
              f"{100 * point.downgrade_rate:.1f}%, upgrades {100 * point.upgrade_rate:.1f}%, abstain "
              f"{100 * point.abstain_rate:.1f}%, downgrade weight {point.downgrade_weight:g}"
              + ("" if point.met else " (targets NOT met)"))


def _fraction(text):
    import argparse

    v = float(text)
    if not 0.0 <= v <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1; got {text}")
    return v


def register(subparsers):
    """Add the decision-policy options to the ``export`` command."""
    p = subparsers.choices["export"]
    g = p.add_argument_group("decision policy (stored in pool.npz; default: plain voting, never abstain)")
    g.add_argument("--policy", choices=("vote", "cost", "any"),
                   help="tier decision: vote (winning category's tier) or cost (least expected cost under the "
                        "taxonomy's cost matrix); 'any' lets the fit choose (default: cost with a target, else vote)")
    g.add_argument("--criterion", choices=CRITERIA, default="tier_confidence",
                   help="score compared with the abstain threshold (default tier_confidence)")
    g.add_argument("--abstain-threshold", type=_fraction, metavar="T", help="abstain when the score is below T")
    g.add_argument("--max-downgrade", type=_fraction, metavar="R",
                   help="fit the threshold (and downgrade weight) for at most R downgrades, e.g. 0.02")
    g.add_argument("--max-abstain", type=_fraction, metavar="R", help="fit for abstaining on at most R of traffic")
    g.add_argument("--head", choices=("knn", "logreg"), default="knn",
                   help="class probabilities from the neighbours' vote (default) or a logistic-regression head")
    p.set_defaults(func=cmd_export_policy)
