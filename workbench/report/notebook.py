"""What every notebook does first: resolve its path parameters and set up display.

Notebook parameters stay literal (``None`` means "the project default");
:func:`setup` turns them into paths and a loaded taxonomy, points plotly at
a renderer whose HTML embeds plotly.js (reports open offline), and makes
sure the output folder exists.
"""
from __future__ import annotations

import logging
import re
from pathlib import Path
from types import SimpleNamespace

__all__ = ["setup", "offline_renderer", "PLOTLY_RENDERER"]

#: JupyterLab draws the plotly mimetype; nbconvert's HTML takes the text/html output of the offline
#: notebook renderer, which embeds plotly.js once per notebook and loads nothing from the network.
PLOTLY_RENDERER = "plotly_mimetype+workbench_offline"
_MATHJAX_CDN = re.compile(r'<script src="https?://[^"]*mathjax[^"]*"></script>')


def offline_renderer():
    """plotly's "notebook" renderer without the MathJax CDN script it adds to every figure.

    The figures use no LaTeX, and a report must open with no network.
    """
    from plotly.io._base_renderers import NotebookRenderer

    class OfflineNotebookRenderer(NotebookRenderer):
        def to_mimebundle(self, fig_dict):
            bundle = super().to_mimebundle(fig_dict)
            bundle["text/html"] = _MATHJAX_CDN.sub("", bundle["text/html"])
            return bundle

    return OfflineNotebookRenderer()


def setup(*, pool_dir=None, templates_dir=None, taxonomy_path=None, cache_dir=None, output_dir=None,
          verbose=False):
    """Resolve a notebook's parameters.

    Returns
    -------
    types.SimpleNamespace with ``pool_dir``, ``templates_dir``, ``taxonomy``
    (a loaded :class:`~workbench.core.taxonomy.Taxonomy`), ``cache_dir``,
    ``projection_cache`` and ``output_dir`` (created; default
    ``reports/scratch``).
    """
    import pandas as pd
    import plotly.io as pio

    from .. import config
    from ..core.taxonomy import load_taxonomy

    if "workbench_offline" not in pio.renderers:
        pio.renderers["workbench_offline"] = offline_renderer()
    pio.renderers.default = PLOTLY_RENDERER
    pd.set_option("display.max_colwidth", 160)
    pd.set_option("display.max_rows", 60)
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    cache = Path(cache_dir) if cache_dir else config.CACHE_DIR
    out = Path(output_dir) if output_dir else config.SCRATCH_DIR
    out.mkdir(parents=True, exist_ok=True)
    return SimpleNamespace(pool_dir=Path(pool_dir) if pool_dir else config.POOL_DIR,
                           templates_dir=Path(templates_dir) if templates_dir else config.TEMPLATES_DIR,
                           taxonomy=load_taxonomy(taxonomy_path), cache_dir=cache,
                           projection_cache=cache.parent / "projections", output_dir=out)
