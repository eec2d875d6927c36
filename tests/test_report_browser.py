"""The nightly report in real headless Chromium, offline: every page and figure renders, the map's selection
panel works (selection, neighbours, search, export), and hostile message text stays text.

Screenshots go to the test's folder; with ``WORKBENCH_SCREENSHOTS=1`` the README's copy in ``docs/`` is updated.
"""
import json
import os
import re
import shutil
import time

import pytest

from tests import browser
from tests.helpers import ROOT, XSS_SCRIPT

pytestmark = pytest.mark.browser
MIN_FIGURE_HEIGHT = 250
PAGES = ["index.html"] + sorted(p.stem + ".html" for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def wait(driver, script, timeout=60):
    """Wait until ``script`` (returning a value) is truthy; returns the value."""
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout).until(lambda d: d.execute_script(script))


def open_page(b, path):
    b.driver.get(path.resolve().as_uri())
    n = wait(b.driver, "return document.documentElement.getAttribute('data-wb-figures')")
    return int(n)


def keep_screenshot(shot, name):
    assert shot.stat().st_size > 10_000
    if os.environ.get("WORKBENCH_SCREENSHOTS"):
        shutil.copyfile(shot, ROOT / "docs" / name)


@pytest.fixture(scope="module")
def run(nightly_report):
    return nightly_report[0]


@pytest.mark.parametrize("page", PAGES)
def test_every_page_renders_offline_with_every_figure_and_text_escaped(run, page):
    with browser.Browser() as b:
        figures = open_page(b, run / page)
        d = b.driver
        assert d.find_elements("css selector", ".wb-missing") == []
        drawn = d.execute_script("return document.querySelectorAll('div.wb-figure .main-svg').length")
        assert drawn >= figures  # every figure drew (plotly draws one or more svg layers per figure)
        if page != "06_export.html":
            assert figures >= 1
        assert d.execute_script("return window.__xss === undefined")  # no message text ran as script
        assert d.find_elements("css selector", "img[src='x']") == []
        assert b.severe_logs() == []
        if page in ("index.html", "02_clusters.html"):
            assert XSS_SCRIPT in d.find_element("tag name", "body").text  # shown as text
        # readable: no figure squashed (a figure without a height once drew 100 px high), no unfilled placeholder
        heights = d.execute_script("return [...document.querySelectorAll('div.wb-figure')].map(f => "
                                   "[f.getBoundingClientRect().height, (f.querySelector('.gtitle') || {}).textContent"
                                   " || f.getAttribute('data-figure') || '(untitled)'])")
        low = [(round(h), title) for h, title in heights if h < MIN_FIGURE_HEIGHT]
        assert not low, f"{page}: figures under {MIN_FIGURE_HEIGHT} px high: {low}"
        # the page's own prose: tables, code and outputs quote messages, which may hold "{name}" themselves
        text = d.execute_script("const c = document.body.cloneNode(true);"
                                "c.querySelectorAll('table, pre, code, script, style, .wb-figure').forEach(n => n.remove());"
                                "return c.textContent")
        placeholders = re.findall(r"\{[A-Za-z_][A-Za-z0-9_.]*\}", text)
        assert not placeholders, f"{page} shows literal placeholders {placeholders[:5]}"


def _explorer(d):
    wait(d, "const gd = document.querySelector('[data-wb-explore]'); return gd && gd.wbExplore")
    return d.find_element("css selector", "[data-wb-explore]")


def _table(d, selector=".wb-selection table"):
    rows = d.find_elements("css selector", f"{selector} tbody tr")
    heads = [th.text for th in d.find_elements("css selector", f"{selector} thead th")]
    return [dict(zip(heads, [td.get_attribute("textContent") for td in r.find_elements("tag name", "td")]))
            for r in rows]


