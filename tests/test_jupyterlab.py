"""The notebooks in a real JupyterLab (on 127.0.0.1, token auth, no browser of its own), driven by headless Chromium.

The tests share one server. Each page opens in a workspace of its own (a shared one restores every tab of the tests
before it, with page-wide selectors reading their cells), and each test's kernels are shut down after it.

02_clusters runs top to bottom on small data: the map explorer widget renders, a selection set from Python fills
its table, a legend click hides one category only, and no console error names a missing module. The executed
notebooks of a nightly report open with every figure drawn.

A screenshot of the explorer goes to the test's folder; with ``WORKBENCH_SCREENSHOTS=1`` the README's copy in
``docs/`` is updated.
"""
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from types import SimpleNamespace

import nbformat
import pytest

from tests import browser
from tests.helpers import ROOT, write_jsonl

pytestmark = pytest.mark.browser
PICK = 8  # messages selected from Python (of one category: an island on the map)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A JupyterLab server on 127.0.0.1 with its own settings, stopped at the end (and idle-culled if orphaned)."""
    root = tmp_path_factory.mktemp("lab")
    port, token = free_port(), secrets.token_hex(16)
    home = root / ".jupyter-home"
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
               JUPYTER_CONFIG_DIR=str(home / "config"), JUPYTER_RUNTIME_DIR=str(home / "runtime"),
               JUPYTERLAB_SETTINGS_DIR=str(home / "settings"), JUPYTERLAB_WORKSPACES_DIR=str(home / "workspaces"))
    env.pop("WORKBENCH_STATIC", None)
    news = home / "settings" / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    news.parent.mkdir(parents=True)
    news.write_text('{"fetchNews": "false"}')  # no "get notified about news?" toast over the notebook
    windowing = home / "settings" / "@jupyterlab" / "notebook-extension" / "tracker.jupyterlab-settings"
    windowing.parent.mkdir(parents=True)
    windowing.write_text('{"windowingMode": "none"}')  # every cell drawn at once, not as it scrolls into view
    log = (root / "server.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}",
         "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
         "--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
         # stops by itself if this process dies: idle kernels are culled, then an idle server shuts down
         "--MappingKernelManager.cull_idle_timeout=900", "--MappingKernelManager.cull_interval=60",
         "--ServerApp.shutdown_no_activity_timeout=1200"] + (["--allow-root"] if os.geteuid() == 0 else []),
        cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(240):
            if proc.poll() is not None:
                pytest.fail("jupyter lab exited: " + (root / "server.log").read_text()[-2000:])
            try:
                with urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail("jupyter lab did not start: " + (root / "server.log").read_text()[-2000:])
        yield SimpleNamespace(root=root, url=url, token=token, log=root / "server.log")
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def api(lab, path, method="GET"):
    """The server's REST API (token in the header, so no XSRF cookie is needed); the decoded JSON reply or None."""
    request = urllib.request.Request(f"{lab.url}{path}", method=method,
                                     headers={"Authorization": f"token {lab.token}"})
    with urllib.request.urlopen(request, timeout=30) as reply:
        body = reply.read()
    return json.loads(body) if body else None


@pytest.fixture(autouse=True)
def shut_down_kernels(lab):
    """Shut down every session a test opened: their kernels (one per notebook opened) must not pile up for the next."""
    yield
    for session in api(lab, "/api/sessions"):
        api(lab, f"/api/sessions/{session['id']}", "DELETE")


def server_state(d, lab):
    """For a failure message: dialogs and tabs on the page, sessions and kernel states from the server, the log's end
    (and a screenshot in the lab folder)."""
    shot = lab.root / f"failure-{time.time():.0f}.png"
    d.save_screenshot(str(shot))
    page = d.execute_script("return {focused: document.hasFocus(),"
                            " dialogs: [...document.querySelectorAll('.jp-Dialog')].map(e => e.innerText),"
                            " tabs: [...document.querySelectorAll('#jp-main-dock-panel .lm-TabBar-tabLabel')]"
                            ".map(e => e.textContent)}")
    sessions = [(s["path"], s["kernel"]["execution_state"], s["kernel"]["connections"])
                for s in api(lab, "/api/sessions")]
    return (f"page {page}; sessions (path, kernel state, connections) {sessions}; screenshot {shot}; "
            f"server log: {lab.log.read_text(errors='replace')[-1500:]}")


