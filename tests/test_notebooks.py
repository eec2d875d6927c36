"""The numbered notebooks: stored clean, and one papermill run of each (through the nightly) on small data."""
import ast
import json

import nbformat
import pytest

from tests import browser
from tests.helpers import ROOT, external_refs, write_jsonl

NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
XSS_SCRIPT = "<script>window.__xss=1</script> can you fix my script tag please"
XSS_ROWS = [
    {"id": "xss-1", "text": XSS_SCRIPT},
    {"id": "xss-2", "text": XSS_SCRIPT + "?!"},
    {"id": "xss-3", "text": '<img src=x onerror="window.__xss=2"> why does this image not load'},
]
EXTRA = {"category": "coding", "source": "test", "lang": "en", "label_source": "author"}
TEMPLATES_PER_CATEGORY = 10
EVAL_ROWS, CONVERSATIONS = 12, 6


#: Notebook parameter -> the constant of workbench.config it must equal (papermill needs literals in the cell).
CONSTANTS = {"backend": "DEFAULT_BACKEND", "dup_threshold": "DUP_THRESHOLD", "cluster_threshold": "CLUSTER_THRESHOLD",
             "seed": "SEED", "n_neighbors": "UMAP_NEIGHBORS", "decision_policy": "DECISION_POLICY",
             "abstain_criterion": "ABSTAIN_CRITERION", "max_downgrade": "MAX_DOWNGRADE", "max_abstain": "MAX_ABSTAIN",
             "prices": "PRICES", "traffic_mix": "TRAFFIC_MIX", "tokens_per_message": "TOKENS_PER_MESSAGE",
             "categorizer_tokens": "CATEGORIZER_TOKENS", "baseline_folds": "N_SPLITS", "pool_sizes": "POOL_SIZES",
             "robustness_n": "ROBUSTNESS_N", "review_rows": "REVIEW_ROWS", "dtype": "EXPORT_DTYPE",
             "default_tier": "OUTAGE_TIER", "head": "HEAD", "calibration": "CALIBRATION", "per_source": "EVAL_PER_SOURCE",
             "conversation_policy": "CONVERSATION_POLICY"}
MAX_CODE_LINES = 60


def parameters(path):
    nb = nbformat.read(str(path), as_version=4)
    cell = next(c for c in nb.cells if c.cell_type == "code")
    return {s.targets[0].id: ast.literal_eval(s.value) for s in ast.parse(cell.source).body}