def test_map_selection_neighbours_search_and_export(run, tmp_path):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    from workbench.analysis.review import read_review_file

    with browser.Browser(downloads=tmp_path) as b:
        open_page(b, run / "02_clusters.html")
        d = b.driver
        gd = _explorer(d)
        # a scripted lasso: plotly's selection event with the points of the three hostile messages
        n = d.execute_script("""
            const gd = arguments[0], rows = gd.wbExplore.rows.filter(r => r && r.id.startsWith('xss-'));
            gd.emit('plotly_selected', {points: rows.map(r => ({curveNumber: r.trace, pointNumber: r.point}))});
            return rows.length;""", gd)
        assert n == 3
        table = _table(d)
        assert sorted(r["id"] for r in table) == ["xss-1", "xss-2", "xss-3"]
        assert {r["text"] for r in table} >= {XSS_SCRIPT, XSS_SCRIPT + "?!"}  # the payloads, as text
        assert {r["label"] for r in table} == {"coding"} and all(r["routed tier"] for r in table)
        assert set(table[0]) == {"id", "text", "label", "language", "source", "routed", "routed tier", "wrong?"}
        assert d.execute_script("return window.__xss === undefined")
        assert d.find_elements("css selector", "img[src='x']") == []

        # a real click on a drawn point fills the neighbour panel
        point = d.find_elements("css selector", "[data-wb-explore] .scatterlayer .trace path.point")[5]
        ActionChains(d).move_to_element(point).pause(0.3).click().perform()
        wait(d, "return document.querySelectorAll('.wb-neighbours tbody tr').length")
        neighbours = _table(d, ".wb-neighbours table")
        assert len(neighbours) == 5 and all(0 < float(r["similarity"]) <= 1 for r in neighbours)
        assert all(r["label"] and r["same label?"] in ("yes", "no") for r in neighbours)

        # search by id, then by text
        search = d.find_element("css selector", ".wb-search")
        search.send_keys("xss-3")
        assert [r["id"] for r in _table(d)] == ["xss-3"]
        search.send_keys(Keys.CONTROL, "a", Keys.DELETE)
        search.send_keys("fix my script tag")
        assert sorted(r["id"] for r in _table(d)) == ["xss-1", "xss-2"]
        assert d.execute_script("return arguments[0].data.some(t => Array.isArray(t.selectedpoints))", gd)

        # export: copy ids (clipboard stubbed to read it back), download JSONL (a real download)
        d.execute_script("navigator.clipboard.writeText = t => { window.__copied = t; return Promise.resolve(); }")
        d.find_element("css selector", ".wb-copy").click()
        assert wait(d, "return window.__copied") == "xss-1\nxss-2"
        d.find_element("css selector", ".wb-download").click()
        target = tmp_path / "selection.jsonl"
        for _ in range(100):
            if target.exists() and target.stat().st_size:
                break
            time.sleep(0.1)
        picked = read_review_file(target)  # the format the review queue and `workbench label --input` read
        assert picked["id"].tolist() == ["xss-1", "xss-2"] and picked.loc[0, "text"] == XSS_SCRIPT
        assert set(picked.columns) >= {"category", "lang", "source", "predicted", "predicted_tier"}
        assert b.severe_logs() == []

        # a real box selection with the mouse over the middle of the map
        d.find_element("css selector", ".wb-clear").click()
        d.set_window_size(1400, 1300)
        d.execute_script("arguments[0].scrollIntoView(); return Plotly.relayout(arguments[0], {dragmode: 'select'})", gd)
        area = gd.find_element("css selector", ".nsewdrag")
        w, h = area.size["width"], area.size["height"]
        (ActionChains(d).move_to_element_with_offset(area, -w // 5, -h // 5).click_and_hold()
         .move_by_offset(w // 10, h // 10).move_by_offset(w // 4, h // 4).release().perform())
        rows = wait(d, "return document.querySelectorAll('.wb-selection tbody tr').length")
        marked = d.execute_script("return arguments[0].data.reduce((n, t) => n + (t.selectedpoints || []).length, 0)", gd)
        assert rows == marked >= 1
        shot = tmp_path / "report-map-selection.png"
        d.save_screenshot(str(shot))
    keep_screenshot(shot, "report-map-selection.png")


VISIBLE = ("return document.querySelector('[data-wb-explore]')._fullData"
           ".filter(t => t.visible === true && t.customdata).length")


def test_a_legend_click_hides_one_category_and_a_double_click_isolates_it(run):
    from selenium.webdriver.common.action_chains import ActionChains

    with browser.Browser() as b:
        open_page(b, run / "02_clusters.html")
        d = b.driver
        gd = _explorer(d)
        before = d.execute_script(VISIBLE)
        items = gd.find_elements("css selector", ".legend .traces .legendtoggle")
        ActionChains(d).move_to_element(items[1]).click().perform()
        time.sleep(1)  # a click waits out plotly's double-click window before it acts
        assert d.execute_script(VISIBLE) == before - 1 >= 1  # one category hidden, the others stay
        ActionChains(d).double_click(items[3]).perform()
        time.sleep(1)
        assert d.execute_script(VISIBLE) == 1  # only that one


def test_a_label_edit_on_the_report_map_merges_into_a_copy_of_the_pool(run, small_pool_file, tmp_path):
    """Report map: select, pick a new label, download the edits; workbench merge --edits applies them to a copy."""
    from selenium.webdriver.support.ui import Select

    from workbench.traffic.edits import apply_edits

    rows = [json.loads(ln) for ln in small_pool_file.read_text(encoding="utf-8").splitlines()]
    ids = [r["id"] for r in rows if r["category"] == "casual"][:3]
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    with browser.Browser(downloads=downloads) as b:
        open_page(b, run / "02_clusters.html")
        d = b.driver
        gd = _explorer(d)
        assert d.execute_script("return arguments[0].wbExplore.select(arguments[1])", gd, ids) == 3
        Select(d.find_element("css selector", ".wb-new-label")).select_by_value("analysis")
        d.find_element("css selector", ".wb-note").send_keys("asks for an analysis")
        d.find_element("css selector", ".wb-who").send_keys("tester")
        d.find_element("css selector", ".wb-relabel").click()
        target = downloads / "label-edits.jsonl"
        end = time.time() + 60
        while not target.exists() and time.time() < end:
            time.sleep(0.5)
        assert target.exists(), f"no download after 60 s; status: {d.find_element('css selector', '.wb-status').text}"
    edits = [json.loads(ln) for ln in target.read_text(encoding="utf-8").splitlines()]
    assert sorted(e["id"] for e in edits) == sorted(ids)
    assert {(e["old_label"], e["new_label"], e["who"], e["note"]) for e in edits} == {
        ("casual", "analysis", "tester", "asks for an analysis")}
    pool = tmp_path / "pool"
    pool.mkdir()
    shutil.copyfile(small_pool_file, pool / "small.jsonl")
    summary = apply_edits(target, tmp_path / "merged", pool_dir=pool)
    assert summary["edits"] == 3 and summary["changes"] == {"casual -> analysis": 3}
    merged = {json.loads(ln)["id"]: json.loads(ln) for ln in (tmp_path / "merged" / "small.jsonl").read_text(
        encoding="utf-8").splitlines()}
    assert all(merged[i]["category"] == "analysis" and merged[i]["review"]["who"] == "tester" for i in ids)


def test_a_big_map_drawn_with_webgl_renders_with_the_small_bundle(tmp_path):
    """A pool past WEBGL_MIN_POINTS draws its map with scattergl: the folder gets the cartesian bundle with
    scattergl (1.8 MB, not the full 4.8 MB plotly.js), and the page draws it offline in headless Chromium."""
    import numpy as np
    import pandas as pd

    from tests.test_report_html import executed_notebook
    from workbench import plots
    from workbench.report.html import notebook_to_html
    from workbench.report.record import record_figure

    n, rng = 6000, np.random.default_rng(0)
    frame = pd.DataFrame({"id": [f"m{i}" for i in range(n)], "text": [f"message {i}" for i in range(n)],
                          "category": rng.choice(["casual", "coding", "analysis"], n)})
    fig = plots.plot_map(rng.normal(size=(n, 2)), frame)
    assert {t.type for t in fig.data} == {"scattergl"}
    page = notebook_to_html(executed_notebook(tmp_path / "02_map.ipynb", record_figure(tmp_path, "map", fig)),
                            tmp_path / "02_map.html")
    bundle = (tmp_path / "assets" / "plotly.min.js").read_bytes()
    assert b"plotly.js (cartesian + scattergl" in bundle[:200] and len(bundle) < 2_000_000
    with browser.Browser() as b:
        assert open_page(b, page) == 1
        d = b.driver
        wait(d, "return document.querySelectorAll('div.wb-figure canvas').length >= 1")  # the WebGL layer
        assert d.execute_script("return document.querySelector('div.wb-figure')._fullData[0].type") == "scattergl"
        assert d.execute_script("return document.querySelector('div.wb-figure')._fullData"
                                ".reduce((s, t) => s + t.x.length, 0)") == n
        assert b.severe_logs() == []
