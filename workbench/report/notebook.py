"""What every notebook does first: resolve its path parameters and set up display.

Notebook parameters stay literal (``None`` means "the project default");
:func:`setup` turns them into paths and a loaded taxonomy, shows plotly
figures as plotly JSON (the mime bundle JupyterLab draws, and the report
pages render with the report folder's one copy of plotly.js), prints
warnings without the file paths of the machine, and makes sure the output
folder exists.

A notebook runs *live* (JupyterLab: explorer widgets, progress bars) unless
the environment variable :data:`STATIC_ENV` is set, as the nightly run does
for its kernels: then it makes static outputs only (figures instead of
widgets, no progress bars), which is what a published page can show.
"""
from __future__ import annotations

import logging
import os
import sys
import warnings
from pathlib import Path
from types import SimpleNamespace

__all__ = ["setup", "is_live", "STATIC_ENV", "PLOTLY_RENDERER"]

#: JupyterLab, VS Code and the report pages all draw this mimetype; no HTML with plotly.js embedded.
PLOTLY_RENDERER = "plotly_mimetype"
#: Set (to anything but "" or "0") for static outputs: no widgets, no progress bars.
STATIC_ENV = "WORKBENCH_STATIC"


def is_live():
    """Whether notebooks should show widgets and progress bars (see :data:`STATIC_ENV`)."""
    return os.environ.get(STATIC_ENV, "") in ("", "0")


def _show_warning(message, category, filename, lineno, file=None, line=None):
    # "UserWarning: message (umap.umap_)": the module, not the absolute path of the file on this machine
    module = next((name for name, mod in list(sys.modules.items())
                   if getattr(mod, "__file__", None) == filename), Path(filename).stem)
    print(f"{category.__name__}: {message} ({module})", file=file or sys.stderr)


def setup(*, pool_dir=None, templates_dir=None, taxonomy_path=None, cache_dir=None, output_dir=None,
          verbose=False):
    """Resolve a notebook's parameters.

    Returns
    -------
    types.SimpleNamespace with ``pool_dir``, ``templates_dir``, ``taxonomy``
    (a loaded :class:`~workbench.core.taxonomy.Taxonomy`), ``cache_dir``,
    ``projection_cache``, ``output_dir`` (created; default
    ``reports/scratch``), ``live`` (widgets allowed, see :func:`is_live`) and
    ``progress`` (show progress bars).
    """
    import pandas as pd
    import plotly.io as pio

    from .. import config
    from ..core.taxonomy import load_taxonomy

    pio.renderers.default = PLOTLY_RENDERER
    pd.set_option("display.max_colwidth", 160)
    pd.set_option("display.max_rows", 60)
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    warnings.showwarning = _show_warning
    cache = Path(cache_dir) if cache_dir else config.CACHE_DIR
    out = Path(output_dir) if output_dir else config.SCRATCH_DIR
    out.mkdir(parents=True, exist_ok=True)
    live = is_live()
    return SimpleNamespace(pool_dir=Path(pool_dir) if pool_dir else config.POOL_DIR,
                           templates_dir=Path(templates_dir) if templates_dir else config.TEMPLATES_DIR,
                           taxonomy=load_taxonomy(taxonomy_path), cache_dir=cache,
                           projection_cache=cache.parent / "projections", output_dir=out, live=live, progress=live)