def wait(driver, script, timeout=120, *args, what=None):
    """Wait for ``script`` with a generous bound; a timeout names what was awaited and what the page showed."""
    from tests.browser import wait_for

    return wait_for(driver, script, *args, what=what or script[:120], timeout=timeout)


def open_notebook(b, lab, path):
    """Open a notebook in a new workspace (no tab of an earlier page restored) and wait until it is the current tab
    with its cells drawn."""
    b.driver.get(f"{lab.url}/lab/workspaces/t{secrets.token_hex(6)}/tree/{path}?token={lab.token}")
    wait(b.driver, "const tab = document.querySelector('#jp-main-dock-panel .lm-TabBar-tab.lm-mod-current "
                   ".lm-TabBar-tabLabel');"
                   "const panel = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden)');"
                   "return tab && tab.textContent === arguments[0] && panel"
                   " && panel.querySelectorAll('.jp-Cell').length",
         300, path.rsplit("/", 1)[-1], what=f"the notebook {path} open in the current tab with its cells drawn")
    # Headless Chromium (150 here) opens the page without focus, and JupyterLab's shell tracks its current widget by
    # focus: until a click, no notebook is current, so the status bar shows no kernel and Run All has nothing to run.
    # A click on the current tab focuses the page as a user's first click would, without entering a cell.
    from selenium.webdriver.common.by import By

    b.driver.find_element(By.CSS_SELECTOR, "#jp-main-dock-panel .lm-TabBar-tab.lm-mod-current").click()
    wait(b.driver, "return document.hasFocus()", 60, what="the page focused after a click on its tab")


#: The notebook in the current tab (hidden tabs keep their cells in the page).
PANEL = ".jp-NotebookPanel:not(.lm-mod-hidden)"
#: Error outputs (tracebacks go to stderr), not any output: a message of the pool may say "Traceback" too.
ERRORS = (f"return [...document.querySelectorAll('{PANEL} .jp-OutputArea-output"
          "[data-mime-type=\"application/vnd.jupyter.stderr\"]')]"
          ".filter(o => /Traceback|Error:/.test(o.textContent)).map(o => o.textContent)")


def kernel_idle(d, lab, path, timeout=600):
    """Wait until the server says ``path``'s kernel is idle with the page connected, and the page says so too (a Run
    All clicked before is lost); starting a kernel can take minutes on a loaded machine."""
    end = time.time() + timeout * browser.WAIT_SCALE
    while time.time() < end:
        states = [(s["kernel"]["execution_state"], s["kernel"]["connections"])
                  for s in api(lab, "/api/sessions") if s["path"] == path]
        if states and states[0][0] == "idle" and states[0][1] >= 1 and d.execute_script(
                "const s = document.querySelector('#jp-bottom-panel');"
                " return s && s.innerText.includes('| Idle')"):
            return
        time.sleep(1)
    pytest.fail(f"the kernel of {path} was not idle in {timeout * browser.WAIT_SCALE:.0f} s; "
                f"{server_state(d, lab)}", pytrace=False)


def run_all(d, lab, path, timeout=1200):
    """Run every cell of the notebook ``path`` (the current tab) from the Run menu; wait until each of its code cells
    has run, failing on the first error, and with what the page and the server say when they do not."""
    from selenium.webdriver.common.by import By

    kernel_idle(d, lab, path)
    d.find_element(By.XPATH, "//div[contains(@class,'lm-MenuBar-itemLabel') and text()='Run']").click()
    d.find_element(By.XPATH, "//li[contains(@class,'lm-Menu-item')]//div[text()='Run All Cells']").click()
    prompts = f"return [...document.querySelectorAll('{PANEL} .jp-CodeCell .jp-InputPrompt')]" \
              ".map(p => p.textContent.trim())"
    started, end = time.time() + 60 * browser.WAIT_SCALE, time.time() + timeout * browser.WAIT_SCALE
    while time.time() < end:
        done = d.execute_script(prompts)
        errors = d.execute_script(ERRORS)
        assert not errors, errors[0][-3000:]
        if done and all(p[1:-2].isdigit() for p in done):
            return done
        if time.time() > started and not any(p != "[ ]:" for p in done):
            pytest.fail(f"Run All started no cell of {path} in 60 s; {server_state(d, lab)}", pytrace=False)
        time.sleep(2)
    pytest.fail(f"the cells of {path} did not finish in {timeout * browser.WAIT_SCALE:.0f} s (prompts "
                f"{d.execute_script(prompts)}); {server_state(d, lab)}", pytrace=False)


