"""Route latency of the default ensemble with its per-text language coverage against the same ensemble without it.

    python benchmarks/coverage_latency.py [--n 150] [--json out.json]

Exports the bundled pool once (default backend, plain k-NN head), then routes ``--n`` pool messages one at a time
through two routers over the same pool and the same encoder instances, in turns (the order alternates per message):
the default backend (each text's letters checked against USE-multilingual's languages, the e5-small vector mapped
into USE's space for a text outside them) and a baseline that keeps every part's own vector (the ensemble before
coverage). Half the messages are Hindi or Vietnamese, so the mapped path is timed as often as the plain one. Prints
the median and the 10th percentile of wall and CPU time, and their ratios to the baseline; then the step that differs
timed alone (combining given part vectors, with and without coverage), whose difference is steadier than two whole
routes on a busy machine.
"""
import argparse
import json
import tempfile
from pathlib import Path


# the same measure as the ensemble's benchmark: wall and CPU time, median and 10th percentile
from ensemble_latency import summary, timed  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=150, help="messages routed one by one per router")
    ap.add_argument("--json", help="also write the figures as JSON")
    args = ap.parse_args()

    from workbench.core.embed import E5SmallUSE
    from workbench.core.knn import KNNConfig
    from workbench.core.router import Router
    from workbench.dataset.embeddings import embed_texts, load_embedded_pool
    from workbench.decisions.export import export_pool
    from workbench.decisions.targets import Targets

    class PartsAsIs(E5SmallUSE):
        """The ensemble before coverage: every part's own vector, whatever the text's language."""

        def _substitute(self, vectors, texts):
            return vectors

    default = E5SmallUSE()
    baseline = PartsAsIs()
    baseline.parts = default.parts  # the same encoder instances
    pool = load_embedded_pool(backend=default)
    path = Path(tempfile.mkdtemp()) / "pool.npz"
    export_pool(pool, path, KNNConfig(15, "distance", center=True), head="knn",
                targets=Targets(max_abstain=None, calibration="none"))
    routers = {"coverage (default)": Router.load(path, embedder=default),
               "parts as-is (baseline)": Router.load(path, embedder=baseline)}
    frame = pool.frame
    uncovered = frame[frame["lang"].isin(["hi", "vi"])]["text"].sample(args.n // 2, random_state=0).tolist()
    covered = frame[~frame["lang"].isin(["hi", "vi"])]["text"].sample(args.n - len(uncovered), random_state=0).tolist()
    texts = [t for pair in zip(covered, uncovered) for t in pair] + covered[len(uncovered):]
    fns = {k: r.route for k, r in routers.items()}
    # the step that differs, alone (steadier than two whole routes on a busy machine): parts' vectors given
    position = {t: i for i, t in enumerate(frame["text"])}
    part_vectors = [embed_texts(frame["text"], p) for p in default.parts]
    for name, comp in (("combine, coverage", default), ("combine, parts as-is", baseline)):
        fns[name] = (lambda t, comp=comp: comp.combine([v[position[t]][None, :] for v in part_vectors], [t]))
    for fn in fns.values():
        fn(texts[0])  # load the models
    samples = {k: [] for k in fns}
    keys = list(fns)
    for i, t in enumerate(texts):
        for k in (keys if i % 2 == 0 else keys[::-1]):
            samples[k].append(timed(fns[k], t))
    rows = {k: summary(v) for k, v in samples.items()}
    base = rows["parts as-is (baseline)"]
    print(f"{'':<26} {'median ms':>10} {'p10 ms':>8} {'cpu ms':>8} {'cpu p10':>8}   ratio (median, p10, cpu, cpu p10)")
    for k, r in rows.items():
        ratios = [r[m] / base[m] for m in ("wall_ms", "wall_p10_ms", "cpu_ms", "cpu_p10_ms")]
        print(f"{k:<26} {r['wall_ms']:>10.1f} {r['wall_p10_ms']:>8.1f} {r['cpu_ms']:>8.1f} {r['cpu_p10_ms']:>8.1f}   "
              + " ".join(f"{x:.2f}x" for x in ratios))
    extra = rows["combine, coverage"]["wall_ms"] - rows["combine, parts as-is"]["wall_ms"]
    print(f"the coverage step adds {1000 * extra:.0f} us a message: {1 + extra / base['wall_ms']:.3f}x the baseline's "
          f"median route, {1 + extra / base['wall_p10_ms']:.3f}x its 10th percentile")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
