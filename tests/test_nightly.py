import json
import subprocess
import sys

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from tests.helpers import ROOT
from workbench.cli import main
from workbench.errors import ConfigError
from workbench.report.nightly import find_notebooks, notebook_parameters, run_notebook, update_latest

PARAMS = "seed = 1\noutput_dir = None"
RECORD = "from workbench.report.record import record_metrics\nrecord_metrics(output_dir, 'tiny', {'seed': seed})"
FAIL = "x = 1\nraise ValueError('boom in the middle')"


def make_notebook(path, *sources):
    nb = new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    cells = [new_code_cell(s) for s in sources]
    cells[0].metadata["tags"] = ["parameters"]
    nb.cells = cells
    nbformat.write(nb, str(path))
    return path


@pytest.fixture
def notebooks(tmp_path):
    d = tmp_path / "notebooks"
    d.mkdir()
    make_notebook(d / "01_ok.ipynb", PARAMS, RECORD)
    make_notebook(d / "02_fail.ipynb", PARAMS, "y = 2", FAIL, RECORD)
    make_notebook(d / "03_never.ipynb", PARAMS, RECORD)
    (d / "helper.ipynb").write_text("{}")  # not numbered: never run
    return d


def test_help_lists_nightly():
    out = subprocess.run([sys.executable, "-m", "workbench", "--help"], capture_output=True, text=True, cwd=ROOT).stdout
    assert "nightly" in out


def test_find_notebooks_in_order_and_by_prefix(notebooks):
    assert [p.name for p in find_notebooks(notebooks)] == ["01_ok.ipynb", "02_fail.ipynb", "03_never.ipynb"]
    assert [p.name for p in find_notebooks(notebooks, ["03", "01"])] == ["01_ok.ipynb", "03_never.ipynb"]
    with pytest.raises(ConfigError, match="--notebooks must name"):
        find_notebooks(notebooks, ["07"])


@pytest.mark.papermill
def test_unknown_parameter_is_an_error(notebooks, tmp_path):
    assert notebook_parameters(notebooks / "01_ok.ipynb") == {"seed", "output_dir"}
    with pytest.raises(ConfigError, match=r"unknown parameter\(s\) \['k'\]"):
        run_notebook(notebooks / "01_ok.ipynb", tmp_path / "out.ipynb", {"k": 3})


@pytest.mark.papermill
def test_a_failing_notebook_exits_non_zero_naming_notebook_and_cell(notebooks, tmp_path, capsys):
    reports = tmp_path / "reports"
    code = main(["nightly", "--notebooks-dir", str(notebooks), "--output-dir", str(reports), "--date", "2026-11-25",
                 "--seed", "7", "--k", "3"])
    err = capsys.readouterr().err
    assert code != 0
    last = err.strip().splitlines()[-1]
    assert "02_fail.ipynb" in last and "cell 3" in last and "ValueError: boom in the middle" in last
    run = reports / "2026-11-25"
    # what ran stays on disk: the good notebook, the failed one with its error, an index saying so
    assert (run / "01_ok.html").exists() and (run / "02_fail.ipynb").exists() and (run / "02_fail.html").exists()
    assert not (run / "03_never.ipynb").exists()
    failed = nbformat.read(str(run / "02_fail.ipynb"), as_version=4)
    assert any(o.get("ename") == "ValueError" for c in failed.cells for o in c.get("outputs", []))
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["tiny"] == {"seed": 7}  # only the declared parameters were passed (k was not)
    assert metrics["run"]["status"] == "failed"
    assert "The run failed" in (run / "index.html").read_text()
    assert not (reports / "latest").exists()  # latest keeps pointing at the last good run
    assert "[1/3] 01_ok done in" in err and "[2/3] 02_fail FAILED" in err


@pytest.mark.papermill
def test_a_good_run_points_latest_at_it(notebooks, tmp_path, capsys):
    reports = tmp_path / "reports"
    assert main(["nightly", "--notebooks-dir", str(notebooks), "--output-dir", str(reports), "--date", "2026-11-26",
                 "--notebooks", "01"]) == 0
    assert (reports / "latest").resolve() == (reports / "2026-11-26").resolve()
    assert (reports / "latest" / "index.html").exists() and (reports / "latest" / "01_ok.html").exists()
    assert (reports / "latest" / "index.html").stat().st_mode & 0o044 == 0o044  # readable by others
    assert "index.html" in capsys.readouterr().out


def test_update_latest_replaces_an_older_link(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    update_latest(tmp_path, tmp_path / "a")
    update_latest(tmp_path, tmp_path / "b")
    assert (tmp_path / "latest").resolve() == (tmp_path / "b").resolve()


def test_bad_date_is_a_config_error(tmp_path, notebooks):
    assert main(["nightly", "--notebooks-dir", str(notebooks), "--output-dir", str(tmp_path), "--date", "../x"]) == 2


@pytest.mark.papermill
def test_a_dead_kernel_is_reported_with_the_notebook_name(tmp_path):
    from workbench.report.nightly import NotebookError

    nb = make_notebook(tmp_path / "01_dies.ipynb", PARAMS, "import os\nos._exit(1)")
    with pytest.raises(NotebookError, match="notebook 01_dies.ipynb failed: DeadKernelError"):
        run_notebook(nb, tmp_path / "out.ipynb", {})
