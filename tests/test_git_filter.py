"""Notebooks run locally keep their outputs on disk but never reach a commit: the nbstripout git filter that
``make`` configures, tried in a scratch repository with a real git."""
import re
import shutil
import subprocess
import sys

import nbformat
import pytest
from nbformat.v4 import new_output

from tests.helpers import ROOT, notebook_strip_keys

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")


def git(repo, *args):
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.org", *args], cwd=repo,
                          capture_output=True, text=True, check=True).stdout


def test_executed_notebooks_are_committed_clean_and_stay_executed_on_disk(tmp_path):
    repo = tmp_path / "repo"
    (repo / "notebooks").mkdir(parents=True)
    git(repo, "init", "-q")
    shutil.copyfile(ROOT / ".gitattributes", repo / ".gitattributes")
    # what the Makefile's git-filter target runs
    subprocess.run([sys.executable, "-m", "nbstripout", "--install", "--attributes", ".gitattributes"], cwd=repo,
                   check=True)
    git(repo, "config", "filter.nbstripout.extrakeys", notebook_strip_keys())
    assert (repo / ".gitattributes").read_text() == (ROOT / ".gitattributes").read_text()  # nothing appended

    stored = ROOT / "notebooks" / "02_clusters.ipynb"
    nb = nbformat.read(str(stored), as_version=4)
    for n, cell in enumerate(c for c in nb.cells if c.cell_type == "code"):  # "run" it: outputs, counts, widgets
        cell.execution_count = n + 1
        cell.outputs = [new_output("stream", name="stdout", text="16 MB of figures\n")]
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}}}
    # what JupyterLab and papermill write into a notebook they run
    nb.metadata["language_info"] = {"codemirror_mode": {"name": "ipython", "version": 3}, "file_extension": ".py",
                                    "mimetype": "text/x-python", "name": "python", "nbconvert_exporter": "python",
                                    "pygments_lexer": "ipython3", "version": "3.11.2"}
    nb.metadata["papermill"] = {"duration": 12.5, "parameters": {"seed": 3}}
    for cell in nb.cells:
        cell.metadata["papermill"] = {"status": "completed"}
        cell.metadata["trusted"] = True
        cell.metadata["execution"] = {"iopub.status.idle": "2026-12-06T00:00:00Z"}
    nbformat.write(nb, str(repo / "notebooks" / stored.name))

    git(repo, "add", ".")
    staged = git(repo, "show", f":notebooks/{stored.name}")
    # what a commit stores is byte for byte the notebook in the repository: no outputs, and no reformatting either
    assert staged == stored.read_text(encoding="utf-8")
    committed = nbformat.reads(staged, as_version=4)
    assert all(not c.outputs and c.execution_count is None for c in committed.cells if c.cell_type == "code")
    assert "16 MB of figures" in (repo / "notebooks" / stored.name).read_text()  # the local copy keeps them


def test_every_make_target_that_runs_something_installs_the_filter():
    makefile = (ROOT / "Makefile").read_text()
    assert "nbstripout --install --attributes .gitattributes" in makefile
    for target in ("venv", "lab", "nightly", "test", "test-quick", "evaluate", "export"):
        deps = re.search(rf"^{re.escape(target)}:([^#\n]*)", makefile, re.M).group(1)
        assert "git-filter" in deps, target
    # an existing clone gets the extra keys too (not only at the first install)
    assert 'git config filter.nbstripout.extrakeys "$(NB_STRIP_KEYS)"' in makefile
    assert "metadata.language_info" in notebook_strip_keys().split()
    assert re.search(r"^lab:.*\n\t\$\(BIN\)/jupyter lab --notebook-dir=notebooks \$\(LAB_ARGS\)$", makefile, re.M)
    assert "filter=nbstripout" in (ROOT / ".gitattributes").read_text()
