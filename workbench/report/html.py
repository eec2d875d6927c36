"""Light report pages: one plotly.js per report folder, figures as JSON, the maps' selection panel.

Every page of a report folder loads ``assets/plotly.min.js``,
``assets/figures.js``, ``assets/explore.js``, ``assets/table.js`` and the
style sheets by relative path, so the folder opens from the file system,
copied or not, with no network. A figure is a ``<div class="wb-figure">``
with its JSON beside it, or, when a notebook recorded it
(``figures/<name>.js``, see :func:`workbench.report.record.record_figure`), a
reference to that file, which the index and the notebook page share.

Executed notebooks keep their figures as plotly JSON (the mime bundle
JupyterLab draws); :func:`figure_preprocessor` turns those outputs into
such ``<div>``\\ s when nbconvert renders a page.
"""
from __future__ import annotations

import hashlib
import html
import json
import re
import shutil
from importlib import resources
from pathlib import Path

from ..errors import require
from ..io import write_text_atomic
from ..plots.table import static_file
from .record import default_template, read_figure, script_json, without_default_template

__all__ = ["ASSETS", "PLOTLY_MIME", "CARTESIAN_TRACES", "trace_types", "plotly_bundle", "write_assets", "head_html", "tail_html", "figure_html", "recorded_figures",
           "figure_preprocessor", "notebook_to_html", "compact_notebook"]

#: Folder of the shared files in a report folder.
ASSETS = "assets"
PLOTLY_MIME = "application/vnd.plotly.v1+json"
_SCRIPTS = ("figures.js", "explore.js", "table.js")
_TEMPLATES = Path(__file__).resolve().parent / "templates"


def _notebook_css():
    """The notebook pages' style sheet: our few rules for the lab template's markup, and pygments' code colours."""
    from pygments.formatters import HtmlFormatter

    return static_file("notebook.css") + HtmlFormatter(style="default").get_style_defs(".highlight") + "\n"


#: Trace types of the vendored cartesian bundle (``report/vendor``): a folder that uses only these gets it.
CARTESIAN_TRACES = frozenset({"bar", "box", "contour", "heatmap", "histogram", "histogram2d", "histogram2dcontour",
                              "image", "pie", "scatter", "scatterternary", "violin"})
#: The same with ``scattergl`` (the map of a big pool): the second vendored bundle, built by ``scripts/plotly_bundle``.
CARTESIAN_GL_TRACES = CARTESIAN_TRACES | {"scattergl"}
_VENDOR = Path(__file__).resolve().parent / "vendor"
#: The vendored bundles, smallest first, with the trace types each draws.
_BUNDLES = ((_VENDOR / "plotly-cartesian.min.js", CARTESIAN_TRACES),
            (_VENDOR / "plotly-cartesian-gl.min.js", CARTESIAN_GL_TRACES))
_VERSION = re.compile(rb"plotly\.js[^\n]*? v(\d+\.\d+\.\d+)")


def _bundle_version(path):
    with open(path, "rb") as fh:
        m = _VERSION.search(fh.read(400))
    return m.group(1).decode() if m else None


def trace_types(run_dir):
    """Trace types of every figure in a report folder: recorded figures and the executed notebooks' outputs."""
    run_dir = Path(run_dir)
    figures = [read_figure(p) for p in sorted((run_dir / "figures").glob("*.js"))]
    for nb in sorted(run_dir.glob("*.ipynb")):
        for cell in json.loads(nb.read_text(encoding="utf-8")).get("cells", []):
            for output in cell.get("outputs", []):
                fig = output.get("data", {}).get(PLOTLY_MIME)
                if isinstance(fig, dict):
                    figures.append(fig)
    return {str(t.get("type") or "scatter") for f in figures for t in f.get("data", []) if isinstance(t, dict)}


def plotly_bundle(run_dir):
    """The plotly.js a report folder needs: the smallest vendored bundle that draws every trace the folder uses and
    matches the installed plotly's version (cartesian 1.5 MB, cartesian with scattergl 1.8 MB), else the full one
    the plotly package ships (4.8 MB)."""
    with resources.as_file(resources.files("plotly").joinpath("package_data", "plotly.min.js")) as full:
        full, used = Path(full), trace_types(run_dir)
        for bundle, traces in _BUNDLES:
            if used <= traces and bundle.exists() and _bundle_version(bundle) == _bundle_version(full):
                return bundle
        return full


