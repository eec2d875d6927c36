"""``pip install routing-workbench`` (from a wheel built here) without extras is enough to route: the deployment
story of the README. The distribution name is ``routing-workbench`` (``workbench`` on PyPI is another project); the
import name and the command stay ``workbench``."""
import json
import shutil
import subprocess
import sys
import venv

import pytest

from tests.helpers import ROOT

NAME = "routing-workbench"


def test_the_readme_and_the_deployment_guide_install_the_distribution_name():
    import re
    import tomllib

    assert tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["name"] == NAME
    for doc in ("README.md", "docs/deploy.md", "environment.yml"):
        text = (ROOT / doc).read_text(encoding="utf-8")
        assert NAME in text, doc
        assert not re.search(r"pip install '?workbench\b", text), f"{doc} still installs the other project 'workbench'"


@pytest.mark.install
def test_plain_install_routes_an_exported_pool(small_npz, tmp_path):
    src = tmp_path / "src"
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(".venv", ".git", "data", "reports", "notebooks", "tests",
                                                             "__pycache__", "*.egg-info", "build"))
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    py = env_dir / "bin" / "python"
    wheels = tmp_path / "wheels"
    res = subprocess.run([str(py), "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels), str(src)],
                         capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stderr[-2000:]
    assert [w.name.split("-")[0] for w in wheels.glob("*.whl")] == ["routing_workbench"]
    # by name, as the README says: the wheel here wins over the index's unrelated "workbench"
    res = subprocess.run([str(py), "-m", "pip", "install", "-q", "--find-links", str(wheels), NAME],
                         capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "deprecat" not in res.stderr.lower(), res.stderr[-2000:]
    freeze = subprocess.run([str(py), "-m", "pip", "freeze"], capture_output=True, text=True).stdout.lower()
    assert f"{NAME}==" in freeze and "\nworkbench==" not in "\n" + freeze
    for heavy in ("pandas", "scikit-learn", "torch", "plotly", "umap-learn", "pyyaml", "scipy"):
        assert f"{heavy}==" not in freeze, f"{heavy} came with a plain install"
    msgs = "\n".join(json.dumps({"id": i, "text": t}) for i, t in
                     enumerate(["write a python function that reverses a string", "good night, thanks!"]))
    res = subprocess.run([str(env_dir / "bin" / "workbench"), "route", "--pool", str(small_npz)], input=msgs,
                         capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    out = [json.loads(line) for line in res.stdout.splitlines()]
    assert [o["id"] for o in out] == [0, 1] and out[0]["tier"] == "strong"


def test_the_container_recipe_ignores_the_venv_and_checks_health_without_curl():
    text = (ROOT / "docs" / "deploy.md").read_text(encoding="utf-8")
    ignore = text.split("# .dockerignore", 1)[1].split("```", 1)[0].split()
    assert {".venv", ".git", "data/interim", "reports"} <= set(ignore)
    dockerfile = text.split("```dockerfile", 1)[1].split("```", 1)[0]
    assert "FROM python:3.11-slim" in dockerfile and "HEALTHCHECK" in dockerfile and "curl" not in dockerfile
    check = dockerfile.split("HEALTHCHECK", 1)[1].split("ENTRYPOINT", 1)[0]
    code = check.split('"-c", "', 1)[1].rsplit('"]', 1)[0]
    compile(code, "healthcheck", "exec")  # the command the slim image runs is valid Python
    assert "/healthz" in code
