"""Real headless Chromium for the report tests (Selenium + the Debian chromium-driver), network off.

Tests that need it are marked ``browser``; ``tests/conftest.py`` skips them
when something here is missing, and fails them instead when ``CI`` is set
(a CI machine without a browser must not pass silently).
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

CHROMEDRIVER = "/usr/bin/chromedriver"
CHROMIUM = "/usr/bin/chromium"
FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
         "--proxy-server=127.0.0.1:9", "--window-size=1400,1000")
#: With this, loopback goes to the dead proxy too (a local file page needs no network at all).
NO_LOOPBACK = "--proxy-bypass-list=<-loopback>"


def missing():
    """What the browser tests need and this machine lacks (empty when they can run)."""
    out = [p for p in (CHROMIUM, CHROMEDRIVER) if not Path(p).exists()]
    try:
        import selenium  # noqa: F401
    except ImportError:
        out.append("the selenium package")
    return out


def available():
    return not missing()


class Browser:
    """A headless Chromium with a fresh profile; requests go to a dead proxy.

    ``offline`` (the default, for report pages): every request outside
    file:// fails. ``offline=False`` (JupyterLab on 127.0.0.1): loopback
    works, everything else still fails.
    """

    def __init__(self, *, offline=True, downloads=None):
        self.offline = offline
        self.downloads = downloads

    def __enter__(self):
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        self.profile = tempfile.mkdtemp(prefix="wb-chromium-")
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for flag in FLAGS + ((NO_LOOPBACK,) if self.offline else ()):
            options.add_argument(flag)
        options.add_argument(f"--user-data-dir={self.profile}")
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        self.driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
        if self.offline:  # a local page; JupyterLab on 127.0.0.1 needs the loopback network
            self.driver.set_network_conditions(offline=True, latency=0, throughput=0)
        if self.downloads:
            self.driver.execute_cdp_cmd("Browser.setDownloadBehavior",
                                        {"behavior": "allow", "downloadPath": str(self.downloads)})
        self.driver.set_page_load_timeout(120)
        return self

    def open(self, path, *, min_svgs=1, timeout=120):
        """Load a local page and wait until ``min_svgs`` plotly figures have drawn."""
        self.driver.get(Path(path).resolve().as_uri())
        wait_for(self.driver, "return document.querySelectorAll('svg.main-svg').length >= arguments[0]", min_svgs,
                 what=f"{min_svgs} plotly figure(s) drawn in {Path(path).name}", timeout=timeout)
        return self.driver

    def severe_logs(self):
        return [e for e in self.driver.get_log("browser") if e["level"] == "SEVERE"]

    def __exit__(self, *exc):
        self.driver.quit()
        shutil.rmtree(self.profile, ignore_errors=True)


#: Multiplies every browser wait (``WORKBENCH_BROWSER_WAIT_SCALE=3`` on a slow or busy machine).
WAIT_SCALE = float(os.environ.get("WORKBENCH_BROWSER_WAIT_SCALE", "1") or 1)


def page_summary(driver, limit=600):
    """What the page shows now, for a failure message: the title, JupyterLab's status bar and the start of the text."""
    try:
        return driver.execute_script(
            "const s = document.querySelector('#jp-bottom-panel, .jp-StatusBar-Widget');"
            "return 'title: ' + document.title + ' | status bar: ' + (s ? s.innerText.replace(/\\s+/g, ' ') : '-')"
            " + ' | text: ' + (document.body ? document.body.innerText.replace(/\\s+/g, ' ') : '')")[:limit]
    except Exception as e:  # the page itself is gone: say so
        return f"(page not readable: {type(e).__name__})"


def wait_for(driver, script, *args, what, timeout=120, poll=0.5):
    """Poll ``script`` (JavaScript returning a truthy value when done) for up to ``timeout * WAIT_SCALE`` s.

    A generous bound for a busy machine; on timeout the failure says what was
    awaited, for how long, and what the page showed.
    """
    import pytest
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    bound = timeout * WAIT_SCALE
    try:
        return WebDriverWait(driver, bound, poll_frequency=poll).until(lambda d: d.execute_script(script, *args))
    except TimeoutException:
        pytest.fail(f"waited {bound:.0f} s for {what}; the page showed: {page_summary(driver)}", pytrace=False)