def write_assets(run_dir):
    """Write ``<run_dir>/assets/``: plotly.min.js, the page scripts and the style sheets (once per folder).

    Call it after the folder's figures are written: the plotly.js it copies is the smallest that draws them
    (:func:`plotly_bundle`).
    """
    require("plotly", purpose="report pages")
    out = Path(run_dir) / ASSETS
    out.mkdir(parents=True, exist_ok=True)
    src = plotly_bundle(run_dir)
    target = out / "plotly.min.js"
    if not target.exists() or target.stat().st_size != src.stat().st_size:
        tmp = out / ".plotly.min.js.tmp"
        shutil.copyfile(src, tmp)
        tmp.replace(target)
    for name in (*_SCRIPTS, "workbench.css"):
        write_text_atomic(out / name, static_file(name))
    write_text_atomic(out / "template.js", f"window.WB_TEMPLATE = {script_json(default_template())};\n")
    write_text_atomic(out / "notebook.css", _notebook_css())
    return out


def head_html(*, notebook=False):
    """``<link>`` and ``<script>`` elements of a report page's head (paths relative to the report folder)."""
    css = (["notebook.css"] if notebook else []) + ["workbench.css"]
    return ("".join(f'<link rel="stylesheet" href="{ASSETS}/{c}">' for c in css)
            + f'<script src="{ASSETS}/plotly.min.js"></script><script src="{ASSETS}/template.js"></script>')


def tail_html():
    """The scripts that draw the figures and enhance the tables (end of the page body)."""
    return "".join(f'<script src="{ASSETS}/{s}"></script>' for s in ("explore.js", "table.js", "figures.js"))


def _key(figure, template):
    figure = without_default_template({"data": figure.get("data", []), "layout": figure.get("layout", {})}, template)
    return hashlib.sha256(json.dumps(figure, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def recorded_figures(run_dir):
    """``{content key: name}`` of the figures recorded in ``<run_dir>/figures``."""
    out, template = {}, default_template()
    for path in sorted((Path(run_dir) / "figures").glob("*.js")):
        try:
            out[_key(read_figure(path), template)] = path.stem
        except (OSError, ValueError):
            continue  # an unreadable file is only not shared; the page embeds its own copy
    return out


def figure_html(figure, *, recorded=None):
    """A figure's ``<div>``: a reference to ``figures/<name>.js`` when recorded there, else the JSON beside it.

    Parameters
    ----------
    figure : dict with ``data`` and ``layout`` (a plotly mime bundle, or ``fig.to_dict()``)
    recorded : dict, optional
        From :func:`recorded_figures`.
    """
    template = default_template()
    name = (recorded or {}).get(_key(figure, template))
    if name:
        return (f'<div class="wb-figure" data-figure="{html.escape(name)}"></div>'
                f'<script src="figures/{html.escape(name)}.js"></script>')
    fig = without_default_template({"data": figure.get("data", []), "layout": figure.get("layout", {})}, template)
    return ('<div class="wb-figure"></div>'
            f'<script type="application/json" class="wb-figure-data">{script_json(fig)}</script>')


def figure_preprocessor(recorded):
    """An nbconvert preprocessor that turns plotly JSON outputs into :func:`figure_html` (the notebook keeps JSON)."""
    from nbconvert.preprocessors import Preprocessor

    class _FigurePreprocessor(Preprocessor):
        def preprocess_cell(self, cell, resources_, index):
            for output in cell.get("outputs", []):
                data = output.get("data", {})
                if PLOTLY_MIME in data:
                    output["data"] = {"text/html": figure_html(data[PLOTLY_MIME], recorded=recorded)}
            return cell, resources_

    return _FigurePreprocessor()


def notebook_to_html(ipynb_path, html_path, *, run_dir=None):
    """Render an executed notebook to a light report page (no network; assets and figures by relative path).

    Parameters
    ----------
    ipynb_path, html_path : path
    run_dir : path, optional
        The report folder (default: the page's folder): its ``assets/`` are
        written when missing and its recorded figures are referenced.
    """
    nbformat = require("nbformat", purpose="rendering notebooks")
    from nbconvert import HTMLExporter

    run_dir = Path(run_dir or Path(html_path).parent)
    write_assets(run_dir)
    exporter = HTMLExporter(template_name="offline", extra_template_basedirs=[str(_TEMPLATES)])
    exporter.register_preprocessor(figure_preprocessor(recorded_figures(run_dir)), enabled=True)
    nb = nbformat.read(str(ipynb_path), as_version=4)
    body, _ = exporter.from_notebook_node(nb, resources={"workbench_head": head_html(notebook=True),
                                                         "workbench_tail": tail_html()})
    write_text_atomic(html_path, body)
    return Path(html_path)


def compact_notebook(path):
    """Rewrite a notebook file without indentation (same content; JupyterLab reads it as it is).

    nbformat indents every JSON value on its own line, which more than
    doubles the size of a figure's per-point data.
    """
    nbformat = require("nbformat", purpose="rendering notebooks")
    nb = nbformat.read(str(path), as_version=4)
    nbformat.validate(nb)
    write_text_atomic(path, json.dumps(nb, ensure_ascii=False, separators=(",", ":"), sort_keys=True) + "\n")
    return Path(path)