def live_copy(root, small_pool_file, cache_dir, ids, *, probe=False):
    """02_clusters on small data: the test data injected after the parameters (as papermill does), the explorer
    bound to a name, and one cell that sets a selection from Python (with ``probe``: a last cell that prints
    ``explorer.selection``'s ids, run again from the page to read the kernel's state)."""
    nb = nbformat.read(str(ROOT / "notebooks" / "02_clusters.ipynb"), as_version=4)
    rows = [ln for f in sorted((ROOT / "data" / "templates").glob("*.jsonl"))
            for ln in f.read_text(encoding="utf-8").splitlines()[:8]]
    templates = write_jsonl(root / "templates.jsonl", rows)
    code = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"]
    nb.cells.insert(code[0] + 1, nbformat.v4.new_code_cell(
        f"pool_dir = {str(small_pool_file)!r}\ntemplates_dir = {str(templates)!r}\ncache_dir = {str(cache_dir)!r}\n"
        f"output_dir = {str(root / 'scratch')!r}"))
    cell = next(c for c in nb.cells if "plots.explore_map(cluster_map" in c.source)
    cell.source = cell.source.replace("plots.explore_map(cluster_map, live=ctx.live)",
                                      "explorer = plots.explore_map(cluster_map, live=ctx.live)\nexplorer")
    nb.cells.insert(nb.cells.index(cell) + 1, nbformat.v4.new_code_cell(f"explorer.select({ids!r})"))
    name = "02_clusters_probe.ipynb" if probe else "02_clusters.ipynb"
    if probe:
        nb.cells.append(nbformat.v4.new_code_cell(
            "import json\nprint('SELECTION ' + json.dumps(explorer.selection['id'].tolist()))"))
    nbformat.write(nb, str(root / name))
    return name


VISIBLE = ("return arguments[0]._fullData.filter(t => t.visible === true && t.customdata).length")


def test_02_clusters_runs_live_with_the_map_explorer(lab, small_pool_file, cache_dir, tmp_path):
    import json

    from selenium.webdriver.common.action_chains import ActionChains

    rows = [json.loads(ln) for ln in small_pool_file.read_text(encoding="utf-8").splitlines()]
    ids = [r["id"] for r in rows if r["category"] == "coding"][:PICK]
    name = live_copy(lab.root, small_pool_file, cache_dir, ids)
    with browser.Browser(offline=False) as b:
        d = b.driver
        open_notebook(b, lab, name)
        run_all(d, lab, name)
        assert "Error displaying widget" not in d.find_element("tag name", "body").text
        plot = wait(d, "return document.querySelector('.wb-explorer .js-plotly-plot')", 180,
                    what="the map explorer's plot")
        wait(d, "return arguments[0]._fullData && arguments[0].querySelector('.main-svg')", 180, plot,
             what="the map explorer's plot drawn")
        # the selection set from Python is in the explorer's table
        shown = wait(d, "return [...document.querySelectorAll('.wb-explorer .wb-table td.wb-col-id')]"
                        ".map(td => td.textContent)", 180, what="the selection in the explorer's table")
        assert sorted(shown) == sorted(ids)
        assert f"{PICK} selected" in d.find_element("css selector", ".wb-explorer").text
        shot = tmp_path / "explorer-live.png"
        d.set_window_size(1400, 1900)  # the map and the selection table in one picture
        explorer = d.find_element("css selector", ".wb-explorer")
        d.execute_script("arguments[0].scrollIntoView()", explorer)
        time.sleep(1)
        explorer.screenshot(str(shot))
        # a legend click hides that category and leaves the others drawn
        before = d.execute_script(VISIBLE, plot)
        d.execute_script("arguments[0].scrollIntoView()", plot)
        # the resize above redraws the plot: wait for its legend rather than assume it is there
        items = wait(d, "const t = arguments[0].querySelectorAll('.legend .traces .legendtoggle');"
                        "return t.length ? [...t] : null", 120, plot, what="the plot's legend redrawn after the resize")
        ActionChains(d).move_to_element(items[0]).click().perform()
        wait(d, VISIBLE.replace("return ", "return (", 1) + f") === {before - 1}", 120, plot,
             what=f"{before - 1} categories drawn after a legend click (was {before})")
        assert d.execute_script(VISIBLE, plot) == before - 1 >= 1
        missing = [e["message"] for e in d.get_log("browser")
                   if e["level"] == "SEVERE" and "module" in e["message"].lower()]
        assert not missing, missing
    assert shot.stat().st_size > 10_000
    if os.environ.get("WORKBENCH_SCREENSHOTS"):
        shutil.copyfile(shot, ROOT / "docs" / "explorer-live.png")


