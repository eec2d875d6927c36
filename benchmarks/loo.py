"""Vectorised leave-one-out k-NN vs scikit-learn's KNeighborsClassifier + LeaveOneOut.

Prints: agreement of the predictions and the speed ratio on the bundled pool's
real vectors (both measured in this run), then time and peak memory of the
vectorised LOO at 1.5k, 10k and 50k synthetic rows.

    python benchmarks/loo.py [--sizes 1500 10000 50000] [--sklearn-rows 2000]
"""
import argparse
import time
import tracemalloc

import numpy as np


def vectorised(x, y, taxonomy, k, vote):
    from workbench.analysis.evaluate import loo_predict
    from workbench.core.knn import KNNConfig

    p = loo_predict(x, y, taxonomy, KNNConfig(k=k, vote=vote, center=False))
    tied = p.margin < 1e-9
    return p.pred, tied


def sklearn_loo(x, y, k, weights):
    from sklearn.model_selection import LeaveOneOut, cross_val_predict
    from sklearn.neighbors import KNeighborsClassifier

    clf = KNeighborsClassifier(n_neighbors=k, weights=weights, metric="cosine", algorithm="brute")
    return cross_val_predict(clf, x, y, cv=LeaveOneOut(), n_jobs=1)


def timed(fn, *a):
    t = time.perf_counter()
    out = fn(*a)
    return out, time.perf_counter() - t


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="*", default=[1500, 10000, 50000])
    ap.add_argument("--sklearn-rows", type=int, default=2000, help="rows of the bundled pool compared with sklearn")
    ap.add_argument("--k", type=int, default=7)
    args = ap.parse_args()

    from workbench.dataset.embeddings import load_embedded_pool

    pool = load_embedded_pool(progress=True)
    x, y = pool.vectors[: args.sklearn_rows], pool.labels[: args.sklearn_rows]
    print(f"bundled pool: {len(x)} rows x {x.shape[1]} dims (e5-small), k={args.k}")
    print(f"{'vote':<10} {'ours s':>8} {'sklearn s':>10} {'speed-up':>9} {'agree':>7} {'ties':>6} {'agree w/o ties':>15}")
    for vote, weights in (("majority", "uniform"), ("distance", "distance")):
        (ours, tied), t_ours = timed(vectorised, x, y, pool.taxonomy, args.k, vote)
        theirs, t_sk = timed(sklearn_loo, x, y, args.k, weights)
        same = ours == theirs
        print(f"{vote:<10} {t_ours:8.3f} {t_sk:10.3f} {t_sk / t_ours:8.0f}x {same.mean():7.2%} {tied.sum():6d} "
              f"{same[~tied].mean():15.2%}")
    print("(disagreements are exact vote ties: we break them toward the stronger tier, sklearn by class index)")

    print(f"\nsynthetic unit vectors, d={x.shape[1]}, k={args.k}, majority vote")
    print(f"{'rows':>7} {'seconds':>9} {'peak MiB':>9} {'input MiB':>10}")
    rng = np.random.default_rng(0)
    for n in args.sizes:
        s = rng.normal(size=(n, x.shape[1])).astype(np.float32)
        s /= np.linalg.norm(s, axis=1, keepdims=True)
        labels = rng.integers(0, len(pool.taxonomy.categories), n)
        tracemalloc.start()
        _, t = timed(vectorised, s, labels, pool.taxonomy, args.k, "majority")
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        print(f"{n:>7} {t:9.2f} {peak / 2**20:9.0f} {s.nbytes / 2**20:10.0f}")


if __name__ == "__main__":
    main()
