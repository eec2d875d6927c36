"""The Ray engine of ``workbench embed`` on a real local Ray instance with 2 workers (marked ``ray``: slow)."""
import json
import shutil

import numpy as np
import pytest

from tests.helpers import ROOT, write_jsonl
from workbench.dataset.shards import MANIFEST, load_shards
from workbench.scale.embed_logs import embed_logs

pytestmark = pytest.mark.ray

N_ROWS = 240


@pytest.fixture(scope="module")
def log_file(tmp_path_factory):
    rows = []
    for f in sorted((ROOT / "data" / "pool").glob("*.jsonl")):
        rows += [json.loads(line) for line in f.read_text(encoding="utf-8").splitlines() if line.strip()][:35]
    rows = rows[:N_ROWS - 10] + [dict(r, id=r["id"] + "-again", text=r["text"].upper()) for r in rows[:10]]
    return write_jsonl(tmp_path_factory.mktemp("log") / "log.jsonl", rows)


def test_ray_gives_the_local_vectors_and_resumes_from_the_local_shards(log_file, tmp_path, e5):
    local = embed_logs([log_file], tmp_path / "local", backend=e5, rows_per_shard=40)
    assert local["duplicates"] >= 10 and local["computed"] == len(local["shards"])
    ray_dir = tmp_path / "ray"
    ray_dir.mkdir()
    for name in local["shards"][:2]:  # as if a run had been stopped after two shards
        shutil.copy2(tmp_path / "local" / name, ray_dir / name)
    seen = []
    s = embed_logs([log_file], ray_dir, backend="e5-small", engine="ray", workers=2, rows_per_shard=40,
                   on_progress=lambda p: seen.append(p.shards_done))
    assert (s["skipped"], s["computed"]) == (2, len(local["shards"]) - 2)
    assert seen == list(range(3, len(local["shards"]) + 1))
    a, b = load_shards(tmp_path / "local"), load_shards(ray_dir)
    assert a.ids == b.ids and a.text_hashes == b.text_hashes
    cos = (a.vectors * b.vectors).sum(axis=1)
    assert cos.min() >= 0.9999
    assert json.loads((ray_dir / MANIFEST).read_text())["rows"] == len(a)


def test_the_local_ray_instance_is_shut_down_after_the_run():
    import ray

    assert not ray.is_initialized()