def test_executed_report_notebooks_show_their_figures_in_jupyterlab(lab, nightly_report):
    run, _ = nightly_report
    target = lab.root / "report"
    target.mkdir(exist_ok=True)
    with browser.Browser(offline=False) as b:
        for path in sorted(run.glob("[0-9][0-9]_*.ipynb")):
            shutil.copyfile(path, target / path.name)
            nb = nbformat.read(str(path), as_version=4)
            figures = sum("application/vnd.plotly.v1+json" in o.get("data", {})
                          for c in nb.cells for o in c.get("outputs", []))
            open_notebook(b, lab, f"report/{path.name}")
            d = b.driver
            drawn = wait(d, "const panel = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden)');"
                            "const n = [...panel.querySelectorAll('.jp-OutputArea-output.js-plotly-plot')]"
                            ".filter(o => o.querySelector('.main-svg')).length;"
                            f"return n >= {figures} ? n : 0", 300,
                            what=f"{figures} plotly figure(s) drawn in {path.name}") if figures else 0
            assert drawn == figures, path.name
            text = d.find_element("css selector", ".jp-NotebookPanel:not(.lm-mod-hidden)").text
            assert "No renderer could be found" not in text and "Error displaying" not in text, path.name


#: The data points of the live map inside a page rectangle (the drag's), computed in the browser from plotly's axes.
INSIDE = """
const gd = arguments[0], r = arguments[1], fl = gd._fullLayout, xa = fl.xaxis, ya = fl.yaxis;
const box = gd.querySelector('.nsewdrag').getBoundingClientRect();
const x0 = xa.p2d(r.x0 - box.left), x1 = xa.p2d(r.x1 - box.left);
const y0 = ya.p2d(r.y0 - box.top), y1 = ya.p2d(r.y1 - box.top);
const [lx, hx] = [Math.min(x0, x1), Math.max(x0, x1)], [ly, hy] = [Math.min(y0, y1), Math.max(y0, y1)];
const ids = [];
gd._fullData.forEach(t => {
  if (t.visible !== true || !t.customdata) return;
  t.x.forEach((x, i) => { const y = t.y[i];
    if (x > lx && x < hx && y > ly && y < hy) ids.push(String(t.customdata[i][1])); });
});
return ids;
"""


