"""Browser tests skip on a workstation without Chromium but fail in CI: a CI machine must not pass silently."""
import pytest

from tests import browser, conftest


class _Item:
    """What the hook reads of a collected test."""

    def __init__(self, *markers):
        self.markers = set(markers)

    def get_closest_marker(self, name):
        return name if name in self.markers else None


@pytest.fixture
def no_driver(monkeypatch, tmp_path):
    monkeypatch.setattr(browser, "CHROMEDRIVER", str(tmp_path / "chromedriver"))  # chromium present, driver not


def test_without_the_driver_a_browser_test_skips_naming_what_is_missing(no_driver, monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="chromedriver"):
        conftest.pytest_runtest_setup(_Item("browser"))


def test_with_ci_set_a_browser_test_that_would_skip_fails(no_driver, monkeypatch):
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI is set.*chromedriver"):
        conftest.pytest_runtest_setup(_Item("browser"))


def test_other_tests_are_not_touched(no_driver, monkeypatch):
    monkeypatch.setenv("CI", "true")
    conftest.pytest_runtest_setup(_Item("slow"))


def test_ci_script_installs_whichever_of_chromium_and_its_driver_is_missing():
    from tests.helpers import ROOT

    script = (ROOT / ".ci" / "run").read_text()
    assert "command -v chromedriver" in script and "missing+=(chromium-driver)" in script
    assert "missing+=(chromium)" in script and '"${missing[@]}"' in script
