"""notebooks/07_label_source.ipynb: stored clean, runs with papermill on its defaults."""
import ast
import json

import pytest

from tests.helpers import ROOT

NOTEBOOK = ROOT / "notebooks" / "07_label_source.ipynb"
NIGHTLY_PARAMS = {"pool_dir", "templates_dir", "taxonomy_path", "backend", "output_dir", "cache_dir", "k",
                  "dup_threshold", "seed"}


def test_notebook_is_stored_without_outputs_or_defs_and_has_a_literal_parameters_cell():
    nb = json.loads(NOTEBOOK.read_text(encoding="utf-8"))
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert code[0]["metadata"].get("tags") == ["parameters"]
    assert all(not c.get("outputs") and not c.get("execution_count") for c in code)
    for c in code:
        tree = ast.parse("".join(c["source"]))
        assert not any(isinstance(n, (ast.FunctionDef, ast.ClassDef, ast.Lambda)) for n in ast.walk(tree))
    params = ast.parse("".join(code[0]["source"])).body
    assert all(isinstance(s, ast.Assign) and isinstance(ast.literal_eval(s.value), (str, int, float, bool, list, type(None)))
               for s in params)
    names = {s.targets[0].id for s in params}
    assert {"transcripts_path", "shadow_log", "audit_path"} <= names and names & NIGHTLY_PARAMS


@pytest.mark.papermill
def test_notebook_runs_on_its_defaults(bundled_pool, cache_dir, tmp_path, monkeypatch):
    import papermill as pm

    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    out = tmp_path / "07.ipynb"
    # defaults, except the embedding cache the session already filled and an output folder outside the repo
    pm.execute_notebook(str(NOTEBOOK), str(out), parameters={"cache_dir": str(cache_dir), "output_dir": str(tmp_path)},
                        cwd=str(tmp_path), kernel_name="python3", progress_bar=False)
    text = out.read_text(encoding="utf-8")
    assert "dropped: url only" in text and "static medium" in text and "fallback_tier_accuracy" in text
    assert "explain the time complexity" in text and (tmp_path / "07_label_source" / "candidates.jsonl").exists()
