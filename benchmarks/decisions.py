"""Every decision analysis on the bundled pool, with the numbers issue 6 asks for.

    python benchmarks/decisions.py [--pool-dir data/pool] [--robustness-n 280] [--json reports/decisions.json]

Backend e5-small, embedding cache in data/interim. Prints the default
operating point, the savings at the pool's mix and at cheap 85% / medium 6% /
strong 9%, the baselines (stratified 10-fold, seed 0, same vectors) with
latency ratios measured in this run, the review queue, the pool-size curve
and the robustness table.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from workbench.analysis.baselines import baseline_winner, compare_baselines  # noqa: E402
from workbench.analysis.curves import pool_size_curve, robustness  # noqa: E402
from workbench.analysis.evaluate import best_config  # noqa: E402
from workbench.analysis.review import review_queue  # noqa: E402
from workbench.core.policy import DecisionPolicy, abstain_scores  # noqa: E402
from workbench.dataset.embeddings import load_embedded_pool  # noqa: E402
from workbench.decisions.operating_point import abstain_curve, fit_operating_point  # noqa: E402
from workbench.decisions.out_of_sample import fit_default_point, out_of_sample  # noqa: E402
from workbench.decisions.targets import Targets  # noqa: E402
from workbench.decisions.savings import normalize_mix, pool_mix, routing_cost, savings_table  # noqa: E402

# example prices per million tokens (cheap / medium / strong models); a parameter, not a claim about a vendor
PRICES = {"cheap": 0.15, "medium": 1.0, "strong": 10.0}
USER_MIX = {"cheap": 0.85, "medium": 0.06, "strong": 0.09}
MAX_DOWNGRADE, MAX_ABSTAIN = 0.02, 0.10


def pct(v):
    return f"{100 * v:5.1f}%"


def show(df, cols=None, floats="{:.3f}"):
    print((df[cols] if cols else df).to_string(index=False, float_format=lambda v: floats.format(v)))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pool-dir", default=None)
    ap.add_argument("--robustness-n", type=int, default=280)
    ap.add_argument("--json", default=None, help="also write the numbers as JSON")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    out = {}
    t0 = time.perf_counter()
    pool = load_embedded_pool(args.pool_dir, progress=sys.stderr.isatty())
    tax, labels = pool.taxonomy, pool.labels
    rank = tax.category_tier_rank
    true_rank = rank[labels]
    config, _ = best_config(pool)
    print(f"pool: {len(labels)} messages, backend {pool.embedder.name}, k={config.k} vote={config.vote} "
          f"center={config.center} (best of the sweep)")

    # -- policies on leave-one-out predictions ------------------------------------------------
    knn = out_of_sample(pool.vectors, labels, tax, config, head="knn")
    kw = dict(pred=knn.pred, confidence=knn.confidence, margin=knn.margin)
    vote_rank = rank[knn.pred]
    cost = tax.cost_matrix()
    print("\n== decision policies (leave-one-out, no abstention) ==")
    for name, pol in (("vote (winning category's tier)", DecisionPolicy("vote")),
                      ("cost, 0/1 matrix (= voting over tiers)", DecisionPolicy("cost", (1 - np.eye(3)).tolist())),
                      ("cost, taxonomy matrix", DecisionPolicy("cost", cost.tolist()))):
        r, _, _ = pol.apply(knn.shares, rank, **kw)
        print(f"  {name:<40} tier acc {pct((r == true_rank).mean())}  down {pct((r < true_rank).mean())}  "
              f"up {pct((r > true_rank).mean())}  differs from vote on {(r != vote_rank).sum()} messages")
    vote = (knn.pred, knn.confidence, knn.margin)
    point = fit_operating_point(knn.shares, labels, rank, cost, targets=Targets(
        policy="cost", criterion="tier_confidence", max_downgrade=MAX_DOWNGRADE, max_abstain=MAX_ABSTAIN), vote=vote)
    print(f"\n== default operating point (targets: downgrades <= {MAX_DOWNGRADE:.0%}, abstain <= {MAX_ABSTAIN:.0%}) ==")
    print(f"  policy {point.policy.name}, downgrade weight {point.downgrade_weight:g}, abstain when "
          f"{point.policy.criterion} < {point.policy.threshold}")
    print(f"  tier accuracy {pct(point.tier_accuracy)} (answered: {pct(point.answered_tier_accuracy)})  downgrades "
          f"{pct(point.downgrade_rate)}  upgrades {pct(point.upgrade_rate)}  abstain {pct(point.abstain_rate)}  "
          f"targets met: {point.met}")
    out["default_point"] = point.to_dict()
    vote_points = {}
    for target in (0.05, 0.10, 0.20):
        p = fit_operating_point(knn.shares, labels, rank, targets=Targets(policy="vote", max_abstain=target), vote=vote)
        vote_points[f"k-NN vote, abstain <= {target:.0%}"] = p
    vp = fit_operating_point(knn.shares, labels, rank, vote=vote,
                             targets=Targets(policy="vote", max_downgrade=MAX_DOWNGRADE, max_abstain=None))
    vote_points[f"k-NN vote, downgrades <= {MAX_DOWNGRADE:.0%}"] = vp
    print("\n  other operating points (vote policy, tier_confidence):")
    for name, p in vote_points.items():
        print(f"  {name:<32} acc {pct(p.tier_accuracy)} (answered {pct(p.answered_tier_accuracy)})  "
              f"down {pct(p.downgrade_rate)}  up {pct(p.upgrade_rate)}  abstain {pct(p.abstain_rate)}")
    routed_v, _, probs_v = DecisionPolicy("vote").apply(knn.shares, rank, **kw)
    curve = abstain_curve(abstain_scores("tier_confidence", probs_v, routed_v, knn.confidence, knn.margin),
                          true_rank, routed_v)
    print("  vote policy curve (abstain -> answered acc / downgrades):  " + "  ".join(
        f"{pct(curve['abstain_rate'][i]).strip()}->{pct(curve['answered_tier_accuracy'][i]).strip()}/"
        f"{pct(curve['downgrade_rate'][i]).strip()}"
        for i in [int(np.searchsorted(curve["abstain_rate"], a)) for a in (0, 0.05, 0.1, 0.2, 0.3, 0.5)]))

    # the logistic-regression head's out-of-fold probabilities (stratified 10-fold, seed 0)
    lr = out_of_sample(pool.vectors, labels, tax, config, head="logreg")
    lr_point = fit_operating_point(lr.shares, labels, rank, cost, vote=(lr.pred, lr.confidence, lr.margin),
                                   targets=Targets(policy="cost", max_downgrade=MAX_DOWNGRADE, max_abstain=MAX_ABSTAIN))
    lr_line = (f"  logreg head, same targets (out-of-fold): tier acc {pct(lr_point.tier_accuracy)}  down "
               f"{pct(lr_point.downgrade_rate)}  up {pct(lr_point.upgrade_rate)}  abstain {pct(lr_point.abstain_rate)}  "
               f"({lr_point.policy.name}, weight {lr_point.downgrade_weight:g}, met {lr_point.met})")
    out["logreg_point"] = lr_point.to_dict()

    # -- savings ----------------------------------------------------------------------------------
    points = {"k-NN vote (no abstain)": (vote_rank, None)}
    for name, p in [("default operating point", point)] + list(vote_points.items()):
        r, a, _ = p.policy.apply(knn.shares, rank, **kw)
        points[name] = (r, a)
    r, a, _ = lr_point.policy.apply(lr.shares, rank, pred=lr.pred, confidence=lr.confidence, margin=lr.margin)
    points["logreg head, default targets"] = (r, a)
    # the same targets fitted on the user's mix (rates reweighted per true tier) rather than the pool's
    for head, o in (("k-NN", knn), ("logreg head", lr)):
        p = fit_default_point(o, labels, tax, Targets(policy="any", max_downgrade=MAX_DOWNGRADE,
                                                      max_abstain=MAX_ABSTAIN, traffic_mix=USER_MIX))
        print(f"  {head}, targets fitted on the 85/6/9 mix: {p.policy.name} (weight {p.downgrade_weight:g}), "
              f"on that mix: tier acc {pct(p.tier_accuracy)}  down {pct(p.downgrade_rate)}  up {pct(p.upgrade_rate)}"
              f"  abstain {pct(p.abstain_rate)}  met {p.met}")
        out[f"{head} point fitted on 85/6/9"] = p.to_dict()
        r, a, _ = p.policy.apply(o.shares, rank, pred=o.pred, confidence=o.confidence, margin=o.margin)
        points[f"{head}, targets fitted on 85/6/9"] = (r, a)
    out["savings"] = {}
    for mix_name, mix in (("pool's own mix", None), ("cheap 85% / medium 6% / strong 9%", USER_MIX)):
        t = savings_table(true_rank, points, tax.tiers, PRICES, traffic_mix=mix)
        print(f"\n== savings at the {mix_name} (prices per M tokens {PRICES}, 1,000 tokens/message, "
              f"categorizer 400 tokens at the cheap price) ==")
        shares = normalize_mix(mix or pool_mix(true_rank, tax.tiers), tax.tiers)
        perfect = routing_cost(true_rank, true_rank, None, tax.tiers, PRICES, traffic_mix=mix)["perfect_cost"]
        print(f"  mix {json.dumps({k: round(float(v), 3) for k, v in zip(tax.tiers, shares)})}; perfect routing "
              f"{perfect:.3f} per 1,000 messages")
        show(t, ["strategy", "cost_per_1k", "saved_vs_strong", "misrouting_cost", "downgrade_saving",
                 "tier_accuracy", "downgrade_rate", "upgrade_rate", "abstain_rate"])
        out["savings"][mix_name] = t.to_dict(orient="records")

    # -- baselines ----------------------------------------------------------------------------------
    comparison = compare_baselines(pool.vectors, labels, tax, config, n_splits=10, seed=0)
    base = comparison.table
    knn_lat = float(base.set_index("method").loc["knn", "latency_ms"])
    base["latency_vs_knn"] = base["latency_ms"] / knn_lat
    print(f"\n== baselines ({comparison.folds}, same vectors; latency = predict time / message, "
          "embedding excluded) ==")
    show(base, ["method", "tier_accuracy", "category_accuracy", "downgrade_rate", "upgrade_rate", "latency_ms",
                "latency_vs_knn", "fit_s"], "{:.4f}")
    win = baseline_winner(base)
    print("  " + win["summary"])
    print(lr_line)
    out["baselines"] = {"table": base.to_dict(orient="records"), **win}

    # -- review queue ---------------------------------------------------------------------------------
    queue = review_queue(pool.frame, knn.predictions, tax)
    print(f"\n== label review queue: {len(queue)} messages ({int(queue['cross_tier'].sum())} cross-tier) ==")
    for _, r in queue.head(10).iterrows():
        print(f"  {r['id']:<20} {r['category']:>15} -> {r['suggested']:<15} p {r['p_given']:.2f} -> "
              f"{r['p_suggested']:.2f}  {r['text'][:70]!r}")
    out["review_queue"] = {"size": len(queue), "cross_tier": int(queue["cross_tier"].sum()),
                           "ids": queue["id"].tolist()}

    # -- pool size curve --------------------------------------------------------------------------------
    ps = pool_size_curve(pool.vectors, labels, tax, config, seed=0)
    print(f"\n== pool size curve (fixed held-out set of {int(ps['n_test'].iloc[0])}, 5 seeded repeats) ==")
    show(ps)
    out["pool_size"] = ps.to_dict(orient="records")

    # -- robustness ----------------------------------------------------------------------------------------
    rob = robustness(pool.frame["text"], pool.vectors, labels, tax, pool.embedder, config, n=args.robustness_n,
                     seed=0, progress=sys.stderr.isatty())
    print("\n== robustness (perturbed copies routed leave-one-out) ==")
    show(rob)
    out["robustness"] = rob.to_dict(orient="records")
    print(f"\ntotal {time.perf_counter() - t0:.0f} s")
    if args.json:
        from workbench.io import write_text_atomic

        write_text_atomic(args.json, json.dumps(out, indent=2, default=float, ensure_ascii=False))


if __name__ == "__main__":
    main()
