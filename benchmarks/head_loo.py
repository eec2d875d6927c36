"""Exact leave-one-out of every router head on the bundled pool, next to their 10-fold out-of-fold figures.

    python benchmarks/head_loo.py [--backend e5-small+use-multilingual] [--heads knn logreg blend] [--json out.json]
    python benchmarks/head_loo.py --heads mlp --folds-only     # the mlp head: 10-fold only (see below)

`workbench evaluate` and `03_evaluate` report leave-one-out for the k-NN vote, which needs no training. A trained
head (logistic regression, the blend) is judged by the export on stratified folds; this script refits it once per
message instead (the k-NN part of each head votes among the other n - 1 messages, the linear part is trained on
them), so "leave-one-out tier accuracy" can be read for the head that ships. About 0.5 s per fit on two cores: half
an hour on the bundled 3,080 messages, so it runs here and not in the nightly. The ``mlp`` head trains four
networks per fit, about 8 s: leave-one-out would take days, so it is left out by default and judged on the folds. Reports per head: tier and category accuracy, downgrades,
upgrades and the tier accuracy of every category, by plain vote (no abstaining), for both fold schemes.
"""
import argparse
import json
import time
from pathlib import Path

import numpy as np


def scores(shares, labels, taxonomy):
    from workbench.core.knn import decide

    rank = taxonomy.category_tier_rank
    pred, _, _ = decide(shares, rank)
    y = np.asarray(labels)
    true, routed = rank[y], rank[pred]
    per_cat = {c: float(np.mean(routed[y == i] == true[y == i])) for i, c in enumerate(taxonomy.categories)
               if (y == i).any()}
    return {"tier_accuracy": float(np.mean(routed == true)), "category_accuracy": float(np.mean(pred == y)),
            "downgrade_rate": float(np.mean(routed < true)), "upgrade_rate": float(np.mean(routed > true)),
            "min_category": min(per_cat.values()), "worst_category": min(per_cat, key=per_cat.get),
            "per_category": per_cat}


def main():
    from workbench import config

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backend", default=config.DEFAULT_BACKEND)
    ap.add_argument("--heads", nargs="+", default=[h for h in config.HEAD_CANDIDATES if h != "mlp"])
    ap.add_argument("--folds-only", action="store_true", help="skip the exact leave-one-out")
    ap.add_argument("--json", help="also write the results as JSON")
    args = ap.parse_args()

    from workbench.analysis.evaluate import choose_config
    from workbench.analysis.heads import out_of_fold_shares
    from workbench.dataset.embeddings import load_embedded_pool

    pool = load_embedded_pool(backend=args.backend)
    cfg, _ = choose_config(pool)
    print(f"{len(pool.labels)} messages, backend {args.backend}, {cfg}", flush=True)
    out = {}
    schemes = (("10-fold", config.N_SPLITS),) + (() if args.folds_only else (("leave-one-out", "loo"),))
    for name, n_splits in schemes:
        start = time.perf_counter()
        shares = out_of_fold_shares(pool.vectors, pool.labels, pool.taxonomy, cfg, heads=tuple(args.heads),
                                    n_splits=n_splits)
        seconds = time.perf_counter() - start
        out[name] = {h: scores(s, pool.labels, pool.taxonomy) for h, s in shares.items()}
        print(f"{name}: {seconds:.0f} s", flush=True)
    cats = pool.taxonomy.categories
    print(f"\n{'folds':<14} {'head':<7} {'tier':>6} {'cat':>6} {'down':>6} {'up':>6}  " + " ".join(f"{c[:8]:>8}" for c in cats))
    for name, per_head in out.items():
        for head, r in per_head.items():
            print(f"{name:<14} {head:<7} {100 * r['tier_accuracy']:>5.1f}% {100 * r['category_accuracy']:>5.1f}% "
                  f"{100 * r['downgrade_rate']:>5.1f}% {100 * r['upgrade_rate']:>5.1f}%  "
                  + " ".join(f"{100 * r['per_category'][c]:>7.1f}%" for c in cats))
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
