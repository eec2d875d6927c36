import json, time
import pytest
from pathlib import Path
from tests import browser
from tests.test_jupyterlab import lab, live_copy, open_notebook, run_all, wait, drag, INSIDE, kernel_selection, mode_button, drawn  # noqa

@pytest.fixture(scope="session")
def cache_dir():
    return Path("/work/wt22/data/interim/embeddings")

def test_dbg(lab, small_pool_file, cache_dir):
    from selenium.webdriver.common.by import By
    name = live_copy(lab.root, small_pool_file, cache_dir, [], probe=True)
    with browser.Browser(offline=False) as b:
        d = b.driver
        d.set_window_size(1400, 1400)
        open_notebook(b, lab, name)
        run_all(d)
        plot = wait(d, "return document.querySelector('.wb-explorer .js-plotly-plot')", 60)
        drawn(d, plot)
        d.execute_script("window.__ev = []; const gd = arguments[0];"
                         "['plotly_selected','plotly_selecting','plotly_deselect','plotly_relayout','plotly_click'].forEach(n => gd.on(n, e => window.__ev.push([n, e && e.points ? e.points.length : JSON.stringify(e).slice(0,200)])));", plot)
        d.execute_script("arguments[0].scrollIntoView({block: 'center'})", plot)
        time.sleep(1)
        tool = mode_button(d, plot, "select")
        d.execute_script("arguments[0].dispatchEvent(new MouseEvent('mouseover', {bubbles: true}))", tool)
        tool.click()
        print("dragmode", d.execute_script("return arguments[0]._fullLayout.dragmode", plot))
        rect = drag(d, plot, [(0.2, 0.2), (0.5, 0.5), (0.8, 0.8)])
        time.sleep(3)
        print("inside", len(d.execute_script(INSIDE, plot, rect)))
        print("events", d.execute_script("return window.__ev"))
        print("selectedpoints", d.execute_script("return arguments[0].data.map(t => t.selectedpoints)", plot))
        print("explorer", d.find_element(By.CSS_SELECTOR, ".wb-explorer").text[:200])
        cells = len(d.find_elements(By.CSS_SELECTOR, ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell"))
        print("kernel", kernel_selection(d, cells - 1))
        from tests.test_jupyterlab import run_cell
        print("TRAITLOG", run_cell(d, cells - 2)[-3000:])
        for e in d.get_log("browser"):
            print("LOG", e["level"], e["message"][:300])
        print(open(lab.log).read()[-3000:])