def run_cell(d, index, timeout=120):
    """Run code cell ``index`` from JupyterLab's UI and return its output text (what the kernel answered)."""
    from selenium.webdriver.common.by import By

    cells = d.find_elements(By.CSS_SELECTOR, ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell")
    cell = cells[index]
    d.execute_script("arguments[0].scrollIntoView()", cell)
    before = cell.find_element(By.CSS_SELECTOR, ".jp-InputPrompt").text
    cell.find_element(By.CSS_SELECTOR, ".jp-InputPrompt").click()
    d.find_element(By.XPATH, "//div[contains(@class,'lm-MenuBar-itemLabel') and text()='Run']").click()
    d.find_element(By.XPATH, "//li[contains(@class,'lm-Menu-item')]//div[text()='Run Selected Cell']").click()
    end = time.time() + timeout
    while time.time() < end:
        prompt = cell.find_element(By.CSS_SELECTOR, ".jp-InputPrompt").text
        if prompt != before and prompt[1:-2].isdigit():
            return cell.find_element(By.CSS_SELECTOR, ".jp-Cell-outputArea").text
        time.sleep(0.5)
    pytest.fail(f"cell {index} did not run again in {timeout} s (its prompt stayed {before!r}); "
                f"page: {d.find_element('tag name', 'body').text[-1500:]}")


def drag(d, plot, points, steps=4):
    """A real mouse drag over the map's drag layer through ``points`` (fractions of its width and height);
    returns the page rectangle from the first point to the last."""
    from selenium.webdriver.common.action_chains import ActionChains

    layer = plot.find_element("css selector", ".nsewdrag")
    box = d.execute_script("const b = arguments[0].getBoundingClientRect();"
                           "return {left: b.left, top: b.top, width: b.width, height: b.height}", layer)
    at = [(round(box["width"] * fx), round(box["height"] * fy)) for fx, fy in points]
    chain = ActionChains(d, duration=40).move_to_element_with_offset(
        layer, at[0][0] - round(box["width"] / 2), at[0][1] - round(box["height"] / 2)).click_and_hold()
    here = at[0]
    for x1, y1 in at[1:]:
        for step in range(1, steps + 1):  # small steps: plotly draws the outline from mouse moves
            to = (here[0] + round((x1 - here[0]) * 1 / (steps + 1 - step)), here[1] + round((y1 - here[1]) / (steps + 1 - step)))
            chain.move_by_offset(to[0] - here[0], to[1] - here[1])
            here = to
    chain.release().perform()
    return {"x0": box["left"] + at[0][0], "y0": box["top"] + at[0][1],
            "x1": box["left"] + at[-1][0], "y1": box["top"] + at[-1][1]}


def drawn(d, timeout=180):
    """The live map once drawn with its points (the widget first draws an empty placeholder, and a view may be
    drawn again into a new element: the element is looked up each time)."""
    find = ("return [...document.querySelectorAll('.wb-explorer .js-plotly-plot')].find(gd => gd._fullData"
            " && gd._fullData.some(t => t.customdata) && gd.querySelector('.nsewdrag'))")
    try:
        return wait(d, find, timeout)
    except Exception:
        errors = [e["message"][:400] for e in d.get_log("browser") if e["level"] == "SEVERE"]
        plots = d.execute_script("return [...document.querySelectorAll('.wb-explorer .js-plotly-plot')]"
                                 ".map(gd => (gd._fullData || []).length + ' traces')")
        pytest.fail(f"the live map did not draw its points in {timeout} s; map elements: {plots}; browser errors: "
                    f"{errors}; explorer text: {d.execute_script(EXPLORER_TEXT)[:300]!r}")


EXPLORER_TEXT = "const e = document.querySelector('.wb-explorer'); return e ? e.innerText : '(no explorer)'"


def mode_button(d, plot, value):
    """The map's mode-bar button for ``value`` (plotly draws the bar when the mouse is over the figure)."""
    from selenium.webdriver.common.action_chains import ActionChains

    ActionChains(d).move_to_element(plot).perform()
    try:
        return wait(d, f"return arguments[0].querySelector(\".modebar-btn[data-val='{value}']\")", 60, plot)
    except Exception:
        pytest.fail(f"the map's mode bar has no '{value}' button after 60 s; the figure holds: "
                    + d.execute_script("return arguments[0].innerHTML.slice(0, 600)", plot))


def selected_in_page(d, plot):
    """The ids plotly marks selected in the page (every data trace's ``selectedpoints``)."""
    return sorted(d.execute_script(
        "return arguments[0].data.flatMap(t => t.customdata && t.selectedpoints"
        " ? t.selectedpoints.map(i => String(t.customdata[i][1])) : [])", plot))


def kernel_selection(d, cell):
    out = run_cell(d, cell)
    line = [ln for ln in out.splitlines() if ln.startswith("SELECTION ")]
    assert line, f"the selection cell printed no 'SELECTION ...' line; its output: {out[-1500:]!r}"
    return json.loads(line[-1][len("SELECTION "):])


def write_selection(d, path, expect):
    """Type ``path`` into the explorer's review-file box, press "write selection" and wait for the status line to say
    ``expect``."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    box = d.find_element(By.XPATH, "//div[contains(@class,'wb-explorer')]//div[contains(@class,'widget-text')]"
                                   "[.//label[normalize-space()='review file']]//input")
    d.execute_script("arguments[0].scrollIntoView({block: 'center'})", box)
    box.send_keys(Keys.CONTROL, "a")
    box.send_keys(str(path), Keys.ENTER)
    d.find_element(By.XPATH, "//div[contains(@class,'wb-explorer')]//button[contains(., 'write selection')]").click()
    try:
        wait(d, "return document.querySelector('.wb-explorer').innerText.includes(arguments[0])", 60, expect)
    except Exception:
        pytest.fail(f"the explorer never said {expect!r} after 'write selection' to {path}; it says: "
                    + d.execute_script(EXPLORER_TEXT)[-600:])


def test_a_mouse_selection_on_the_live_map_reaches_the_kernel(lab, small_pool_file, cache_dir):
    """Box and lasso drags with the mouse select points in plotly; the kernel's ``explorer.selection`` holds them,
    "write selection" writes them, refusing an existing file and (after a double-click clears it) an empty one."""
    from selenium.webdriver.common.by import By

    name = live_copy(lab.root, small_pool_file, cache_dir, [], probe=True)
    with browser.Browser(offline=False) as b:
        d = b.driver
        d.set_window_size(1400, 1400)
        open_notebook(b, lab, name)
        run_all(d, lab, name, timeout=300)
        # where a user would look: the explorer in view (JupyterLab draws what it shows)
        explorer = wait(d, "return document.querySelector('.wb-explorer')", 60)
        d.execute_script("arguments[0].scrollIntoView({block: 'start'})", explorer)
        time.sleep(5)
        plot = drawn(d)
        cells = len(d.find_elements(By.CSS_SELECTOR, ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell"))
        probe = cells - 1
        d.execute_script("arguments[0].scrollIntoView({block: 'center'})", plot)
        time.sleep(1)
        # box: the user picks the box tool in the mode bar, then drags over the middle of the map
        tool = mode_button(d, plot, "select")
        d.execute_script("arguments[0].dispatchEvent(new MouseEvent('mouseover', {bubbles: true}))", tool)
        tool.click()
        rect = drag(d, plot, [(0.2, 0.2), (0.5, 0.5), (0.8, 0.8)])
        inside = selected_in_page(d, plot)
        assert inside, f"plotly selected no point after the drag {rect}"
        geometric = set(d.execute_script(INSIDE, plot, rect))
        # the same box up to the points under its edge (the mouse's pixels against plotly's rounding)
        assert len(geometric & set(inside)) >= 0.9 * max(len(geometric), len(inside)), \
            f"plotly selected {len(inside)} points, the dragged box holds {len(geometric)}"
        try:
            wait(d, "return document.querySelector('.wb-explorer').innerText"
                    f".includes('{len(inside)} selected')", 60)
        except Exception:
            pytest.fail(f"the explorer never said '{len(inside)} selected' after a box drag; it says: "
                        + d.find_element(By.CSS_SELECTOR, ".wb-explorer").text[:600])
        assert sorted(kernel_selection(d, probe)) == inside
        # lasso: a triangle over the left part of the map
        tool = mode_button(d, plot, "lasso")
        tool.click()
        drag(d, plot, [(0.05, 0.05), (0.6, 0.1), (0.1, 0.9), (0.05, 0.06)])
        try:
            wait(d, "const t = document.querySelector('.wb-explorer').innerText;"
                    f"return !t.includes('{len(inside)} selected') && /\\d+ selected|nothing selected/.test(t)", 60)
        except Exception:
            pytest.fail("the explorer's count did not change after a lasso drag; it says: "
                        + d.find_element(By.CSS_SELECTOR, ".wb-explorer").text[:600])
        lasso = kernel_selection(d, probe)
        assert sorted(lasso) == selected_in_page(d, plot)
        shown = d.find_element(By.CSS_SELECTOR, ".wb-explorer").text
        assert (f"{len(lasso)} selected" if lasso else "nothing selected") in shown
        assert lasso and set(lasso) != set(inside)
        # "write selection": an existing file stays as it was, a new one gets exactly the selected rows
        kept, written = lab.root / "kept.jsonl", lab.root / "lasso.jsonl"
        kept.write_text("kept\n", encoding="utf-8")
        write_selection(d, kept, "kept.jsonl exists: tick 'overwrite'")
        assert kept.read_text(encoding="utf-8") == "kept\n"
        write_selection(d, written, f"wrote {len(lasso)} message(s) to lasso.jsonl")
        assert sorted(json.loads(ln)["id"] for ln in written.read_text(encoding="utf-8").splitlines()) == sorted(lasso)
        # a double-click clears the selection in the kernel too
        from selenium.webdriver.common.action_chains import ActionChains

        ActionChains(d).move_to_element(plot.find_element(By.CSS_SELECTOR, ".nsewdrag")).double_click().perform()
        wait(d, "return document.querySelector('.wb-explorer').innerText.includes('nothing selected')", 60)
        assert kernel_selection(d, probe) == []
        empty = lab.root / "empty.jsonl"
        write_selection(d, empty, "refused: nothing is selected")
        assert not empty.exists()
