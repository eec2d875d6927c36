"""The numbered notebooks: stored clean, and one papermill run of each (through the nightly) on small data."""
import ast
import json

import nbformat
import pytest

from tests.conftest import EVAL_ROWS
from tests.helpers import ROOT, external_refs

NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


#: Notebook parameter -> the constant of workbench.config it must equal (papermill needs literals in the cell).
CONSTANTS = {"backend": "DEFAULT_BACKEND", "dup_threshold": "DUP_THRESHOLD", "cluster_threshold": "CLUSTER_THRESHOLD",
             "seed": "SEED", "n_neighbors": "UMAP_NEIGHBORS", "decision_policy": "DECISION_POLICY",
             "abstain_criterion": "ABSTAIN_CRITERION", "max_downgrade": "MAX_DOWNGRADE", "max_abstain": "MAX_ABSTAIN",
             "prices": "PRICES", "traffic_mix": "TRAFFIC_MIX", "tokens_per_message": "TOKENS_PER_MESSAGE",
             "categorizer_tokens": "CATEGORIZER_TOKENS", "baseline_folds": "N_SPLITS", "pool_sizes": "POOL_SIZES",
             "robustness_n": "ROBUSTNESS_N", "dtype": "EXPORT_DTYPE",
             "default_tier": "OUTAGE_TIER", "head": "HEAD", "calibration": "CALIBRATION", "per_source": "EVAL_PER_SOURCE",
             "context_rule": "CONTEXT_RULE", "context_turns": "CONTEXT_TURNS",
             "context_folds": "CONTEXT_FOLDS", "map_neighbors": "MAP_NEIGHBORS"}
MAX_CODE_LINES = 60


def parameters(path):
    nb = nbformat.read(str(path), as_version=4)
    cell = next(c for c in nb.cells if c.cell_type == "code")
    return {s.targets[0].id: ast.literal_eval(s.value) for s in ast.parse(cell.source).body}


def test_the_notebooks_exist_in_order():
    assert [p.stem for p in NOTEBOOKS] == ["01_build_pool", "02_clusters", "03_evaluate", "04_decisions",
                                           "05_baselines", "06_export", "07_label_source", "08_generalisation",
                                           "09_traffic"]


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
    for stem in ("02_clusters", "05_baselines", "06_export", "08_generalisation", "09_traffic"):
        assert "seed" in parameters(ROOT / "notebooks" / f"{stem}.ipynb"), stem


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_reads_as_a_document(path):
    nb = nbformat.read(str(path), as_version=4)
    code = sum(len([ln for ln in c.source.splitlines() if ln.strip()]) for c in nb.cells if c.cell_type == "code")
    assert code <= MAX_CODE_LINES, f"{path.name} has {code} lines of code; move the composition into the package"
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# ")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_stored_clean(path):
    from tests.helpers import as_committed

    nb = nbformat.reads(as_committed(path), as_version=4)  # what a commit stores: a local run keeps its outputs
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
def report(nightly_report):
    return nightly_report


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
    assert m["export"]["head"] in ("knn", "logreg", "blend", "mlp") and 0 <= m["export"]["ece"] <= 1
    assert m["generalisation"]["n"] == 2 * (EVAL_ROWS - 2) and m["generalisation"]["sources"] == 2
    assert m["conversations"]["shipped_rule"].startswith(__import__("workbench.config").config.CONTEXT_RULE)
    assert 0 <= m["conversations"]["follow_up_tier_accuracy"] <= 1
    assert m["traffic"]["days"] == 14 and 0 <= m["traffic"]["uncovered_share"] <= 1 and "drift" in m["traffic"]
    assert 0 <= m["long_messages"]["question_past_cap_after"] <= m["long_messages"]["question_past_cap_before"] <= 1
    assert sorted(p.name for p in (run / "figures").glob("*.js"))[:2] == ["02_cluster_map.js",
                                                                         "02_template_vs_written.js"]


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


@pytest.mark.papermill
def test_executed_notebooks_keep_figures_as_plotly_json_and_show_no_machine_paths_or_warnings(report):
    import sys

    run, _ = report
    machine = [str(ROOT), str(run.resolve()), str(run.parent.resolve()), sys.prefix]
    figures = 0
    for path in NOTEBOOKS:
        nb = nbformat.read(str(run / path.name), as_version=4)
        for cell in nb.cells:
            for out in cell.get("outputs", []):
                data = out.get("data", {})
                figures += "application/vnd.plotly.v1+json" in data
                assert not ("application/vnd.plotly.v1+json" in data and "text/html" in data), path.name
                assert "application/vnd.jupyter.widget-view+json" not in data, f"{path.name}: a widget in a report"
                text = json.dumps(out, ensure_ascii=False)
                assert not [m for m in machine if m in text], f"{path.name}: a path of this machine in {text[:300]}"
                if out.get("name") == "stderr":
                    assert "Warning" not in out["text"] and "%|" not in out["text"], f"{path.name}: {out['text'][:300]}"
    assert figures >= 20


@pytest.mark.papermill
def test_the_report_folder_is_light(report):
    run, _ = report
    sizes = {p.relative_to(run).as_posix(): p.stat().st_size for p in run.rglob("*") if p.is_file()}
    assert [p for p in sizes if p.endswith("plotly.min.js")] == ["assets/plotly.min.js"]  # one copy per folder
    pages = {p: s for p, s in sizes.items() if p.endswith(".html")}
    assert len(pages) == len(NOTEBOOKS) + 1 and max(pages.values()) < 400_000, pages
    rest = {p: s for p, s in sizes.items() if not p.endswith(("plotly.min.js", "pool.npz"))}
    # 143 messages: about 1.3 MB besides plotly.js and pool.npz, of which 09_traffic's map and page about 0.35 MB
    # (the bundled pool: 2.8 MB, benchmarks/report_size.py)
    assert sum(rest.values()) < 1_800_000, sorted(rest.items(), key=lambda kv: -kv[1])[:8]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_markdown_has_no_unfilled_placeholder(path):
    """Markdown is not an f-string: a ``{NAME}`` there reaches the page literally (08 once printed its rule so)."""
    import re

    nb = nbformat.read(str(path), as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            assert not re.search(r"\{[A-Za-z_][A-Za-z0-9_.]*\}", cell.source), f"{path.name}: {cell.source[:200]!r}"
