"""Shared fixtures, and the test tiers.

Tiers: a test is ``slow`` when it loads a real embedding model (any of the
model fixtures below), or is marked ``umap``, ``papermill``, ``browser`` or
``install``, ``ray`` (a local Ray instance) or ``serve`` (a real uvicorn server), or ``model`` when it
loads one another way (those markers imply ``slow``). ``make test-quick`` runs the
rest in well under a minute; ``make test`` (and CI) runs everything.
"""
import json
import os

import pytest

from tests import browser
from tests.helpers import ROOT, XSS_ROWS, write_jsonl
from workbench.decisions.targets import Targets

PER_CATEGORY = 20
#: Export options of a plain pool (the k-NN vote, never abstains, raw confidence), not what ships by default.
PLAIN = {"head": "knn", "targets": Targets(max_abstain=None, calibration="none")}
TEMPLATES_PER_CATEGORY = 10
#: Evaluation rows per source and conversations in the nightly fixture.
EVAL_ROWS, CONVERSATIONS = 12, 6
#: Decision records per day of the bundled traffic sample in the nightly fixture.
TRAFFIC_PER_DAY = 25
#: Fixtures that load the real default embedding model.
MODEL_FIXTURES = {"e5", "small_pool", "small_npz", "bundled_pool", "bundled_npz", "use", "nightly_report"}
SLOW_MARKERS = ("model", "umap", "papermill", "browser", "install", "ray", "serve")


def pytest_collection_modifyitems(config, items):
    for item in items:
        if MODEL_FIXTURES & set(item.fixturenames) or any(item.get_closest_marker(m) for m in SLOW_MARKERS):
            item.add_marker(pytest.mark.slow)


def pytest_runtest_setup(item):
    """A ``browser`` test without Chromium skips on a workstation and fails in CI (``CI`` set)."""
    if item.get_closest_marker("browser") and not browser.available():
        why = f"needs {', '.join(browser.missing())} (.ci/run installs chromium and chromium-driver)"
        if os.environ.get("CI"):
            pytest.fail(f"CI is set and the browser test cannot run: {why}", pytrace=False)
        pytest.skip(why)


@pytest.fixture(scope="session")
def taxonomy():
    from workbench.core.taxonomy import load_taxonomy

    return load_taxonomy(ROOT / "data" / "taxonomy.yaml")


@pytest.fixture(scope="session")
def e5():
    from workbench.core.embed import get_embedder

    return get_embedder("e5-small", threads=2)


@pytest.fixture(scope="session")
def small_pool_file(tmp_path_factory):
    """The first 20 messages of each category of the bundled pool, as one JSONL file."""
    rows, counts = [], {}
    for f in sorted((ROOT / "data" / "pool").glob("*.jsonl")):
        for line in f.read_text(encoding="utf-8").splitlines():
            if line.strip():
                obj = json.loads(line)
                if counts.get(obj["category"], 0) < PER_CATEGORY:
                    counts[obj["category"]] = counts.get(obj["category"], 0) + 1
                    rows.append(line)
    path = tmp_path_factory.mktemp("pool") / "small.jsonl"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("embcache")


@pytest.fixture(scope="session")
def small_pool(small_pool_file, taxonomy, e5, cache_dir):
    from workbench.dataset.embeddings import load_embedded_pool

    return load_embedded_pool(small_pool_file, taxonomy=taxonomy, backend=e5, cache_dir=cache_dir)


@pytest.fixture(scope="session")
def small_npz(small_pool, tmp_path_factory):
    from workbench.core.knn import KNNConfig
    from workbench.decisions.export import export_pool

    path = tmp_path_factory.mktemp("npz") / "pool.npz"
    export_pool(small_pool, path, KNNConfig(k=5, vote="distance", center=True), **PLAIN)
    return path


@pytest.fixture(scope="session")
def other_npz(small_pool, tmp_path_factory):
    """Another pool.npz of the same backend (every other message of the small pool): what a hot reload swaps in."""
    import numpy as np

    from workbench.core.knn import KNNConfig
    from workbench.decisions.export import export_pool

    path = tmp_path_factory.mktemp("npz") / "other.npz"
    export_pool(small_pool.subset(np.arange(0, len(small_pool.vectors), 2)), path, KNNConfig(k=3))
    return path


@pytest.fixture(scope="session")
def bundled_pool(taxonomy, e5, cache_dir):
    """The whole bundled pool (data/pool), embedded once per session."""
    from workbench.dataset.embeddings import load_embedded_pool

    return load_embedded_pool(None, taxonomy=taxonomy, backend=e5, cache_dir=cache_dir)


@pytest.fixture(scope="session")
def bundled_npz(bundled_pool, tmp_path_factory):
    from workbench.core.knn import KNNConfig
    from workbench.decisions.export import export_pool

    path = tmp_path_factory.mktemp("npz") / "bundled.npz"
    export_pool(bundled_pool, path, KNNConfig(k=15, vote="distance", center=True), **PLAIN)
    return path


@pytest.fixture(scope="session")
def nightly_report(small_pool_file, cache_dir, tmp_path_factory):
    """One nightly run of every notebook on 140 messages (+3 hostile ones) and 70 templates.

    Returns ``(run folder, progress lines)``.
    """
    from workbench.report.nightly import run_nightly

    data = tmp_path_factory.mktemp("nbdata")
    lines = small_pool_file.read_text(encoding="utf-8").splitlines()
    extra = {"category": "coding", "source": "test", "lang": "en", "label_source": "author"}
    pool = write_jsonl(data / "pool.jsonl", lines + [dict(r, **extra) for r in XSS_ROWS])
    counts, rows = {}, []
    for f in sorted((ROOT / "data" / "templates").glob("*.jsonl")):
        for line in f.read_text(encoding="utf-8").splitlines():
            cat = json.loads(line)["category"]
            if counts.get(cat, 0) < TEMPLATES_PER_CATEGORY:
                counts[cat] = counts.get(cat, 0) + 1
                rows.append(line)
    templates = write_jsonl(data / "templates.jsonl", rows)
    evals = data / "eval"
    evals.mkdir()
    for f in ("mt_bench_en.jsonl", "slurp_chitchat_qa_en.jsonl"):  # two small sources of the real evaluation sets
        write_jsonl(evals / f, (ROOT / "data" / "eval" / f).read_text(encoding="utf-8").splitlines()[:EVAL_ROWS])
    conversations = write_jsonl(data / "conversations.jsonl", (ROOT / "data" / "conversations" / "conversations_a.jsonl")
                                .read_text(encoding="utf-8").splitlines()[:CONVERSATIONS])
    traffic = data / "traffic"  # the bundled decision-log sample, its first records of each day (09_traffic)
    traffic.mkdir()
    for f in sorted((ROOT / "data" / "traffic").glob("*-*.jsonl")):
        write_jsonl(traffic / f.name, f.read_text(encoding="utf-8").splitlines()[:TRAFFIC_PER_DAY])
    reports = tmp_path_factory.mktemp("reports")
    lines_seen = []
    run = run_nightly({"pool_dir": str(pool), "templates_dir": str(templates), "cache_dir": str(cache_dir),
                       "backends": ["e5-small", "use-multilingual"], "seed": 42, "eval_dir": str(evals),
                       "per_source": EVAL_ROWS - 2, "conversations_dir": str(conversations),
                       "dev_dir": str(data / "dev"), "decision_log": str(traffic)},  # no development sets: their sections show nothing
                      reports_dir=reports, date="2026-11-25", progress=lines_seen.append)
    return run, lines_seen
