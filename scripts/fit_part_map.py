"""Fit the map from e5-small's space into USE-multilingual's, for the texts USE does not cover.

    python scripts/fit_part_map.py [--pool data/pool] [--ridge 0.1]

Rows: the pool's messages whose language USE-multilingual was trained on (``lang``, the main one of a code-mixed
message) and whose letters it covers (``core.scripts``). Writes ``workbench/core/maps/e5-small__use-multilingual.npz``
(float16, atomically) and prints how close the mapped vectors come to the real ones on a held-out fifth. A new map
is a new model: the composite backend's ``model_id`` carries its digest, so pools exported before must be exported
again.
"""
from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main(argv=None):
    from workbench import config
    from workbench.analysis.backends import fit_part_map
    from workbench.core.embed import MAPS_DIR, PART_MAPS, get_embedder, normalize_rows
    from workbench.core.scripts import covers
    from workbench.core.taxonomy import load_taxonomy
    from workbench.dataset.embeddings import embed_texts
    from workbench.dataset.pool import load_pool
    from workbench.io import write_bytes_atomic

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pool", default=None)
    ap.add_argument("--ridge", type=float, default=config.PART_MAP_RIDGE)
    args = ap.parse_args(argv)

    source, target = get_embedder("e5-small"), get_embedder("use-multilingual")
    frame = load_pool(args.pool, load_taxonomy()).frame
    texts = frame["text"].tolist()
    main_lang = frame["lang"].astype(str).str.split("+").str[0]
    rows = np.flatnonzero(main_lang.isin(target.languages).to_numpy() & np.array(covers(texts, target.languages)))
    x = embed_texts([texts[i] for i in rows], source)
    y = embed_texts([texts[i] for i in rows], target)
    held = np.arange(len(rows)) % 5 == 0
    w = fit_part_map(x[~held], y[~held], ridge=args.ridge)
    cos = float((normalize_rows(x[held] @ w) * y[held]).sum(axis=1).mean())
    print(f"{len(rows)} covered messages; held-out fifth: mean cosine of mapped to real USE vectors {cos:.3f}")
    w = fit_part_map(x, y, ridge=args.ridge)
    buf = io.BytesIO()
    np.savez(buf, map=w.astype(np.float16))
    out = MAPS_DIR / PART_MAPS[(source.name, target.name)]
    out.parent.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(out, buf.getvalue())
    print(f"wrote {out.relative_to(ROOT)} ({out.stat().st_size // 1024} KiB)")


if __name__ == "__main__":
    main()