def test_the_notebooks_exist_in_order():
    assert [p.stem for p in NOTEBOOKS] == ["01_build_pool", "02_clusters", "03_evaluate", "04_decisions",
                                           "05_baselines", "06_export", "07_label_source", "08_generalisation"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_parameter_defaults_are_the_config_constants(path):
    from workbench import config

    params = parameters(path)
    checked = 0
    for name, value in params.items():
        if name in CONSTANTS:
            expected = getattr(config, CONSTANTS[name])
            assert value == (list(expected) if isinstance(expected, tuple) else expected), \
                f"{path.name}: {name} = {value!r} drifted from workbench.config.{CONSTANTS[name]} = {expected!r}"
            checked += 1
    assert checked >= 1


def test_every_notebook_that_samples_takes_the_nightly_seed():
    for stem in ("02_clusters", "05_baselines", "06_export", "08_generalisation"):
        assert "seed" in parameters(ROOT / "notebooks" / f"{stem}.ipynb"), stem


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_reads_as_a_document(path):
    nb = nbformat.read(str(path), as_version=4)
    code = sum(len([ln for ln in c.source.splitlines() if ln.strip()]) for c in nb.cells if c.cell_type == "code")
    assert code <= MAX_CODE_LINES, f"{path.name} has {code} lines of code; move the composition into the package"
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# ")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_stored_clean(path):
    nb = nbformat.read(str(path), as_version=4)
    nbformat.validate(nb)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(not c.outputs and c.execution_count is None for c in code), "stored with outputs"
    assert "parameters" in code[0].metadata.get("tags", []), "first code cell must be tagged parameters"
    for stmt in ast.parse(code[0].source).body:  # literal values only
        assert isinstance(stmt, ast.Assign)
        ast.literal_eval(stmt.value)
    for c in code:
        assert not [n for n in ast.walk(ast.parse(c.source)) if isinstance(n, (ast.FunctionDef, ast.ClassDef, ast.Lambda))]


@pytest.fixture(scope="module")
def report(small_pool_file, cache_dir, tmp_path_factory):
    """One nightly run of every notebook on 140 messages (+3 hostile ones) and 70 templates."""
    from workbench.report.nightly import run_nightly

    data = tmp_path_factory.mktemp("nbdata")
    lines = small_pool_file.read_text(encoding="utf-8").splitlines()
    pool = write_jsonl(data / "pool.jsonl", lines + [dict(r, **EXTRA) for r in XSS_ROWS])
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
    reports = tmp_path_factory.mktemp("reports")
    lines_seen = []
    run = run_nightly({"pool_dir": str(pool), "templates_dir": str(templates), "cache_dir": str(cache_dir),
                       "backends": ["e5-small", "use-multilingual"], "seed": 42, "eval_dir": str(evals),
                       "per_source": EVAL_ROWS - 2, "conversations_dir": str(conversations)},
                      reports_dir=reports, date="2026-11-25", progress=lines_seen.append)
    return run, lines_seen


@pytest.mark.papermill
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_without_errors_into_offline_html(report, path):
    run, _ = report
    nb = nbformat.read(str(run / path.name), as_version=4)
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors
    assert any(o.output_type in ("display_data", "execute_result", "stream") for c in nb.cells for o in c.get("outputs", []))
    html = run / f"{path.stem}.html"
    assert html.exists() and external_refs(html) == []


@pytest.mark.papermill
def test_progress_names_each_notebook(report):
    _, lines = report
    assert [ln.split()[1] for ln in lines if " done in " in ln][:4] == [p.stem for p in NOTEBOOKS][:4]


@pytest.mark.papermill
def test_metrics_hold_every_section(report):
    run, _ = report
    m = json.loads((run / "metrics.json").read_text())
    assert m["pool"]["n"] == 143 and m["pool"]["rejected"] == 0
    assert 0.5 < m["evaluate"]["tier_accuracy"] <= 1 and "inflation" in m["evaluate"]
    assert m["clusters"]["template_clusters"] > 0 and 0 <= m["clusters"]["near_duplicate_share"] <= 1
    assert set(m["backends"]) == {"e5-small tier_accuracy", "use-multilingual tier_accuracy"}
    assert m["export"]["n"] == 143 and m["run"]["status"] == "ok"
    assert m["export"]["head"] in ("knn", "logreg", "blend") and 0 <= m["export"]["ece"] <= 1
    assert m["generalisation"]["n"] == 2 * (EVAL_ROWS - 2) and m["generalisation"]["sources"] == 2
    assert m["conversations"]["shipped_policy"] == "confident" and 0 <= m["conversations"]["follow_up_tier_accuracy"] <= 1
    assert sorted(p.name for p in (run / "figures").glob("*.json"))[:2] == ["02_cluster_map.json",
                                                                           "02_template_vs_written.json"]


@pytest.mark.papermill
def test_latest_pool_npz_is_ready_for_routing(report):
    from workbench import config
    from workbench.core.router import Router

    run, _ = report
    latest = run.parent / "latest"
    assert latest.resolve() == run.resolve()
    router = Router.load(latest / "pool.npz", threads=2)
    assert router.metadata["backend"] == config.DEFAULT_BACKEND
    decision = router.route("write a python function that parses a CSV file")
    assert decision.tier == "strong"


@pytest.mark.browser
@pytest.mark.skipif(not browser.available(), reason="needs chromium, chromium-driver and selenium (.ci/run installs them)")
@pytest.mark.parametrize("page, min_svgs", [("index.html", 6), ("02_clusters.html", 2)])
def test_report_renders_offline_in_chromium_with_text_escaped(report, page, min_svgs):
    run, _ = report
    with browser.Browser() as b:
        driver = b.open(run / page, min_svgs=min_svgs)
        assert len(driver.find_elements("css selector", "svg.main-svg")) >= min_svgs
        assert driver.execute_script("return window.__xss === undefined")  # no message text ran as script
        assert driver.find_elements("css selector", "img[src='x']") == []
        assert XSS_SCRIPT in driver.find_element("tag name", "body").text  # shown as text
        assert b.severe_logs() == []
        figure = driver.find_elements("css selector", "div.js-plotly-plot")[0]
        driver.execute_script("arguments[0].scrollIntoView()", figure)
        shot = run / f"screenshot-{page.replace('.html', '')}.png"
        driver.save_screenshot(str(shot))
    assert shot.stat().st_size > 10_000
