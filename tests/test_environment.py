"""environment.yml (for conda users) and pyproject.toml list the same packages."""
import re
import tomllib

from tests.conftest import ROOT


def test_environment_yml_matches_pyproject():
    import yaml

    py = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = set(py["dependencies"]) | set(py["optional-dependencies"]["dev"])
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert "python=3.11" in env["dependencies"]
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    listed = {p for p in pip if not p.startswith("-e")}
    assert listed == wanted
    assert re.match(r">=3\.11", py["requires-python"])
