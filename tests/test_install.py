"""``pip install .`` without extras is enough to route: the deployment story of the README."""
import json
import shutil
import subprocess
import sys
import venv

import pytest

from tests.helpers import ROOT


@pytest.mark.install
def test_plain_install_routes_an_exported_pool(small_npz, tmp_path):
    src = tmp_path / "src"
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(".venv", ".git", "data", "reports", "notebooks", "tests",
                                                             "__pycache__", "*.egg-info", "build"))
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    py = env_dir / "bin" / "python"
    res = subprocess.run([str(py), "-m", "pip", "install", "-q", str(src)], capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "deprecat" not in res.stderr.lower(), res.stderr[-2000:]
    freeze = subprocess.run([str(py), "-m", "pip", "freeze"], capture_output=True, text=True).stdout.lower()
    for heavy in ("pandas", "scikit-learn", "torch", "plotly", "umap-learn", "pyyaml", "scipy"):
        assert f"{heavy}==" not in freeze, f"{heavy} came with a plain install"
    msgs = "\n".join(json.dumps({"id": i, "text": t}) for i, t in
                     enumerate(["write a python function that reverses a string", "good night, thanks!"]))
    res = subprocess.run([str(env_dir / "bin" / "workbench"), "route", "--pool", str(small_npz)], input=msgs,
                         capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    out = [json.loads(line) for line in res.stdout.splitlines()]
    assert [o["id"] for o in out] == [0, 1] and out[0]["tier"] == "strong"
