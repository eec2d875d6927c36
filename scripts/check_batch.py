"""The writers' checker: run after every batch of hand-written pool (or development-set) messages.

    python scripts/check_batch.py data/pool/style-act.jsonl [more.jsonl ...] [--dev]

It embeds the whole pool plus the new files with ``e5-small`` (the data checks' backend, cached in
``data/interim/embeddings``) and reports, by id only:

- schema problems (one line each: file, line, problem), ids used twice;
- near-duplicates: cosine >= 0.95 to a pool message or another new message;
- closeness to an evaluation prompt (``data/eval``): raw cosine >= 0.90, or mean-centred cosine >= 0.90;
  the writers never open the evaluation files, so only ids are printed, never the prompts;
- opening frames (first three words, or five characters in Chinese, Japanese and Thai) used more than twice;
- the language mix of the pool with the new files (Chinese share: zh + zh-Hant, code-mixed excluded).

``--dev`` checks a development set (``data/dev/``): it must not be close to the pool either (cosine >= 0.90),
so that it measures generalisation rather than recall. Exit status 1 when anything is flagged.
"""
from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

REQUIRED = ("id", "text", "category", "source", "lang", "label_source")


def read(path, categories):
    rows, problems = [], []
    for n, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            problems.append(f"{path}:{n}: invalid JSON ({e.msg})")
            continue
        if "turns" in obj:  # a conversation: check its turns as messages
            for t in obj["turns"]:
                if t.get("category") not in categories:
                    problems.append(f"{path}:{n}: turn {t.get('id')}: unknown category {t.get('category')!r}")
                rows.append({"id": t.get("id"), "text": t.get("text", ""), "lang": obj.get("lang", "?"),
                             "file": str(path), "line": n})
            continue
        missing = [k for k in REQUIRED if k not in obj]
        if missing:
            problems.append(f"{path}:{n}: missing {', '.join(missing)}")
        if obj.get("category") not in categories:
            problems.append(f"{path}:{n}: unknown category {obj.get('category')!r}")
        rows.append({**obj, "file": str(path), "line": n})
    return rows, problems


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("files", nargs="+")
    ap.add_argument("--dev", action="store_true", help="the files are a development set, not pool data")
    args = ap.parse_args(argv)

    import numpy as np

    from workbench.analysis.generalisation import read_eval_dir
    from workbench.core.knn import center
    from workbench.core.taxonomy import load_taxonomy
    from workbench.dataset.duplicates import opening_frame
    from workbench.dataset.embeddings import embed_texts
    from workbench.dataset.pool import load_pool

    taxonomy = load_taxonomy()
    new_paths = [Path(f).resolve() for f in args.files]
    pool = load_pool(ROOT / "data" / "pool", taxonomy).frame
    pool = pool[~pool["file"].map(lambda f: Path(f).resolve() in new_paths)]
    new, problems = [], []
    for f in new_paths:
        rows, p = read(f, set(taxonomy.categories))
        new += rows
        problems += p
    ids = Counter(r["id"] for r in new) + Counter(pool["id"])
    problems += [f"id used twice: {i}" for i, c in ids.items() if c > 1]

    cache = ROOT / "data" / "interim" / "embeddings"
    pool_v = embed_texts(pool["text"].tolist(), "e5-small", cache_dir=cache)
    new_v = embed_texts([r["text"] for r in new], "e5-small", cache_dir=cache)
    new_ids = [r["id"] for r in new]
    pool_ids = pool["id"].tolist()

    dup = 0.90 if args.dev else 0.95
    sim_pool = new_v @ pool_v.T
    for i, j in zip(*np.nonzero(sim_pool >= dup)):
        problems.append(f"near-duplicate of the pool ({sim_pool[i, j]:.3f}): {new_ids[i]} ~ {pool_ids[j]}")
    sim_new = new_v @ new_v.T
    for i, j in zip(*np.nonzero(np.triu(sim_new, 1) >= 0.95)):
        problems.append(f"near-duplicate within the new files ({sim_new[i, j]:.3f}): {new_ids[i]} ~ {new_ids[j]}")

    prompts = read_eval_dir(ROOT / "data" / "eval", taxonomy, per_source=None)
    theirs = embed_texts(prompts["text"].tolist(), "e5-small", cache_dir=cache)
    raw = (new_v @ theirs.T).max(axis=1)
    mean = pool_v.mean(axis=0)
    centred = (center(new_v, mean) @ center(theirs, mean).T).max(axis=1)
    for i in np.nonzero((raw >= 0.90) | (centred >= 0.90))[0]:
        problems.append(f"too close to an evaluation prompt (raw {raw[i]:.3f}, centred {centred[i]:.3f}): "
                        f"{new_ids[i]} (rewrite it: different topic and wording)")

    if not args.dev:
        frames = Counter(opening_frame(t) for t in pool["text"])
        mine = Counter(opening_frame(r["text"]) for r in new)
        for fr, c in mine.items():
            if fr and frames[fr] + c > 2:
                who = [r["id"] for r in new if opening_frame(r["text"]) == fr]
                problems.append(f"opening frame {fr!r} used {frames[fr] + c} times: {', '.join(who)}")

    langs = Counter(str(r.get("lang")) for r in new)
    allp = list(pool["lang"]) + [str(r.get("lang")) for r in new]
    zh = sum(lang in ("zh", "zh-Hant") for lang in allp) / max(len(allp), 1)
    print(f"{len(new)} new messages in {len(langs)} languages: {dict(langs.most_common())}")
    if not args.dev:
        cats = Counter(r.get("category") for r in new)
        print(f"categories: {dict(cats.most_common())}")
        print(f"pool with them: {len(allp)} messages, Chinese (zh + zh-Hant) {zh:.1%}")
    for p in problems:
        print("FLAG", p)
    print("ok" if not problems else f"{len(problems)} flagged")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
